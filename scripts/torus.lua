-- Data on a torus: is the learned representation factorized (a Clifford
-- torus: x and y turn in orthogonal planes) or coupled (a 3D torus)? The
-- follow-up paper (Liang, Liu, Ostrow, Fiete 2024; docs/PAPER.md, finding
-- 3: "representations that are factorized") compares a model trained on
-- bumps with periodic boundaries with both ideal tori.
--
--   bdrun scripts/torus.lua [scale=quick|standard|paper] [seeds=1,2,3]
--                           [steps=...] [every=...] [replicates=4] [procs=2]
--                           [shard=r/n] ...
--
-- Data: one bump of width sigma per image at every site of a lattice of
-- spacing `spacing` over [0, size) on both axes, drawn on a torus
-- (bd.data's periodic = 1: a bump near an edge wraps round). One unet per
-- training seed, a sweep (scripts/lib/sweep.lua: procs=2 trains two seeds
-- at once, shard=r/n splits the seeds over processes).
--
-- Over training (step 0, the untrained model, then every `every` steps):
--   accuracy     one sample per probe (a grid of step probe_step; placement
--                at training values: the spacing is under the tolerance,
--                so this is not an interpolation test), scored by the bump
--                metric with periodic = 1 (a bump is found across the
--                edges and compared with its label the short way round):
--                correct, one bump, several, none.
--   representation  the tap `tap` (layer4) read by bd.represent at t =
--                rep_t on one fixed noisy bump per label of the grid of
--                step rep_step (one period of each axis, G x G labels);
--                its PCA (the manifold metric): the explained variance of
--                the first `pcs` components, the share of the top 4, the
--                participation ratio (effective dimension), and the top 4
--                scores, drawn at the start, the middle and the end.
--                The label embedding added in that block (a Linear of the
--                sinusoidal encodings of x and of y: a sum of an x part and
--                a y part) is read apart: tap_pre (layer4_pre), the same
--                output before it is added, gets the same geometry.
--   geometry     scripts/lib/tori.lua: the factorization metric's cosine
--                histograms (periodic = 1; x-steps against y-steps, x
--                against x, y against y) of the code, and of an ideal
--                Clifford torus and an ideal 3D torus (R / r = ratio) at
--                the same labels, by the same code. Distance: Wasserstein-1
--                between histograms, averaged over the three; position =
--                d_clifford / (d_clifford + d_torus) (0: the Clifford
--                torus, 1: the 3D torus). In two spaces: the code's top 4
--                principal components (pca4, the headline: the ideal
--                tori's own dimension) and the code as it is (raw).
--   additivity   scripts/lib/additivity.lua: is the code a sum of an x
--                code and a y code? Per feature on the G x G grid, the
--                two-way decomposition (grand mean, x effect, y effect,
--                interaction); the additive share is the main effects'
--                part of the between-label variance. The tap is read
--                `replicates` times with noise drawn independently per
--                label and draw (shared_noise = 0), and the within-cell
--                noise is subtracted (two-way ANOVA with replication).
--                Clifford torus 1, 3D torus (R / r = 2) 0.90, a place code
--                (the training images) far less: it tells a sum from a
--                place code, which the position cannot. Threshold: midway
--                between the training images and the Clifford torus, read
--                by the same code; additive when the t interval over
--                seeds lies above it, conjunctive below. Controls: per
--                seed, the Clifford torus and the training images in
--                isotropic noise of the end code's noise / between ratio,
--                read from as many draws, must read additive and
--                conjunctive. The PAPER.md finding 3 line needs both
--                readings: a sum (this) nearer the Clifford torus (pca4).
-- The statistic: position at the end of training, per seed, with a t
-- interval over seeds: factorized when it lies below 1/2 (nearer the
-- Clifford torus), coupled above, cannot decide when it holds 1/2. The
-- floor is the untrained model (step 0): a verdict needs a model that has
-- learned the data (final accuracy at least `learned`) and a position that
-- moved from the untrained one (Welch interval of end - start excluding 0).
--
-- Controls, in the same run:
--   references   each ideal torus through the comparison: position 0 and 1.
--   implanted    each trained model's code with its top 4 principal
--                components replaced by an ideal Clifford torus (and by a
--                3D torus) of the same variance, the rest of the code as
--                it is (tori.implant): must read factorized (coupled) over
--                seeds in the space the verdict uses, else that space
--                cannot decide.
--   the data     the training images themselves (a 2D place code:
--                conjunctive by construction) read the same way. On a
--                torus the principal components of any translation-
--                invariant code are Fourier modes, and the first four are
--                x's and y's first harmonics, a Clifford torus: if the
--                images read factorized in pca4, a factorized reading
--                there does not tell a factorized code from a place code.
-- Persistent homology (the paper's H0/H1 bars), at the start, the middle
-- and the end: the persistence metric's Vietoris-Rips barcode of the code
-- (the raw tap, one point per label, in rms units: distances divided by
-- the code's root mean square radius; tori.barcode). A torus has two
-- independent loops, so two long H1 bars; both ideal tori have them, so
-- this asks whether the code is a torus at all, not which one. "Long" is
-- derived in the run: midway between the floor, the longest bar of a
-- structureless cloud (Gaussian clouds drawn with the code's own whole PCA
-- spectrum, per seed and checkpoint: null draw A), and the ceiling, the
-- shortest known loop (each ideal torus's second bar); no gap between
-- them: cannot decide. Required, else cannot decide: each ideal torus has
-- exactly two long bars (its third is not a loop) and every null draw B
-- (held out) none; and for a reading of no long loop (which a torus could
-- give if noise shortened its loops), each seed's implanted Clifford and 3D
-- torus codes (above: a torus with the code's own other dimensions) two.
--
-- Writes runs/torus/: config.json, metrics.jsonl (a row per evaluation per
-- seed; the controls; the decision), accuracy.svg, geometry.svg, additivity.svg,
-- spectrum.svg, hist_xy.svg, hist_xx.svg, hist_yy.svg, pcs_<when>.svg
-- (the top 4 scores of the first seed at the start, middle and end),
-- barcode.svg and h1_lengths.svg (the H1 bars of the first seed's code,
-- the ideal tori and a null),
-- report.html and train/torus_s<seed>/ (each training; samples.png).
local additivity = require "additivity"
local bumps = require "bumps"
local experiment = require "experiment"
local report = require "report"
local stats = require "stats"
local sweep = require "sweep"
local tori = require "tori"

local cfg = experiment.config(sweep.options{
  name = "torus",
  sigma = 1.0,
  tolerance = 1.0,     -- pixels, for a correct bump (the papers' 1 px)
  sampler = "ddpm",
  batch = 64,
  warmup = 100,
  tap = "layer4",
  tap_pre = "layer4_pre", -- the same block's output before the label embedding is added
  rep_t = 500,         -- the representation's timestep: T/2 of T = 1000
  rep_input = "bump",  -- bump | noise (bd.represent's input)
  -- the additivity reading's independent noise draws per label (two-way
  -- ANOVA with replication needs at least 2; more shrink the noise
  -- correction's own scatter: 4 forward passes of the grid an evaluation)
  replicates = 4,
  bins = 21,           -- cosine histogram bins over [-1, 1] (odd: 0 is a bin centre)
  pcs = 15,            -- the PCA spectrum shown
  ratio = 2,           -- R / r of the ideal 3D torus (ours)
  space = "pca4",      -- the verdict's space: pca4 | raw
  learned = 0.5,       -- final accuracy under which the model has not learned the data
}, {
  -- 16x16 (layer 4 is 2x2, 128 numbers at width 8): phases.lua's quick net
  -- and budget (2000 steps: 98% correct on the plane); about 250 CPU-s a
  -- training (77 CPU-s per 600 steps with 3 evaluations, measured under load). A 16 x 16 grid of labels for the representation, 64 probes.
  -- Two one-thread processes (procs=2, one per core here).
  quick = { size = 16, spacing = 0.5, width = 8, emb = 64,
            attention_blocks = "down1,down2,down3,up1,up2", steps = 2000, lr = 1e-3,
            ema = 0.995, every = 250, sample_steps = 25, probe_step = 2, rep_step = 1,
            seeds = "1,2,3", procs = 2 },
  -- 32x32 (the paper's image size, layer 4 4x4): phases.lua's standard net
  -- and budget (width 8, attention at 8x8 and 4x4; its pilot: most samples
  -- correct from step 2,100 on the plane)
  standard = { size = 32, spacing = 1, width = 8, emb = 64, attention_blocks = "down2,down3,up1",
               steps = 4500, lr = 1e-3, ema = 0.995, every = 300, sample_steps = 25,
               probe_step = 4, rep_step = 2, seeds = "1,2,3" },
  -- the paper's net: 32x32, width 64, all six attention blocks; the
  -- training length and the lattice are ours
  paper = { size = 32, spacing = 0.5, width = 64, emb = 256,
            attention_blocks = "down1,down2,down3,up1,up2,up3", steps = 40000, lr = 3e-4,
            ema = 0.999, every = 2000, sample_steps = 100, probe_step = 2, rep_step = 1,
            seeds = "1,2,3" },
})
local seeds = experiment.seeds(cfg.seeds)
local SPACES = { "pca4", "raw" }
if cfg.space ~= "pca4" and cfg.space ~= "raw" then
  error(string.format("space = '%s', expected pca4 or raw", cfg.space), 0)
end
if not math.tointeger(cfg.replicates) or cfg.replicates < 2 then
  error(string.format("replicates = %s, expected an integer >= 2 (the additivity reading's"
                      .. " noise estimate needs two draws per label)", tostring(cfg.replicates)), 0)
end
if cfg.steps % cfg.every ~= 0 then
  error(string.format("steps = %d is not a multiple of every = %d; expected one (the middle"
                      .. " and the end are evaluations)", cfg.steps, cfg.every), 0)
end
local started = bd.time()

-- The evaluation nearest the middle of training (the first on a tie) among
-- the evaluation steps `list`: its index.
local function middle_of(list)
  local m = 1
  for i, s in ipairs(list) do
    if math.abs(s - cfg.steps / 2) < math.abs(list[m] - cfg.steps / 2) then m = i end
  end
  return m
end
-- the evaluations whose code gets a barcode: step -> { "start" ... }
local PH_AT, eval_steps = {}, {}
for s = 0, cfg.steps, cfg.every do eval_steps[#eval_steps + 1] = s end
for _, w in ipairs{ { "start", 0 }, { "middle", eval_steps[middle_of(eval_steps)] },
                    { "end", cfg.steps } } do
  PH_AT[w[2]] = PH_AT[w[2]] or {}
  table.insert(PH_AT[w[2]], w[1])
end

-- ---- what every training shares ---------------------------------------------------------

local function dataset(step)
  return bd.data.bumps{ size = cfg.size, sigma = cfg.sigma, dx = step, dy = step, periodic = true }
end
local probe = bd.data.grid{ size = cfg.size, step = cfg.probe_step }
-- one period of each axis: rep_step / 2 + k rep_step, k < size / rep_step
local grid = bd.data.grid{ size = cfg.size, step = cfg.rep_step }
local bump = bd.metric("bump", { tolerance = cfg.tolerance, periodic = 1 })
local refs = tori.references(grid.labels, cfg.size, { bins = cfg.bins, ratio = cfg.ratio })
local read_opts = { bins = cfg.bins, pcs = cfg.pcs }
local spectra = bd.metric("manifold", { method = "pca", dims = 4, pcs = 1000, seed = 1 })

-- The barcode of a code (tori.barcode), and of two Gaussian clouds of its
-- size and whole PCA spectrum (null draws A and B, seeded by seed and step).
local function persistence_reading(act, seed, step)
  local spectrum = spectra(act, grid.labels).explained_variance_ratio:to_table()
  local code = tori.barcode(act, grid.labels)
  local a = tori.barcode(tori.gaussian_like(spectrum, grid.n, 4 * (100000 * seed + step) + 1),
                         grid.labels)
  local b = tori.barcode(tori.gaussian_like(spectrum, grid.n, 4 * (100000 * seed + step) + 2),
                         grid.labels)
  return { lengths = code.lengths, bars = code.bars, h0_max = code.h0_max,
           null = a.lengths, null_bars = a.bars, heldout = b.lengths }
end

-- The additivity of the taps (scripts/lib/additivity.lua): each read
-- `replicates` times with noise drawn independently per label and per
-- draw (shared_noise = 0; seeds 100000 seed + k, the same at every
-- evaluation), corrected for it by two-way ANOVA with replication.
-- { code, pre } (additivity.read of tap and of tap_pre).
local function additivity_reading(model, data, seed)
  local code, pre = {}, {}
  for k = 1, cfg.replicates do
    local r = bd.represent(model, grid, { taps = { cfg.tap, cfg.tap_pre }, t = cfg.rep_t,
                                          seed = 100000 * seed + k, shared_noise = 0,
                                          input = cfg.rep_input, data = data })
    code[k], pre[k] = r.taps[cfg.tap], r.taps[cfg.tap_pre]
  end
  return { code = additivity.read(code, grid.labels), pre = additivity.read(pre, grid.labels) }
end

-- The numbers of a reading that go into a row: [prefix]<space>_position,
-- _d_clifford, _d_torus (and per histogram), _neither; eff_dim, top4.
local function geometry_row(row, reading, prefix)
  prefix = prefix or ""
  for _, space in ipairs(SPACES) do
    local c, key = reading[space], prefix .. space
    row[key .. "_position"], row[key .. "_neither"] = c.position, c.neither
    row[key .. "_d_clifford"], row[key .. "_d_torus"] = c.d_clifford, c.d_torus
    for _, k in ipairs(tori.KINDS) do
      row[key .. "_d_clifford_" .. k] = c["d_clifford_" .. k]
      row[key .. "_d_torus_" .. k] = c["d_torus_" .. k]
    end
  end
  row[prefix .. "eff_dim"], row[prefix .. "top4"] = reading.eff_dim, reading.top4
end

-- ---- one training -----------------------------------------------------------------------

-- One evaluation of `model`: its row (accuracy and geometry), the spectrum,
-- the top 4 scores, the step histograms, the samples and the activations.
local function evaluate(model, data, seed, step)
  local s = bd.sample(model, probe, { sampler = cfg.sampler, steps = cfg.sample_steps,
                                      seed = 1000 * seed + 1 })
  local b = bump(s.images, probe.labels)
  local correct = 0
  for i = 1, probe.n do
    if b.class:get(i) == bumps.CLASS.correct then correct = correct + 1 end
  end
  local r = bd.represent(model, grid, { taps = { cfg.tap, cfg.tap_pre }, t = cfg.rep_t,
                                        seed = seed, input = cfg.rep_input, data = data })
  local act = r.taps[cfg.tap]
  local reading = tori.read(act, grid.labels, refs, read_opts)
  local row = { correct = correct, n = probe.n, accuracy = b.accuracy, single = b.frac_single,
                frac_multi = b.frac_multi, frac_none = b.frac_none,
                median_error = b.median_error }
  geometry_row(row, reading)
  geometry_row(row, tori.read(r.taps[cfg.tap_pre], grid.labels, refs, read_opts), "pre_")
  local add = additivity_reading(model, data, seed)
  row.additive, row.pre_additive = add.code.share, add.pre.share
  row.add_between, row.add_noise = add.code.between, add.code.noise
  row.add_main_x, row.add_main_y = add.code.main_x, add.code.main_y
  local ph = PH_AT[step] and persistence_reading(act, seed, step)
  if ph then
    row.h1_1, row.h1_2, row.h1_3 = ph.lengths[1] or 0, ph.lengths[2] or 0, ph.lengths[3] or 0
    row.h0_max, row.null_h1, row.heldout_h1 = ph.h0_max, ph.null[1] or 0, ph.heldout[1] or 0
  end
  local h = reading.hist
  return row, { spectrum = reading.spectrum, embedding = reading.embedding,
                hist = { xy = h.xy, xx = h.xx, yy = h.yy }, samples = s, act = act, ph = ph }
end

local function train_one(sub, _, seed)
  local data = dataset(cfg.spacing)
  local model = experiment.unet(cfg, seed)
  local out = { steps = {}, rows = {}, spectra = {}, embeddings = {}, images = data.n,
                params = model:num_parameters(), ph = {}, implanted_ph = {} }
  local last
  local function add(step, row, extra)
    out.steps[#out.steps + 1], out.rows[#out.rows + 1] = step, row
    out.spectra[#out.spectra + 1], out.embeddings[#out.embeddings + 1] = extra.spectrum,
                                                                          extra.embedding
    last = extra
    for _, name in ipairs(PH_AT[step] or {}) do out.ph[name] = extra.ph end
    bd.log.info("torus seed %d step %d: correct %d/%d, one bump %.2f; pca4 position %.2f,"
                .. " raw %.2f; additive %.2f (noise / between %.2f); top 4 %.2f, eff. dim %.1f",
                seed, step, row.correct, row.n, row.single, row.pca4_position, row.raw_position,
                row.additive, row.add_noise / row.add_between, row.top4, row.eff_dim)
  end
  local t0 = bd.time()
  add(0, evaluate(model, data, seed, 0))
  local result = bd.train(model, data, {
    steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, warmup = cfg.warmup, ema = cfg.ema,
    seed = seed, every = cfg.every, run = sub,
    on_eval = function(r) add(r.step, evaluate(model, data, seed, r.step)) end })
  out.train_seconds, out.seconds = result.seconds, bd.time() - t0
  out.hist = last.hist
  out.tap_dims = last.act:numel() // grid.n
  -- the implanted controls: this code's top 4 components made an ideal torus
  out.implanted = {}
  for _, kind in ipairs{ "clifford", "torus3d" } do
    local code = tori.implant(last.act, grid.labels, cfg.size, kind, last.embedding,
                              { ratio = cfg.ratio })
    local row = {}
    geometry_row(row, tori.read(code, grid.labels, refs, read_opts))
    out.implanted[kind] = row
    out.implanted_ph[kind] = tori.barcode(code, grid.labels).lengths
  end
  if seed == seeds[1] then
    experiment.save_samples(sub:path("samples.png"), last.samples.images, probe,
                            math.max(1, 64 // cfg.size))
    out.samples = "samples.png"
  end
  return out
end

local TRAIN = "train"
local marks = sweep.run{ name = cfg.name, dir = "runs/" .. cfg.name .. "/" .. TRAIN,
                         conditions = { { name = "torus" } }, seeds = seeds, config = cfg,
                         train = train_one }
if not marks then return end

-- ---- the collected trainings --------------------------------------------------------------

local runs, runtime = {}, 0
for _, m in ipairs(marks) do
  local r = m.results
  r.seed, r.dir = m.seed, m.name
  runs[#runs + 1] = r
  runtime = runtime + m.seconds
end
table.sort(runs, function(a, b) return a.seed < b.seed end)
local steps = runs[1].steps
local function value(v) return v == nil and 0 / 0 or v end -- JSON null was NaN
local function final(r, key) return value(r.rows[#r.rows][key]) end
local function at(r, i, key) return value(r.rows[i][key]) end
-- The t interval over seeds of fn(run), and the per-seed list; a fraction's
-- (fraction = true) clipped to [0, 1].
local function over_seeds(fn, fraction)
  local list = {}
  for i, r in ipairs(runs) do list[i] = fn(r) end
  local t = stats.t_interval(list)
  if fraction and t.lo == t.lo then t.lo, t.hi = math.max(0, t.lo), math.min(1, t.hi) end
  return t, list
end
local middle = middle_of(steps)
local WHEN = { { name = "start", index = 1 }, { name = "middle", index = middle },
               { name = "end", index = #steps } }

local run = bd.run(cfg.name, { overwrite = true })
assert(run:save_config(cfg))
for _, r in ipairs(runs) do
  for i, step in ipairs(r.steps) do
    local line = { event = "evaluation", seed = r.seed, step = step, spectrum = r.spectra[i] }
    for k, v in pairs(r.rows[i]) do line[k] = v end
    assert(run:log(line))
  end
end

-- ---- the statistic and its controls -------------------------------------------------------

local acc_end = over_seeds(function(r) return final(r, "accuracy") end, true)
local pooled_k, pooled_n = 0, 0
for _, r in ipairs(runs) do
  pooled_k, pooled_n = pooled_k + final(r, "correct"), pooled_n + final(r, "n")
end
local pooled = stats.wilson(pooled_k, pooled_n)
local learned = acc_end.mean >= cfg.learned

-- the training images of a lattice of the grid's step: the same G x G torus grid, shifted
-- (the comparison does not see a shift: every torus here is translation-invariant)
local grid_data = dataset(cfg.rep_step)
local data_reading = tori.read(grid_data.images, grid_data.labels, refs, read_opts)
local ref_reading = {
  clifford = tori.compare(refs.clifford, refs), torus3d = tori.compare(refs.torus3d, refs) }

local verdicts = {}
for _, space in ipairs(SPACES) do
  local key = space .. "_position"
  local v = { space = space }
  v.model, v.per_seed = over_seeds(function(r) return final(r, key) end)
  v.reading = tori.verdict(v.per_seed)
  v.start = over_seeds(function(r) return at(r, 1, key) end)
  v.clifford_reading, v.clifford = tori.verdict(select(2, over_seeds(
    function(r) return r.implanted.clifford[key] end)))
  v.torus_reading, v.torus = tori.verdict(select(2, over_seeds(
    function(r) return r.implanted.torus3d[key] end)))
  v.control_ok = v.clifford_reading == "factorized" and v.torus_reading == "coupled"
  v.neither = true
  for _, r in ipairs(runs) do v.neither = v.neither and final(r, space .. "_neither") == true end
  -- the floor: the untrained model's positions (step 0) against the end's
  v.moved = stats.welch(v.per_seed, select(2, over_seeds(function(r) return at(r, 1, key) end)))
  v.d_clifford = over_seeds(function(r) return final(r, space .. "_d_clifford") end)
  v.d_torus = over_seeds(function(r) return final(r, space .. "_d_torus") end)
  v.data = data_reading[space]
  if not v.control_ok then
    v.decision = "cannot decide"
    v.reason = string.format("the implanted controls read %s (Clifford) and %s (3D torus), not"
                             .. " factorized and coupled", v.clifford_reading, v.torus_reading)
  else
    v.decision = v.reading
    v.reason = v.reading == "cannot decide" and "the interval over seeds holds 1/2"
               or string.format("nearer the %s torus", v.reading == "factorized" and "Clifford"
                                or "3D")
  end
  verdicts[space] = v
end
local head = verdicts[cfg.space]
-- the verdict stands for a model that has learned the data and whose code
-- moved from the untrained model's reading (Welch interval excluding 0)
local moved = head.moved.lo == head.moved.lo and (head.moved.lo > 0 or head.moved.hi < 0)
local decision, why = head.decision, head.reason
if head.control_ok and not learned then
  decision = "cannot decide"
  why = string.format("the data are not learned (accuracy %.2f, under %g); the code reads %s,"
                      .. " the untrained model %s", acc_end.mean, cfg.learned, head.reading,
                      (tori.verdict(select(2, over_seeds(
                        function(r) return at(r, 1, head.space .. "_position") end)))))
elseif head.control_ok and not moved then
  decision = "cannot decide"
  why = string.format("the code reads %s, but no differently from the untrained model",
                      head.reading)
end

local top4 = over_seeds(function(r) return final(r, "top4") end, true)
local eff = over_seeds(function(r) return final(r, "eff_dim") end)
local top4_start = over_seeds(function(r) return at(r, 1, "top4") end, true)
local eff_start = over_seeds(function(r) return at(r, 1, "eff_dim") end)

-- ---- additivity: is the code a sum of an x code and a y code? ------------------------------
-- The pca4 position cannot tell a factorized code from a place code (the
-- training images read 0.00 there); the additive share can. Its threshold
-- is midway between two codes read by the same function at the same labels:
-- the training images (a place code g(x) h(y): conjunctive by construction)
-- and the ideal Clifford torus (a sum by construction); the 3D torus is
-- printed beside them. Controls at the model's own noise: per seed, each
-- of the two built with isotropic noise of the end code's noise / between
-- ratio and read from `replicates` draws, must read as built, else cannot
-- decide (scripts/lib/additivity.lua).
local add = { ref = {
  clifford = additivity.read({ tori.embed("clifford", grid.labels, cfg.size) }, grid.labels).share,
  torus3d = additivity.read({ tori.embed("torus3d", grid.labels, cfg.size, { ratio = cfg.ratio }) },
                            grid.labels).share,
  place = additivity.read({ grid_data.images }, grid_data.labels).share } }
add.threshold = (add.ref.place + add.ref.clifford) / 2
-- "additive" when the interval over seeds lies above the threshold, "conjunctive" below
local function additivity_verdict(list)
  local t = stats.t_interval(list)
  if t.lo == t.lo and t.lo > add.threshold then return "additive", t end
  if t.hi == t.hi and t.hi < add.threshold then return "conjunctive", t end
  return "cannot decide", t
end
add.model, add.per_seed = over_seeds(function(r) return final(r, "additive") end)
add.start, add.start_seeds = over_seeds(function(r) return at(r, 1, "additive") end)
add.moved = stats.welch(add.per_seed, add.start_seeds)
add.pre, add.pre_seeds = over_seeds(function(r) return final(r, "pre_additive") end)
-- The controls at the noise / between ratio of each seed's code at evaluation i:
-- { ratio, clifford, place (per seed), their readings and intervals, ok }.
local function additivity_controls(i, salt)
  local c = { ratio = select(2, over_seeds(function(r)
    return at(r, i, "add_noise") / at(r, i, "add_between") end)), clifford = {}, place = {} }
  for k, r in ipairs(runs) do
    local clifford = tori.embed("clifford", grid.labels, cfg.size, { dims = r.tap_dims,
                                                                     seed = r.seed })
    c.clifford[k] = additivity.read(additivity.noisy_replicates(
      clifford, grid.labels, c.ratio[k], cfg.replicates, 7919 * r.seed + salt), grid.labels).share
    c.place[k] = additivity.read(additivity.noisy_replicates(
      grid_data.images, grid_data.labels, c.ratio[k], cfg.replicates, 7919 * r.seed + salt + 100),
      grid_data.labels).share
  end
  c.clifford_reading, c.clifford_iv = additivity_verdict(c.clifford)
  c.place_reading, c.place_iv = additivity_verdict(c.place)
  c.ok = c.clifford_reading == "additive" and c.place_reading == "conjunctive"
  return c
end
local ends, starts = additivity_controls(#steps, 0), additivity_controls(1, 1000)
add.ratio, add.clifford, add.place = ends.ratio, ends.clifford, ends.place
add.clifford_reading, add.clifford_iv = ends.clifford_reading, ends.clifford_iv
add.place_reading, add.place_iv, add.control_ok = ends.place_reading, ends.place_iv, ends.ok
add.reading = additivity_verdict(add.per_seed)
if not add.control_ok then
  add.decision = "cannot decide"
  add.why = string.format("the controls at the model's noise read %s (Clifford torus) and %s"
                          .. " (training images), not additive and conjunctive",
                          add.clifford_reading, add.place_reading)
elseif not learned then
  add.decision = "cannot decide"
  add.why = string.format("the data are not learned (accuracy %.2f, under %g); the code reads %s",
                          acc_end.mean, cfg.learned, add.reading)
else
  add.decision = add.reading
  add.why = add.reading == "cannot decide" and "the interval over seeds holds the threshold"
            or string.format("%s the threshold", add.reading == "additive" and "above" or "under")
end

-- ---- persistent homology: the threshold from the controls, then the code ------------------

local ideal_ph = {}
for _, kind in ipairs{ "clifford", "torus3d" } do
  ideal_ph[kind] = tori.barcode(tori.embed(kind, grid.labels, cfg.size, { ratio = cfg.ratio }),
                                grid.labels)
end
-- floor: the longest bar of a structureless cloud; ceiling: the shortest
-- known loop (see the header)
local ph = { floor = 0, ceiling = math.huge, heldout_max = 0, heldout_long = 0 }
for _, r in ipairs(runs) do
  for _, w in ipairs(WHEN) do ph.floor = math.max(ph.floor, r.ph[w.name].null[1] or 0) end
end
for _, kind in ipairs{ "clifford", "torus3d" } do
  ph.ceiling = math.min(ph.ceiling, ideal_ph[kind].lengths[2] or 0)
end
ph.threshold = ph.floor < ph.ceiling and (ph.floor + ph.ceiling) / 2 or 0 / 0
-- the held-out controls: each null draw B no long bar, each implanted torus two
local function long(lengths) return tori.count_long(lengths, ph.threshold) end
ph.implanted = { clifford = {}, torus3d = {} }
ph.implanted_ok = true
for i, r in ipairs(runs) do
  for _, w in ipairs(WHEN) do
    ph.heldout_max = math.max(ph.heldout_max, r.ph[w.name].heldout[1] or 0)
    ph.heldout_long = math.max(ph.heldout_long, long(r.ph[w.name].heldout))
  end
  for kind, list in pairs(ph.implanted) do
    list[i] = long(r.implanted_ph[kind])
    ph.implanted_ok = ph.implanted_ok and list[i] == 2
  end
end
ph.ideal = { clifford = long(ideal_ph.clifford.lengths), torus3d = long(ideal_ph.torus3d.lengths) }
ph.controls_ok = ph.heldout_long == 0 and ph.ideal.clifford == 2 and ph.ideal.torus3d == 2
ph.counts = {}
for _, w in ipairs(WHEN) do
  ph.counts[w.name] = {}
  for i, r in ipairs(runs) do ph.counts[w.name][i] = long(r.ph[w.name].lengths) end
end
-- the reading: two long loops in every seed (a torus), none (when a torus
-- in the code's noise would have shown two), or neither
local all2, all0 = true, true
for _, c in ipairs(ph.counts["end"]) do all2, all0 = all2 and c == 2, all0 and c == 0 end
if ph.threshold ~= ph.threshold then
  ph.reading = string.format("cannot decide (the Gaussian clouds' longest bar %.3f is not below"
                             .. " the ideal tori's second %.3f)", ph.floor, ph.ceiling)
elseif not ph.controls_ok then
  ph.reading = "cannot decide (the ideal tori or the held-out Gaussian clouds do not read as built)"
elseif all2 then
  ph.reading = "a torus (two long loops in every seed)"
elseif all0 and ph.implanted_ok then
  ph.reading = "no long loop in any seed"
elseif all0 then
  ph.reading = "cannot decide (no long loop in any seed, but an implanted torus does not show two"
               .. " either: this code's other dimensions can hide a torus's loops)"
else
  ph.reading = "seeds differ"
end

-- ---- numbers in words --------------------------------------------------------------------

local function iv(x, fmt) return stats.describe(x, fmt or "%.2f") end
local function seeds_of(list, fmt)
  local out = {}
  for i, x in ipairs(list) do out[i] = string.format(fmt or "%.2f", x) end
  return table.concat(out, ", ")
end
local lines = {}
local function say(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
say("representation (%s space): %s (%s)", head.space, decision, why)
for _, space in ipairs(SPACES) do
  local v = verdicts[space]
  say("  %s: position at step %d %s (seeds: %s; 0 Clifford, 1 3D torus); at step 0 %s,"
      .. " moved %s; W1 to Clifford %s, to 3D torus %s (the tori are %.3f apart)%s", space,
      cfg.steps, iv(v.model), seeds_of(v.per_seed), iv(v.start), iv(v.moved, "%+.2f"),
      iv(v.d_clifford, "%.3f"),
      iv(v.d_torus, "%.3f"), refs.between,
      v.neither and "; farther from both than they are from each other" or "")
end
for _, space in ipairs(SPACES) do
  local key = "pre_" .. space .. "_position"
  local pre, list = over_seeds(function(r) return final(r, key) end)
  say("  %s before the label embedding is added (%s), %s: position %s (seeds: %s): %s",
      cfg.tap, cfg.tap_pre, space, iv(pre), seeds_of(list), (tori.verdict(list)))
end
say("controls:")
say("  the ideal tori themselves: Clifford position %.2f (%s), 3D torus %.2f (%s)",
    ref_reading.clifford.position, ref_reading.clifford.reading, ref_reading.torus3d.position,
    ref_reading.torus3d.reading)
for _, space in ipairs(SPACES) do
  local v = verdicts[space]
  say("  %s, each model's top 4 components made a Clifford torus: %s, %s; a 3D torus: %s, %s:"
      .. " %s", space, iv(v.clifford), v.clifford_reading, iv(v.torus), v.torus_reading,
      v.control_ok and "as built" or "NOT as built: cannot decide")
end
for _, space in ipairs(SPACES) do
  local d = verdicts[space].data
  say("  the training images (a 2D place code) in %s: position %.2f, %s%s", space, d.position,
      d.reading, d.reading == "factorized" and " (a place code on a torus reads factorized"
      .. " here: this space does not tell the two apart)" or "")
end
say("accuracy at step %d: %s over seeds (pooled %s); one bump %s; %s", cfg.steps, iv(acc_end),
    iv(pooled), iv((over_seeds(function(r) return final(r, "single") end, true))),
    learned and "learned" or string.format("NOT learned (under %g): the representation is of"
                                           .. " an unfinished model", cfg.learned))
say("PCA of %s: top 4 components hold %s of the variance (step 0: %s); effective dimension %s"
    .. " (step 0: %s)", cfg.tap, iv(top4), iv(top4_start), iv(eff, "%.1f"), iv(eff_start, "%.1f"))
local function counts_of(list) return table.concat(list, ", ") end
say("persistent homology (H1 of %s, Vietoris-Rips, rms units) at step %d: %s", cfg.tap, cfg.steps,
    ph.reading)
say("  long = longer than %.3f, midway between %.3f (the longest bar of Gaussian clouds with each"
    .. " code's spectrum, draw A) and %.3f (the shorter of the ideal tori's second bars)",
    ph.threshold, ph.floor, ph.ceiling)
say("  long H1 bars per seed: start %s; middle (step %d) %s; end %s", counts_of(ph.counts.start),
    steps[middle], counts_of(ph.counts.middle), counts_of(ph.counts["end"]))
-- the three longest H1 bars of each seed at evaluation i, "a, b, c; ..."
local function longest_bars(i)
  local out = {}
  for k, r in ipairs(runs) do
    out[k] = string.format("%.3f, %.3f, %.3f", at(r, i, "h1_1"), at(r, i, "h1_2"), at(r, i, "h1_3"))
  end
  return table.concat(out, "; ")
end
say("  the code's three longest H1 bars per seed: start %s; end %s; the longest finite H0 bar at"
    .. " the end %s", longest_bars(1), longest_bars(#steps),
    seeds_of(select(2, over_seeds(function(r) return final(r, "h0_max") end)), "%.3f"))
say("  controls: the ideal Clifford torus %d long (bars %.3f, %.3f, %.3f), the 3D torus %d"
    .. " (%.3f, %.3f, %.3f); held out: Gaussian clouds (draw B) at most %d long (longest %.3f):"
    .. " %s; implanted Clifford torus %s long, 3D torus %s (seeds): %s", ph.ideal.clifford,
    ideal_ph.clifford.lengths[1] or 0, ideal_ph.clifford.lengths[2] or 0,
    ideal_ph.clifford.lengths[3] or 0, ph.ideal.torus3d, ideal_ph.torus3d.lengths[1] or 0,
    ideal_ph.torus3d.lengths[2] or 0, ideal_ph.torus3d.lengths[3] or 0, ph.heldout_long,
    ph.heldout_max, ph.controls_ok and "as built" or "NOT as built",
    counts_of(ph.implanted.clifford), counts_of(ph.implanted.torus3d),
    ph.implanted_ok and "as built" or "NOT as built (a reading of no loop cannot stand)")
say("additivity (is %s a sum of an x code and a y code?): %s (%s)", cfg.tap, add.decision,
    add.why)
say("  additive share at step %d %s (seeds: %s); at step 0 %s, moved %s; %s (before the label"
    .. " embedding, itself a sum, is added) %s (seeds: %s)", cfg.steps, iv(add.model),
    seeds_of(add.per_seed), iv(add.start), iv(add.moved, "%+.2f"), cfg.tap_pre, iv(add.pre),
    seeds_of(add.pre_seeds))
say("  threshold %.2f: midway between the training images' %.2f (a place code: conjunctive by"
    .. " construction) and the ideal Clifford torus's %.2f (a sum); the ideal 3D torus (R/r = %g)"
    .. " reads %.2f", add.threshold, add.ref.place, add.ref.clifford, cfg.ratio, add.ref.torus3d)
say("  noise: %d draws per label, independent (two-way ANOVA with replication); one draw's noise"
    .. " variance / the code's between-label variance at the end: %s (seeds)", cfg.replicates,
    seeds_of(add.ratio, "%.3g"))
say("  controls at each seed's noise ratio, %d draws: Clifford torus %s, %s; training images %s,"
    .. " %s: %s", cfg.replicates, iv(add.clifford_iv), add.clifford_reading, iv(add.place_iv),
    add.place_reading, add.control_ok and "as built" or "NOT as built: cannot decide")
say("  the same at step 0's noise ratio (%s): Clifford torus %s, %s; training images %s, %s: %s",
    seeds_of(starts.ratio, "%.3g"), iv(starts.clifford_iv), starts.clifford_reading,
    iv(starts.place_iv), starts.place_reading, starts.ok and "as built"
    or "NOT as built: the step-0 reading cannot stand")
say("what each reading can tell: the pca4 position says which ideal torus the top 4 components"
    .. " are nearer, but a place code reads Clifford there (the training images %.2f); the"
    .. " additive share tells a sum of 1D codes from a place code (%.2f against %.2f), not the"
    .. " 3D torus (%.2f) from the Clifford torus. Finding 3 needs both: a sum, nearer the"
    .. " Clifford torus.",
    verdicts.pca4.data.position, add.ref.place, add.ref.clifford, add.ref.torus3d)
-- Finding 3 (a factorized code) needs both readings: additivity tells a sum
-- of 1D codes (both tori) from a place code, which the position cannot (a
-- place code reads Clifford in pca4); given a sum, the position tells the
-- Clifford torus from the 3D torus, which additivity cannot (0.90).
local function finding_3()
  if not learned then
    return "can neither confirm nor refute it (the data are not learned at this scale)"
  elseif add.decision == "cannot decide" then
    return "can neither confirm nor refute it (additivity: " .. add.why .. ")"
  elseif add.decision == "conjunctive" then
    return string.format("disagrees with it: %s is conjunctive, not a sum of an x code and a y"
                         .. " code (additive share %s, under %.2f), whatever the pca4 position"
                         .. " (%s)", cfg.tap, iv(add.model), add.threshold, decision)
  end
  local sum = string.format("%s is a sum of an x code and a y code (additive share %s, above"
                            .. " %.2f: not a place code; the 3D torus %.2f), %s (%s at step 0,"
                            .. " moved %s)", cfg.tap, iv(add.model), add.threshold,
                            add.ref.torus3d, additivity_verdict(add.start_seeds) == "additive"
                            and "as the untrained net's already is"
                            or "unlike the untrained net", iv(add.start), iv(add.moved, "%+.2f"))
  local which = string.format("in %s it is nearer the %s (position %s)", head.space,
                              decision == "factorized" and "Clifford torus" or "3D torus",
                              iv(head.model))
  if decision == "factorized" then
    return "agrees with it: " .. sum .. ", and " .. which
  elseif decision == "coupled" then
    return "disagrees with it: " .. sum .. ", but " .. which
  end
  return "can neither confirm nor refute it: " .. sum .. ", and the " .. head.space
         .. " position cannot tell which torus (" .. why .. ")"
end
local finding = finding_3()
say("PAPER.md finding 3 (factorized representations; the follow-up's torus): %s", finding)
say("%d trainings of %d steps: %s of training and evaluation; this process %s (scale %s)",
    #runs, cfg.steps, experiment.duration(runtime), experiment.duration(bd.time() - started),
    cfg.scale)
local answer = table.concat(lines, "\n")
local decision_row = { event = "decision", space = head.space, decision = decision,
                       reason = why, finding = finding, accuracy = acc_end.mean,
                       top4 = top4.mean, eff_dim = eff.mean, ph_reading = ph.reading,
                       ph_threshold = ph.threshold, ph_floor = ph.floor,
                       ph_ceiling = ph.ceiling, ph_long_end = ph.counts["end"],
                       ph_long_start = ph.counts.start, ph_long_middle = ph.counts.middle }
for _, space in ipairs(SPACES) do
  local v = verdicts[space]
  decision_row[space .. "_position"] = v.model.mean
  decision_row[space .. "_lo"], decision_row[space .. "_hi"] = v.model.lo, v.model.hi
  decision_row[space .. "_control_clifford"] = v.clifford.mean
  decision_row[space .. "_control_torus"] = v.torus.mean
  decision_row[space .. "_data"] = v.data.position
end
decision_row.additivity = add.decision
decision_row.additive, decision_row.additive_lo = add.model.mean, add.model.lo
decision_row.additive_hi, decision_row.additive_start = add.model.hi, add.start.mean
decision_row.additive_pre, decision_row.additive_threshold = add.pre.mean, add.threshold
decision_row.additive_place, decision_row.additive_clifford = add.ref.place, add.ref.clifford
decision_row.additive_torus3d, decision_row.additive_noise_ratio = add.ref.torus3d, add.ratio
decision_row.additive_control_clifford = add.clifford
decision_row.additive_control_place = add.place
decision_row.additive_start_noise_ratio = starts.ratio
decision_row.additive_start_control_clifford = starts.clifford
decision_row.additive_start_control_place = starts.place
assert(run:log(decision_row))

-- ---- figures -------------------------------------------------------------------------------

-- The mean over seeds of a key at each evaluation.
local function mean_curve(key)
  local y = {}
  for i in ipairs(steps) do
    y[i] = over_seeds(function(r) return at(r, i, key) end).mean
  end
  return y
end
local function series(name, key, color, dash)
  return { name = name, x = steps, y = mean_curve(key), color = report.colors[color], dash = dash }
end
assert(report.save(run:path("accuracy.svg"), report.lines{
  title = "samples over training (mean over seeds)", xlabel = "training step",
  ylabel = "fraction of probes", ylim = { 0, 1 }, xlim = { 0, cfg.steps },
  series = { series("correct", "accuracy", 1, false), series("one bump", "single", 2, true),
             series("several bumps", "frac_multi", 4, true),
             series("no bump", "frac_none", 8, true) } }))
assert(report.save(run:path("geometry.svg"), report.lines{
  title = "representation over training (mean over seeds)", xlabel = "training step",
  ylabel = "position (0 Clifford, 1 3D torus); top-4 share", ylim = { 0, 1 },
  xlim = { 0, cfg.steps },
  series = { series("position, pca4", "pca4_position", 1, false),
             series("position, raw", "raw_position", 2, false),
             series("position, pca4, " .. cfg.tap_pre, "pre_pca4_position", 1, true),
             series("position, raw, " .. cfg.tap_pre, "pre_raw_position", 2, true),
             series("top 4 variance share", "top4", 3, true) },
  hlines = { { y = 0.5, label = "equidistant" } } }))
assert(report.save(run:path("additivity.svg"), report.lines{
  title = "additive share over training (mean over seeds)", xlabel = "training step",
  ylabel = "additive share of the between-label variance", ylim = { 0, 1.05 },
  xlim = { 0, cfg.steps },
  series = { series(cfg.tap, "additive", 1, false), series(cfg.tap_pre, "pre_additive", 2, true) },
  hlines = { { y = add.threshold, label = string.format("threshold %.2f", add.threshold) },
             { y = add.ref.place, label = string.format("training images %.2f", add.ref.place) },
             { y = add.ref.torus3d, label = string.format("3D torus %.2f", add.ref.torus3d) } } }))
-- the PCA spectrum at the start, middle and end (mean over seeds)
local spectrum_series = {}
for w, when in ipairs(WHEN) do
  local x, y = {}, {}
  for k = 1, cfg.pcs do
    local vals = {}
    for i, r in ipairs(runs) do vals[i] = value(r.spectra[when.index][k]) end
    x[k], y[k] = k, stats.summary(vals).mean
  end
  spectrum_series[w] = { name = string.format("%s (step %d)", when.name, steps[when.index]),
                         x = x, y = y, color = report.colors[w] }
end
assert(report.save(run:path("spectrum.svg"), report.lines{
  title = string.format("PCA spectrum of %s (mean over seeds)", cfg.tap),
  xlabel = "component", ylabel = "explained variance ratio", xlim = { 1, cfg.pcs },
  series = spectrum_series }))
-- the histograms at the end (mean over seeds) against both ideal tori
local centres = {}
for k = 1, cfg.bins do centres[k] = -1 + (2 * k - 1) / cfg.bins end
local HIST_TITLE = { xy = "x-steps against y-steps", xx = "x-steps against x-steps",
                     yy = "y-steps against y-steps" }
for _, kind in ipairs(tori.KINDS) do
  local model = {}
  for k = 1, cfg.bins do
    local vals = {}
    for i, r in ipairs(runs) do vals[i] = r.hist[kind][k] end
    model[k] = stats.summary(vals).mean
  end
  assert(report.save(run:path("hist_" .. kind .. ".svg"), report.lines{
    title = string.format("cosines, %s (raw space, step %d)", HIST_TITLE[kind], cfg.steps),
    xlabel = "cosine", ylabel = "fraction of pairs", xlim = { -1, 1 },
    series = { { name = "model (mean over seeds)", x = centres, y = model, color = report.colors[1] },
               { name = "Clifford torus", x = centres, y = refs.clifford[kind],
                 color = report.colors[3], dash = true },
               { name = "3D torus", x = centres, y = refs.torus3d[kind],
                 color = report.colors[4], dash = true } } }))
end
-- the top 4 scores of the first seed: PC1-PC2 coloured by x, PC3-PC4 by y
local label_rows = grid.labels:to_table()
local first = runs[1]
for _, when in ipairs(WHEN) do
  local e = first.embeddings[when.index]
  local parts = {}
  for p, pair in ipairs{ { 1, 2, 1, "x" }, { 3, 4, 2, "y" } } do
    local xs, ys, v = {}, {}, {}
    for i, row in ipairs(e) do xs[i], ys[i], v[i] = row[pair[1]], row[pair[2]], label_rows[i][pair[3]] end
    parts[p] = { x = xs, y = ys, value = v, value_label = pair[4],
                 title = string.format("PC%d-PC%d by %s", pair[1], pair[2], pair[4]) }
  end
  for p, part in ipairs(parts) do
    part.width, part.height, part.radius = 280, 240, 2.5
    part.xlabel, part.ylabel = "PC" .. (2 * p - 1), "PC" .. (2 * p)
    assert(report.save(run:path(string.format("pcs_%s_%d.svg", when.name, p)),
                       report.scatter(part)))
  end
end

-- the H1 barcodes (the 10 longest bars) of the first seed's code at the start, middle and end,
-- the ideal tori and the first seed's null draw A at the end, stacked; and their lengths by rank
-- against the threshold
local barcode_groups = {}
for w, when in ipairs(WHEN) do
  local p = first.ph[when.name]
  barcode_groups[w] = { name = string.format("seed %d, %s", first.seed, when.name), bars = p.bars,
                        lengths = p.lengths, color = report.colors[w] }
end
barcode_groups[4] = { name = "ideal Clifford torus", bars = ideal_ph.clifford.bars,
                      lengths = ideal_ph.clifford.lengths, color = report.colors[3], dash = true }
barcode_groups[5] = { name = "ideal 3D torus", bars = ideal_ph.torus3d.bars,
                      lengths = ideal_ph.torus3d.lengths, color = report.colors[4], dash = true }
barcode_groups[6] = { name = "Gaussian null (seed " .. first.seed .. ", end)",
                      bars = first.ph["end"].null_bars, lengths = first.ph["end"].null,
                      color = report.colors[8] }
local bar_series, rank_series, row_y = {}, {}, 0
for g, group in ipairs(barcode_groups) do
  local x, y = {}, {}
  for _, b in ipairs(group.bars) do
    row_y = row_y + 1
    for _, v in ipairs{ { b[1], row_y }, { b[2], row_y }, { 0 / 0, 0 / 0 } } do
      x[#x + 1], y[#y + 1] = v[1], v[2]
    end
  end
  row_y = row_y + 1
  bar_series[g] = { name = group.name, x = x, y = y, color = group.color }
  local rx, ry = {}, {}
  for k = 1, 10 do rx[k], ry[k] = k, group.lengths[k] or 0 end
  rank_series[g] = { name = group.name, x = rx, y = ry, color = group.color, dash = group.dash }
end
assert(report.save(run:path("barcode.svg"), report.lines{
  title = string.format("H1 barcodes of %s (10 longest bars each)", cfg.tap),
  xlabel = "filtration value (distance / rms radius)", ylabel = "bar", height = 420,
  series = bar_series }))
assert(report.save(run:path("h1_lengths.svg"), report.lines{
  title = "the longest H1 bars against the threshold", xlabel = "rank",
  ylabel = "length (rms units)", xlim = { 1, 10 }, series = rank_series,
  hlines = ph.threshold == ph.threshold
           and { { y = ph.threshold, label = string.format("long: %.3f", ph.threshold) } } or {} }))

-- ---- the report ---------------------------------------------------------------------------

local doc = report.new("Torus: is the representation of data on a torus factorized?")
doc:question("Trained on bumps with periodic boundaries (data on a torus), is the model's"
  .. " representation nearer an ideal 4D Clifford torus (x and y in orthogonal planes:"
  .. " factorized) or an ideal 3D torus (coupled), by the cosine histograms of its steps"
  .. " along x and along y computed by the same code for all three (the follow-up paper's"
  .. " comparison)? Is it a sum of an x code and a y code at all (the additive share of its"
  .. " between-label variance, which tells a sum from a place code where the comparison cannot)?"
  .. " And how do accuracy, the PCA spectrum and the effective dimension move"
  .. " over training?")
doc:heading("Answer")
doc:answer(answer)
doc:heading("Controls")
local control_rows = {
  { "references", "ideal Clifford torus", string.format("%.2f", ref_reading.clifford.position),
    ref_reading.clifford.reading },
  { "references", "ideal 3D torus", string.format("%.2f", ref_reading.torus3d.position),
    ref_reading.torus3d.reading } }
for _, space in ipairs(SPACES) do
  local v = verdicts[space]
  control_rows[#control_rows + 1] = { space, "implanted Clifford torus (positive: factorized)",
                                      iv(v.clifford), v.clifford_reading }
  control_rows[#control_rows + 1] = { space, "implanted 3D torus (positive: coupled)",
                                      iv(v.torus), v.torus_reading }
  control_rows[#control_rows + 1] = { space, "the training images (a 2D place code)",
                                      string.format("%.2f", v.data.position), v.data.reading }
  control_rows[#control_rows + 1] = { space, "the untrained model (step 0)", iv(v.start),
                                      (tori.verdict(select(2, over_seeds(
                                        function(r) return at(r, 1, space .. "_position") end)))) }
end
control_rows[#control_rows + 1] = { "additivity", "ideal Clifford torus (a sum)",
                                    string.format("%.2f", add.ref.clifford), "sets the threshold" }
control_rows[#control_rows + 1] = { "additivity", "ideal 3D torus", string.format("%.2f",
                                    add.ref.torus3d), "reference" }
control_rows[#control_rows + 1] = { "additivity", "the training images (a place code)",
                                    string.format("%.2f", add.ref.place), "sets the threshold" }
control_rows[#control_rows + 1] = { "additivity", "Clifford torus at each seed's noise (positive:"
                                    .. " additive)", iv(add.clifford_iv), add.clifford_reading }
control_rows[#control_rows + 1] = { "additivity", "training images at each seed's noise (null:"
                                    .. " conjunctive)", iv(add.place_iv), add.place_reading }
control_rows[#control_rows + 1] = { "additivity", "the untrained model (step 0)", iv(add.start),
                                    (additivity_verdict(add.start_seeds)) }
doc:table(control_rows, { header = { "space", "case", "position or additive share (95% interval"
                                     .. " over seeds)",
                                     "reads" } })
local function short(lengths) -- the three longest of a barcode
  return string.format("%.3f, %.3f, %.3f", lengths[1] or 0, lengths[2] or 0, lengths[3] or 0)
end
doc:table({
  { "ideal Clifford torus (positive: its second bar sets the ceiling; 2)",
    short(ideal_ph.clifford.lengths), ph.ideal.clifford },
  { "ideal 3D torus (positive: its second bar sets the ceiling; 2)",
    short(ideal_ph.torus3d.lengths), ph.ideal.torus3d },
  { "Gaussian clouds of each code's spectrum, draw A (null: sets the floor)",
    string.format("longest %.3f", ph.floor), "-" },
  { "the same, draw B (held-out null: 0)", string.format("longest %.3f", ph.heldout_max),
    "at most " .. ph.heldout_long },
  { "implanted Clifford torus, per seed (held-out positive: 2)", "-",
    table.concat(ph.implanted.clifford, ", ") },
  { "implanted 3D torus, per seed (held-out positive: 2)", "-",
    table.concat(ph.implanted.torus3d, ", ") },
}, { header = { "persistent homology: case", "longest H1 bars (rms units)",
                string.format("long bars (> %.3f)", ph.threshold) } })
doc:paragraph("Position = d_Clifford / (d_Clifford + d_3D), with d the Wasserstein-1 distance"
  .. " between cosine histograms averaged over x-y, x-x and y-y: 0 on the Clifford torus, 1 on"
  .. " the 3D torus; the boundary 1/2 is where the distances are equal. The implanted controls"
  .. " keep each model's code and replace its top 4 principal components by an ideal torus of"
  .. " the same variance: what the comparison reads if the model's main four dimensions were"
  .. " that torus, with its other dimensions as they are. Persistent homology: the Vietoris-Rips"
  .. " barcode of the code (distances divided by its rms radius); a bar is long above the"
  .. " midpoint between the longest bar of a structureless cloud (Gaussian clouds with each"
  .. " code's whole PCA spectrum) and the shortest known loop (the ideal tori's second bars)."
  .. " Both tori have two loops: this asks whether the code is a torus, not which one.")
doc:heading("What this scale can and cannot say")
doc:paragraph(string.format("At %dx%d with a width-%d unet, %s is %s numbers per label, read on"
  .. " a %d x %d grid of labels (one period of each axis). The probes are scored at %g px while"
  .. " training values are %g px apart: accuracy measures placement, not interpolation. In the"
  .. " pca4 space a translation-invariant code on a torus has Fourier modes as principal"
  .. " components, so a 2D place code can read factorized there (the training images' line"
  .. " above); the raw space keeps every dimension, where noise spread over many of them"
  .. " drowns the steps between neighbouring labels. %d seeds give a t quantile of %.2f."
  .. " The barcodes are of %d points; the 3D torus at these labels is sparse on its outer side"
  .. " (its tube circles stay apart up to the outer spacing), so its third bar is long; noise"
  .. " in a code's other dimensions shortens its loops (the implanted tori measure by how"
  .. " much). The additive share tells a sum of an x code and a y code from a place code"
  .. " (the training images %.2f, the Clifford torus %.2f), not the 3D torus (%.2f) from the"
  .. " Clifford torus; the label embedding added in the block is itself a sum of an x part and"
  .. " a y part, so %s (before it is added) is read beside %s.", cfg.size, cfg.size,
  cfg.width, cfg.tap, tostring(first.tap_dims), math.floor(cfg.size / cfg.rep_step),
  math.floor(cfg.size / cfg.rep_step), cfg.tolerance, cfg.spacing, #seeds,
  stats.t_quantile(0.975, math.max(1, #seeds - 1)), grid.n, add.ref.place, add.ref.clifford,
  add.ref.torus3d, cfg.tap_pre, cfg.tap))
doc:heading("Setup")
doc:table({
  { "scale", cfg.scale }, { "image size", cfg.size },
  { "data", string.format("bumps, sigma %g, on a periodic lattice of spacing %g (%d images)",
                          cfg.sigma, cfg.spacing, first.images) },
  { "denoiser", string.format("unet, width %d, emb %d, attention %s", cfg.width, cfg.emb,
                              cfg.attention_blocks == "" and "none" or cfg.attention_blocks) },
  { "parameters", first.params },
  { "training", string.format("%d steps, batch %d, AdamW lr %g, warm-up %d, EMA %g; evaluated"
                              .. " every %d", cfg.steps, cfg.batch, cfg.lr, cfg.warmup, cfg.ema,
                              cfg.every) },
  { "seeds", cfg.seeds },
  { "probes", string.format("%d on a grid of step %g; %s %d steps; tolerance %g px, bump"
                            .. " metric periodic = 1", probe.n, cfg.probe_step, cfg.sampler,
                            cfg.sample_steps, cfg.tolerance) },
  { "representation", string.format("%s (and %s, before the label embedding) by bd.represent"
                                    .. " at t = %d, input %s; %d labels (grid step %g)", cfg.tap,
                                    cfg.tap_pre, cfg.rep_t, cfg.rep_input, grid.n,
                                    cfg.rep_step) },
  { "comparison", string.format("factorization metric, periodic = 1, %d bins over [-1, 1];"
                                .. " Wasserstein-1; 3D torus R / r = %g; verdict space %s",
                                cfg.bins, cfg.ratio, cfg.space) },
  { "additivity", string.format("%s and %s read %d times per label with independent noise"
                                 .. " (shared_noise = 0); two-way ANOVA with replication (the"
                                 .. " within-cell noise subtracted); threshold midway between"
                                 .. " the training images and the Clifford torus", cfg.tap,
                                 cfg.tap_pre, cfg.replicates) },
  { "persistence", string.format("persistence metric (Vietoris-Rips H0/H1 over Z/2 to the"
                                  .. " enclosing radius), normalize = rms, of %s at steps 0,"
                                  .. " %d and %d", cfg.tap, steps[middle], cfg.steps) },
}, { header = { "setting", "value" } })
doc:heading("Figures")
doc:figure("accuracy.svg", "Samples over training: correct, one bump, several, none (mean over"
           .. " seeds).")
doc:figure("geometry.svg", string.format("Position between the ideal tori (pca4 and raw; %s"
           .. " solid, %s dashed) and the top-4 variance share over training (mean over seeds).",
           cfg.tap, cfg.tap_pre))
doc:figure("additivity.svg", string.format("Additive share of %s and %s over training (mean"
           .. " over seeds), with the threshold, the training images and the 3D torus (the"
           .. " Clifford torus is 1).", cfg.tap, cfg.tap_pre))
doc:figure("spectrum.svg", string.format("PCA spectrum of %s: the first %d components at the"
           .. " start, middle and end (mean over seeds).", cfg.tap, cfg.pcs))
for _, kind in ipairs(tori.KINDS) do
  doc:figure("hist_" .. kind .. ".svg", string.format("Cosine histogram, %s: the model at the end"
             .. " (raw space) and the ideal tori.", HIST_TITLE[kind]))
end
doc:figure("barcode.svg", string.format("H1 barcodes (the 10 longest bars of each): seed %d's"
           .. " code at the start, middle and end, the ideal tori, and a Gaussian cloud of the"
           .. " end code's spectrum; long means longer than %.3f.", first.seed, ph.threshold))
doc:figure("h1_lengths.svg", "The same clouds' 10 longest H1 bars by rank, with the threshold.")
for _, when in ipairs(WHEN) do
  for p = 1, 2 do
    doc:figure(string.format("pcs_%s_%d.svg", when.name, p), string.format("Seed %d at the %s"
               .. " (step %d): the top principal components, PC%d-PC%d coloured by %s.",
               first.seed, when.name, steps[when.index], 2 * p - 1, 2 * p,
               p == 1 and "x" or "y"), 280)
  end
end
if first.samples then
  doc:figure(string.format("%s/%s/%s", TRAIN, first.dir, first.samples),
             string.format("Seed %d: one sample per probe at the end.", first.seed), 256)
end
doc:heading("Numbers")
local rows = {}
for _, r in ipairs(runs) do
  for i, step in ipairs(r.steps) do
    rows[#rows + 1] = { r.seed, step, iv(stats.wilson(at(r, i, "correct"), at(r, i, "n"))),
                        at(r, i, "single"), at(r, i, "top4"), at(r, i, "eff_dim"),
                        at(r, i, "pca4_position"), at(r, i, "raw_position"),
                        at(r, i, "pre_pca4_position"), at(r, i, "pre_raw_position"),
                        at(r, i, "additive"), at(r, i, "pre_additive") }
  end
end
doc:table(rows, { header = { "seed", "step", "correct (Wilson 95%)", "one bump", "top-4 share",
                             "eff. dim", "position pca4", "position raw",
                             "pca4, " .. cfg.tap_pre, "raw, " .. cfg.tap_pre, "additive share",
                             "additive, " .. cfg.tap_pre } })
doc:paragraph("metrics.jsonl holds a row per evaluation (event evaluation, with the spectrum and"
              .. " each histogram's distances) and the decision (event decision).")
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
