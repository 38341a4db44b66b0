-- Does the representation pass through three phases over training?
-- docs/PAPER.md, finding 1: (A) no structure, and generations with several
-- bumps; (B) a disordered 2D manifold, and a single bump at the wrong
-- place; (C) an ordered 2D manifold, and a correct bump.
--
--   bdrun scripts/phases.lua [scale=quick|paper] [seeds=1,2] [steps=...] ...
--
-- One training set (dx = dy), a UNet per seed (a sweep, scripts/lib/
-- sweep.lua: shard=r/n, Slurm arrays and mpirun share the seeds). Training
-- writes a checkpoint every `every` steps and keeps them all; afterwards
-- each checkpoint's EMA weights are loaded and a probe grid is sampled with
-- the layer-4 activations (tap "layer4"). For each checkpoint:
--   bump metric      the class of every sample: none, several, wrong (one
--                    bump, off by more than `tolerance` px), correct
--   manifold metric  a 3D UMAP of the layer-4 activations (as the paper),
--                    the R^2 of x and y from it, kNN label consistency,
--                    trustworthiness, effective dimension; and a 2D UMAP
--                    of the same activations for the figures
-- and its phase, by this rule (the thresholds are settings):
--   A  fewer than `one_bump` of the samples hold a single bump
--   C  accuracy >= `correct` and order = min(r2_x, r2_y) >= `order`
--   B  otherwise: mostly single bumps, not (yet) correct or not ordered
-- A run shows the sequence when A, B and C all occur and first occur in
-- that order. The labels are made from the stored numbers when the runs are
-- collected, so `collect=true order=0.9` relabels without training again.
--
-- Writes runs/phases/: config.json, metrics.jsonl (a row per seed and
-- checkpoint with the class fractions, the manifold quality and the phase;
-- a row per seed with its sequence; the answer), fractions_s<seed>.svg,
-- manifold_s<seed>.svg, report.html, and train/<condition>_s<seed>/ (the
-- training's loss log, its last checkpoint (every one with keep_ckpt=true),
-- and per checkpoint a sample grid
-- samples_<step>.png and the UMAP coloured by x and by y,
-- umap_x_<step>.svg, umap_y_<step>.svg).
local experiment = require "experiment"
local report = require "report"
local sweep = require "sweep"

local cfg = experiment.config(sweep.options{
  name = "phases",
  sigma = 1.0,
  tolerance = 1.0,     -- pixels, for a correct bump
  sampler = "ddpm",    -- respaced ancestral sampling for evaluation
  batch = 64,
  warmup = 100,
  umap_dims = 3,       -- the embedding R^2 is measured on (the figures: 2D)
  one_bump = 0.5,      -- the rule: below this one-bump fraction, phase A
  correct = 0.5,       -- phase C: accuracy at least this
  order = 0.8,         --          and min(r2_x, r2_y) at least this
  keep_ckpt = false,   -- keep every checkpoint (else the last only, once measured)
}, {
  -- 8x8 on a 2-core machine: three seeds of 2000 steps, 20 checkpoints each
  quick = { size = 8, spacing = 0.316, width = 8, emb = 64,
            attention_blocks = "down1,down2,down3,up1,up2", steps = 2000, lr = 2e-3,
            ema = 0.99, every = 100, sample_steps = 25, probe_step = 0.5, seeds = "1,2,3" },
  -- the paper's setting: 32x32, width 64, all six attention blocks; the
  -- balanced set with as many images as the paper's dx = 0.1, dy = 1.0;
  -- the training length is ours (the papers do not give it)
  paper = { size = 32, spacing = 0.316, width = 64, emb = 256,
            attention_blocks = "down1,down2,down3,up1,up2,up3", steps = 40000, lr = 3e-4,
            ema = 0.999, every = 2000, sample_steps = 100, probe_step = 2.0, seeds = "1,2,3" },
})
local seeds = experiment.seeds(cfg.seeds)
local condition = { name = "bumps", dx = cfg.spacing, dy = cfg.spacing }
local dir = "runs/" .. cfg.name
local started = bd.time()

-- ---- one checkpoint: samples, classes, the layer-4 manifold, the phase ----------------

local probe = bd.data.grid{ size = cfg.size, step = cfg.probe_step }
local labels = probe.labels:to_table()
local bump = bd.metric("bump", { tolerance = cfg.tolerance })
local manifold = bd.metric("manifold", { tap = "layer4", method = "umap", dims = cfg.umap_dims,
                                         seed = 1 })
local picture = bd.metric("manifold", { tap = "layer4", method = "umap", dims = 2, seed = 1 })
local sample_opts = { sampler = cfg.sampler, steps = cfg.sample_steps, seed = 1,
                      taps = { "layer4" } }

-- The phase of a checkpoint's row, by the rule above.
local function phase(row)
  if row.single < cfg.one_bump then return "A" end
  if row.accuracy >= cfg.correct and row.order >= cfg.order then return "C" end
  return "B"
end

-- A row of numbers for the model as it is, the samples and the embedding.
local function measure(model)
  local s = bd.sample(model, probe, sample_opts)
  local b = bump(s.images, probe.labels)
  local m = manifold(s.images, probe.labels, s.taps)
  local row = { frac_none = b.frac_none, frac_multi = b.frac_multi, frac_wrong = b.frac_wrong,
                frac_correct = b.frac_correct, accuracy = b.accuracy, acc_x = b.acc_x,
                acc_y = b.acc_y, median_error = b.median_error, r2_x = m.r2_x, r2_y = m.r2_y,
                r2_x_pca = m.r2_x_pca, r2_y_pca = m.r2_y_pca, knn = m.knn_consistency,
                trust = m.trustworthiness, eff_dim = m.eff_dim, evr_top2 = m.evr_top2 }
  row.single = row.frac_wrong + row.frac_correct
  row.order = row.r2_x == row.r2_x and row.r2_y == row.r2_y and math.min(row.r2_x, row.r2_y)
              or 0 / 0
  row.phase = phase(row)
  return row, s, picture(s.images, probe.labels, s.taps).embedding:to_table()
end

-- The UMAP of one checkpoint coloured by label coordinate k (1: x, 2: y).
local function umap_plot(embedding, k, title)
  local ex, ey, v = {}, {}, {}
  for i, e in ipairs(embedding) do ex[i], ey[i], v[i] = e[1], e[2], labels[i][k] end
  return report.scatter{ x = ex, y = ey, value = v, value_label = k == 1 and "x" or "y",
                         title = title, width = 240, height = 200, radius = 2.5 }
end

-- ---- training: every seed, then every checkpoint --------------------------------------

local function checkpoint_steps()
  local steps = {}
  for s = cfg.every, cfg.steps, cfg.every do steps[#steps + 1] = s end
  if steps[#steps] ~= cfg.steps then steps[#steps + 1] = cfg.steps end
  return steps
end

local function train(run, c, seed)
  local data = bd.data.bumps{ size = cfg.size, sigma = cfg.sigma, dx = c.dx, dy = c.dy }
  local model = bd.model("unet", { width = cfg.width, size = cfg.size, emb = cfg.emb,
                                   attention_blocks = cfg.attention_blocks, seed = seed })
  bd.log.info("%s seed %d: %d images, unet of %d parameters", c.name, seed, data.n,
              model:num_parameters())
  local result = bd.train(model, data, {
    steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, warmup = cfg.warmup, ema = cfg.ema,
    seed = seed, every = cfg.every, run = run, ckpt_every = cfg.every, keep = 0 })
  local t0, rows = bd.time(), {}
  for _, step in ipairs(checkpoint_steps()) do
    local path = run:path(string.format("ckpt/step_%d.bdc", step))
    assert(bd.ckpt.load(path, model, { ema = true }))
    if not cfg.keep_ckpt and step ~= cfg.steps then assert(os.remove(path)) end
    local row, s, embedding = measure(model)
    row.step = step
    rows[#rows + 1] = row
    experiment.save_samples(run:path(string.format("samples_%d.png", step)), s.images, probe,
                            math.max(1, 16 // cfg.size))  -- PNGs are stored raw
    for k, axis in ipairs{ "x", "y" } do
      assert(report.save(run:path(string.format("umap_%s_%d.svg", axis, step)),
                         umap_plot(embedding, k, string.format("step %d, by %s", step, axis))))
    end
    bd.log.info("seed %d step %d: phase %s  none %.2f several %.2f wrong %.2f correct %.2f"
                .. "  r2_x %.2f r2_y %.2f knn %.2f trust %.2f", seed, step, row.phase,
                row.frac_none, row.frac_multi, row.frac_wrong, row.frac_correct, row.r2_x,
                row.r2_y, row.knn, row.trust)
  end
  return { checkpoints = rows, train_seconds = result.seconds, eval_seconds = bd.time() - t0,
           params = model:num_parameters(), images = data.n }
end

local runs = sweep.run{ name = cfg.name, dir = dir .. "/train", conditions = { condition },
                        seeds = seeds, config = cfg, train = train }
if not runs then return end  -- other shards still train; the last one reports

-- ---- the sequence ---------------------------------------------------------------------------

local RANK = { A = 1, B = 2, C = 3 }

-- A seed's sequence: the labels in order, the first step of each phase,
-- whether A, B and C first occur in that order, the checkpoints that fall
-- back to an earlier phase than one already reached, and the B checkpoints
-- whose bumps are mostly correct (B for the manifold's order alone).
local function sequence(rows)
  local out = { labels = {}, first = {}, returns = 0, b_correct = 0 }
  local reached = 0
  for i, r in ipairs(rows) do
    out.labels[i] = r.phase
    out.first[r.phase] = out.first[r.phase] or r.step
    if r.phase == "B" and r.accuracy >= cfg.correct then out.b_correct = out.b_correct + 1 end
    if RANK[r.phase] < reached then out.returns = out.returns + 1 end
    reached = math.max(reached, RANK[r.phase])
  end
  local f = out.first
  out.in_order = f.A ~= nil and f.B ~= nil and f.C ~= nil and f.A < f.B and f.B < f.C
  return out
end

-- done.json keeps NaN as null: back to NaN.
local function number(v) return v or 0 / 0 end

local run = assert(bd.run(cfg.name))
local saved = { condition = { name = condition.name, dx = condition.dx, dy = condition.dy } }
for k, v in pairs(cfg) do saved[k] = v end
assert(run:save_config(saved))

local KEYS = { "frac_none", "frac_multi", "frac_wrong", "frac_correct", "single", "accuracy",
               "acc_x", "acc_y", "median_error", "r2_x", "r2_y", "order", "r2_x_pca",
               "r2_y_pca", "knn", "trust", "eff_dim", "evr_top2" }
local shown, steady = 0, 0
for _, m in ipairs(runs) do
  m.rows = {}
  for i, r in ipairs(m.results.checkpoints) do
    local row = { step = r.step }
    for _, k in ipairs(KEYS) do row[k] = number(r[k]) end
    row.phase = phase(row)  -- again: collect=true with other thresholds relabels
    m.rows[i] = row
    local line = { event = "checkpoint", condition = m.condition.name, seed = m.seed,
                   ckpt_step = r.step, phase = row.phase }
    for _, k in ipairs(KEYS) do line[k] = row[k] end
    assert(run:log(line))
  end
  m.seq = sequence(m.rows)
  shown = shown + (m.seq.in_order and 1 or 0)
  steady = steady + (m.seq.in_order and m.seq.returns == 0 and 1 or 0)
  assert(run:log{ event = "sequence", condition = m.condition.name, seed = m.seed,
                  phases = table.concat(m.seq.labels), first_a = m.seq.first.A,
                  first_b = m.seq.first.B, first_c = m.seq.first.C,
                  in_order = m.seq.in_order, returns = m.seq.returns,
                  b_correct = m.seq.b_correct })
end

-- The median of key over the rows of one phase, over every seed.
local function phase_stat(key, p)
  local xs = {}
  for _, m in ipairs(runs) do
    for _, r in ipairs(m.rows) do
      if r.phase == p and r[key] == r[key] then xs[#xs + 1] = r[key] end
    end
  end
  table.sort(xs)
  if #xs == 0 then return 0 / 0, 0 end
  local mid = (#xs + 1) / 2
  return (xs[math.floor(mid)] + xs[math.ceil(mid)]) / 2, #xs
end

-- ---- numbers in words ------------------------------------------------------------------------

local function fmt_step(s) return s and tostring(math.tointeger(s) or s) or "never" end

local lines = {}
lines[#lines + 1] = string.format("sequence A -> B -> C: %s in %d of %d seed(s), %d of them without"
                                  .. " a fall back to an earlier phase (rule: A one-bump fraction"
                                  .. " < %.2f; C accuracy >= %.2f and min(r2_x, r2_y) >= %.2f; else B)",
                                  shown == #runs and "shown" or shown > 0 and "partly shown"
                                  or "not shown", shown, #runs, steady, cfg.one_bump, cfg.correct,
                                  cfg.order)
for _, m in ipairs(runs) do
  local f = m.seq.first
  lines[#lines + 1] = string.format("  seed %d: %s (every %d steps); first A at %s, B at %s, C at"
                                    .. " %s; %d checkpoint(s) back to an earlier phase; %d B"
                                    .. " checkpoint(s) with mostly correct bumps (B for the"
                                    .. " manifold's order only)", m.seed,
                                    table.concat(m.seq.labels), cfg.every, fmt_step(f.A),
                                    fmt_step(f.B), fmt_step(f.C), m.seq.returns, m.seq.b_correct)
end
for _, p in ipairs{ "A", "B", "C" } do
  local single, n = phase_stat("single", p)
  if n > 0 then
    lines[#lines + 1] = string.format("  phase %s (%d checkpoints, medians): one bump %.2f, several"
                                      .. " %.2f, wrong %.2f, correct %.2f; layer 4: r2_x %.2f r2_y"
                                      .. " %.2f (PCA %.2f %.2f), kNN consistency %.2f,"
                                      .. " trustworthiness %.2f, eff. dim %.1f", p, n, single,
                                      phase_stat("frac_multi", p), phase_stat("frac_wrong", p),
                                      phase_stat("accuracy", p), phase_stat("r2_x", p),
                                      phase_stat("r2_y", p), phase_stat("r2_x_pca", p),
                                      phase_stat("r2_y_pca", p), phase_stat("knn", p),
                                      phase_stat("trust", p), phase_stat("eff_dim", p))
  else
    lines[#lines + 1] = string.format("  phase %s: no checkpoint", p)
  end
end
-- Are A and B what the paper describes? The checkpoints of phase p, and
-- those of them for which each test holds.
local function count(p, tests)
  local n, hits = 0, {}
  for i = 1, #tests do hits[i] = 0 end
  for _, m in ipairs(runs) do
    for _, r in ipairs(m.rows) do
      if r.phase == p then
        n = n + 1
        for i, test in ipairs(tests) do hits[i] = hits[i] + (test(r) and 1 or 0) end
      end
    end
  end
  return n, table.unpack(hits)
end
local function disordered(r) return not (r.order >= cfg.order) end
local a_all, a_multi, a_disordered = count("A", {
  function(r) return r.frac_multi > r.frac_none end, disordered })
local b_all, b_wrong, b_disordered = count("B", {
  function(r) return r.frac_wrong > r.frac_correct end, disordered })
lines[#lines + 1] = string.format("  A as the paper describes it: %d of %d A checkpoints have more"
                                  .. " samples with several bumps than with none, %d have a"
                                  .. " disordered layer 4 (min(r2_x, r2_y) < %.2f)", a_multi, a_all,
                                  a_disordered, cfg.order)
lines[#lines + 1] = string.format("  B as the paper describes it: %d of %d B checkpoints have more"
                                  .. " wrong-place than correct bumps, %d have a disordered layer 4"
                                  .. " (min(r2_x, r2_y) < %.2f)", b_wrong, b_all, b_disordered,
                                  cfg.order)
local total, run_seconds = bd.time() - started, 0
for _, m in ipairs(runs) do run_seconds = run_seconds + (m.seconds or 0) end
lines[#lines + 1] = string.format("  %d training(s) of %d steps, %d checkpoints each: %s of training"
                                  .. " and evaluation; this process %s (scale %s)", #runs,
                                  cfg.steps, #checkpoint_steps(), experiment.duration(run_seconds),
                                  experiment.duration(total), cfg.scale)
local answer = table.concat(lines, "\n")
local agreement = steady == #runs and "agrees with it"
                  or shown == #runs and "agrees with its order, but phase C is not stable"
                  or shown > 0 and "agrees with it for some seeds only"
                  or "disagrees with it"
assert(run:log{ event = "answer", shown = shown, steady = steady, seeds = #runs,
                agreement = agreement, a_checkpoints = a_all, a_multi = a_multi,
                a_disordered = a_disordered, b_checkpoints = b_all, b_wrong = b_wrong,
                b_disordered = b_disordered,
                seconds = total })

-- ---- figures ---------------------------------------------------------------------------------

-- The phases as a step curve: A at 0, B at 0.5, C at 1.
local function phase_series(m)
  local xs, ys = {}, {}
  for i, r in ipairs(m.rows) do xs[i], ys[i] = r.step, (RANK[r.phase] - 1) / 2 end
  return { name = "phase (A 0, B .5, C 1)", x = xs, y = ys, color = "#7f7f7f", dash = true }
end

local function series(m, key, name, color, dash)
  local xs, ys = {}, {}
  for i, r in ipairs(m.rows) do xs[i], ys[i] = r.step, r[key] end
  return { name = name, x = xs, y = ys, color = color, dash = dash }
end

local C = report.colors
for _, m in ipairs(runs) do
  assert(report.save(run:path(string.format("fractions_s%d.svg", m.seed)), report.lines{
    title = string.format("seed %d: class fractions of the samples", m.seed),
    xlabel = "training step", ylabel = "fraction of samples", ylim = { 0, 1 },
    xlim = { 0, cfg.steps }, series = {
      series(m, "frac_none", "none", C[8]), series(m, "frac_multi", "several", C[4]),
      series(m, "frac_wrong", "one, wrong place", C[2]),
      series(m, "frac_correct", "one, correct", C[3]), phase_series(m) },
    hlines = { { y = cfg.one_bump, label = "one-bump threshold" } } }))
  assert(report.save(run:path(string.format("manifold_s%d.svg", m.seed)), report.lines{
    title = string.format("seed %d: layer-4 manifold quality", m.seed),
    xlabel = "training step", ylabel = "R^2, kNN consistency, trustworthiness",
    ylim = { 0, 1 }, xlim = { 0, cfg.steps }, series = {
      series(m, "r2_x", "r2_x (UMAP)", C[1]), series(m, "r2_y", "r2_y (UMAP)", C[2]),
      series(m, "knn", "kNN consistency", C[5]), series(m, "trust", "trustworthiness", C[6]),
      series(m, "r2_x_pca", "r2_x (PCA)", C[1], true),
      series(m, "r2_y_pca", "r2_y (PCA)", C[2], true), phase_series(m) },
    hlines = { { y = cfg.order, label = "order threshold" } } }))
end

-- ---- the report ------------------------------------------------------------------------------

local doc = report.new("Phases: does the representation pass A, then B, then C?")
doc:question("Over training, does the model pass through (A) no structure in layer 4 and"
             .. " samples with several bumps, (B) a disordered 2D manifold and single bumps at"
             .. " the wrong place, (C) an ordered 2D manifold and correct bumps, in that order"
             .. " (PAPER.md, finding 1)?")
doc:heading("Answer")
doc:answer(answer)
doc:paragraph(string.format("The paper reports the sequence A, B, C (PAPER.md, finding 1). This run"
                            .. " shows it in %d of %d seed(s), so it %s. The phases are labelled by"
                            .. " the samples first: of the A checkpoints, %d of %d have a disordered"
                            .. " layer 4 as the paper's A, and of the B checkpoints %d of %d (and %d"
                            .. " of %d have more wrong-place than correct bumps), so the"
                            .. " representation's side of the finding holds only as far as these"
                            .. " counts go.", shown, #runs, agreement, a_disordered, a_all,
                            b_disordered, b_all, b_wrong, b_all))
doc:heading("Setup")
doc:table({
  { "scale", cfg.scale }, { "image size", cfg.size }, { "bump sigma (px)", cfg.sigma },
  { "training set", string.format("bumps on a lattice, dx = dy = %g px, %d images", cfg.spacing,
                                  runs[1].results.images) },
  { "denoiser", string.format("unet, width %d, emb %d, attention %s", cfg.width, cfg.emb,
                              cfg.attention_blocks) },
  { "parameters", runs[1].results.params },
  { "training", string.format("%d steps, batch %d, AdamW lr %g, warm-up %d, EMA %g", cfg.steps,
                              cfg.batch, cfg.lr, cfg.warmup, cfg.ema) },
  { "seeds", cfg.seeds },
  { "checkpoints", string.format("every %d steps, %s; each evaluated with its EMA weights",
                                 cfg.every, cfg.keep_ckpt and "all kept"
                                 or "the last kept (keep_ckpt=true keeps all)") },
  { "evaluation", string.format("%d probe labels (grid step %g px), %s %d steps, the same noise"
                                .. " at every checkpoint", probe.n, cfg.probe_step, cfg.sampler,
                                cfg.sample_steps) },
  { "classes", string.format("bump metric: none, several, one at the wrong place, one within %g"
                             .. " px of the label in x and y (correct)", cfg.tolerance) },
  { "manifold", string.format("manifold metric on the layer-4 tap: %dD UMAP (seed 1); R^2 of"
                              .. " linear regressions from it to x and y; kNN label consistency"
                              .. " and trustworthiness (10 neighbours); participation-ratio"
                              .. " dimension. The figures show a 2D UMAP (seed 1) of the same"
                              .. " activations", cfg.umap_dims) },
  { "rule", string.format("A: one-bump fraction < %g; C: accuracy >= %g and order = min(r2_x, r2_y)"
                          .. " >= %g; B: otherwise. The sequence is shown when A, B and C all"
                          .. " occur and first occur in that order", cfg.one_bump, cfg.correct,
                          cfg.order) },
}, { header = { "setting", "value" } })

doc:heading("Figures")
for _, m in ipairs(runs) do
  doc:figure(string.format("fractions_s%d.svg", m.seed), string.format("Seed %d: fraction of"
             .. " samples per class over training; grey dashed: the phase.", m.seed))
  doc:figure(string.format("manifold_s%d.svg", m.seed), string.format("Seed %d: order of the"
             .. " layer-4 manifold; grey dashed: the phase.", m.seed))
end
for _, m in ipairs(runs) do
  doc:heading(string.format("Seed %d: UMAP of layer 4 and samples at each checkpoint", m.seed))
  local sub = "train/" .. m.name .. "/"
  for _, what in ipairs{ { "umap_x_%d.svg", "2D UMAP by x" }, { "umap_y_%d.svg", "2D UMAP by y" },
                         { "samples_%d.png", "samples" } } do
    local strip = {}
    for _, r in ipairs(m.rows) do
      strip[#strip + 1] = string.format('<figure><img src="%s" alt="step %d" width="200"/>'
                                        .. "<figcaption>step %d: phase %s (%s)</figcaption></figure>",
                                        report.escape(sub .. string.format(what[1], r.step)),
                                        r.step, r.step, r.phase, what[2])
    end
    doc:add('<div style="white-space: nowrap; overflow-x: auto">' .. table.concat(strip) .. "</div>")
  end
end

doc:heading("Numbers")
local rows = {}
for _, m in ipairs(runs) do
  for _, r in ipairs(m.rows) do
    rows[#rows + 1] = { m.seed, r.step, r.phase, r.frac_none, r.frac_multi, r.frac_wrong,
                        r.frac_correct, r.median_error, r.r2_x, r.r2_y, r.r2_x_pca,
                        r.r2_y_pca, r.knn, r.trust, r.eff_dim }
  end
end
doc:table(rows, { header = { "seed", "step", "phase", "none", "several", "wrong", "correct",
                             "median error (px)", "r2_x", "r2_y", "r2_x PCA", "r2_y PCA",
                             "kNN consistency",
                             "trustworthiness", "eff. dim" } })
local times = {}
for _, m in ipairs(runs) do
  times[#times + 1] = string.format("seed %d: training %.0f s, checkpoint evaluation %.0f s",
                                    m.seed, m.results.train_seconds, m.results.eval_seconds)
end
doc:paragraph(table.concat(times, "; ") .. ". Every checkpoint is a row of metrics.jsonl"
              .. " (event checkpoint); train/<condition>_s<seed>/ holds each training's loss"
              .. " log and checkpoints.")
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
