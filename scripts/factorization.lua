-- Does an architecture that carries x and y through separate pathways learn
-- x independently of the amount of y data? The vanilla unet against the
-- `factorized` denoiser (plugins/denoisers/factorized: a label-blind trunk
-- plus x's column profiles times y's row profiles).
--
--   bdrun scripts/factorization.lua [scale=quick|paper] [seeds=1,2,3] [steps=...] ...
--
-- Two training sets with the same x data (spacing dx = dense): y as dense
-- as x (y_dense, the baseline) and y ten times sparser (y_sparse, the
-- imbalanced data of imbalance.lua). Each model is trained on each, for each
-- seed: a sweep (scripts/lib/sweep.lua), so shard=r/n, MPI ranks and Slurm
-- arrays split it. Every `every` steps a probe grid (between the sparse y
-- values, so y must be interpolated there) is sampled and scored: x and y
-- accuracy (bump metric), R^2 of x and y in the layer-4 tap (manifold).
--
-- The statistic, per model and seed: step_x, the step at which acc_x first
-- reaches `threshold` (interpolated) with dense y and with sparse y, and
-- the relative change (sparse - dense) / their mean. The model learns x
-- independently of the y data when |mean| + sd over seeds is within
-- `tolerance`; sparse y slows it when mean - sd is beyond it (sped up: the
-- mirror). The answer is yes when that holds for `factorized` and not for
-- the unet; the accuracies reached and the y side are reported too.
--
-- Writes runs/factorization/: train/<model>_<data>_s<seed>/ (each training:
-- config, loss log, samples.png, done.json) and, once every training is
-- done, config.json, metrics.jsonl (one row per evaluation, then the
-- crossings, the changes and the answer), acc_x.svg, acc_y.svg,
-- curves_<model>_<data>.svg and report.html.
local experiment = require "experiment"
local report = require "report"
local sweep = require "sweep"

local cfg = experiment.config(sweep.options{
  name = "factorization",
  dense = 0.1,           -- lattice spacing of x, and of y in the baseline (pixels)
  sparse = 1.0,          -- of y in the imbalanced set
  sigma = 1.0,
  threshold = 0.6,       -- accuracy that counts as "learned"
  tolerance = 0.25,      -- |relative change of step_x| below this: "independent"
  within = 1.0,          -- pixels: a bump this close in a coordinate is right in it
  sampler = "ddpm",
  batch = 64,
  warmup = 100,
}, {
  -- 8x8: 2 models x 2 training sets x 3 seeds
  quick = { size = 8, width = 8, emb = 64, attention_blocks = "down1,down2,down3,up1,up2",
            f_width = 16, f_depth = 2, rank = 2, hidden = 64,
            steps = 700, lr = 2e-3, ema = 0.99, every = 50, sample_steps = 25,
            probe_step = 1.0, seeds = "1,2,3" },
  -- the paper's setting: 32x32, unet width 64 (23.8M parameters); the
  -- factorized trunk as wide; the training length is ours
  paper = { size = 32, width = 64, emb = 256, attention_blocks = "down1,down2,down3,up1,up2,up3",
            f_width = 64, f_depth = 4, rank = 2, hidden = 256,
            steps = 40000, lr = 3e-4, ema = 0.999, every = 1000, sample_steps = 100,
            probe_step = 2.0, seeds = "1,2,3" },
})
local seeds = experiment.seeds(cfg.seeds)

local models = {
  unet = { width = cfg.width, emb = cfg.emb, attention_blocks = cfg.attention_blocks },
  factorized = { width = cfg.f_width, depth = cfg.f_depth, rank = cfg.rank,
                 hidden = cfg.hidden, emb = cfg.emb },
}
local model_order = { "unet", "factorized" }
local data_order = {
  { data = "y_dense", dx = cfg.dense, dy = cfg.dense },
  { data = "y_sparse", dx = cfg.dense, dy = cfg.sparse },
}
local conditions = {}
for _, m in ipairs(model_order) do
  for _, d in ipairs(data_order) do
    conditions[#conditions + 1] = { name = m .. "_" .. d.data, model = m, data = d.data,
                                    dx = d.dx, dy = d.dy }
  end
end

local evaluate, probe = experiment.evaluator{
  size = cfg.size, probe_step = cfg.probe_step, sampler = cfg.sampler,
  sample_steps = cfg.sample_steps, tolerance = cfg.within }
local started = bd.time()

-- ---- one training -------------------------------------------------------------------

-- Train condition c with one seed in the sweep's run r; returns its curve
-- (steps and evaluation rows), times and parameter count.
local function train(r, c, seed)
  local mcfg = { size = cfg.size, seed = seed }
  for k, v in pairs(models[c.model]) do mcfg[k] = v end
  local model = bd.model(c.model, mcfg)
  local data = bd.data.bumps{ size = cfg.size, sigma = cfg.sigma, dx = c.dx, dy = c.dy }
  local curve, last, eval_seconds = experiment.curve(), nil, 0
  local result = bd.train(model, data, {
    steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, warmup = cfg.warmup, ema = cfg.ema,
    seed = seed, every = cfg.every, run = r,
    on_eval = function(e)
      local t0 = bd.time()
      local row, samples = evaluate(model)
      eval_seconds = eval_seconds + bd.time() - t0
      curve:add(e.step, row)
      last = samples
      bd.log.info("%s seed %d step %d: acc_x %.2f acc_y %.2f  r2_x %.2f r2_y %.2f", c.name,
                  seed, e.step, row.acc_x, row.acc_y, row.r2_x, row.r2_y)
    end,
  })
  if last then
    experiment.save_samples(r:path("samples.png"), last.images, probe, math.max(1, 64 // cfg.size))
  end
  return { steps = curve.steps, rows = curve.rows, images = data.n,
           params = model:num_parameters(), train_seconds = result.seconds,
           eval_seconds = eval_seconds }
end

local marks = sweep.run{ name = cfg.name, dir = "runs/" .. cfg.name .. "/train",
                         conditions = conditions, seeds = seeds, config = cfg, train = train }
if not marks then return end -- another share collects

-- ---- the collected trainings ---------------------------------------------------------

local by_name = {}
for _, c in ipairs(conditions) do
  c.runs = {}
  by_name[c.name] = c
end
local total_train = 0
for _, m in ipairs(marks) do
  local c = by_name[m.condition.name]
  c.runs[#c.runs + 1] = { seed = m.seed, curve = experiment.curve(m.results), results = m.results,
                          dir = m.name }
  total_train = total_train + m.seconds
end

local run = bd.run(cfg.name)
local saved = { conditions = {} }
for k, v in pairs(cfg) do saved[k] = v end
for i, c in ipairs(conditions) do
  saved.conditions[i] = { name = c.name, model = c.model, dx = c.dx, dy = c.dy }
end
assert(run:save_config(saved))
for _, c in ipairs(conditions) do
  for _, r in ipairs(c.runs) do
    for i, step in ipairs(r.curve.steps) do
      local line = { condition = c.name, model = c.model, data = c.data, seed = r.seed,
                     step = step }
      for k, v in pairs(r.curve.rows[i]) do line[k] = v end
      assert(run:log(line))
    end
  end
end

-- ---- the statistic ----------------------------------------------------------------------

-- Per model: the paired change of the step where `key` reaches the
-- threshold, from dense to sparse y, seed by seed. A curve of the pair
-- (dense, sparse) goes through experiment.axis_crossings, so an axis never
-- reached counts as the end of training (a bound) as everywhere else.
local function change(model, key)
  local dense, sparse = by_name[model .. "_y_dense"], by_name[model .. "_y_sparse"]
  local out = { runs = {} }
  for i, rd in ipairs(dense.runs) do
    local rs, pair = sparse.runs[i], experiment.curve()
    for k, step in ipairs(rd.curve.steps) do
      pair:add(step, { dense = rd.curve.rows[k][key], sparse = rs.curve.rows[k][key] })
    end
    out.runs[i] = experiment.axis_crossings(pair, cfg.threshold, cfg.steps, "dense", "sparse")
  end
  local verdict
  verdict, out.lag, out.rel = experiment.lag_verdict(out.runs, nil, cfg.tolerance)
  out.verdict = ({ together = "independent", ["x first"] = "slower with sparse y",
                   ["y first"] = "faster with sparse y" })[verdict] or verdict
  return out
end

local stat = {}
for _, m in ipairs(model_order) do
  stat[m] = { x = change(m, "acc_x"), y = change(m, "acc_y") }
  for i, cr in ipairs(stat[m].x.runs) do
    assert(run:log{ event = "crossings", model = m, seed = by_name[m .. "_y_dense"].runs[i].seed,
                    step_x_dense = cr.step_x, step_x_sparse = cr.step_y, change = cr.lag,
                    rel_change = cr.rel_lag, censored = cr.censored,
                    step_y_dense = stat[m].y.runs[i].step_x,
                    step_y_sparse = stat[m].y.runs[i].step_y })
  end
end

local fx, un = stat.factorized.x.verdict, stat.unet.x.verdict
local answer_word, meaning
if fx == "independent" and un ~= "independent" and un ~= "not reached" then
  answer_word, meaning = "yes", "factorized learns x independently of the y data, the unet does not"
elseif fx == "independent" and un == "independent" then
  answer_word, meaning = "no difference", "both learn x independently of the y data"
elseif fx == "not reached" or un == "not reached" or fx == "unclear" then
  answer_word, meaning = "undetermined", "a threshold not reached, or a change not clear of the tolerance by one sd"
else
  answer_word, meaning = "no", "factorized's x learning still moves with the y data"
end

-- ---- numbers in words --------------------------------------------------------------------

local function final_mean(c, key)
  local xs = {}
  for _, r in ipairs(c.runs) do xs[#xs + 1] = r.curve:last()[key] end
  return experiment.stats(xs)
end

local function step_stats(runs, field)
  local xs = {}
  for _, cr in ipairs(runs) do xs[#xs + 1] = cr[field] end
  return experiment.stats(xs)
end

-- One model's line for axis `axis` ("x" or "y").
local function change_words(m, axis)
  local s = stat[m][axis]
  local d, sp = step_stats(s.runs, "step_x"), step_stats(s.runs, "step_y")
  local fd = final_mean(by_name[m .. "_y_dense"], "acc_" .. axis)
  local fs = final_mean(by_name[m .. "_y_sparse"], "acc_" .. axis)
  local reached = d.n + sp.n == 0 and " (no seed reached it)"
                  or (d.n < #s.runs or sp.n < #s.runs) and " (some seeds never did: bounds)" or ""
  local function steps(st) return st.n == 0 and "never" or experiment.describe(st, "%.0f") end
  local rel = s.rel.n == 0 and "" or ", relative change " .. experiment.describe(s.rel, "%+.2f")
  return string.format("%s: step_%s %s with dense y, %s with sparse y%s%s; final acc_%s"
                       .. " %.2f / %.2f", s.verdict, axis, steps(d), steps(sp), rel, reached,
                       axis, fd.mean, fs.mean)
end

local total = bd.time() - started
local lines = { string.format("answer: %s: %s (does the factorized bias make learning x"
                              .. " independent of the y data? threshold %.0f%% accuracy, tolerance"
                              .. " %.2f, %d seed(s))", answer_word, meaning, 100 * cfg.threshold,
                              cfg.tolerance, #seeds) }
for _, m in ipairs(model_order) do
  lines[#lines + 1] = string.format("  %-10s x %s", m, change_words(m, "x"))
  lines[#lines + 1] = string.format("  %-10s y %s", "", change_words(m, "y"))
end
-- how much sooner (or later) the bias learns x, whatever the y data: the
-- ratio of the two models' steps, paired by seed where both reached it
for _, d in ipairs(data_order) do
  local field = d.data == "y_dense" and "step_x" or "step_y"
  local f, u, ratios = stat.factorized.x.runs, stat.unet.x.runs, {}
  for i = 1, #f do
    if f[i][field] and u[i][field] then ratios[#ratios + 1] = f[i][field] / u[i][field] end
  end
  if #ratios > 0 then
    lines[#lines + 1] = string.format("  with %s, factorized reaches x at %s of the unet's step"
                                      .. " (paired by seed)", d.data:gsub("_", " "),
                                      experiment.describe(experiment.stats(ratios), "%.2f"))
  end
end
lines[#lines + 1] = string.format("  %d trainings of %d steps (%s, evaluations included);"
                                  .. " %s in this process (scale %s)", #marks, cfg.steps,
                                  experiment.duration(total_train), experiment.duration(total),
                                  cfg.scale)
local answer = table.concat(lines, "\n")
assert(run:log{ event = "answer", answer = answer_word, seconds = total,
                unet = { x = stat.unet.x.verdict, y = stat.unet.y.verdict,
                         rel_change_x = stat.unet.x.rel.mean },
                factorized = { x = stat.factorized.x.verdict, y = stat.factorized.y.verdict,
                               rel_change_x = stat.factorized.x.rel.mean } })

-- ---- figures --------------------------------------------------------------------------------

local function curves_of(c)
  local list = {}
  for _, r in ipairs(c.runs) do list[#list + 1] = r.curve end
  return list
end

for _, key in ipairs{ "acc_x", "acc_y" } do
  local series = {}
  for i, m in ipairs(model_order) do
    for _, d in ipairs(data_order) do
      local steps, ys = experiment.mean_curve(curves_of(by_name[m .. "_" .. d.data]), key)
      series[#series + 1] = { name = m .. ", " .. d.data, x = steps, y = ys,
                              color = report.colors[i], dash = d.data == "y_sparse" }
    end
  end
  assert(report.save(run:path(key .. ".svg"), report.lines{
    title = string.format("%s: dense y (solid) against sparse y (dashed), mean of %d seed(s)",
                          key, #seeds),
    xlabel = "training step", ylabel = key, ylim = { 0, 1 }, xlim = { 0, cfg.steps },
    series = series, hlines = { { y = cfg.threshold, label = "threshold" } } }))
end
for _, c in ipairs(conditions) do
  experiment.save_curves(run:path("curves_" .. c.name .. ".svg"),
                         string.format("%s (dx %.3g, dy %.3g), mean of %d seed(s)", c.name, c.dx,
                                       c.dy, #seeds), curves_of(c), cfg.steps, cfg.threshold)
end

-- ---- the report --------------------------------------------------------------------------------

local doc = report.new("Factorization: does a factorized architecture learn x independently of"
                       .. " the y data?")
doc:question(string.format("With the same x data (spacing %g px), is the step at which x is"
  .. " learned the same whether y is as dense as x or %g times sparser? For the vanilla unet"
  .. " (which mixes x, y and the image in every block) and for the factorized denoiser (x only"
  .. " through column profiles, y only through row profiles, multiplied).",
  cfg.dense, cfg.sparse / cfg.dense))
doc:heading("Answer")
doc:answer(answer)
doc:heading("Setup")
local params = {}
for _, m in ipairs(model_order) do params[m] = by_name[m .. "_y_dense"].runs[1].results.params end
doc:table({
  { "scale", cfg.scale }, { "image size", cfg.size }, { "bump sigma (px)", cfg.sigma },
  { "unet", string.format("width %d, emb %d, attention %s: %d parameters", cfg.width, cfg.emb,
                          cfg.attention_blocks, params.unet) },
  { "factorized", string.format("trunk width %d, depth %d; rank %d, pathway hidden %d, emb %d:"
                                .. " %d parameters", cfg.f_width, cfg.f_depth, cfg.rank,
                                cfg.hidden, cfg.emb, params.factorized) },
  { "training", string.format("%d steps, batch %d, AdamW lr %g, warm-up %d, EMA %g", cfg.steps,
                              cfg.batch, cfg.lr, cfg.warmup, cfg.ema) },
  { "seeds", cfg.seeds },
  { "evaluation", string.format("every %d steps: %d probe labels (grid step %g px, between the"
                                .. " sparse y values), %s %d steps, EMA weights, same noise each"
                                .. " time", cfg.every, probe.n, cfg.probe_step, cfg.sampler,
                                cfg.sample_steps) },
  { "accuracy", string.format("bump metric: one bump, within %g px in that coordinate",
                              cfg.within) },
  { "R^2", "manifold metric on the layer-4 tap (unet: the last down block; factorized: its x and"
           .. " y profiles), linear regression from a 3D UMAP embedding" },
  { "statistic", string.format("step_x: where acc_x first reaches %g (interpolated; the end of"
                               .. " training when never); relative change = (sparse - dense) /"
                               .. " mean of the two, paired by seed", cfg.threshold) },
  { "rule", string.format("independent: |mean| + sd <= %g; slower (faster) with sparse y: mean"
                          .. " - sd > %g (mean + sd < -%g); answer yes when factorized is"
                          .. " independent and the unet is not", cfg.tolerance, cfg.tolerance,
                          cfg.tolerance) },
}, { header = { "setting", "value" } })
local data_rows = {}
for _, d in ipairs(data_order) do
  local c = by_name["unet_" .. d.data]
  data_rows[#data_rows + 1] = { d.data, d.dx, d.dy, math.floor(cfg.size / d.dx + 1e-9) + 1,
                                math.floor(cfg.size / d.dy + 1e-9) + 1, c.runs[1].results.images }
end
doc:table(data_rows, { header = { "training set", "dx", "dy", "x values", "y values", "images" } })

doc:heading("Figures")
doc:figure("acc_x.svg", "x accuracy over training, mean over seeds: each model with dense y"
           .. " (solid) and sparse y (dashed). Independent of the y data: the two lines of a model"
           .. " coincide.")
doc:figure("acc_y.svg", "y accuracy, the same way.")
for _, c in ipairs(conditions) do
  doc:figure("curves_" .. c.name .. ".svg", c.name .. ": accuracy and layer-4 R^2 (UMAP) per"
             .. " axis, and the fraction of samples with one bump (grey).")
end
for _, c in ipairs(conditions) do
  local r = c.runs[1]
  doc:figure("train/" .. r.dir .. "/samples.png", string.format("%s, seed %d, step %d: one sample"
             .. " per probe label (requested place marked).", c.name, r.seed, cfg.steps), 256)
end

doc:heading("Numbers")
local rows = {}
for _, m in ipairs(model_order) do
  for i, cr in ipairs(stat[m].x.runs) do
    local dense, sparse = by_name[m .. "_y_dense"].runs[i], by_name[m .. "_y_sparse"].runs[i]
    local ld, ls, cy = dense.curve:last(), sparse.curve:last(), stat[m].y.runs[i]
    rows[#rows + 1] = { m, dense.seed, cr.step_x or "-", cr.step_y or "-", cr.rel_lag or "-",
                        cy.step_x or "-", cy.step_y or "-", ld.acc_x, ls.acc_x, ld.acc_y, ls.acc_y,
                        ls.r2_x, ls.r2_y }
  end
end
doc:table(rows, { header = { "model", "seed", "step_x dense y", "step_x sparse y",
                             "relative change", "step_y dense y", "step_y sparse y",
                             "final acc_x dense", "final acc_x sparse", "final acc_y dense",
                             "final acc_y sparse", "r2_x sparse", "r2_y sparse" },
                  caption = string.format("Steps at which accuracy first reaches %.0f%% (- :"
                            .. " never); final values at step %d.", 100 * cfg.threshold,
                            cfg.steps) })
doc:paragraph("Every evaluation is a row of metrics.jsonl (condition, model, data, seed, step and"
              .. " the metrics above); train/<condition>_s<seed>/ holds each training's loss log"
              .. " and done.json, train/summary.csv one row per training.")
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
