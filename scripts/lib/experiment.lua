-- Helpers the experiment scripts share: scale presets, seed lists, the
-- evaluation pass (sample a probe grid with taps; bump and manifold
-- metrics), curves over training and the steps where they cross a level.
--
--   local experiment = require "experiment"
--   local cfg = experiment.config({ seeds = "1,2" }, { quick = { steps = 900 },
--                                                     paper = { steps = 60000 } })
--   local evaluate = experiment.evaluator{ size = 16, probe_step = 2 }
--   local curve = experiment.curve()
--   ... on_eval = function(r) curve:add(r.step, evaluate(model)) end ...
--   local step = curve:crossing("acc_x", 0.6)   -- interpolated, or nil
--   local again = experiment.curve(json.decode(json.encode(curve)))  -- NaN kept
local experiment = {}

-- ---- configuration ------------------------------------------------------------

-- The value of `key=...` among the command-line arguments, or nil.
local function argument(key)
  for _, a in ipairs(arg or {}) do
    local v = a:match("^" .. key .. "=(.*)$")
    if v then return v end
  end
end

-- bd.config over `defaults` and the preset of the chosen scale (the
-- `scale=` argument; default "quick"): the preset's values replace the
-- defaults, and key=value arguments replace both, so `scale=paper steps=100`
-- is the paper setup trained for 100 steps. Fails naming the scales when the
-- scale is unknown.
function experiment.config(defaults, scales)
  local scale = argument("scale") or "quick"
  local preset = scales[scale]
  if not preset then
    local names = {}
    for name in pairs(scales) do names[#names + 1] = name end
    table.sort(names)
    error(string.format("scale = '%s', expected one of: %s", scale,
                        table.concat(names, ", ")), 2)
  end
  local merged = {}
  for k, v in pairs(defaults) do merged[k] = v end
  for k, v in pairs(preset) do merged[k] = v end
  merged.scale = scale
  return bd.config(merged)
end

-- "1,2,3" (or "1 2 3") -> { 1, 2, 3 }; raises on anything but integers.
function experiment.seeds(text)
  local seeds = {}
  for token in tostring(text):gmatch("[^,%s]+") do
    local n = math.tointeger(tonumber(token))
    if not n or n < 0 then
      error(string.format("seeds = '%s': '%s' is not an integer >= 0, expected"
                          .. " integers separated by commas (seeds=1,2,3)", text, token), 2)
    end
    seeds[#seeds + 1] = n
  end
  if #seeds == 0 then
    error(string.format("seeds = '%s', expected at least one seed (seeds=1,2,3)", text), 2)
  end
  return seeds
end

-- The unet of an experiment's settings (cfg.width, cfg.emb,
-- cfg.attention_blocks) for images of `size` (default cfg.size), its
-- weights drawn from `seed`.
function experiment.unet(cfg, seed, size)
  return bd.model("unet", { width = cfg.width, size = size or cfg.size, emb = cfg.emb,
                            attention_blocks = cfg.attention_blocks, seed = seed })
end

-- ---- evaluation -----------------------------------------------------------------

-- The keys an evaluation row holds, in the order tables show them.
experiment.row_keys = { "accuracy", "acc_x", "acc_y", "frac_none", "frac_multi", "single",
                        "place_x", "place_y", "err_x", "err_y", "snap_x", "snap_y",
                        "median_error", "r2_x", "r2_y", "r2_x_pca", "r2_y_pca", "eff_dim" }

-- An evaluation pass: returns evaluate(model) -> row, samples. It draws one
-- sample per probe label (opts.labels: an (n, 2) tensor or a table of
-- {x, y}; by default a grid of step `probe_step` over the image,
-- bd.data.grid) with the activations of `tap`, then measures:
--   bump metric:      accuracy, acc_x, acc_y, frac_none, frac_multi, median_error;
--                     single (fraction with one bump, the part both axes
--                     share) and, each axis on its own among the one-bump
--                     samples (NaN while fewer than min_single of the
--                     samples hold one bump): place_x, place_y (within
--                     axis_tolerance), err_x, err_y (median |error|),
--                     snap_x, snap_y (nearer a training-lattice value than
--                     the asked one; NaN without opts.lattice)
--   manifold metric:  r2_x, r2_y (linear regression from a UMAP embedding of
--                     the tap to the labels, as the paper), r2_x_pca, r2_y_pca
--                     (from its top principal components), eff_dim; left
--                     out (NaN) with manifold = false
-- opts: size, labels, probe_step (2), sampler ("ddpm"), sample_steps (25),
-- tolerance (1.0), axis_tolerance (0.5), lattice ({ dx =, dy = [, x0 =,
-- y0 =] }: the training set's), tap ("layer4"), seed (1: the same noise at
-- every evaluation, so curves move with the model, not the draw; pass one
-- derived from the training seed), manifold (a config for the manifold
-- metric; default UMAP to 3 dims; false: none), min_single (0.25).
function experiment.evaluator(opts)
  local probe
  if opts.labels then
    local labels = type(opts.labels) == "table" and bd.tensor.from_table(opts.labels) or opts.labels
    probe = { labels = labels, n = labels:shape()[1] }
  else
    probe = bd.data.grid{ size = opts.size, step = opts.probe_step or 2 }
  end
  local tap = opts.tap or "layer4"
  local lattice = opts.lattice or {}
  local bump = bd.metric("bump", { tolerance = opts.tolerance or 1.0,
                                   axis_tolerance = opts.axis_tolerance or 0.5,
                                   lattice_dx = lattice.dx or 0, lattice_dy = lattice.dy or 0,
                                   lattice_x0 = lattice.x0 or 0, lattice_y0 = lattice.y0 or 0 })
  local manifold
  if opts.manifold ~= false then
    local manifold_cfg = { tap = tap, method = "umap", dims = 3, seed = 1 }
    for k, v in pairs(opts.manifold or {}) do manifold_cfg[k] = v end
    manifold = bd.metric("manifold", manifold_cfg)
  end
  local min_single = opts.min_single or 0.25
  local sample_opts = { sampler = opts.sampler or "ddpm", steps = opts.sample_steps or 25,
                        seed = opts.seed or 1, taps = manifold and { tap } or nil }
  return function(model)
    local s = bd.sample(model, probe, sample_opts)
    local b = bump(s.images, probe.labels)
    local m = manifold and manifold(s.images, probe.labels, s.taps) or {}
    local row = {}
    for _, k in ipairs(experiment.row_keys) do row[k] = b[k] or m[k] or 0 / 0 end
    row.single = b.frac_single
    if row.single < min_single then
      for _, k in ipairs{ "place_x", "place_y", "err_x", "err_y", "snap_x", "snap_y" } do
        row[k] = 0 / 0
      end
    end
    return row, s
  end, probe
end

-- ---- one training with its evaluations ---------------------------------------------

-- Train `model` on `data` with bd.train, evaluating it every `every` steps:
--   opts.train     bd.train's options (steps, batch, lr, warmup, ema, seed,
--                  every, run, ckpt_every, ...); on_eval is this helper's
--   opts.evaluate  function(model) -> row, samples: one evaluation
--   opts.on_row    function(step, row) (optional): after each evaluation,
--                  before training goes on (log it, change the data)
--   opts.samples   { path =, probe =, scale = } (optional): the last
--                  evaluation's samples saved there (save_samples)
--   opts.more      function(curve) -> true to train on past train.steps
--                  (optional), `every` steps at a time, up to opts.max_steps:
--                  each stretch resumes exactly from the checkpoint the
--                  last one wrote in the run (the newest is kept only with
--                  opts.keep_last)
-- Returns { curve (the rows by step), samples (the last evaluation's),
-- steps (trained), train_seconds, eval_seconds (of that time, the
-- evaluations), params }.
function experiment.train_one(opts)
  local curve, last, eval_seconds = experiment.curve(), nil, 0
  local train = {}
  for k, v in pairs(opts.train) do train[k] = v end
  train.on_eval = function(r)
    local t0 = bd.time()
    local row, samples = opts.evaluate(opts.model)
    eval_seconds = eval_seconds + bd.time() - t0
    curve:add(r.step, row)
    last = samples
    if opts.on_row then opts.on_row(r.step, row) end
  end
  local extend = opts.more and opts.max_steps and opts.max_steps > train.steps
  if extend then train.ckpt_every, train.keep = train.steps, 1 end
  local seconds = assert(bd.train(opts.model, opts.data, train)).seconds
  while extend and train.steps + train.every <= opts.max_steps and opts.more(curve) do
    train.resume = bd.ckpt.path(train.run, train.steps)
    train.steps = train.steps + train.every
    train.ckpt_every = train.steps
    seconds = seconds + assert(bd.train(opts.model, opts.data, train)).seconds
  end
  if extend and not opts.keep_last then assert(os.remove(bd.ckpt.path(train.run, train.steps))) end
  local out = opts.samples
  if last and out then
    experiment.save_samples(out.path, last.images, out.probe, out.scale)
  end
  return { curve = curve, samples = last, steps = train.steps, train_seconds = seconds,
           eval_seconds = eval_seconds, params = opts.model:num_parameters() }
end

-- train_one with one evaluation, at the end: opts as train_one's but for
-- opts.more (opts.train.every is set to its steps). Returns train_one's
-- result and row, the evaluation's row (whatever opts.evaluate returned).
function experiment.train_final(opts)
  local train = {}
  for k, v in pairs(opts.train) do train[k] = v end
  train.every = train.steps
  local t = experiment.train_one{ model = opts.model, data = opts.data, train = train,
                                  evaluate = opts.evaluate, samples = opts.samples }
  t.row = t.curve:last()
  return t
end

-- ---- curves -----------------------------------------------------------------------

-- Logs every evaluated row of every training of `conditions` (each with
-- `runs`, each run with a seed and a curve) to `run`'s metrics.jsonl, one
-- line a row: condition, the condition's fields named in `tags`, seed, step
-- and the row's numbers.
function experiment.log_curves(run, conditions, tags)
  for _, c in ipairs(conditions) do
    for _, r in ipairs(c.runs) do
      for i, step in ipairs(r.curve.steps) do
        local line = { condition = c.name, seed = r.seed, step = step }
        for _, tag in ipairs(tags or {}) do line[tag] = c[tag] end
        for k, v in pairs(r.curve.rows[i]) do line[k] = v end
        assert(run:log(line))
      end
    end
  end
end

local Curve = {}
Curve.__index = Curve

-- A curve over training: rows of numbers, one per evaluated step. With
-- `saved`, the curve it holds: a curve read back from JSON (a sweep's done
-- mark), where NaN became null, so a number missing from a row (of `keys`,
-- default the evaluator's, or of the keys other rows have) comes back NaN.
function experiment.curve(saved, keys_of_rows)
  local curve = setmetatable({ steps = {}, rows = {} }, Curve)
  if not saved then return curve end
  local keys = {}
  for _, k in ipairs(keys_of_rows or experiment.row_keys) do keys[k] = true end
  for _, row in ipairs(saved.rows) do
    for k in pairs(row) do keys[k] = true end
  end
  for i, step in ipairs(saved.steps) do
    local row = {}
    for k in pairs(keys) do row[k] = saved.rows[i][k] or 0 / 0 end
    curve:add(step, row)
  end
  return curve
end

function Curve:add(step, row)
  self.steps[#self.steps + 1] = step
  self.rows[#self.rows + 1] = row
end

-- The values of one key, as a list beside self.steps.
function Curve:values(key)
  local v = {}
  for i, row in ipairs(self.rows) do v[i] = row[key] end
  return v
end

-- The last row (the end of training), or nil.
function Curve:last()
  return self.rows[#self.rows]
end

-- The first step at which key reaches `level`, interpolated linearly
-- between the evaluations around it; before the first evaluation the curve
-- starts from (0, start) (default start 0: an untrained net draws no single
-- bump). nil when the level is never reached.
function Curve:crossing(key, level, start)
  local s0, v0 = 0, start or 0
  for i, step in ipairs(self.steps) do
    local v = self.rows[i][key] or 0 / 0  -- a key no saved row had is NaN
    if v == v and v >= level then
      if v0 >= level or v == v0 then return s0 end
      return s0 + (level - v0) / (v - v0) * (step - s0)
    end
    if v == v then s0, v0 = step, v end
  end
  return nil
end

-- ---- which axis is learned first ---------------------------------------------------

-- When one training learned each axis: the steps at which acc_x and acc_y
-- (or the keys kx, ky) first reach `threshold` (Curve:crossing), the lag
-- step_y - step_x and the
-- relative lag, lag / the mean of the two steps. An axis that never gets
-- there counts as `steps` (the end of training) and the result is marked
-- censored: its lag is then a bound. With neither axis reached there is no
-- lag.
function experiment.axis_crossings(curve, threshold, steps, kx, ky)
  local sx = curve:crossing(kx or "acc_x", threshold)
  local sy = curve:crossing(ky or "acc_y", threshold)
  local out = { step_x = sx, step_y = sy, censored = not (sx and sy) }
  if sx or sy then
    local x, y = sx or steps, sy or steps
    out.lag = y - x
    out.rel_lag = x + y > 0 and (y - x) / ((x + y) / 2) or 0
  end
  return out
end

-- The verdict on the trainings of one condition, from their axis_crossings:
--   "not reached"  some training reached neither threshold
--   "together"     |mean relative lag| + sd <= tolerance
--   "dense first"  sign * mean - sd > tolerance, where sign is +1 when x is
--                  the dense axis (a positive lag: x first) and -1 for y
--   "x first", "y first"   the same without a dense axis (sign nil)
--   "unclear"      anything else
-- Also returns the stats of the lags and of the relative lags.
function experiment.lag_verdict(crossings, sign, tolerance)
  local lags, rels = {}, {}
  for _, c in ipairs(crossings) do
    lags[#lags + 1] = c.lag
    rels[#rels + 1] = c.rel_lag
  end
  local lag, rel = experiment.stats(lags), experiment.stats(rels)
  local verdict = "unclear"
  if rel.n < #crossings or rel.n == 0 then
    verdict = "not reached"
  elseif math.abs(rel.mean) + rel.sd <= tolerance then
    verdict = "together"
  elseif sign and sign * rel.mean - rel.sd > tolerance then
    verdict = "dense first"
  elseif not sign and math.abs(rel.mean) - rel.sd > tolerance then
    verdict = rel.mean > 0 and "x first" or "y first"
  end
  return verdict, lag, rel
end

-- ---- summaries ----------------------------------------------------------------------

-- n, mean, sd, min, max of the finite numbers of a list (stats.summary;
-- intervals are in scripts/lib/stats.lua).
experiment.stats = require("stats").summary

-- "m +- sd (min..max, n = k)" with the given format for the numbers (the
-- sd without a sign).
function experiment.describe(st, fmt)
  fmt = fmt or "%.0f"
  if st.n == 0 then return "n = 0" end
  local f = function(v) return string.format(fmt, v) end
  if st.n == 1 then return f(st.mean) .. " (n = 1)" end
  return string.format("%s +- %s (%s..%s, n = %d)", f(st.mean),
                       string.format((fmt:gsub("[+ ]", "")), st.sd), f(st.min), f(st.max), st.n)
end

-- Seconds as "1 h 02 min", "4 min 05 s" or "12.3 s".
function experiment.duration(seconds)
  if seconds >= 3600 then
    return string.format("%d h %02d min", seconds // 3600, (seconds % 3600) // 60)
  elseif seconds >= 60 then
    return string.format("%d min %02d s", seconds // 60, math.floor(seconds % 60))
  end
  return string.format("%.1f s", seconds)
end

-- The mean over curves evaluated at the same steps (the seeds of one
-- condition; some may go on longer) of one key at each step: the steps of
-- the longest curve and the means over the curves that reach each step
-- (NaN where none has a finite value).
function experiment.mean_curve(curves, key)
  local longest = curves[1]  -- curves share their first steps; some may go on longer
  for _, c in ipairs(curves) do
    if #c.steps > #longest.steps then longest = c end
  end
  local steps, means = longest.steps, {}
  for i = 1, #steps do
    local xs = {}
    for _, c in ipairs(curves) do xs[#xs + 1] = c.rows[i] and c.rows[i][key] end
    means[i] = experiment.stats(xs).mean
  end
  return steps, means
end

-- The mean over `curves` (one condition's runs) of accuracy per axis
-- (solid), layer-4 R^2 per axis and the one-bump fraction (dashed) over
-- training steps 0..steps, with the threshold drawn: an SVG at path.
function experiment.save_curves(path, title, curves, steps, threshold)
  local report = require "report"
  local series = {}
  for _, s in ipairs{ { "acc_x", 1, false }, { "acc_y", 2, false }, { "r2_x", 1, true },
                      { "r2_y", 2, true }, { "single", 8, true } } do
    local x, y = experiment.mean_curve(curves, s[1])
    series[#series + 1] = { name = s[1], x = x, y = y, color = report.colors[s[2]], dash = s[3] }
  end
  assert(report.save(path, report.lines{
    title = title, xlabel = "training step",
    ylabel = "accuracy (solid), R^2 in layer 4, one-bump fraction", ylim = { 0, 1 },
    xlim = { 0, steps }, series = series, hlines = { { y = threshold, label = "threshold" } } }))
end

-- One sample per probe label as a PNG grid, square, the requested places
-- marked; each pixel `scale` pixels wide.
function experiment.save_samples(path, images, probe, scale)
  assert(bd.image.save_grid(path, images, { labels = probe.labels, scale = scale,
                                            cols = math.floor(math.sqrt(probe.n) + 0.5) }))
end

return experiment
