-- Does an architecture that carries x and y through separate pathways learn
-- x independently of the amount of y data? The vanilla unet against the
-- `factorized` denoiser (plugins/denoisers/factorized: a label-blind trunk
-- plus x's column profiles times y's row profiles).
--
--   bdrun scripts/factorization.lua [scale=quick|standard|paper] [seeds=1,2,3]
--                                   [steps=...] [shard=r/n] [collect=true] ...
--
-- Training sets, all with the same number of images (the lattice of the
-- sparse set; the others keep that many of their sites, chosen at random by
-- lambda with a data seed from the training seed):
--   y_dense   x and y spacing `dense`, a fraction lambda of the sites kept
--   y_sparse  x spacing `dense`, y spacing `sparse` (the imbalanced data)
--   null      as y_dense with another choice of sites: the null, what the
--             statistic reads when the y data do not change
--   x_sparse  x spacing `control_dx`, y spacing `dense`: the positive
--             control, built so that x is harder to learn (fewer images
--             when the lattice is that coarse)
-- Each model is trained on each, for each seed: a sweep
-- (scripts/lib/sweep.lua), so shard=r/n, MPI ranks and Slurm arrays split it.
--
-- Probes. Every `every` steps one sample per probe label: x and y at
-- (k + 1/2) sparse (every probe_every-th k), midway between the sparse y
-- values. Accuracy per axis (bump metric: one bump, that coordinate within
-- `within` px) with within < sparse / 2, so a sample that snaps to the
-- nearest trained y is wrong: with y_sparse y must be interpolated, with
-- y_dense it is a trained value; x is a trained value in all but x_sparse,
-- where it lies control_dx / 2 from every trained x. The evaluation noise
-- is keyed by the training seed.
--
-- The statistic, per model and seed: step_x, the step at which acc_x first
-- reaches the model's level (interpolated; the end of training when never,
-- a bound): `fraction` of the final acc_x of its y_dense runs (mean over
-- seeds), so the level comes from the run, not from a hand-picked accuracy
-- the model may never reach at this tolerance (none when that final
-- accuracy is under `learned`: not learned); and the relative change of step_x from y_dense to another set,
-- (other - y_dense) / their mean. Per model, the change with y_sparse is
-- compared with the change with null by a Welch t interval (95%): slower
-- with sparse y when it lies above 0, faster below, independent when it
-- holds 0 (to within its half-width, printed). The positive control must
-- read slower (x_sparse against null) for each model; if it does not, the
-- experiment cannot decide and gives no answer. The answer is yes when
-- factorized is independent and the unet is not.
--
-- Writes runs/factorization/: train/<model>_<data>_s<seed>/ (each training:
-- config, loss log, samples.png, done.json) and, once every training is
-- done, config.json, metrics.jsonl (one row per evaluation, then the
-- crossings, the changes and the answer), acc_x.svg, acc_y.svg,
-- curves_<model>_<data>.svg and report.html.
local experiment = require "experiment"
local report = require "report"
local sweep = require "sweep"
local stats = require "stats"

local cfg = experiment.config(sweep.options{
  name = "factorization",
  dense = 0.1,           -- lattice spacing of x, and of y in y_dense (pixels)
  sparse = 1.0,          -- of y in y_sparse
  control_dx = 2.0,      -- of x in the positive control
  sigma = 1.0,
  fraction = 0.5,        -- of y_dense's final accuracy: the level whose step is read
  learned = 0.2,         -- y_dense's final accuracy under which nothing is read
  within = 0.3,          -- px per axis; below sparse / 2 (see the header), so a sample
                         -- that snaps to a trained y (0.5 px off) is wrong
  probe_every = 1,       -- probe every k-th midpoint between sparse values
  sampler = "ddpm",
  batch = 64,
  warmup = 100,
}, {
  -- 8x8: 2 models x 4 training sets x 3 seeds. No representation is read:
  -- layer 4 is 1x1 at 8x8
  quick = { size = 8, width = 8, emb = 64, attention_blocks = "down1,down2,down3,up1,up2",
            f_width = 16, f_depth = 2, rank = 2, hidden = 64,
            steps = 1000, lr = 2e-3, ema = 0.99, every = 50, sample_steps = 25, seeds = "1,2,3" },
  -- 32x32 (the paper's image size) with a CPU-sized width
  standard = { size = 32, width = 16, emb = 128, attention_blocks = "down3,up1",
               f_width = 32, f_depth = 3, rank = 2, hidden = 128, steps = 6000, lr = 1e-3,
               ema = 0.995, every = 500, sample_steps = 50, probe_every = 2, seeds = "1,2,3" },
  -- the paper's setting: 32x32, unet width 64 (23.8M parameters); the
  -- factorized trunk as wide; the training length is ours
  paper = { size = 32, width = 64, emb = 256, attention_blocks = "down1,down2,down3,up1,up2,up3",
            f_width = 64, f_depth = 4, rank = 2, hidden = 256,
            steps = 40000, lr = 3e-4, ema = 0.999, every = 1000, sample_steps = 100,
            probe_every = 2, seeds = "1,2,3" },
})
local seeds = experiment.seeds(cfg.seeds)
if not (cfg.within < cfg.sparse / 2 and cfg.within < cfg.control_dx / 2) then
  error(string.format("within = %g: expected less than half of sparse (%g) and of control_dx"
                      .. " (%g), or a probe midway between trained values cannot tell"
                      .. " interpolation from snapping", cfg.within, cfg.sparse,
                      cfg.control_dx), 0)
end

local models = {
  unet = { width = cfg.width, emb = cfg.emb, attention_blocks = cfg.attention_blocks },
  factorized = { width = cfg.f_width, depth = cfg.f_depth, rank = cfg.rank,
                 hidden = cfg.hidden, emb = cfg.emb },
}
local model_order = { "unet", "factorized" }

-- Lattice values over [0, size] with spacing d (as bd/data.h).
local function count(d) return math.floor(cfg.size / d + 1e-9) + 1 end
local images = count(cfg.dense) * count(cfg.sparse) -- of y_sparse: every set keeps as many
local function keep(dx, dy) return math.min(1, images / (count(dx) * count(dy))) end
local data_order = {
  { data = "y_dense", dx = cfg.dense, dy = cfg.dense, data_seed = 0,
    what = "y as dense as x, sites subsampled" },
  { data = "y_sparse", dx = cfg.dense, dy = cfg.sparse, data_seed = 0,
    what = "y sparse: the imbalanced data" },
  { data = "null", dx = cfg.dense, dy = cfg.dense, data_seed = 1000,
    what = "as y_dense, other sites: the null" },
  { data = "x_sparse", dx = cfg.control_dx, dy = cfg.dense, data_seed = 0,
    what = "x coarse: the positive control" },
}
local conditions = {}
for _, m in ipairs(model_order) do
  for _, d in ipairs(data_order) do
    conditions[#conditions + 1] = { name = m .. "_" .. d.data, model = m, data = d.data,
                                    dx = d.dx, dy = d.dy, lambda = keep(d.dx, d.dy),
                                    data_seed = d.data_seed }
  end
end

-- The probes: midway between sparse values on both axes.
local probe_labels, mids = {}, {}
for k = 0, math.floor(cfg.size / cfg.sparse + 1e-9) - 1, cfg.probe_every do
  mids[#mids + 1] = (k + 0.5) * cfg.sparse
end
for _, y in ipairs(mids) do
  for _, x in ipairs(mids) do probe_labels[#probe_labels + 1] = { x, y } end
end
local started = bd.time()

-- ---- one training -------------------------------------------------------------------

-- Train condition c with one seed in the sweep's run r; returns its curve
-- (steps and evaluation rows), times and parameter count.
local function train(r, c, seed)
  local mcfg = { size = cfg.size, seed = seed }
  for k, v in pairs(models[c.model]) do mcfg[k] = v end
  local model = bd.model(c.model, mcfg)
  local data = bd.data.bumps{ size = cfg.size, sigma = cfg.sigma, dx = c.dx, dy = c.dy,
                              lambda = c.lambda, seed = seed + c.data_seed }
  local evaluate, probe = experiment.evaluator{
    size = cfg.size, labels = probe_labels, sampler = cfg.sampler,
    sample_steps = cfg.sample_steps, tolerance = cfg.within, axis_tolerance = cfg.within,
    lattice = { dx = c.dx, dy = c.dy }, seed = 1000 + seed, manifold = false }
  local t = experiment.train_one{
    model = model, data = data,
    train = { steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, warmup = cfg.warmup,
              ema = cfg.ema, seed = seed, every = cfg.every, run = r },
    evaluate = evaluate,
    on_row = function(step, row)
      bd.log.info("%s seed %d step %d: acc_x %.2f acc_y %.2f (one bump %.2f; y nearer a"
                  .. " trained value %.2f)", c.name, seed, step, row.acc_x, row.acc_y,
                  row.single, row.snap_y)
    end,
    samples = { path = r:path("samples.png"), probe = probe, scale = math.max(1, 64 // cfg.size) },
  }
  return { steps = t.curve.steps, rows = t.curve.rows, images = data.n, params = t.params,
           train_seconds = t.train_seconds, eval_seconds = t.eval_seconds }
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

-- the report's run is made again from the sweep's marks each time: it starts over
local run = bd.run(cfg.name, { overwrite = true })
local saved = { conditions = {} }
for k, v in pairs(cfg) do saved[k] = v end
for i, c in ipairs(conditions) do
  saved.conditions[i] = { name = c.name, model = c.model, dx = c.dx, dy = c.dy,
                          lambda = c.lambda }
end
assert(run:save_config(saved))
experiment.log_curves(run, conditions, { "model", "data" })

-- ---- the statistic ----------------------------------------------------------------------

-- The level of `key` for a model: fraction x the mean over seeds of its
-- y_dense runs' final value; NaN (nothing is read) when that is under `learned`.
local function level_of(model, key)
  local finals = {}
  for _, r in ipairs(by_name[model .. "_y_dense"].runs) do finals[#finals + 1] = r.curve:last()[key] end
  local final = stats.summary(finals).mean
  return final >= cfg.learned and cfg.fraction * final or 0 / 0, final
end

-- Per model and seed: step_x (or the step of `key`) with y_dense and with
-- the set `other`, through experiment.axis_crossings of the pair curve, so
-- a set that never reaches the level counts as the end of training (a
-- bound) as everywhere else; its lag is the change, rel_lag the relative one.
local function changes(model, other, key)
  local base, alt = by_name[model .. "_y_dense"], by_name[model .. "_" .. other]
  local out, rels = {}, {}
  local level, final = level_of(model, key)
  for i, rd in ipairs(base.runs) do
    local ro, pair = alt.runs[i], experiment.curve()
    for k, step in ipairs(rd.curve.steps) do
      pair:add(step, { base = rd.curve.rows[k][key], other = ro.curve.rows[k][key] })
    end
    out[i] = level == level and experiment.axis_crossings(pair, level, cfg.steps, "base", "other")
             or { censored = true }
    rels[i] = out[i].rel_lag
  end
  return { runs = out, rels = rels, rel = stats.t_interval(rels), level = level, final = final }
end

-- The verdict of a Welch interval on (change with a set) - (change with null).
local function read_change(w)
  if w.lo ~= w.lo then return "cannot tell" end
  if w.lo > 0 then return "slower" end
  if w.hi < 0 then return "faster" end
  return "independent"
end

local stat = {}
for _, m in ipairs(model_order) do
  local st = { x = changes(m, "y_sparse", "acc_x"), y = changes(m, "y_sparse", "acc_y"),
               null = changes(m, "null", "acc_x"), control = changes(m, "x_sparse", "acc_x") }
  st.effect = stats.welch(st.x.rels, st.null.rels)
  st.effect_y = stats.welch(st.y.rels, changes(m, "null", "acc_y").rels)
  st.positive = stats.welch(st.control.rels, st.null.rels)
  st.verdict, st.verdict_y = read_change(st.effect), read_change(st.effect_y)
  st.control_verdict = read_change(st.positive)
  stat[m] = st
  for i, cr in ipairs(st.x.runs) do
    assert(run:log{ event = "crossings", model = m, seed = by_name[m .. "_y_dense"].runs[i].seed,
                    step_x_dense = cr.step_x, step_x_sparse = cr.step_y, change = cr.lag,
                    rel_change = cr.rel_lag, censored = cr.censored,
                    rel_change_null = st.null.runs[i].rel_lag,
                    rel_change_control = st.control.runs[i].rel_lag,
                    step_y_dense = st.y.runs[i].step_x, step_y_sparse = st.y.runs[i].step_y })
  end
end

local controls_ok = stat.unet.control_verdict == "slower"
                    and stat.factorized.control_verdict == "slower"
local fx, un = stat.factorized.verdict, stat.unet.verdict
local answer_word, meaning
if not controls_ok then
  answer_word, meaning = "cannot decide", "the positive control did not read slower for every"
                         .. " model, so the statistic is not shown able to see a change"
elseif fx == "independent" and (un == "slower" or un == "faster") then
  answer_word, meaning = "yes", "factorized learns x independently of the y data, the unet does not"
elseif fx == "independent" and un == "independent" then
  answer_word, meaning = "no difference", "both learn x independently of the y data"
elseif fx == "cannot tell" or un == "cannot tell" then
  answer_word, meaning = "undetermined", "a change without an interval (too few seeds)"
else
  answer_word, meaning = "no", "factorized's x learning still moves with the y data"
end

-- ---- numbers in words --------------------------------------------------------------------

local function final_mean(c, key)
  local xs = {}
  for _, r in ipairs(c.runs) do xs[#xs + 1] = r.curve:last()[key] end
  return stats.summary(xs)
end

local function step_stats(runs, field)
  local xs = {}
  for _, cr in ipairs(runs) do xs[#xs + 1] = cr[field] end
  return stats.t_interval(xs)
end

local function iv(w, fmt)
  fmt = fmt or "%+.2f"
  if w.n == 0 or w.mean ~= w.mean then return "-" end
  if w.lo ~= w.lo then return string.format(fmt, w.mean) end
  return string.format(fmt .. " [" .. fmt .. ", " .. fmt .. "]", w.mean, w.lo, w.hi)
end

-- One model's line for axis `axis` ("x" or "y").
local function change_words(m, axis)
  local s = stat[m][axis]
  local d, sp = step_stats(s.runs, "step_x"), step_stats(s.runs, "step_y")
  local fd = final_mean(by_name[m .. "_y_dense"], "acc_" .. axis)
  local fs = final_mean(by_name[m .. "_y_sparse"], "acc_" .. axis)
  local censored = 0
  for _, cr in ipairs(s.runs) do if cr.censored then censored = censored + 1 end end
  local function steps(st) return st.n == 0 and "never" or iv(st, "%.0f") end
  return string.format("step_%s %s with y_dense, %s with y_sparse%s; relative change %s;"
                       .. " final acc_%s %.2f / %.2f", axis, steps(d), steps(sp),
                       censored > 0 and string.format(" (%d seed(s) never reached it: bounds)",
                                                      censored) or "",
                       iv(s.rel), axis, fd.mean, fs.mean)
end

local total = bd.time() - started
local function level_words(m)
  local st = stat[m].x
  if st.level ~= st.level then
    return string.format("%s none (y_dense reached acc_x %.2f < %g: not learned)", m, st.final,
                         cfg.learned)
  end
  return string.format("%s %.2f (of %.2f)", m, st.level, st.final)
end
local lines = { string.format("answer: %s: %s (does the factorized bias make learning x"
                              .. " independent of the y data? accuracy within %g px per axis,"
                              .. " probes midway between sparse values, %d seed(s))", answer_word,
                              meaning, cfg.within, #seeds),
                string.format("  level of acc_x whose step is read: %g x y_dense's final acc_x:"
                              .. " %s, %s", cfg.fraction, level_words("unet"),
                              level_words("factorized")),
                "  rule: Welch t 95% interval of (relative change of step_x with y_sparse) -"
                .. " (with null, another subsample of y_dense): above 0 slower, below 0"
                .. " faster, holding 0 independent; intervals t 95% over seeds" }
for _, m in ipairs(model_order) do
  local st = stat[m]
  lines[#lines + 1] = string.format("  %-10s x: %s", m, change_words(m, "x"))
  lines[#lines + 1] = string.format("  %-10s    null (other y_dense sites): relative change %s;"
                                    .. " y_sparse - null %s: %s", "", iv(st.null.rel),
                                    iv(st.effect), st.verdict)
  lines[#lines + 1] = string.format("  %-10s    positive control (x spacing %g): relative change"
                                    .. " %s; - null %s: %s (%s)", "", cfg.control_dx,
                                    iv(st.control.rel), iv(st.positive), st.control_verdict,
                                    st.control_verdict == "slower" and "as designed"
                                    or "NOT as designed")
  lines[#lines + 1] = string.format("  %-10s y: %s; y_sparse - null %s: %s", "",
                                    change_words(m, "y"), iv(st.effect_y), st.verdict_y)
end
-- how much sooner (or later) the bias learns x, whatever the y data: the
-- ratio of the two models' steps, paired by seed where both reached it
for _, d in ipairs{ "y_dense", "y_sparse" } do
  local field = d == "y_dense" and "step_x" or "step_y"
  local f, u, ratios = stat.factorized.x.runs, stat.unet.x.runs, {}
  for i = 1, #f do
    if f[i][field] and u[i][field] then ratios[#ratios + 1] = f[i][field] / u[i][field] end
  end
  if #ratios > 0 then
    lines[#lines + 1] = string.format("  with %s, factorized reaches x at %s of the unet's step"
                                      .. " (paired by seed)", d,
                                      iv(stats.t_interval(ratios), "%.2f"))
  end
end
lines[#lines + 1] = string.format("  %d trainings of %d steps (%s, evaluations included);"
                                  .. " %s in this process (scale %s)", #marks, cfg.steps,
                                  experiment.duration(total_train), experiment.duration(total),
                                  cfg.scale)
lines[#lines + 1] = string.format("  this scale (%dx%d) can say whether the step at which x is"
                                  .. " placed within %g px moves with the y data; it reads no"
                                  .. " representation%s and cannot say what the paper's 32x32 net"
                                  .. " does", cfg.size, cfg.size, cfg.within,
                                  cfg.size <= 8 and " (layer 4 is 1x1 here)" or "")
local answer = table.concat(lines, "\n")
assert(run:log{ event = "answer", answer = answer_word, seconds = total, controls = controls_ok,
                unet = { x = stat.unet.verdict, y = stat.unet.verdict_y,
                         control = stat.unet.control_verdict, rel_change_x = stat.unet.x.rel.mean,
                         minus_null = stat.unet.effect.mean },
                factorized = { x = stat.factorized.verdict, y = stat.factorized.verdict_y,
                               control = stat.factorized.control_verdict,
                               rel_change_x = stat.factorized.x.rel.mean,
                               minus_null = stat.factorized.effect.mean } })

-- ---- figures --------------------------------------------------------------------------------

local function curves_of(c)
  local list = {}
  for _, r in ipairs(c.runs) do list[#list + 1] = r.curve end
  return list
end

local dashes = { y_dense = false, y_sparse = true, null = false, x_sparse = true }
for _, key in ipairs{ "acc_x", "acc_y" } do
  local series = {}
  for i, m in ipairs(model_order) do
    for j, d in ipairs(data_order) do
      local steps, ys = experiment.mean_curve(curves_of(by_name[m .. "_" .. d.data]), key)
      series[#series + 1] = { name = m .. ", " .. d.data, x = steps, y = ys,
                              color = report.colors[2 * (i - 1) + (j > 2 and 2 or 1)],
                              dash = dashes[d.data] }
    end
  end
  assert(report.save(run:path(key .. ".svg"), report.lines{
    title = string.format("%s: y_dense (solid) against y_sparse (dashed); null and x_sparse"
                          .. " lighter; mean of %d seed(s)", key, #seeds),
    xlabel = "training step", ylabel = key, ylim = { 0, 1 }, xlim = { 0, cfg.steps },
    series = series }))
end
for _, c in ipairs(conditions) do
  experiment.save_curves(run:path("curves_" .. c.name .. ".svg"),
                         string.format("%s (dx %.3g, dy %.3g), mean of %d seed(s)", c.name, c.dx,
                                       c.dy, #seeds), curves_of(c), cfg.steps,
                         cfg.fraction * stat[c.model].x.final) -- the level, when learned
end

-- ---- the report --------------------------------------------------------------------------------

local doc = report.new("Factorization: does a factorized architecture learn x independently of"
                       .. " the y data?")
doc:question(string.format("With the same x data (spacing %g px) and the same number of images,"
  .. " is the step at which x is learned the same whether y is as dense as x or %g times"
  .. " sparser? For the vanilla unet (which mixes x, y and the image in every block) and for the"
  .. " factorized denoiser (x only through column profiles, y only through row profiles,"
  .. " multiplied).", cfg.dense, cfg.sparse / cfg.dense))
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
  { "seeds", cfg.seeds .. " (data sites and evaluation noise keyed by the training seed)" },
  { "evaluation", string.format("every %d steps: %d probe labels, x and y at (k + 1/2) x %g px"
                                .. " (midway between the sparse values), %s %d steps, EMA"
                                .. " weights", cfg.every, #probe_labels, cfg.sparse, cfg.sampler,
                                cfg.sample_steps) },
  { "accuracy", string.format("bump metric: one bump, within %g px in that coordinate (under"
                              .. " half the sparse spacing, so snapping to a trained value is"
                              .. " wrong)", cfg.within) },
  { "statistic", string.format("step_x: where acc_x first reaches %g x the model's final acc_x"
                               .. " with y_dense (interpolated; the end of training when never);"
                               .. " relative change = (other - y_dense) / mean of the two, paired"
                               .. " by seed", cfg.fraction) },
  { "rule", "Welch t 95% interval of (change with y_sparse) - (change with null): above 0"
            .. " slower, below faster, holding 0 independent; the positive control (x_sparse)"
            .. " must read slower; answer yes when factorized is independent and the unet is"
            .. " not" },
}, { header = { "setting", "value" } })
local data_rows = {}
for _, d in ipairs(data_order) do
  local c = by_name["unet_" .. d.data]
  data_rows[#data_rows + 1] = { d.data, d.what, d.dx, d.dy, count(d.dx), count(d.dy),
                                string.format("%.4g", c.lambda), c.runs[1].results.images }
end
doc:table(data_rows, { header = { "training set", "role", "dx", "dy", "x values", "y values",
                                  "lambda", "images" } })

doc:heading("Figures")
doc:figure("acc_x.svg", "x accuracy over training, mean over seeds, per model and training set."
           .. " Independent of the y data: y_dense and y_sparse coincide, as y_dense and null do.")
doc:figure("acc_y.svg", "y accuracy, the same way.")
for _, c in ipairs(conditions) do
  doc:figure("curves_" .. c.name .. ".svg", c.name .. ": accuracy per axis and the fraction of"
             .. " samples with one bump (grey).")
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
                        stat[m].null.runs[i].rel_lag or "-", stat[m].control.runs[i].rel_lag or "-",
                        cy.step_x or "-", cy.step_y or "-", ld.acc_x, ls.acc_x, ld.acc_y,
                        ls.acc_y, ls.snap_y }
  end
end
doc:table(rows, { header = { "model", "seed", "step_x y_dense", "step_x y_sparse",
                             "relative change", "change with null", "change with x_sparse",
                             "step_y y_dense", "step_y y_sparse", "final acc_x y_dense",
                             "final acc_x y_sparse", "final acc_y y_dense",
                             "final acc_y y_sparse", "y snapped, y_sparse" },
                  caption = string.format("Steps at which accuracy first reaches the model's"
                            .. " level (- : never); final values at step %d.", cfg.steps) })
doc:paragraph("Every evaluation is a row of metrics.jsonl (condition, model, data, seed, step and"
              .. " the metrics above); train/<condition>_s<seed>/ holds each training's loss log"
              .. " and done.json, train/summary.csv one row per training.")
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
