-- Are x and y learned as separate 1D tasks (factorized) or together
-- (coupled)? docs/PAPER.md, finding 2: with x sampled ten times more densely
-- than y, a vanilla UNet still learns the two together.
--
--   bdrun scripts/imbalance.lua [scale=quick|standard|paper] [seeds=1,2,3] [steps=...] ...
--   bdrun scripts/imbalance.lua shard=0/2 ...   (and shard=1/2: the same sweep)
-- The quick and standard scales run as two one-thread processes (procs=2,
-- scripts/lib/sweep.lua): both cores of a 2-core machine.
--
-- Five training sets, each trained with every seed:
--   balanced    dx = dy (the same number of images): the null; no axis is
--               denser, so its seed-to-seed spread is what noise gives
--   x_dense     dx = dense, dy = sparse: the question
--   y_dense     the swap
--   control_x   x_dense's data with the y labels withheld (shuffled across
--               the images, again at each evaluation) until x has been
--               learned: x is learned first by construction
--   control_y   the swap of control_x
-- the positive control (SCIENCE.md 1): the same unet, data, probes, metric
-- and rule, on a learner that is factorized by construction. The sparse
-- labels stay withheld until the dense axis's placement on the lattice
-- probes has reached `threshold` at an evaluation, and `lead` of the
-- training longer; then the true labels return and training goes on past
-- `steps`, `every` steps at a time, until the sparse axis reaches the
-- threshold too (at most `control_max` times `steps`). Why not a fixed
-- withholding: at the quick scale nothing is placed before about step 900
-- (one-bump fraction about 0.25, median errors about 3 px on both axes),
-- then both axes are learned together from there; the old control shuffled
-- the sparse labels for the first 900 of 1,500 steps, which ended when
-- learning began, so the dense axis had no head start (control_x, seed 1:
-- y crossed 60% on the lattice probes near step 1,320, x near 1,500) and
-- the control read coupled. Keyed on the dense axis's own crossing, the
-- sparse axis cannot cross before it (barring chance placement of a
-- shuffled label, about 1 in 9), and the lead adds lead * steps (300) to
-- the lag, plus the time the sparse axis needs once its labels are back:
-- about 0.2 or more of a crossing step near 2,000, so the control's
-- contrast is about 0.4 or more, over the tolerance the null gave in the
-- last run (0.31). The shuffled labels slow the dense axis too (seed 1: x
-- near step 1,800 in control_x, against 1,300 in x_dense), so the controls
-- train past `steps` (2,500 to 2,700 steps in the default run): it cost
-- 48 CPU-minutes under load, against 34.5 with controls of 1,500 steps. A control whose sparse axis is not
-- reached by its end counts with its end as a bound (it can only understate
-- the lag); one whose dense axis is never reached makes the run "cannot decide".
--
-- Probes (SCIENCE.md 4). Every `every` steps the model draws one sample per
-- label of three probe sets, each with its own noise derived from the
-- training seed: `lattice` (labels the training set holds), `off25` and
-- `off50` (each coordinate a quarter, a half of its spacing off the
-- training lattice: the sparse axis must interpolate). The bump metric
-- scores each axis on its own among the one-bump samples (place_x,
-- place_y: within axis_tolerance; err_x, err_y: median |error|; snap_x,
-- snap_y: nearer a training value than the asked one) and the one-bump
-- fraction apart, so that the two axes do not share a cap (SCIENCE.md 3).
-- axis_tolerance must be below the off25 probes' distance to the nearest
-- training value on the sparse axis (a quarter of `sparse`), so that a bump
-- snapped to a training value scores as wrong; the script refuses
-- otherwise. On the dense axis the lattice is finer than any tolerance a
-- model reaches, so that axis is continuous in effect and its snap
-- fraction says nothing.
--
-- The statistic (scripts/lib/decision.lua): in each training, the steps at
-- which place_x and place_y first reach `threshold` (interpolated), and the
-- relative lag (step_y - step_x) / their mean, on the lattice probes (the
-- decision: placement, the paper's question) and on the off50 probes
-- (interpolation, decided apart with the same rule). The
-- contrast lag(x_dense) - lag(y_dense) is positive for factorized learning
-- and near 0 for coupled; its tolerance is derived from the balanced
-- condition's spread over seeds; the positive control must read factorized
-- under the same rule, else the answer is "cannot decide". Every lag,
-- accuracy and error printed has an interval (t over seeds, Welch for the
-- contrasts, Wilson for one training's k of n).
--
-- The trainings are the runs of a sweep (scripts/lib/sweep.lua): one
-- process runs them all, or shard=r/n, a Slurm job array or mpirun's ranks
-- share them out; a finished training is marked and skipped when the script
-- runs again, and the process that finishes the last one (or
-- `collect=true`) writes the statistic, the figures and the report.
-- `collect=true threshold=0.5` decides again without training.
--
-- Writes runs/imbalance/: config.json, metrics.jsonl (one row per
-- evaluation, tagged with condition and seed; then the crossings and the
-- decision), curves_<condition>.svg, errors_<condition>.svg, lags.svg,
-- report.html, and train/<condition>_s<seed>/ (each training's loss and
-- evaluation log, samples.png: its last off50 samples, done.json: its
-- results), with the sweep's train/summary.json and summary.csv.
local decision = require "decision"
local experiment = require "experiment"
local report = require "report"
local stats = require "stats"
local sweep = require "sweep"

local cfg = experiment.config(sweep.options{
  name = "imbalance",
  sigma = 1.0,
  -- the level that counts as "learned": the follow-up's 60% accuracy
  threshold = 0.6,
  -- the positive control (see the header): the sparse labels come back
  -- `lead` of `steps` after the dense axis has reached the threshold (0.2:
  -- a lag of about 0.2 by construction, twice the null's sd of the last
  -- run); its training goes on until the sparse axis has too, at most
  -- control_max * steps (1.8: with the sparse labels shuffled the dense
  -- axis is learned later than without (seed 1: x near step 1,800 in
  -- control_x, y not at 1,900 in control_y, against 1,300 in x_dense), so
  -- room for a dense crossing near 2,000, the lead and the sparse axis; one
  -- not reached by then counts with the end as a bound, which only
  -- understates the control's lag)
  lead = 0.2,
  control_max = 1.8,
  probes = 7,            -- coordinates per axis in each probe set (probes^2 labels)
  margin = 2.0,          -- probes keep this far (px, 2 sigma) from the image's edges
  sampler = "ddpm",      -- respaced ancestral sampling for evaluation
  batch = 64,
  warmup = 100,
  ckpt = false,          -- keep each training's last checkpoint
  only = "",             -- train only these conditions (comma list; "" = all), to look at curves
}, {
  -- 16x16 (layer 4 is 2x2), width 8, no self-attention (it learned here as
  -- fast per step and trains faster; one seed reached 81% / 94% placement on
  -- the lattice probes at step 1400): 15 trainings in about 20 minutes on
  -- two quiet cores. Spacings keep the paper's 10:1 ratio with a sparse axis 2 px
  -- apart (9 values), so that an off50 probe is 1 px and an off25 probe
  -- 0.5 px from every trained y: the sparse axis is interpolated, and a
  -- 0.4 px tolerance tells a bump placed there from one snapped to a
  -- training value. (The paper's 1 px at 16x16 would need a tolerance under
  -- 0.25 px.)
  quick = { size = 16, width = 8, emb = 64, attention_blocks = "",
            dense = 0.2, sparse = 2.0, axis_tolerance = 0.4,
            steps = 1500, lr = 2e-3, ema = 0.99, every = 100, sample_steps = 25, probes = 6,
            seeds = "1,2,3", procs = 2 },
  -- the paper's image size sized for 2 cores, the quick scale's spacings
  -- (about 2,700 images a set): phases.lua's standard net (width 8,
  -- attention at 8x8 and 4x4 only, lr 1e-3), whose pilot at 32x32 drew 55%
  -- correct bumps at step 2,100 where the same net at 16x16 needs about
  -- 1,200; this script's quick scale places at 0.4 px near step 1,400, so
  -- 4,000 steps, the controls up to 7,200. Cost by arithmetic: 9 x 4,000 +
  -- 6 x at most 7,200 = 79,200 steps at about 0.3 CPU-s (batch 64), plus
  -- about 320 evaluations of 3 x 49 samples of 25 steps (5.8 CPU-s measured,
  -- under load): about 7 CPU-hours by arithmetic. Measured: 12.5 min wall a
  -- 4,000-step training on a quiet core, the controls stopping at 5,000 to
  -- 7,000 steps: about 4 CPU-hours in all, 2 h wall with procs=2
  standard = { size = 32, width = 8, emb = 64, attention_blocks = "down2,down3,up1",
               dense = 0.2, sparse = 2.0, axis_tolerance = 0.4,
               steps = 4000, lr = 1e-3, ema = 0.995, every = 250, sample_steps = 25,
               seeds = "1,2,3", procs = 2 },
  -- the paper's setting: 32x32, dx = 0.1 / dy = 1.0, width 64 (about 23.8M
  -- parameters), all six attention blocks; the training length is ours.
  -- The sparse axis is 1 px apart, so the tolerance must be under 0.25 px.
  paper = { size = 32, width = 64, emb = 256, attention_blocks = "down1,down2,down3,up1,up2,up3",
            dense = 0.1, sparse = 1.0, axis_tolerance = 0.2,
            steps = 40000, lr = 3e-4, ema = 0.999, every = 1000, sample_steps = 100,
            seeds = "1,2,3" },
})
local seeds = experiment.seeds(cfg.seeds)
if cfg.axis_tolerance >= 0.25 * cfg.sparse then
  error(string.format("axis_tolerance = %g px cannot tell a snapped bump: the off25 probes are"
                      .. " %g px from the nearest training value on the sparse axis; expected"
                      .. " a tolerance below that", cfg.axis_tolerance, 0.25 * cfg.sparse))
end
local lead_steps = math.floor(cfg.lead * cfg.steps / cfg.every + 0.5) * cfg.every
local control_steps = math.floor(cfg.control_max * cfg.steps / cfg.every) * cfg.every

-- Balanced data has the same number of images: dx = dy = sqrt(dense * sparse).
local even = math.sqrt(cfg.dense * cfg.sparse)
local conditions = {
  { name = "balanced",  dx = even,       dy = even },
  { name = "x_dense",   dx = cfg.dense,  dy = cfg.sparse },
  { name = "y_dense",   dx = cfg.sparse, dy = cfg.dense },
  { name = "control_x", dx = cfg.dense,  dy = cfg.sparse, withhold = 2 },  -- y's labels
  { name = "control_y", dx = cfg.sparse, dy = cfg.dense,  withhold = 1 },  -- x's labels
}
if cfg.only ~= "" then
  local keep, kept = {}, {}
  for name in cfg.only:gmatch("[^,%s]+") do keep[name] = true end
  for _, c in ipairs(conditions) do
    if keep[c.name] then kept[#kept + 1] = c; keep[c.name] = nil end
  end
  local unknown = next(keep)
  if unknown or #kept == 0 then
    error(string.format("only = '%s': '%s' is not a condition, expected names among balanced,"
                        .. " x_dense, y_dense, control_x, control_y", cfg.only, unknown or ""))
  end
  conditions = kept
end
local SETS = { { name = "lattice", offset = 0 }, { name = "off25", offset = 0.25 },
               { name = "off50", offset = 0.5 } }
local DECIDE = "off50"  -- the probe set the statistic is read on
-- what an evaluation keeps of each probe set (the evaluator's bump numbers)
local BUMP_KEYS = { "accuracy", "acc_x", "acc_y", "frac_none", "frac_multi", "single", "place_x",
                    "place_y", "err_x", "err_y", "snap_x", "snap_y", "median_error" }
local started = bd.time()

-- ---- probes ------------------------------------------------------------------------

-- `count` coordinates on one axis of spacing d: training values (k d)
-- spread evenly over [margin, size - margin - offset d], each moved
-- offset * d off the lattice.
local function axis_coords(d, offset, count)
  local values = {}
  for k = math.ceil(cfg.margin / d), math.floor((cfg.size - cfg.margin) / d - offset) do
    values[#values + 1] = k * d
  end
  local out = {}
  count = math.min(count, #values)
  for i = 1, count do
    local at = count == 1 and 1 or 1 + math.floor((i - 1) * (#values - 1) / (count - 1) + 0.5)
    out[i] = values[at] + offset * d
  end
  return out
end

-- The labels of one probe set for a condition: every pair of its coordinates.
local function probe_labels(c, offset)
  local labels = {}
  for _, y in ipairs(axis_coords(c.dy, offset, cfg.probes)) do
    for _, x in ipairs(axis_coords(c.dx, offset, cfg.probes)) do labels[#labels + 1] = { x, y } end
  end
  return labels
end

-- ---- the positive control: labels withheld -------------------------------------------

-- Withholds axis a's labels of `data` (1: x, 2: y): shuffle() sets them to
-- a seeded permutation of themselves, so they keep the data's values and
-- say nothing about the image; restore() puts the true ones back. The
-- training loop reads the labels from the dataset at every step.
local function withholder(data, a, seed)
  local labels, truth = data.labels, {}
  for i = 1, data.n do truth[i] = labels:get(i, a) end
  local round = 0
  local function shuffle()
    round = round + 1
    math.randomseed(seed, round)
    local perm = {}
    for i = 1, data.n do perm[i] = i end
    for i = data.n, 2, -1 do
      local j = math.random(i)
      perm[i], perm[j] = perm[j], perm[i]
    end
    for i = 1, data.n do labels:set(i, a, truth[perm[i]]) end
  end
  local function restore()
    for i = 1, data.n do labels:set(i, a, truth[i]) end
  end
  return shuffle, restore
end

-- ---- one training: a run of the sweep ------------------------------------------------

-- Train condition c with one seed in the sweep's run directory `sub`,
-- evaluating every `every` steps on the three probe sets (noise seeds
-- derived from the training seed); writes the last off50 samples to
-- sub/samples.png. Returns what the report needs (the sweep keeps it in the
-- run's done mark): the curve (keys <set>_<metric>), the probe sizes, the
-- data's size, the times.
local function train_one(sub, c, seed)
  local data = bd.data.bumps{ size = cfg.size, sigma = cfg.sigma, dx = c.dx, dy = c.dy }
  bd.log.info("%s seed %d: dx %.3g, dy %.3g, %d images", c.name, seed, c.dx, c.dy, data.n)
  local model = experiment.unet(cfg, seed)
  local evaluators, probe_n = {}, {}
  for i, set in ipairs(SETS) do
    local evaluate, probe = experiment.evaluator{
      labels = probe_labels(c, set.offset), lattice = { dx = c.dx, dy = c.dy },
      sampler = cfg.sampler, sample_steps = cfg.sample_steps, axis_tolerance = cfg.axis_tolerance,
      manifold = false, seed = 1000 * seed + i }
    evaluators[i], probe_n[set.name] = { evaluate = evaluate, probe = probe }, probe.n
  end
  -- the positive control: the withheld (sparse) axis's labels shuffled
  -- until the dense axis crosses, then `lead_steps` more
  local shuffle, restore, dense_key, sparse_key, crossed, restored
  if c.withhold then
    shuffle, restore = withholder(data, c.withhold, seed)
    shuffle()
    local axes = { "x", "y" }
    dense_key = "lattice_place_" .. axes[3 - c.withhold]
    sparse_key = "lattice_place_" .. axes[c.withhold]
  end
  local t = experiment.train_one{
    model = model, data = data,
    train = { steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, warmup = cfg.warmup,
              ema = cfg.ema, seed = seed, every = cfg.every, run = sub,
              ckpt_every = cfg.ckpt and cfg.steps or 0 },
    -- every probe set, its keys prefixed; the samples of the DECIDE set
    evaluate = function(m)
      local row, kept = {}, nil
      for i, set in ipairs(SETS) do
        local one, samples = evaluators[i].evaluate(m)
        for _, k in ipairs(BUMP_KEYS) do row[set.name .. "_" .. k] = one[k] end
        if set.name == DECIDE then kept = samples end
      end
      return row, kept
    end,
    on_row = function(step, row)
      local line = { event = "evaluation" }
      for k, v in pairs(row) do line[k] = v end
      assert(sub:log(line))
      local d = DECIDE .. "_"
      bd.log.info("%s seed %d step %d: one bump %.2f; %s place_x %.2f place_y %.2f, median"
                  .. " error x %.2f y %.2f px, snapped x %.2f y %.2f", c.name, seed, step,
                  row[d .. "single"], DECIDE, row[d .. "place_x"], row[d .. "place_y"],
                  row[d .. "err_x"], row[d .. "err_y"], row[d .. "snap_x"], row[d .. "snap_y"])
      if shuffle then
        crossed = crossed or (row[dense_key] >= cfg.threshold and step or nil)
        if crossed and step >= crossed + lead_steps then
          restore()
          shuffle, restored = nil, step
          bd.log.info("%s seed %d: the dense axis reached %.2f at step %d; true labels from step"
                      .. " %d", c.name, seed, cfg.threshold, crossed, step)
        else
          shuffle()
        end
      end
    end,
    -- a control trains on until its sparse axis has been placed
    more = c.withhold and function(curve)
      return not (restored and curve:last()[sparse_key] >= cfg.threshold)
    end,
    max_steps = control_steps, keep_last = cfg.ckpt,
    samples = { path = sub:path("samples.png"), probe = evaluators[#SETS].probe,
                scale = math.max(1, 64 // cfg.size) },
  }
  return { curve = t.curve, samples = t.samples and "samples.png", images = data.n,
           probes = probe_n, params = t.params, steps = t.steps, dense_crossed = crossed,
           restored = restored, train_seconds = t.train_seconds, eval_seconds = t.eval_seconds }
end

-- ---- every condition for every seed: the sweep -------------------------------------------

local TRAIN = "train"  -- the trainings' folder in the run directory
local marks = sweep.run{ name = cfg.name, dir = "runs/" .. cfg.name .. "/" .. TRAIN,
                         conditions = conditions, seeds = seeds, config = cfg,
                         train = train_one }
if not marks then return end  -- runs are left to other processes: the last one collects

-- Every run is done: its results, read back from its mark, join its
-- condition. The keys of a curve's rows: the evaluator's, per probe set.
local ROW_KEYS = {}
for _, set in ipairs(SETS) do
  for _, k in ipairs(BUMP_KEYS) do ROW_KEYS[#ROW_KEYS + 1] = set.name .. "_" .. k end
end
local by_name, runtime = {}, 0
for _, c in ipairs(conditions) do
  c.runs = {}
  by_name[c.name] = c
end
for _, m in ipairs(marks) do
  local r = m.results
  r.name, r.seed, r.curve = m.name, m.seed, experiment.curve(r.curve, ROW_KEYS)
  r.steps = r.steps or cfg.steps
  table.insert(by_name[m.condition.name].runs, r)
  runtime = runtime + m.seconds
end
-- The longest training of a condition (a control may train past `steps`).
local function last_step(c)
  local n = cfg.steps
  for _, r in ipairs(c.runs) do n = math.max(n, r.steps) end
  return n
end
-- The controls' restore steps and lengths, in words.
local function control_words()
  local back, len = {}, {}
  for _, name in ipairs{ "control_x", "control_y" } do
    for _, r in ipairs(by_name[name] and by_name[name].runs or {}) do
      back[#back + 1] = r.restored and string.format("%d", r.restored) or "never"
      len[#len + 1] = string.format("%d", r.steps)
    end
  end
  return string.format("sparse labels withheld until the dense axis reached %.2f on the lattice"
                       .. " probes, then %d steps more: back at steps %s; trained %s steps",
                       cfg.threshold, lead_steps, table.concat(back, ", "), table.concat(len, ", "))
end

-- ---- the run directory: settings and every evaluation ------------------------------------

-- the report's run is made again from the sweep's marks each time: it starts over
local run = bd.run(cfg.name, { overwrite = true })
local saved = { conditions = {} }
for k, v in pairs(cfg) do saved[k] = v end
for i, c in ipairs(conditions) do
  saved.conditions[i] = { name = c.name, dx = c.dx, dy = c.dy, withhold = c.withhold }
end
assert(run:save_config(saved))
experiment.log_curves(run, conditions)

-- ---- the statistic ---------------------------------------------------------------

-- The crossings of place_x, place_y of probe set `set` in each training of
-- a condition: a list of experiment.axis_crossings; the relative lags
-- (NaN where an axis never reached the threshold) and the same with the
-- bound a censored training gives (the end of training for the axis not
-- reached: it understates the lag); t intervals of step_x, step_y and the
-- relative lag over the seeds.
local function crossings(c, set)
  local out = { runs = {}, rel = {}, bound = {}, sx = {}, sy = {} }
  for i, r in ipairs(c.runs) do
    local a = experiment.axis_crossings(r.curve, cfg.threshold, r.steps,
                                        set .. "_place_x", set .. "_place_y")
    out.runs[i] = a
    out.rel[i] = not a.censored and a.rel_lag or 0 / 0
    out.bound[i] = a.rel_lag or 0 / 0
    out.sx[i], out.sy[i] = a.step_x or 0 / 0, a.step_y or 0 / 0
  end
  out.step_x, out.step_y = stats.t_interval(out.sx), stats.t_interval(out.sy)
  out.lag = stats.t_interval(out.rel)
  return out
end

for _, c in ipairs(conditions) do
  c.cross = {}
  for _, set in ipairs(SETS) do c.cross[set.name] = crossings(c, set.name) end
  for i, r in ipairs(c.runs) do
    for _, set in ipairs(SETS) do
      local a = c.cross[set.name].runs[i]
      assert(run:log{ event = "crossings", condition = c.name, seed = r.seed, probes = set.name,
                      step_x = a.step_x, step_y = a.step_y, lag = a.lag, rel_lag = a.rel_lag,
                      censored = a.censored, train_seconds = r.train_seconds,
                      eval_seconds = r.eval_seconds })
    end
  end
end

-- The rule on one probe set's lags. The controls' censored lags enter as
-- bounds: a control whose sparse axis is not reached by the end has a lag
-- at least that large, so using the bound only makes the check harder.
local function decide_on(set)
  local function rel(name, kind)  -- (only= may leave a condition out: no lags)
    return by_name[name] and by_name[name].cross[set][kind or "rel"] or {}
  end
  return decision.decide{ balanced = rel("balanced"), x_dense = rel("x_dense"),
                          y_dense = rel("y_dense"), control_x = rel("control_x", "bound"),
                          control_y = rel("control_y", "bound") }
end
-- what each decision asks; the first is the answer to the paper's question
local QUESTIONS = {
  { set = "lattice", asks = "placement at values the training set holds" },
  { set = DECIDE, asks = "interpolation: probes half a spacing off the training lattice" },
}
for _, q in ipairs(QUESTIONS) do q.verdict = decide_on(q.set) end
local verdict = QUESTIONS[1].verdict

-- The final evaluation's value of `key` per seed of a condition, with a t
-- interval over seeds; clipped to [0, 1] for a fraction (every key but
-- the errors).
local function final(c, key)
  local xs = {}
  for i, r in ipairs(c.runs) do xs[i] = r.curve:last()[key] end
  local t = stats.t_interval(xs)
  if t.lo == t.lo and not key:find("_err_") then
    t.lo, t.hi = math.max(0, t.lo), math.min(1, t.hi)
  end
  return t
end

-- ---- numbers in words ----------------------------------------------------------------

local function iv(x, fmt) return stats.describe(x, fmt or "%.2f") end

-- How the null sets the tolerance, or why it sets none (a swap or the null
-- with fewer than two lags: the tolerance would be sqrt(1/0)).
local function tolerance_words(v)
  if v.null.n > 1 and v.tolerance < math.huge then
    return string.format("its sd %.3f over %d seeds sets the tolerance t(%.3f, %d) * sd"
      .. " * sqrt(1/n + 1/n) = %.2f", v.null.sd, v.null.n, (1 + v.level) / 2, v.null.n - 1,
      v.tolerance)
  end
  return "no tolerance (it needs the lags of two seeds of the null and of each swap)"
end

local lines = {}
local function say(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
for i, q in ipairs(QUESTIONS) do
  local v = q.verdict
  say("%s on %s probes (%s): %s (%s)", i == 1 and "decision" or "interpolation", q.set, q.asks,
      v.decision, v.reason)
  say("  question: contrast of relative lags lag(x_dense) - lag(y_dense) %s, reads %s",
      iv(v.contrast, "%+.2f"), v.contrast.verdict)
  say("  null (balanced): relative lag %s; %s", iv(v.null, "%+.2f"), tolerance_words(v))
  say("  positive control (%s): contrast %s, reads %s (must read factorized)", control_words(),
      iv(v.control, "%+.2f"), v.control.verdict)
end
say("per condition (%.0f%% of one-bump samples within %.2g px on that axis; t intervals over"
    .. " %d seeds):", 100 * cfg.threshold, cfg.axis_tolerance, #seeds)
for _, c in ipairs(conditions) do
  say("  %-9s (dx %.3g, dy %.3g): final one bump %s", c.name, c.dx, c.dy,
      iv(final(c, DECIDE .. "_single")))
  for _, q in ipairs(QUESTIONS) do
    local x, k = c.cross[q.set], q.set .. "_"
    say("    %-7s step_x %s, step_y %s, relative lag %s; final place_x %s place_y %s,"
        .. " median error x %s y %s px, snapped x %s y %s", q.set, iv(x.step_x, "%.0f"),
        iv(x.step_y, "%.0f"), iv(x.lag, "%+.2f"), iv(final(c, k .. "place_x")),
        iv(final(c, k .. "place_y")), iv(final(c, k .. "err_x")), iv(final(c, k .. "err_y")),
        iv(final(c, k .. "snap_x")), iv(final(c, k .. "snap_y")))
  end
end
local agreement = verdict.decision == "coupled" and "agrees with"
                  or verdict.decision == "factorized" and "disagrees with"
                  or "can neither confirm nor refute"
say("PAPER.md finding 2 (coupled): this run %s it (placement contrast %s, tolerance %.2f)",
    agreement, iv(verdict.contrast, "%+.2f"), verdict.tolerance)
say("%d trainings of %d steps: %s of training and evaluation; this process %s (scale %s)",
    #marks, cfg.steps, experiment.duration(runtime), experiment.duration(bd.time() - started),
    cfg.scale)
local answer = table.concat(lines, "\n")
for _, q in ipairs(QUESTIONS) do
  local v = q.verdict
  assert(run:log{ event = "decision", probes = q.set, decision = v.decision, reason = v.reason,
                  contrast = v.contrast.mean, contrast_lo = v.contrast.lo,
                  contrast_hi = v.contrast.hi, tolerance = v.tolerance,
                  null_mean = v.null.mean, null_sd = v.null.sd,
                  control = v.control.verdict, control_contrast = v.control.mean,
                  control_lo = v.control.lo, control_hi = v.control.hi, seconds = runtime })
end

-- ---- figures ---------------------------------------------------------------------------

-- A condition's curves, one per seed (seeds share steps; a control's may go on longer).
local function curves_of(c)
  local curves = {}
  for i, r in ipairs(c.runs) do curves[i] = r.curve end
  return curves
end

-- A line per (key, colour, dash) of the mean over a condition's seeds.
local function mean_series(c, specs)
  local series = {}
  for _, s in ipairs(specs) do
    local x, y = experiment.mean_curve(curves_of(c), s[1])
    series[#series + 1] = { name = s[4] or s[1], x = x, y = y, color = report.colors[s[2]],
                            dash = s[3] }
  end
  return series
end

for _, c in ipairs(conditions) do
  local title = string.format("%s (dx %.3g, dy %.3g), mean of %d seed(s)", c.name, c.dx, c.dy, #seeds)
  local d, l = DECIDE .. "_", "lattice_"
  assert(report.save(run:path("curves_" .. c.name .. ".svg"), report.lines{
    title = title, xlabel = "training step", ylim = { 0, 1 }, xlim = { 0, last_step(c) },
    ylabel = "fraction of one-bump samples (one-bump fraction: of all)",
    series = mean_series(c, { { d .. "place_x", 1, false, "place_x " .. DECIDE },
                              { d .. "place_y", 2, false, "place_y " .. DECIDE },
                              { l .. "place_x", 1, true, "place_x lattice" },
                              { l .. "place_y", 2, true, "place_y lattice" },
                              { d .. "snap_x", 3, false, "snapped x " .. DECIDE },
                              { d .. "snap_y", 4, false, "snapped y " .. DECIDE },
                              { d .. "single", 8, true, "one bump" } }),
    hlines = { { y = cfg.threshold, label = "threshold" } } }))
  assert(report.save(run:path("errors_" .. c.name .. ".svg"), report.lines{
    title = title, xlabel = "training step", ylabel = "median |error| among one-bump samples (px)",
    xlim = { 0, last_step(c) },
    series = mean_series(c, { { d .. "err_x", 1, false, "x " .. DECIDE },
                              { d .. "err_y", 2, false, "y " .. DECIDE },
                              { l .. "err_x", 1, true, "x lattice" },
                              { l .. "err_y", 2, true, "y lattice" } }),
    hlines = { { y = cfg.axis_tolerance, label = "axis tolerance" } } }))
end

-- ---- the report ---------------------------------------------------------------------------

local doc = report.new("Imbalance: are x and y learned coupled or factorized?")
doc:question(string.format("When x is sampled %g times more densely than y (and the swap), is the"
  .. " dense coordinate learned much earlier than the sparse one (factorized learning), or are"
  .. " both learned together (coupled learning, the paper's finding)?", cfg.sparse / cfg.dense))
doc:heading("Answer")
doc:answer(answer)
doc:heading("Controls")
local control_rows = {}
for _, q in ipairs(QUESTIONS) do
  local v = q.verdict
  control_rows[#control_rows + 1] = { q.set, "null: balanced data (no dense axis)",
    iv(v.null, "%+.2f"), tolerance_words(v) }
  control_rows[#control_rows + 1] = { q.set, "positive control: " .. control_words(),
    iv(v.control, "%+.2f"), v.control.verdict .. " (must read factorized)" }
  control_rows[#control_rows + 1] = { q.set, "question: x_dense vs y_dense",
    iv(v.contrast, "%+.2f"), v.contrast.verdict .. "; decision: " .. v.decision }
end
doc:table(control_rows, { header = { "probes", "case",
                                     "relative lag (null) or contrast, 95% interval", "reads" } })
doc:paragraph("The null's spread over seeds is the only source of the tolerance; the positive"
  .. " control shows that this rule, with these seeds, probes and metric, returns \"factorized\""
  .. " on a learner built to be factorized. When it does not, the run says it cannot decide.")
doc:heading("What this scale can and cannot say")
doc:paragraph(string.format("At %dx%d, layer 4 is %dx%d. The sparse axis has %d values %g px apart;"
  .. " off50 probes sit %g px and off25 probes %g px from the nearest of them, with a tolerance of"
  .. " %g px, so a bump snapped to a training value scores as wrong. The dense axis (%g px) is"
  .. " finer than the tolerance: its placement is tested, its interpolation is not. %d seeds give"
  .. " a t quantile of %.2f: only lags larger than the tolerance above can be told from the null."
  .. " No layer-4 representation is measured by this script.", cfg.size, cfg.size, cfg.size // 8,
  cfg.size // 8, math.floor(cfg.size / cfg.sparse + 1e-9) + 1, cfg.sparse, 0.5 * cfg.sparse,
  0.25 * cfg.sparse, cfg.axis_tolerance, cfg.dense, #seeds,
  stats.t_quantile(0.975, math.max(1, #seeds - 1))))
doc:heading("Setup")
doc:table({
  { "scale", cfg.scale }, { "image size", cfg.size }, { "bump sigma (px)", cfg.sigma },
  { "denoiser", string.format("unet, width %d, emb %d, attention %s", cfg.width, cfg.emb,
                              cfg.attention_blocks == "" and "none" or cfg.attention_blocks) },
  { "parameters", conditions[1].runs[1].params },
  { "training", string.format("%d steps, batch %d, AdamW lr %g, warm-up %d, EMA %g", cfg.steps,
                              cfg.batch, cfg.lr, cfg.warmup, cfg.ema) },
  { "seeds", cfg.seeds },
  { "evaluation", string.format("every %d steps, three probe sets of up to %d labels (lattice,"
                                .. " off25, off50), %s %d steps, EMA weights; noise seed 1000 *"
                                .. " training seed + set", cfg.every, cfg.probes ^ 2, cfg.sampler,
                                cfg.sample_steps) },
  { "per-axis accuracy", string.format("bump metric: among one-bump samples, within %g px on that"
                                       .. " axis; one-bump fraction reported apart",
                                       cfg.axis_tolerance) },
  { "snapped", "among one-bump samples, the found coordinate nearer the nearest training value"
               .. " than the asked one" },
  { "statistic", string.format("step where place_x and place_y first reach %g (interpolated,"
                               .. " from 0 at step 0); relative lag = (step_y - step_x) / their"
                               .. " mean; decided on lattice probes (placement) and apart on %s"
                               .. " probes (interpolation)", cfg.threshold, DECIDE) },
  { "rule", "scripts/lib/decision.lua: contrast lag(x_dense) - lag(y_dense); tolerance ="
            .. " t quantile * sd(balanced lags) * sqrt(1/n + 1/n); factorized above it, coupled"
            .. " within it when the interval excludes the control's contrast; cannot decide"
            .. " unless the positive control reads factorized" },
}, { header = { "setting", "value" } })
local data_rows = {}
for _, c in ipairs(conditions) do
  data_rows[#data_rows + 1] = { c.name, c.dx, c.dy, math.floor(cfg.size / c.dx + 1e-9) + 1,
                                math.floor(cfg.size / c.dy + 1e-9) + 1, c.runs[1].images,
                                c.withhold and string.format("%s shuffled until %d steps after"
                                                             .. " %s reached %.2f",
                                                             c.withhold == 1 and "x" or "y",
                                                             lead_steps,
                                                             c.withhold == 1 and "y" or "x",
                                                             cfg.threshold)
                                or "-" }
end
doc:table(data_rows, { header = { "condition", "dx", "dy", "x values", "y values", "images",
                                  "labels withheld" } })

doc:heading("Figures")
for _, c in ipairs(conditions) do
  doc:figure("curves_" .. c.name .. ".svg", c.name .. ": per-axis accuracy among one-bump samples"
             .. " on off50 probes (solid) and lattice probes (dashed), snapped fractions, and"
             .. " the one-bump fraction (grey, of all samples); mean over seeds.")
  doc:figure("errors_" .. c.name .. ".svg", c.name .. ": median |error| per axis among one-bump"
             .. " samples, off50 (solid) and lattice (dashed) probes.")
end
for _, c in ipairs(conditions) do
  local r = c.runs[1]
  if r.samples then
    doc:figure(TRAIN .. "/" .. r.name .. "/" .. r.samples, string.format("%s, seed %d, step %d:"
               .. " one sample per off50 probe label (requested place marked).", c.name, r.seed,
               r.steps), 256)
  end
end

doc:heading("Numbers")
local rows = {}
for _, c in ipairs(conditions) do
  for _, set in ipairs(SETS) do
    local x = c.cross[set.name]
    rows[#rows + 1] = { c.name, set.name, iv(x.step_x, "%.0f"), iv(x.step_y, "%.0f"),
                        iv(x.lag, "%+.2f"), iv(final(c, set.name .. "_place_x")),
                        iv(final(c, set.name .. "_place_y")), iv(final(c, set.name .. "_snap_x")),
                        iv(final(c, set.name .. "_snap_y")) }
  end
end
doc:table(rows, { header = { "condition", "probes", "step_x", "step_y", "relative lag",
                             "final place_x", "final place_y", "final snap_x", "final snap_y" },
                  caption = string.format("Steps at which each axis first reaches %.0f%% of"
                            .. " one-bump samples within %g px; finals at step %d (a control's at its"
                            .. " own last step); t intervals"
                            .. " over seeds.", 100 * cfg.threshold, cfg.axis_tolerance, cfg.steps) })
local per_run = {}
for _, c in ipairs(conditions) do
  for i, r in ipairs(c.runs) do
    local l, a = r.curve:last(), c.cross[DECIDE].runs[i]
    -- the counts behind the final fractions (a NaN fraction of none: 0)
    local function count(frac, n) return frac == frac and math.floor(frac * n + 0.5) or 0 end
    local n = r.probes[DECIDE]
    local ones = count(l[DECIDE .. "_single"], n)
    per_run[#per_run + 1] = {
      c.name, r.seed, a.step_x and string.format("%.0f", a.step_x) or "not reached",
      a.step_y and string.format("%.0f", a.step_y) or "not reached",
      a.rel_lag and string.format("%+.2f", a.rel_lag) or "-",
      iv(stats.wilson(ones, n)),
      iv(stats.wilson(count(l[DECIDE .. "_place_x"], ones), ones)),
      iv(stats.wilson(count(l[DECIDE .. "_place_y"], ones), ones)),
      r.steps, string.format("%.0f s", r.train_seconds) }
  end
end
doc:table(per_run, { header = { "condition", "seed", "step_x", "step_y", "relative lag",
                                "final one bump", "final place_x", "final place_y", "steps",
                                "time" },
                     caption = "Each training on the " .. DECIDE .. " probes; Wilson intervals"
                               .. " on its final k of n." })
doc:paragraph("Every evaluation is a row of metrics.jsonl (condition, seed, step and the"
              .. " metrics of each probe set, prefixed lattice_, off25_, off50_);"
              .. " train/<condition>_s<seed>/metrics.jsonl holds the loss.")
doc:paragraph(string.format("The paper reports coupled learning (PAPER.md, finding 2). This run"
                            .. " decides %s, so it %s it.", verdict.decision, agreement))
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
