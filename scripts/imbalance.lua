-- Are x and y learned as separate 1D tasks (factorized) or together
-- (coupled)? PAPER.md, finding 2: with x sampled ten times more densely
-- than y, a vanilla UNet still learns the two together.
--
--   bdrun scripts/imbalance.lua [scale=quick|paper] [seeds=1,2,3] [steps=...] ...
--   bdrun scripts/imbalance.lua shard=0/2 ...   (and shard=1/2: the same sweep)
--
-- Three training sets of the same number of bumps: balanced (dx = dy), x
-- dense / y sparse (dx = dense, dy = sparse) and the swap. For each, and for
-- each seed, a UNet is trained; every `every` steps a probe grid is sampled
-- (with the layer-4 activations) and scored: x and y accuracy (bump
-- metric) and the R^2 of x and of y in layer 4 (manifold metric).
--
-- The statistic: the step at which acc_x, and the one at which acc_y,
-- first reach `threshold` (interpolated between evaluations), and the lag
-- = step_y - step_x, relative to the mean of the two. Factorized learning
-- learns the dense axis much earlier: the relative lag is above
-- +lag_tolerance with x dense and below -lag_tolerance with y dense (the
-- sign flips with the swap). Coupled learning reaches both together:
-- |relative lag| within lag_tolerance in both. Each is decided beyond one
-- standard deviation over seeds; anything else is "undetermined", and so is
-- a run where the thresholds are not reached (the accuracies reached are
-- reported).
--
-- The trainings are the runs of a sweep (scripts/lib/sweep.lua): one
-- process runs them all, or shard=r/n, a Slurm job array or mpirun's ranks
-- share them out; a finished training is marked and skipped when the script
-- runs again. Each training's results (its curve of evaluations, its
-- sample grid's file, its times) go into its done mark, and the process
-- that finishes the last one (or `collect=true`) reads every mark back and
-- writes the statistic, the figures and the report, so these are the same
-- however the runs were shared. `collect=true threshold=0.5` decides again
-- on other settings of the statistic without training.
--
-- Writes runs/imbalance/: config.json, metrics.jsonl (one row per
-- evaluation, tagged with condition and seed; then the crossings and the
-- decision), curves_<condition>.svg, accuracy.svg, report.html, and
-- train/<condition>_s<seed>/ (each training's loss and evaluation log,
-- samples.png: its last evaluation's samples, done.json: its results), with
-- the sweep's train/summary.json and summary.csv.
local experiment = require "experiment"
local report = require "report"
local sweep = require "sweep"

local cfg = experiment.config(sweep.options{
  name = "imbalance",
  dense = 0.1,           -- lattice spacing of the dense axis (pixels)
  sparse = 1.0,          -- of the sparse one: 10x fewer values
  sigma = 1.0,
  threshold = 0.6,       -- accuracy that counts as "learned"
  lag_tolerance = 0.25,  -- |relative lag| below this: "together"
  tolerance = 1.0,       -- pixels, for accuracy
  sampler = "ddpm",      -- respaced ancestral sampling for evaluation
  batch = 64,
  warmup = 100,
  ckpt = false,          -- keep each training's last checkpoint
}, {
  -- 8x8 on this 2-core machine: 3 conditions x 3 seeds in about 10 minutes
  quick = { size = 8, width = 8, emb = 64, attention_blocks = "down1,down2,down3,up1,up2",
            steps = 700, lr = 2e-3, ema = 0.99, every = 50, sample_steps = 25,
            probe_step = 1.0, seeds = "1,2,3" },
  -- the paper's setting: 32x32, width 64 (about 23.8M parameters), all six
  -- attention blocks; the training length is ours (the papers do not give it)
  paper = { size = 32, width = 64, emb = 256, attention_blocks = "down1,down2,down3,up1,up2,up3",
            steps = 40000, lr = 3e-4, ema = 0.999, every = 1000, sample_steps = 100,
            probe_step = 2.0, seeds = "1,2,3" },
})
local seeds = experiment.seeds(cfg.seeds)

-- Balanced data has the same number of images: dx = dy = sqrt(dense * sparse).
local even = math.sqrt(cfg.dense * cfg.sparse)
local conditions = {
  { name = "balanced", dx = even,       dy = even },
  { name = "x_dense",  dx = cfg.dense,  dy = cfg.sparse, sign = 1 },  -- sign of the lag
  { name = "y_dense",  dx = cfg.sparse, dy = cfg.dense,  sign = -1 }, -- when dense first
}

local evaluate, probe = experiment.evaluator{
  size = cfg.size, probe_step = cfg.probe_step, sampler = cfg.sampler,
  sample_steps = cfg.sample_steps, tolerance = cfg.tolerance }
local started = bd.time()

-- ---- one training: a run of the sweep ------------------------------------------------

-- Train condition c with one seed in the sweep's run directory `sub`,
-- evaluating every `every` steps; writes the last evaluation's samples to
-- sub/samples.png. Returns what the report needs (the sweep keeps it in the
-- run's done mark): the curve, the grid's file, the data's size, the times.
local function train_one(sub, c, seed)
  local data = bd.data.bumps{ size = cfg.size, sigma = cfg.sigma, dx = c.dx, dy = c.dy }
  bd.log.info("%s seed %d: dx %.3g, dy %.3g, %d images", c.name, seed, c.dx, c.dy, data.n)
  local model = bd.model("unet", { width = cfg.width, size = cfg.size, emb = cfg.emb,
                                   attention_blocks = cfg.attention_blocks, seed = seed })
  local curve, last = experiment.curve(), nil
  local eval_seconds = 0
  local result = bd.train(model, data, {
    steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, warmup = cfg.warmup,
    ema = cfg.ema, seed = seed, every = cfg.every, run = sub,
    ckpt_every = cfg.ckpt and cfg.steps or 0,
    on_eval = function(r)
      local t0 = bd.time()
      local row, samples = evaluate(model)
      eval_seconds = eval_seconds + bd.time() - t0
      curve:add(r.step, row)
      last = samples
      local line = { event = "evaluation" }
      for k, v in pairs(row) do line[k] = v end
      assert(sub:log(line))
      bd.log.info("%s seed %d step %d: acc_x %.2f acc_y %.2f  r2_x %.2f r2_y %.2f"
                  .. " (pca %.2f %.2f)", c.name, seed, r.step, row.acc_x, row.acc_y,
                  row.r2_x, row.r2_y, row.r2_x_pca, row.r2_y_pca)
    end,
  })
  if last then
    experiment.save_samples(sub:path("samples.png"), last.images, probe,
                            math.max(1, 64 // cfg.size))
  end
  return { curve = curve, samples = last and "samples.png", images = data.n,
           params = model:num_parameters(), train_seconds = result.seconds,
           eval_seconds = eval_seconds }
end

-- ---- every condition for every seed: the sweep -------------------------------------------

local TRAIN = "train"  -- the trainings' folder in the run directory
local marks = sweep.run{ name = cfg.name, dir = "runs/" .. cfg.name .. "/" .. TRAIN,
                         conditions = conditions, seeds = seeds, config = cfg,
                         train = train_one }
if not marks then return end  -- runs are left to other processes: the last one collects

-- Every run is done: its results, read back from its mark, join its condition.
local by_name, runtime = {}, 0
for _, c in ipairs(conditions) do
  c.runs = {}
  by_name[c.name] = c
end
for _, m in ipairs(marks) do
  local r = m.results
  r.name, r.seed, r.curve = m.name, m.seed, experiment.curve(r.curve)
  table.insert(by_name[m.condition.name].runs, r)
  runtime = runtime + m.seconds
end

-- ---- the run directory: settings and every evaluation ------------------------------------

local run = bd.run(cfg.name)
local saved = { conditions = {} }
for k, v in pairs(cfg) do saved[k] = v end
for i, c in ipairs(conditions) do saved.conditions[i] = { name = c.name, dx = c.dx, dy = c.dy } end
assert(run:save_config(saved))
for _, c in ipairs(conditions) do
  for _, r in ipairs(c.runs) do
    for i, step in ipairs(r.curve.steps) do
      local line = { condition = c.name, seed = r.seed, step = step }
      for k, v in pairs(r.curve.rows[i]) do line[k] = v end
      assert(run:log(line))
    end
  end
end

-- ---- the statistic ---------------------------------------------------------------

-- The crossings of keys kx, ky in each training of a condition and the
-- verdict on them: { verdict =, lag =, rel = (stats), reached = (trainings
-- with both crossings), runs = (a crossings table per training) }.
local function judge(c, kx, ky)
  local out = { runs = {}, reached = 0 }
  for i, r in ipairs(c.runs) do
    out.runs[i] = experiment.axis_crossings(r.curve, cfg.threshold, cfg.steps, kx, ky)
    if not out.runs[i].censored then out.reached = out.reached + 1 end
  end
  out.verdict, out.lag, out.rel = experiment.lag_verdict(out.runs, c.sign, cfg.lag_tolerance)
  return out
end

for _, c in ipairs(conditions) do
  c.acc = judge(c, "acc_x", "acc_y")        -- the decision's statistic
  c.place = judge(c, "place_x", "place_y")  -- the same, apart from the bump count
  for i, r in ipairs(c.runs) do
    local last, a, p = r.curve:last(), c.acc.runs[i], c.place.runs[i]
    assert(run:log{ event = "crossings", condition = c.name, seed = r.seed,
                    step_x = a.step_x, step_y = a.step_y, lag = a.lag, rel_lag = a.rel_lag,
                    censored = a.censored, place_step_x = p.step_x, place_step_y = p.step_y,
                    place_lag = p.lag, final_acc_x = last.acc_x, final_acc_y = last.acc_y,
                    train_seconds = r.train_seconds, eval_seconds = r.eval_seconds })
  end
end

local x_dense, y_dense = conditions[2], conditions[3]
local decision
if x_dense.acc.verdict == "dense first" and y_dense.acc.verdict == "dense first" then
  decision = "factorized"
elseif x_dense.acc.verdict == "together" and y_dense.acc.verdict == "together" then
  decision = "coupled"
else
  decision = "undetermined"
end

-- ---- numbers in words ----------------------------------------------------------------

local function fmt_step(s) return s and string.format("%.0f", s) or "not reached" end
local function fmt_acc(v) return v == v and string.format("%.2f", v) or "-" end

-- A judgement in words; kx, ky name the curves it was made on.
local function lag_words(c, j, kx, ky)
  if j.rel.n == 0 then
    local finals = {}
    for _, r in ipairs(c.runs) do
      local l = r.curve:last()
      finals[#finals + 1] = fmt_acc(l[kx]) .. "/" .. fmt_acc(l[ky])
    end
    return string.format("%s; neither axis reached %.0f%% (final %s/%s per seed: %s)", j.verdict,
                         100 * cfg.threshold, kx, ky, table.concat(finals, ", "))
  end
  local bound = j.reached < #c.runs and " (some thresholds not reached: bounds)" or ""
  return string.format("%s; lag step_y - step_x = %s steps, relative %s%s", j.verdict,
                       experiment.describe(j.lag, "%+.0f"),
                       experiment.describe(j.rel, "%+.2f"), bound)
end

local lines = {}
lines[#lines + 1] = string.format("decision: %s (threshold %.0f%% accuracy, lag tolerance %.2f"
                                  .. " of the learning time, %d seed(s))", decision,
                                  100 * cfg.threshold, cfg.lag_tolerance, #seeds)
for _, c in ipairs(conditions) do
  lines[#lines + 1] = string.format("  %-8s (dx %.3g, dy %.3g): %s", c.name, c.dx, c.dy,
                                    lag_words(c, c.acc, "acc_x", "acc_y"))
  lines[#lines + 1] = string.format("  %-8s placement among one-bump samples: %s", "",
                                    lag_words(c, c.place, "place_x", "place_y"))
end
lines[#lines + 1] = string.format("  %d trainings of %d steps: %s of training and evaluation;"
                                  .. " this process %s (scale %s)", #marks, cfg.steps,
                                  experiment.duration(runtime),
                                  experiment.duration(bd.time() - started), cfg.scale)
local answer = table.concat(lines, "\n")
assert(run:log{ event = "decision", decision = decision, seconds = runtime,
                verdicts = { balanced = conditions[1].acc.verdict, x_dense = x_dense.acc.verdict,
                             y_dense = y_dense.acc.verdict },
                placement = { balanced = conditions[1].place.verdict,
                              x_dense = x_dense.place.verdict, y_dense = y_dense.place.verdict } })

-- ---- figures ---------------------------------------------------------------------------

-- A condition's curves, one per seed (seeds share steps).
local function curves_of(c)
  local curves = {}
  for i, r in ipairs(c.runs) do curves[i] = r.curve end
  return curves
end

for _, c in ipairs(conditions) do
  experiment.save_curves(run:path("curves_" .. c.name .. ".svg"),
                         string.format("%s (dx %.3g, dy %.3g), mean of %d seed(s)", c.name, c.dx,
                                       c.dy, #seeds), curves_of(c), cfg.steps, cfg.threshold)
end

local acc_series = {}
for i, c in ipairs(conditions) do
  for _, key in ipairs{ "acc_x", "acc_y" } do
    local steps, ys = experiment.mean_curve(curves_of(c), key)
    acc_series[#acc_series + 1] = { name = c.name .. " " .. key, x = steps, y = ys,
                                    color = report.colors[i], dash = key == "acc_y" }
  end
end
assert(report.save(run:path("accuracy.svg"), report.lines{
  title = "x accuracy (solid) and y accuracy (dashed) per condition",
  xlabel = "training step", ylabel = "accuracy", ylim = { 0, 1 }, xlim = { 0, cfg.steps },
  series = acc_series, hlines = { { y = cfg.threshold, label = "threshold" } } }))

-- ---- the report ---------------------------------------------------------------------------

local doc = report.new("Imbalance: are x and y learned coupled or factorized?")
doc:question(string.format("When x is sampled %g times more densely than y (and the swap), is the"
  .. " dense coordinate learned much earlier than the sparse one (factorized learning), or are"
  .. " both learned together (coupled learning, the paper's finding)?", cfg.sparse / cfg.dense))
doc:heading("Answer")
doc:answer(answer)
doc:heading("Setup")
doc:table({
  { "scale", cfg.scale }, { "image size", cfg.size }, { "bump sigma (px)", cfg.sigma },
  { "denoiser", string.format("unet, width %d, emb %d, attention %s", cfg.width, cfg.emb,
                              cfg.attention_blocks) },
  { "parameters", conditions[1].runs[1].params },
  { "training", string.format("%d steps, batch %d, AdamW lr %g, warm-up %d, EMA %g", cfg.steps,
                              cfg.batch, cfg.lr, cfg.warmup, cfg.ema) },
  { "seeds", cfg.seeds },
  { "evaluation", string.format("every %d steps: %d probe labels (grid step %g px), %s %d steps,"
                                .. " EMA weights, same noise each time", cfg.every, probe.n,
                                cfg.probe_step, cfg.sampler, cfg.sample_steps) },
  { "accuracy", string.format("bump metric: one bump, within %g px in that coordinate", cfg.tolerance) },
  { "R^2", "manifold metric on the layer-4 tap: linear regression from a 3D UMAP embedding (r2_x, r2_y)"
           .. " and from the top 10 principal components (r2_x_pca, r2_y_pca)" },
  { "statistic", string.format("step where acc_x and acc_y first reach %g (linear interpolation"
                               .. " between evaluations, from 0 at step 0); relative lag ="
                               .. " (step_y - step_x) / mean of the two", cfg.threshold) },
  { "placement check", "the same statistic on place_x, place_y: acc_x, acc_y among the samples"
                        .. " that hold one bump (from the evaluation where at least a quarter do),"
                        .. " so that learning to draw one bump, which both axes need, is set apart" },
  { "rule", string.format("factorized: relative lag beyond +-%g (one sd included) with the dense"
                          .. " axis first in both imbalanced sets; coupled: |lag| + sd within %g"
                          .. " in both; else undetermined", cfg.lag_tolerance, cfg.lag_tolerance) },
}, { header = { "setting", "value" } })
local data_rows = {}
for _, c in ipairs(conditions) do
  data_rows[#data_rows + 1] = { c.name, c.dx, c.dy, math.floor(cfg.size / c.dx + 1e-9) + 1,
                                math.floor(cfg.size / c.dy + 1e-9) + 1, c.runs[1].images }
end
doc:table(data_rows, { header = { "condition", "dx", "dy", "x values", "y values", "images" } })

doc:heading("Figures")
doc:figure("accuracy.svg", "Accuracy per axis over training, mean over seeds; the dotted line"
           .. " is the threshold.")
for _, c in ipairs(conditions) do
  doc:figure("curves_" .. c.name .. ".svg", c.name .. ": accuracy and layer-4 R^2 (UMAP) per"
             .. " axis, and the fraction of samples with one bump (grey).")
end
for _, c in ipairs(conditions) do
  local r = c.runs[1]
  if r.samples then
    doc:figure(TRAIN .. "/" .. r.name .. "/" .. r.samples, string.format("%s, seed %d, step %d: one sample per"
               .. " probe label (requested place marked).", c.name, r.seed, cfg.steps), 256)
  end
end

doc:heading("Numbers")
local rows = {}
for _, c in ipairs(conditions) do
  for i, r in ipairs(c.runs) do
    local l, a, p = r.curve:last(), c.acc.runs[i], c.place.runs[i]
    rows[#rows + 1] = { c.name, r.seed, fmt_step(a.step_x), fmt_step(a.step_y), a.lag or "-",
                        a.rel_lag or "-", p.lag or "-", l.acc_x, l.acc_y, l.accuracy,
                        l.r2_x, l.r2_y, l.r2_x_pca, l.r2_y_pca,
                        string.format("%.0f s", r.train_seconds) }
  end
end
doc:table(rows, { header = { "condition", "seed", "step_x", "step_y", "lag", "relative lag",
                             "placement lag", "final acc_x", "final acc_y", "final acc",
                             "r2_x", "r2_y", "r2_x_pca", "r2_y_pca", "train time" },
                  caption = string.format("Steps at which each axis first reaches %.0f%% accuracy;"
                            .. " final values at step %d.", 100 * cfg.threshold, cfg.steps) })
doc:paragraph("Every evaluation is a row of metrics.jsonl (condition, seed, step and the"
              .. " metrics above); train/<condition>_s<seed>/metrics.jsonl holds the loss.")
local agreement = decision == "coupled" and "agrees with it"
                  or decision == "factorized" and "disagrees with it"
                  or "can neither confirm nor refute it"
doc:paragraph(string.format("The paper reports coupled learning (PAPER.md, finding 2). This run"
                            .. " decides %s, so it %s.", decision, agreement))
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
