-- Does the representation pass through three phases over training?
-- docs/PAPER.md, finding 1: (A) no structure, and generations with several
-- bumps; (B) a disordered 2D manifold, and a single bump at the wrong
-- place; (C) an ordered 2D manifold, and a correct bump.
--
--   bdrun scripts/phases.lua [scale=quick|standard|paper] [seeds=1,2] [steps=...] ...
--
-- One training set (dx = dy), a UNet per seed, and with shuffled=true
-- beside it a control trained on the same images with their labels
-- shuffled (a sweep, scripts/lib/sweep.lua: shard=r/n, Slurm arrays and
-- mpirun share the trainings). Training writes a checkpoint every `every` steps, kept in
-- one analysis archive per training (history.bda: every step's weights and EMA, the
-- optimizer state at key steps); afterwards each step's EMA weights are read from it
-- and measured (collect=true: measured again from the archives, nothing trains):
--   samples          one per label of a probe grid (`probe_step`), classed
--                    by the bump metric: none, several, wrong (one bump,
--                    off by more than `tolerance` px), correct
--   representation   the tap `tap` (layer4: the last down block's output)
--                    read by bd.represent: one forward pass at timestep
--                    `rep_t` (T/2) on each label's own clean bump noised
--                    with one noise image shared by every label
--                    (`rep_input` = bump; noise: the shared noise alone),
--                    over a label grid of step `rep_step`. Not the taps of
--                    a sampling run, whose input is the model's own drawing.
--   order measures   of that tap (manifold metric), each min over x and y:
--                      umap  R^2 of linear regressions from a 3D UMAP (the paper's)
--                      pca   the same from the top 10 principal components
--                      knn   leave-one-out kNN-regression R^2 (no embedding)
--                      rho   Spearman's rho of activation vs label distances
--                    and pca, knn, rho of `tap_pre` (layer4_pre: the same
--                    block before its label embedding is added)
-- Controls, for every order measure, in the same run:
--   floor    nulls, each seed: the untrained model (step 0: what the
--            architecture orders with no training); the last step's code
--            against permuted labels (what the measure gives a code with no
--            relation to the labels); with shuffled=true the model trained
--            as long on shuffled labels (what training orders without the
--            label-image pairing; off at the quick scale, where it doubles
--            the training and does not fit the 20-minute budget)
--   ceiling  an ideal ordered code of the tap's dimension: (x, y) mapped
--            isometrically into it; and for reference the labels' own
--            sinusoidal features (what the net is given)
--   threshold  (floor + ceiling) / 2 with floor the higher null's mean
--            over seeds: above it a checkpoint is nearer the ideal code
--            than the null. A measure whose ceiling does not exceed every
--            null value seen cannot tell order from the null: it labels no
--            phase C ("cannot decide").
--   room     a measure has room when every null's 95% interval over
--            seeds ends below the ceiling. Without room (an untrained net already
--            as ordered as the ideal code) a checkpoint cannot be shown to
--            become ordered: the measure's verdict is "no room between floor
--            and ceiling: this measure cannot show the phases at this scale",
--            printed instead of its A/B/C sequences, and it labels no phase C.
-- Phases of a checkpoint under a measure:
--   A  fewer than `one_bump` (0.5: most samples) hold a single bump
--   C  accuracy >= `correct` (0.5: most samples correct) and order >= threshold
--   B  otherwise
-- A seed shows the sequence when A, B and C all occur and first occur in
-- that order. The headline measure is `measure` (knn: needs no UMAP).
--
-- Writes runs/phases/: config.json, metrics.jsonl (rows per checkpoint and
-- control, the thresholds, each seed's sequences, the answer),
-- fractions_s<seed>.svg, order_s<seed>.svg, report.html, and
-- train/<condition>_s<seed>/ (the training's loss log, history.bda, its last checkpoint
-- (every one with keep_ckpt=true), per checkpoint a sample grid
-- samples_<step>.png and a 2D UMAP of the tap by x and by y).
local experiment = require "experiment"
local report = require "report"
local stats = require "stats"
local sweep = require "sweep"

local cfg = experiment.config(sweep.options{
  name = "phases",
  sigma = 1.0,
  tolerance = 1.0,     -- pixels, for a correct bump
  sampler = "ddpm",    -- respaced ancestral sampling for evaluation
  batch = 64,
  warmup = 100,
  umap_dims = 3,       -- the embedding the paper's R^2 is measured on (figures: 2D)
  tap = "layer4",
  tap_pre = "layer4_pre",
  rep_t = 500,         -- the representation's timestep: T/2 of T = 1000
  rep_input = "bump",  -- bump | noise (bd.represent's input)
  measure = "knn",     -- the headline order measure: umap | pca | knn | rho
  one_bump = 0.5,      -- A below: "several bumps" means most samples do not hold one
  correct = 0.5,       -- C needs "a correct bump": most samples correct
  shuffled = true,     -- train the shuffled-label control (the quick scale: off)
  keep_ckpt = false,   -- keep every checkpoint (else the last only, once measured)
}, {
  -- 16x16 (layer 4 is 2x2) on a 2-core machine: quickstart's net, 3 seeds
  -- of 2000 steps (quickstart: 94% correct at 1500, 98% at 2000), a
  -- checkpoint every 100; 64 probes, a 16x16 grid of 256 labels for layer 4
  quick = { size = 16, spacing = 0.316, width = 8, emb = 64,
            attention_blocks = "down1,down2,down3,up1,up2", steps = 2000, lr = 1e-3,
            ema = 0.995, every = 100, sample_steps = 25, probe_step = 2.0, rep_step = 1.0,
            seeds = "1,2,3", shuffled = false },
  -- 32x32 (the paper's image size, layer 4 4x4) sized for 2 cores: width 8,
  -- attention only at 8x8 and 4x4 (64 and 16 tokens: +12% a step; at 16x16
  -- and 32x32 it would cost more than the convs). Steps by arithmetic: 10,000
  -- images (4x the quick set) and the quick set correct from about 30 epochs;
  -- 4500 steps of 64 at ~250 images per CPU second is ~19 CPU min a
  -- training, 6 trainings (3 seeds, 3 shuffled) ~1 h wall with procs=2.
  -- Headline UMAP R^2 (the paper's): scripts/examples/layer4_room.lua at
  -- these settings (untrained, t = 500, input bump) gives kNN R^2 0.96-0.98
  -- (floor interval reaching 1.00: no room), UMAP R^2 0.81-0.87.
  standard = { size = 32, spacing = 0.316, width = 8, emb = 64,
               attention_blocks = "down2,down3,up1", steps = 4500, lr = 1e-3,
               ema = 0.995, every = 300, sample_steps = 25, probe_step = 4.0, rep_step = 2.0,
               seeds = "1,2,3", measure = "umap" },
  -- the paper's setting: 32x32, width 64, all six attention blocks; the
  -- training length is ours (the papers do not give it)
  paper = { size = 32, spacing = 0.316, width = 64, emb = 256,
            attention_blocks = "down1,down2,down3,up1,up2,up3", steps = 40000, lr = 3e-4,
            ema = 0.999, every = 2000, sample_steps = 100, probe_step = 2.0, rep_step = 1.0,
            seeds = "1,2,3" },
})
local seeds = experiment.seeds(cfg.seeds)
local TRAINED = { name = "bumps", dx = cfg.spacing, dy = cfg.spacing }
local SHUFFLED = { name = "shuffled", dx = cfg.spacing, dy = cfg.spacing, shuffled = true }
local dir = "runs/" .. cfg.name
local started = bd.time()

-- The order measures: each a number per checkpoint, min over the axes.
local MEASURES = {
  { key = "umap", name = "UMAP R^2 (paper)", x = "r2_x", y = "r2_y" },
  { key = "pca", name = "PCA R^2", x = "r2_x_pca", y = "r2_y_pca" },
  { key = "knn", name = "kNN R^2", x = "knn_r2_x", y = "knn_r2_y" },
  { key = "rho", name = "distance rank corr.", v = "dist_rank_corr" },
}
local PRE = { "pca", "knn", "rho" }  -- measured on tap_pre too (no UMAP)
local by_key = {}
for _, m in ipairs(MEASURES) do by_key[m.key] = m end
if not by_key[cfg.measure] then
  error(string.format("measure = '%s', expected umap, pca, knn or rho", cfg.measure), 0)
end

-- ---- measuring a model -------------------------------------------------------------------

local probe = bd.data.grid{ size = cfg.size, step = cfg.probe_step }
local grid = bd.data.grid{ size = cfg.size, step = cfg.rep_step }
local bump = bd.metric("bump", { tolerance = cfg.tolerance })
local manifold = bd.metric("manifold", { method = "umap", dims = cfg.umap_dims, seed = 1 })
local quick_order = bd.metric("manifold", { method = "pca", seed = 1 })
local picture = bd.metric("manifold", { method = "umap", dims = 2, seed = 1 })

-- The order measures of activations act (N, ...) of the grid's labels:
-- { umap =, pca =, knn =, rho = } and each axis (<key>_x, <key>_y); with
-- umap false, the measures that need no UMAP (the metric `quick_order`).
local function order_of(act, umap, labels)
  local m = (umap and manifold or quick_order)(act, labels or grid.labels)
  local out = {}
  for _, ms in ipairs(MEASURES) do
    if umap or ms.key ~= "umap" then
      out[ms.key] = ms.v and m[ms.v] or math.min(m[ms.x], m[ms.y])
      if ms.x then out[ms.key .. "_x"], out[ms.key .. "_y"] = m[ms.x], m[ms.y] end
    end
  end
  return out
end

-- The representation rows of a model: the tap's measures, and tap_pre's
-- as pre_<key>; the tap's activations.
local function represent(model, data, seed)
  local r = bd.represent(model, grid, { taps = { cfg.tap, cfg.tap_pre }, t = cfg.rep_t,
                                        seed = seed, input = cfg.rep_input, data = data })
  local row = order_of(r.taps[cfg.tap], true)
  local before = order_of(r.taps[cfg.tap_pre], false)
  for _, k in ipairs(PRE) do row["pre_" .. k] = before[k] end
  return row, r.taps[cfg.tap]
end

-- A checkpoint's row: the samples' classes and the representation's order.
local function measure(model, data, seed)
  local s = bd.sample(model, probe, { sampler = cfg.sampler, steps = cfg.sample_steps,
                                      seed = seed })
  local b = bump(s.images, probe.labels)
  local row, act = represent(model, data, seed)
  for _, k in ipairs{ "frac_none", "frac_multi", "frac_wrong", "frac_correct", "accuracy",
                      "median_error" } do
    row[k] = b[k]
  end
  row.single = row.frac_wrong + row.frac_correct
  row.n_probe = probe.n
  return row, s, act
end

-- The UMAP of one tap coloured by label coordinate k (1: x, 2: y).
local function umap_plot(act, k, title)
  local embedding = picture(act, grid.labels).embedding:to_table()
  local labels, ex, ey, v = grid.labels:to_table(), {}, {}, {}
  for i, e in ipairs(embedding) do ex[i], ey[i], v[i] = e[1], e[2], labels[i][k] end
  return report.scatter{ x = ex, y = ey, value = v, value_label = k == 1 and "x" or "y",
                         title = title, width = 240, height = 200, radius = 2.5 }
end

-- ---- the ceiling: ideal ordered codes of the tap's dimension ------------------------------
-- (and the permutation null, with the generator below)

-- A seeded generator (math.random's state is left alone).
local function generator(seed)
  local state = seed
  return function()  -- uniform in (0, 1), a 48-bit LCG
    state = (state * 25214903917 + 11) % (1 << 48)
    return (state + 0.5) / (1 << 48)
  end
end

-- (x, y) mapped into d dimensions by two orthonormal random columns: an
-- isometry, so every distance is the label distance.
local function linear_code(labels, d, seed)
  local u = generator(seed)
  local cols = { {}, {} }
  for c = 1, 2 do
    for i = 1, d do cols[c][i] = math.sqrt(-2 * math.log(u())) * math.cos(2 * math.pi * u()) end
  end
  local function dot(a, b) local s = 0 for i = 1, d do s = s + a[i] * b[i] end return s end
  local p = dot(cols[1], cols[2]) / dot(cols[1], cols[1])
  for i = 1, d do cols[2][i] = cols[2][i] - p * cols[1][i] end
  for c = 1, 2 do
    local n = math.sqrt(dot(cols[c], cols[c]))
    for i = 1, d do cols[c][i] = cols[c][i] / n end
  end
  local rows = {}
  for j, l in ipairs(labels) do
    rows[j] = {}
    for i = 1, d do rows[j][i] = { { l[1] * cols[1][i] + l[2] * cols[2][i] } } end
  end
  return bd.tensor.from_table(rows)  -- (N, d, 1, 1), as a tap
end

-- The labels' sinusoidal features as the unet encodes them (base 10000,
-- sin then cos of s f_i, f_i = 10000^(-i/half)), x's then y's, cut or
-- zero-padded to d values.
local function sinusoidal_code(labels, d, emb)
  local half, rows = emb // 2, {}
  for j, l in ipairs(labels) do
    local row = {}
    for _, s in ipairs{ l[1], l[2] } do
      for pass = 1, 2 do
        for i = 0, half - 1 do
          local a = s * 10000 ^ (-i / half)
          row[#row + 1] = pass == 1 and math.sin(a) or math.cos(a)
        end
      end
    end
    rows[j] = {}
    for i = 1, d do rows[j][i] = { { row[i] or 0 } } end
  end
  return bd.tensor.from_table(rows)  -- (N, d, 1, 1), as a tap
end

-- A list shuffled in place by a seeded Fisher-Yates shuffle.
local function shuffle(t, seed)
  local u = generator(seed * 7919 + 17)
  for i = #t, 2, -1 do
    local j = math.floor(u() * i) + 1
    t[i], t[j] = t[j], t[i]
  end
  return t
end

-- The grid's labels permuted, as a tensor.
local function permuted_labels(seed)
  return bd.tensor.from_table(shuffle(grid.labels:to_table(), seed))
end

-- ---- the checkpoint history (one place: steps, archive, loading) ---------------------------
-- Training writes a checkpoint every `every` steps; once it ends they are
-- packed into the run's history.bda, an analysis archive (every step's
-- weights and EMA bit for bit, the optimizer state at key steps), which is
-- verified before the files it holds are removed (but the last; keep_ckpt
-- keeps them all). Every measurement reads its step from the archive, so
-- collect=true measures the same weights again without training.

local history = { NAME = "history.bda" }

function history.steps()
  local steps = {}
  for s = cfg.every, cfg.steps, cfg.every do steps[#steps + 1] = s end
  if steps[#steps] ~= cfg.steps then steps[#steps + 1] = cfg.steps end
  return steps
end

-- bd.train's options that write the history.
function history.train_options()
  return { ckpt_every = cfg.every, keep = 0 }
end

-- Archive the run's checkpoints, verify the archive, then remove the
-- checkpoint files but the last unless keep_ckpt is set.
function history.keep(run)
  local path = run:path(history.NAME)
  local made = assert(bd.ckpt.archive(run, path, { optimizer = "keys" }))
  assert(bd.ckpt.archive_verify(path))
  local files, bytes = assert(bd.ckpt.list(run)), 0
  for _, f in ipairs(files) do
    local h = assert(io.open(f.path, "rb"))
    bytes = bytes + h:seek("end")
    h:close()
    if not cfg.keep_ckpt and f.step ~= cfg.steps then assert(os.remove(f.path)) end
  end
  bd.log.info("%s: %d checkpoints of %.1f MB archived in %.1f MB (%.2f), verified%s", path,
              made.entries, bytes / 1e6, made.bytes / 1e6, made.bytes / bytes,
              cfg.keep_ckpt and "" or "; the files but the last removed")
end

-- Load the EMA weights of `step` from the archive of the run in folder
-- `dir` into model.
function history.load(dir, step, model)
  assert(bd.ckpt.load(dir .. "/" .. history.NAME, model, { ema = true, step = step }))
end

-- ---- training ------------------------------------------------------------------------------

-- The labels of a dataset permuted in place by a seeded shuffle, so every
-- image keeps a label but not its own.
local function shuffle_labels(data, seed)
  local labels = data.labels
  for i, l in ipairs(shuffle(labels:to_table(), seed)) do
    labels:set(i, 1, l[1])
    labels:set(i, 2, l[2])
  end
end

-- A condition's training set and its untrained model for a seed.
local function setup(c, seed)
  local data = bd.data.bumps{ size = cfg.size, sigma = cfg.sigma, dx = c.dx, dy = c.dy }
  if c.shuffled then shuffle_labels(data, seed) end  -- (bd.represent draws from the spec)
  local model = experiment.unet(cfg, seed)
  bd.log.info("%s seed %d: %d images, unet of %d parameters", c.name, seed, data.n,
              model:num_parameters())
  return data, model
end

-- The measured rows of the history of the run in folder `dir` (the last
-- step only for a shuffled-label run) and, with the trained labels, the
-- last step's code against permuted labels, each step's sample grid and
-- UMAP figures.
local function evaluate(dir, c, seed, model, data)
  local rows, permuted = {}, nil
  local steps = c.shuffled and { cfg.steps } or history.steps()
  for _, step in ipairs(steps) do
    history.load(dir, step, model)
    local row, s, act = measure(model, data, seed)
    row.step = step
    rows[#rows + 1] = row
    if not c.shuffled and step == cfg.steps then
      permuted = order_of(act, true, permuted_labels(seed))
    end
    if not c.shuffled then
      experiment.save_samples(string.format("%s/samples_%d.png", dir, step), s.images, probe,
                              math.max(1, 16 // cfg.size))  -- PNGs are stored raw
      for k, axis in ipairs{ "x", "y" } do
        assert(report.save(string.format("%s/umap_%s_%d.svg", dir, axis, step),
                           umap_plot(act, k, string.format("step %d, by %s", step, axis))))
      end
    end
    bd.log.info("%s seed %d step %d: none %.2f several %.2f wrong %.2f correct %.2f;"
                .. " %s: umap %.2f pca %.2f knn %.2f rho %.2f", c.name, seed, step,
                row.frac_none, row.frac_multi, row.frac_wrong, row.frac_correct, cfg.tap,
                row.umap, row.pca, row.knn, row.rho)
  end
  return rows, permuted
end

local function train(run, c, seed)
  local data, model = setup(c, seed)
  local t0 = bd.time()
  local untrained = not c.shuffled and represent(model, data, seed) or nil
  local opts = { steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, warmup = cfg.warmup,
                 ema = cfg.ema, seed = seed, every = cfg.every, run = run }
  for k, v in pairs(history.train_options()) do opts[k] = v end
  local result = bd.train(model, data, opts)
  history.keep(run)
  local rows, permuted = evaluate(run.dir, c, seed, model, data)
  return { checkpoints = rows, untrained = untrained, permuted = permuted,
           train_seconds = result.seconds,
           eval_seconds = bd.time() - t0 - result.seconds, params = model:num_parameters(),
           images = data.n }
end

-- collect=true: a done run's measurements made again from its archive,
-- with an untrained model of its seed; nothing trains (the training time
-- is the mark's).
local function measure_again(m)
  local data, model = setup(m.condition, m.seed)
  local t0 = bd.time()
  local r = m.results
  r.untrained = not m.condition.shuffled and represent(model, data, m.seed) or nil
  r.checkpoints, r.permuted = evaluate(dir .. "/train/" .. m.name, m.condition, m.seed, model,
                                       data)
  r.eval_seconds = bd.time() - t0
end

local conditions = { TRAINED }
if cfg.shuffled then conditions[2] = SHUFFLED end
local runs = sweep.run{ name = cfg.name, dir = dir .. "/train", conditions = conditions,
                        seeds = seeds, config = cfg, train = train }
if not runs then return end  -- other shards still train; the last one reports
if cfg.collect then
  for _, m in ipairs(runs) do measure_again(m) end
end

-- ---- controls and thresholds ------------------------------------------------------------------

-- done.json keeps NaN as null: back to NaN.
local function number(v) return v or 0 / 0 end

local trained, nulls = {}, { untrained = {}, permuted = {}, shuffled = {} }
for _, m in ipairs(runs) do
  if m.condition.shuffled then
    nulls.shuffled[#nulls.shuffled + 1] = m.results.checkpoints[#m.results.checkpoints]
  else
    trained[#trained + 1] = m
    nulls.untrained[#nulls.untrained + 1] = m.results.untrained
    nulls.permuted[#nulls.permuted + 1] = m.results.permuted
  end
end
local NULLS = { "untrained", "permuted", "shuffled" }

-- The ceilings: the ideal codes at the tap's dimension, through the same
-- metric (the dimension is read from one representation of a fresh model).
local function ceilings()
  local fresh = experiment.unet(cfg, 1)
  local r = bd.represent(fresh, grid, { taps = { cfg.tap }, t = cfg.rep_t })
  local d = r.taps[cfg.tap]:numel() // grid.n
  local labels = grid.labels:to_table()
  return { linear = order_of(linear_code(labels, d, 12345), true),
           sinusoidal = order_of(sinusoidal_code(labels, d, cfg.emb), true), d = d }
end
local ceiling = ceilings()

-- Per measure: the nulls over seeds, the ceiling, the threshold, whether
-- the measure can tell order from the null.
local function values(rows, key)
  local xs = {}
  for i, r in ipairs(rows) do xs[i] = number(r[key]) end
  return xs
end
local controls = {}
for _, ms in ipairs(MEASURES) do
  local c = { ceiling = ceiling.linear[ms.key], sinusoidal = ceiling.sinusoidal[ms.key] }
  local floor, highest = -math.huge, -math.huge
  for _, k in ipairs(NULLS) do
    c[k] = stats.t_interval(values(nulls[k], ms.key))
    if c[k].n > 0 then
      floor, highest = math.max(floor, c[k].mean), math.max(highest, c[k].max)
    end
  end
  c.floor, c.highest = floor, highest
  c.threshold = (floor + c.ceiling) / 2
  -- the floor's upper end: the highest 95% interval end over the nulls
  c.floor_hi = -math.huge
  for _, k in ipairs(NULLS) do
    if c[k].n > 0 then
      c.floor_hi = math.max(c.floor_hi, c[k].hi == c[k].hi and c[k].hi or c[k].max)
    end
  end
  c.room = c.ceiling == c.ceiling and c.floor_hi < c.ceiling
  c.separates = c.room and highest == highest and c.ceiling > highest
  controls[ms.key] = c
end

-- ---- phases and sequences ------------------------------------------------------------------------

local RANK = { A = 1, B = 2, C = 3 }

local function phase(row, key)
  if row.single < cfg.one_bump then return "A" end
  local c = controls[key]
  if row.accuracy >= cfg.correct and c.separates and row[key] >= c.threshold then return "C" end
  return "B"
end

-- A seed's sequence under a measure: the labels in order, the first step
-- of each phase, whether A, B and C first occur in that order, and the
-- checkpoints that fall back to an earlier phase than one already reached.
local function sequence(rows, key)
  local out = { labels = {}, first = {}, returns = 0 }
  local reached = 0
  for i, r in ipairs(rows) do
    local p = phase(r, key)
    out.labels[i] = p
    out.first[p] = out.first[p] or r.step
    if RANK[p] < reached then out.returns = out.returns + 1 end
    reached = math.max(reached, RANK[p])
  end
  local f = out.first
  out.in_order = f.A ~= nil and f.B ~= nil and f.C ~= nil and f.A < f.B and f.B < f.C
  return out
end

-- the report's run is made again from the sweep's marks each time: it starts over
local run = bd.run(cfg.name, { overwrite = true })
local saved = { condition = { name = TRAINED.name, dx = TRAINED.dx, dy = TRAINED.dy } }
for k, v in pairs(cfg) do saved[k] = v end
assert(run:save_config(saved))

local ROW_KEYS = { "frac_none", "frac_multi", "frac_wrong", "frac_correct", "single", "accuracy",
                   "median_error", "umap", "umap_x", "umap_y", "pca", "pca_x", "pca_y", "knn",
                   "knn_x", "knn_y", "rho", "pre_pca", "pre_knn", "pre_rho" }
for _, m in ipairs(runs) do
  m.rows = {}
  for i, r in ipairs(m.results.checkpoints) do
    local row = { step = r.step }
    for _, k in ipairs(ROW_KEYS) do row[k] = number(r[k]) end
    m.rows[i] = row
    local line = { event = "checkpoint", condition = m.condition.name, seed = m.seed,
                   ckpt_step = r.step }
    for _, k in ipairs(ROW_KEYS) do line[k] = row[k] end
    if not m.condition.shuffled then line.phase = phase(row, cfg.measure) end
    assert(run:log(line))
  end
end
for _, ms in ipairs(MEASURES) do
  local c = controls[ms.key]
  local line = { event = "control", measure = ms.key, floor = c.floor, highest_null = c.highest,
                 ceiling = c.ceiling, sinusoidal = c.sinusoidal, threshold = c.threshold,
                 separates = c.separates, room = c.room, floor_hi = c.floor_hi }
  for _, k in ipairs(NULLS) do
    line[k], line[k .. "_lo"], line[k .. "_hi"] = c[k].mean, c[k].lo, c[k].hi
  end
  assert(run:log(line))
end
local shown, steady = {}, {}
for _, ms in ipairs(MEASURES) do
  shown[ms.key], steady[ms.key] = 0, 0
  for _, m in ipairs(trained) do
    local seq = sequence(m.rows, ms.key)
    m[ms.key] = seq
    shown[ms.key] = shown[ms.key] + (seq.in_order and 1 or 0)
    steady[ms.key] = steady[ms.key] + (seq.in_order and seq.returns == 0 and 1 or 0)
    assert(run:log{ event = "sequence", measure = ms.key, seed = m.seed,
                    phases = table.concat(seq.labels), first_a = seq.first.A,
                    first_b = seq.first.B, first_c = seq.first.C, in_order = seq.in_order,
                    returns = seq.returns })
  end
end

-- ---- numbers in words ------------------------------------------------------------------------

local function fmt_step(s) return s and tostring(math.tointeger(s) or s) or "never" end
local function iv(st) return stats.describe(st, "%.2f") end

local NO_ROOM = "no room between floor and ceiling: this measure cannot show the phases at this"
                .. " scale"
-- A measure's floor against its ceiling, in words.
local function room_words(c)
  return string.format("the floor's interval reaches %.2f, the ceiling is %.2f", c.floor_hi,
                       c.ceiling)
end

local lines = {}
local head = by_key[cfg.measure]
if controls[cfg.measure].room then
  lines[#lines + 1] = string.format("sequence A -> B -> C under %s of %s: %s in %d of %d seed(s), %d"
                                    .. " of them without a fall back to an earlier phase",
                                    head.name, cfg.tap, shown[cfg.measure] == #trained and "shown"
                                    or shown[cfg.measure] > 0 and "partly shown" or "not shown",
                                    shown[cfg.measure], #trained, steady[cfg.measure])
else
  lines[#lines + 1] = string.format("sequence A -> B -> C under %s of %s: %s (%s)", head.name,
                                    cfg.tap, NO_ROOM, room_words(controls[cfg.measure]))
end
lines[#lines + 1] = string.format("  rule: A one-bump fraction < %.2f; C accuracy >= %.2f and order"
                                  .. " >= the measure's threshold; else B (%d probes per"
                                  .. " checkpoint; %s read by bd.represent at t = %d, input %s,"
                                  .. " %d labels, %d values each)", cfg.one_bump, cfg.correct,
                                  probe.n, cfg.tap, cfg.rep_t, cfg.rep_input, grid.n, ceiling.d)
lines[#lines + 1] = "  controls per order measure (mean [95% t interval] over seeds):"
for _, ms in ipairs(MEASURES) do
  local c = controls[ms.key]
  lines[#lines + 1] = string.format("    %-20s floor: untrained %s, permuted labels %s%s; ceiling:"
                                    .. " ideal code %.2f (sinusoidal features %.2f); threshold"
                                    .. " %.2f = (%.2f + %.2f) / 2%s", ms.name, iv(c.untrained),
                                    iv(c.permuted), c.shuffled.n > 0 and ", shuffled-label"
                                    .. " training " .. iv(c.shuffled) or "",
                                    c.ceiling, c.sinusoidal, c.threshold, c.floor,
                                    c.ceiling, not c.room and "; " .. NO_ROOM
                                    or c.separates and ""
                                    or string.format("; cannot decide: a null reached %.2f",
                                                     c.highest))
end
for _, ms in ipairs(MEASURES) do
  if not controls[ms.key].room then
    lines[#lines + 1] = string.format("  %-20s every seed: %s (%s)", ms.name, NO_ROOM,
                                      room_words(controls[ms.key]))
  else
    for _, m in ipairs(trained) do
      local seq, f = m[ms.key], m[ms.key].first
      lines[#lines + 1] = string.format("  %-20s seed %d: %s (every %d steps); first A at %s, B at"
                                        .. " %s, C at %s; %d back to an earlier phase", ms.name,
                                        m.seed, table.concat(seq.labels), cfg.every,
                                        fmt_step(f.A), fmt_step(f.B), fmt_step(f.C), seq.returns)
    end
  end
end
-- The samples alone (no order measure): when most hold one bump, and when
-- most are correct.
for _, m in ipairs(trained) do
  local one, right
  for _, r in ipairs(m.rows) do
    one = one or (r.single >= cfg.one_bump and r.step or nil)
    right = right or (r.accuracy >= cfg.correct and r.step or nil)
  end
  lines[#lines + 1] = string.format("  samples alone, seed %d: most hold one bump from step %s, most"
                                    .. " are correct from step %s", m.seed, fmt_step(one),
                                    fmt_step(right))
end

-- Final samples: pooled over seeds, a Wilson interval on the fraction correct.
local correct, total, first_c = 0, 0, {}
for _, m in ipairs(trained) do
  local last = m.rows[#m.rows]
  correct = correct + math.floor(last.accuracy * probe.n + 0.5)
  total = total + probe.n
  first_c[#first_c + 1] = m[cfg.measure].first.C
end
local final = stats.wilson(correct, total)
local reached_c = stats.t_interval(first_c)
lines[#lines + 1] = string.format("  phase C (most samples correct, ordered %s): %s; final"
                                  .. " accuracy %s pooled over seeds; first C step %s",
                                  cfg.tap, not controls[cfg.measure].room
                                  and "cannot be shown under " .. cfg.measure .. " without room"
                                  or reached_c.n == #trained and "reached in every seed"
                                  or reached_c.n > 0 and string.format("reached in %d of %d seeds"
                                                                       .. " only", reached_c.n,
                                                                       #trained)
                                  or "NOT reached inside this budget", iv(final),
                                  stats.describe(reached_c, "%.0f"))

-- The paper's descriptions of A and B, under the headline measure.
local function count(p, tests)
  local n, hits = 0, {}
  for i = 1, #tests do hits[i] = 0 end
  for _, m in ipairs(trained) do
    for _, r in ipairs(m.rows) do
      if phase(r, cfg.measure) == p then
        n = n + 1
        for i, test in ipairs(tests) do hits[i] = hits[i] + (test(r) and 1 or 0) end
      end
    end
  end
  return n, table.unpack(hits)
end
local function disordered(r) return not (r[cfg.measure] >= controls[cfg.measure].threshold) end
local a_all, a_multi, a_disordered = count("A", {
  function(r) return r.frac_multi > r.frac_none end, disordered })
local b_all, b_wrong, b_disordered = count("B", {
  function(r) return r.frac_wrong > r.frac_correct end, disordered })
lines[#lines + 1] = string.format("  A as the paper describes it: %d of %d A checkpoints have more"
                                  .. " samples with several bumps than with none, %d have a"
                                  .. " disordered %s (%s < %.2f)", a_multi, a_all, a_disordered,
                                  cfg.tap, head.name, controls[cfg.measure].threshold)
lines[#lines + 1] = string.format("  B as the paper describes it: %d of %d B checkpoints have more"
                                  .. " wrong-place than correct bumps, %d have a disordered %s",
                                  b_wrong, b_all, b_disordered, cfg.tap)

-- The tap before the label embedding, at the end of training.
local pre = {}
for _, k in ipairs(PRE) do
  local xs, ys = {}, {}
  for _, m in ipairs(trained) do
    xs[#xs + 1], ys[#ys + 1] = m.rows[#m.rows][k], m.rows[#m.rows]["pre_" .. k]
  end
  pre[#pre + 1] = string.format("%s %s (%s) against %s", by_key[k].name,
                                iv(stats.t_interval(ys)), cfg.tap_pre, iv(stats.t_interval(xs)))
end
lines[#lines + 1] = string.format("  at the last step, %s before its label embedding: %s",
                                  cfg.tap, table.concat(pre, "; "))
lines[#lines + 1] = string.format("  this scale can say whether %s's order rises above both nulls,"
                                  .. " and when relative to the samples' classes (%dx%d images, %d"
                                  .. " values per label at t = %d); it cannot say what the paper's"
                                  .. " 32x32 width-64 net does, nor what layer 4 holds while"
                                  .. " sampling (bd.represent reads fixed inputs)", cfg.tap,
                                  cfg.size, cfg.size, ceiling.d, cfg.rep_t)
local total_s, run_seconds = bd.time() - started, 0
for _, m in ipairs(runs) do run_seconds = run_seconds + (m.seconds or 0) end
lines[#lines + 1] = string.format("  %d training(s) of %d steps (%d on shuffled labels), %d"
                                  .. " checkpoints each: %s of training and evaluation; this"
                                  .. " process %s (scale %s)", #runs, cfg.steps,
                                  #runs - #trained, #history.steps(),
                                  experiment.duration(run_seconds), experiment.duration(total_s),
                                  cfg.scale)
local s_head = shown[cfg.measure]
local agreement = not controls[cfg.measure].room and "cannot say (" .. NO_ROOM .. ")"
                  or not controls[cfg.measure].separates and "cannot decide (the measure does not"
                    .. " separate its ceiling from its nulls)"
                  or steady[cfg.measure] == #trained and "agrees with it"
                  or s_head == #trained and "agrees with its order, but phase C is not stable"
                  or s_head > 0 and "agrees with it for some seeds only"
                  or "disagrees with it"
local others = {}
for _, ms in ipairs(MEASURES) do
  others[#others + 1] = controls[ms.key].room
                        and string.format("%s %d/%d", ms.key, shown[ms.key], #trained)
                        or ms.key .. " no room"
end
-- Seeds showing the sequence, or, without room, that the measure cannot tell.
local tally = controls[cfg.measure].room and string.format("%d of %d seeds", s_head, #trained)
              or string.format("%s cannot tell, with no room", cfg.measure)
lines[#lines + 1] = string.format("  PAPER.md finding 1 (A -> B -> C): this run %s under %s (%s;"
                                  .. " by measure: %s)", agreement, head.name, tally,
                                  table.concat(others, ", "))
local answer = table.concat(lines, "\n")
assert(run:log{ event = "answer", measure = cfg.measure, shown = s_head,
                steady = steady[cfg.measure], seeds = #trained, agreement = agreement,
                final_accuracy = final.p, final_lo = final.lo, final_hi = final.hi,
                a_checkpoints = a_all, a_multi = a_multi, a_disordered = a_disordered,
                b_checkpoints = b_all, b_wrong = b_wrong, b_disordered = b_disordered,
                seconds = total_s })

-- ---- figures ---------------------------------------------------------------------------------

local function phase_series(m)
  local xs, ys = {}, {}
  for i, r in ipairs(m.rows) do xs[i], ys[i] = r.step, (RANK[phase(r, cfg.measure)] - 1) / 2 end
  return { name = "phase (A 0, B .5, C 1)", x = xs, y = ys, color = "#7f7f7f", dash = true }
end

local function series(m, key, name, color, dash)
  local xs, ys = {}, {}
  for i, r in ipairs(m.rows) do xs[i], ys[i] = r.step, r[key] end
  return { name = name, x = xs, y = ys, color = color, dash = dash }
end

local C = report.colors
for _, m in ipairs(trained) do
  assert(report.save(run:path(string.format("fractions_s%d.svg", m.seed)), report.lines{
    title = string.format("seed %d: class fractions of the samples", m.seed),
    xlabel = "training step", ylabel = "fraction of samples", ylim = { 0, 1 },
    xlim = { 0, cfg.steps }, series = {
      series(m, "frac_none", "none", C[8]), series(m, "frac_multi", "several", C[4]),
      series(m, "frac_wrong", "one, wrong place", C[2]),
      series(m, "frac_correct", "one, correct", C[3]), phase_series(m) },
    hlines = { { y = cfg.one_bump, label = "one-bump threshold" } } }))
  local s, hl = {}, {}
  for i, ms in ipairs(MEASURES) do
    s[#s + 1] = series(m, ms.key, ms.name, C[i])
    hl[#hl + 1] = { y = controls[ms.key].threshold, label = ms.key .. " threshold" }
  end
  s[#s + 1] = phase_series(m)
  assert(report.save(run:path(string.format("order_s%d.svg", m.seed)), report.lines{
    title = string.format("seed %d: order of %s", m.seed, cfg.tap),
    xlabel = "training step", ylabel = "order (min over x, y)", ylim = { -0.3, 1 },
    xlim = { 0, cfg.steps }, series = s, hlines = hl }))
end

-- ---- the report ------------------------------------------------------------------------------

local doc = report.new("Phases: does the representation pass A, then B, then C?")
doc:question("Over training, does the model pass through (A) no structure in layer 4 and"
             .. " samples with several bumps, (B) a disordered 2D manifold and single bumps at"
             .. " the wrong place, (C) an ordered 2D manifold and correct bumps, in that order"
             .. " (PAPER.md, finding 1)?")
doc:heading("Answer")
doc:answer(answer)
doc:paragraph(string.format("The paper reports the sequence A, B, C (PAPER.md, finding 1). Under"
                            .. " %s this run %s, so it %s. Each order"
                            .. " measure's threshold is the midpoint between its floor (the higher"
                            .. " of the untrained and shuffled-label nulls) and its ceiling (an"
                            .. " ideal ordered code of the same dimension): a checkpoint above it"
                            .. " is nearer the ideal code than the null. A measure whose floor's"
                            .. " interval reaches its ceiling has no room to show order appear.",
                            head.name, controls[cfg.measure].room
                            and string.format("shows it in %d of %d seed(s)", s_head, #trained)
                            or "has " .. NO_ROOM:gsub(": this measure", ", and"), agreement))
doc:heading("Setup")
doc:table({
  { "scale", cfg.scale }, { "image size", cfg.size }, { "bump sigma (px)", cfg.sigma },
  { "training set", string.format("bumps on a lattice, dx = dy = %g px, %d images", cfg.spacing,
                                  trained[1].results.images) },
  { "denoiser", string.format("unet, width %d, emb %d, attention %s", cfg.width, cfg.emb,
                              cfg.attention_blocks) },
  { "parameters", trained[1].results.params },
  { "training", string.format("%d steps, batch %d, AdamW lr %g, warm-up %d, EMA %g", cfg.steps,
                              cfg.batch, cfg.lr, cfg.warmup, cfg.ema) },
  { "seeds", cfg.seeds },
  { "controls", string.format("floors: untrained model (step 0), the last step's code against"
                              .. " permuted labels, %s; ceilings: (x, y) isometrically in the"
                              .. " tap's dimension, the labels' sinusoidal features", cfg.shuffled
                              and "the same training on shuffled labels (last step)"
                              or "no shuffled-label training (shuffled=false)") },
  { "checkpoints", string.format("every %d steps; each evaluated with its EMA weights", cfg.every) },
  { "samples", string.format("%d probe labels (grid step %g px), %s %d steps, noise seeded by"
                             .. " the training seed", probe.n, cfg.probe_step, cfg.sampler,
                             cfg.sample_steps) },
  { "representation", string.format("tap %s (and %s) by bd.represent: one forward pass at t = %d"
                                    .. " on each label's clean bump noised with one shared noise"
                                    .. " image (input %s), %d labels (grid step %g px), %d values",
                                    cfg.tap, cfg.tap_pre, cfg.rep_t, cfg.rep_input, grid.n,
                                    cfg.rep_step, ceiling.d) },
  { "order measures", "UMAP R^2 (3D UMAP, linear regression, min over x and y), PCA R^2 (top 10"
                      .. " components), kNN R^2 (leave-one-out, k = 5, on the activations),"
                      .. " distance rank correlation (Spearman)" },
}, { header = { "setting", "value" } })

doc:heading("Figures")
for _, m in ipairs(trained) do
  doc:figure(string.format("fractions_s%d.svg", m.seed), string.format("Seed %d: fraction of"
             .. " samples per class over training; grey dashed: the phase.", m.seed))
  doc:figure(string.format("order_s%d.svg", m.seed), string.format("Seed %d: the order measures"
             .. " of %s with their thresholds; grey dashed: the phase.", m.seed, cfg.tap))
end
for _, m in ipairs(trained) do
  doc:heading(string.format("Seed %d: UMAP of %s and samples at each checkpoint", m.seed, cfg.tap))
  local sub = "train/" .. m.name .. "/"
  for _, what in ipairs{ { "umap_x_%d.svg", "2D UMAP by x" }, { "umap_y_%d.svg", "2D UMAP by y" },
                         { "samples_%d.png", "samples" } } do
    local strip = {}
    for _, r in ipairs(m.rows) do
      strip[#strip + 1] = string.format('<figure><img src="%s" alt="step %d" width="200"/>'
                                        .. "<figcaption>step %d: phase %s (%s)</figcaption></figure>",
                                        report.escape(sub .. string.format(what[1], r.step)),
                                        r.step, r.step, phase(r, cfg.measure), what[2])
    end
    doc:add('<div style="white-space: nowrap; overflow-x: auto">' .. table.concat(strip) .. "</div>")
  end
end

doc:heading("Numbers")
local rows = {}
for _, m in ipairs(runs) do
  for _, r in ipairs(m.rows) do
    rows[#rows + 1] = { m.condition.name, m.seed, r.step,
                        m.condition.shuffled and "-" or phase(r, cfg.measure), r.frac_none,
                        r.frac_multi, r.frac_wrong, r.frac_correct, r.median_error, r.umap, r.pca,
                        r.knn, r.rho, r.pre_knn }
  end
end
doc:table(rows, { header = { "training", "seed", "step", "phase", "none", "several", "wrong",
                             "correct", "median error (px)", "UMAP R^2", "PCA R^2", "kNN R^2",
                             "rank corr.", "kNN R^2 " .. cfg.tap_pre } })
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
