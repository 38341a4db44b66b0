-- scripts/lib/experiment.lua: scale presets, seed lists, curves and their
-- crossings, summaries, and one evaluation pass on a tiny untrained model.
local check = require "check"
local experiment = require "experiment"

-- ---- scale presets ------------------------------------------------------------------
-- the scale comes from the command line; here it is set through `arg`
local saved_arg = arg
arg = { [0] = "test", "scale=paper" }
check.raises("scale = 'huge', expected one of: paper, quick", function()
  arg = { [0] = "test", "scale=huge" }
  experiment.config({ a = 1 }, { quick = {}, paper = {} })
end)
arg = { [0] = "test", "scale=paper" }
local cfg = experiment.config({ steps = 10, lr = 1e-3, seeds = "1" },
                              { quick = { steps = 100 }, paper = { steps = 5000, seeds = "1,2,3" } })
arg = saved_arg
check.eq(cfg.scale, "paper", "the scale chosen")
check.eq(cfg.steps, 5000, "the preset replaces the default")
check.eq(cfg.seeds, "1,2,3", "a preset string")
check.eq(cfg.lr, 1e-3, "a default the preset leaves alone")

-- ---- seeds ---------------------------------------------------------------------------
check.eq(table.concat(experiment.seeds("1,2,3"), " "), "1 2 3", "commas")
check.eq(table.concat(experiment.seeds(" 4 , 7 "), " "), "4 7", "spaces")
check.eq(table.concat(experiment.seeds(5), " "), "5", "a number")
check.raises("'x' is not an integer >= 0", experiment.seeds, "1,x")
check.raises("'1.5' is not an integer >= 0", experiment.seeds, "1.5")
check.raises("'-1' is not an integer >= 0", experiment.seeds, "-1")
check.raises("expected at least one seed", experiment.seeds, ",")

-- ---- curves ----------------------------------------------------------------------------
local c = experiment.curve()
for i, v in ipairs{ 0.1, 0.4, 0.8, 0.5, 0.9 } do c:add(100 * i, { acc = v, r2 = 0 / 0 }) end
check.eq(table.concat(c.steps, ","), "100,200,300,400,500", "steps")
check.eq(table.concat(c:values("acc"), ","), "0.1,0.4,0.8,0.5,0.9", "values")
check.eq(c:last().acc, 0.9, "last row")
check.eq(c:crossing("acc", 0.6), 250.0, "interpolated between 200 (0.4) and 300 (0.8)")
check.eq(c:crossing("acc", 0.8), 300, "reached exactly at an evaluation")
check.eq(c:crossing("acc", 0.05), 50.0, "before the first evaluation: from 0 at step 0")
check.eq(c:crossing("acc", 0.95), nil, "never reached")
check.eq(c:crossing("r2", 0.5), nil, "NaN never reaches")
check.eq(c:crossing("acc", 0.05, 0.1), 0, "a start already at the level")
local gap = experiment.curve()
gap:add(100, { acc = 0.2 }); gap:add(200, { acc = 0 / 0 }); gap:add(300, { acc = 0.6 })
check.ok(math.abs(gap:crossing("acc", 0.4) - 200) < 1e-9, "a NaN evaluation is skipped")
check.eq(experiment.curve():crossing("acc", 0.5), nil, "an empty curve")
local json = require "json"
local back = experiment.curve(json.decode(json.encode(gap)))
check.eq(table.concat(back.steps, ","), "100,200,300", "a saved curve's steps")
check.ok(back.rows[2].acc ~= back.rows[2].acc, "a NaN saved as null comes back NaN")
check.ok(back.rows[1].place_x ~= back.rows[1].place_x, "an evaluator key no row had: NaN")
check.eq(back.rows[3].acc, 0.6, "numbers kept")
check.eq(back:crossing("acc", 0.4), gap:crossing("acc", 0.4), "the same crossing")

-- ---- which axis first -------------------------------------------------------------------
-- a curve where acc_x and acc_y rise linearly to 1 at steps tx and ty
local function ramp(tx, ty)
  local cv = experiment.curve()
  for step = 100, 1000, 100 do
    cv:add(step, { acc_x = math.min(1, step / tx), acc_y = math.min(1, step / ty) })
  end
  return cv
end
local cr = experiment.axis_crossings(ramp(500, 1000), 0.6, 1000)
local swapped = experiment.axis_crossings(ramp(500, 1000), 0.6, 1000, "acc_y", "acc_x")
check.ok(math.abs(swapped.lag + 300) < 1e-9, "other keys")
check.ok(math.abs(cr.step_x - 300) < 1e-9 and math.abs(cr.step_y - 600) < 1e-9,
         "crossings at 0.6 of each ramp: " .. cr.step_x .. ", " .. cr.step_y)
check.ok(math.abs(cr.lag - 300) < 1e-9, "lag step_y - step_x")
check.ok(math.abs(cr.rel_lag - 300 / 450) < 1e-9, "relative to the mean step")
check.eq(cr.censored, false, "both reached")
local half = experiment.axis_crossings(ramp(500, 1e9), 0.6, 1000)
check.eq(half.step_y, nil, "y never reached")
check.eq(half.censored, true, "censored")
check.ok(math.abs(half.lag - 700) < 1e-9, "the lag is a bound: end of training - step_x")
local none = experiment.axis_crossings(ramp(1e9, 1e9), 0.6, 1000)
check.eq(none.lag, nil, "no lag when neither is reached")

local function verdict(pairs_, sign)
  local list = {}
  for _, p in ipairs(pairs_) do list[#list + 1] = experiment.axis_crossings(ramp(p[1], p[2]), 0.6, 1000) end
  return (experiment.lag_verdict(list, sign, 0.25))
end
check.eq(verdict({ { 400, 900 }, { 450, 1000 }, { 400, 800 } }, 1), "dense first", "x dense, x first")
check.eq(verdict({ { 400, 900 }, { 450, 1000 } }, -1), "unclear", "y dense, but x first")
check.eq(verdict({ { 900, 400 }, { 1000, 450 } }, -1), "dense first", "y dense, y first")
check.eq(verdict({ { 500, 520 }, { 600, 580 }, { 700, 700 } }, 1), "together", "together")
check.eq(verdict({ { 500, 520 }, { 500, 1000 } }, 1), "unclear", "seeds disagree")
check.eq(verdict({ { 400, 900 }, { 450, 1000 } }, nil), "x first", "no dense axis")
check.eq(verdict({ { 900, 400 }, { 1000, 450 } }, nil), "y first", "no dense axis, y")
check.eq(verdict({ { 500, 520 }, { 1e9, 1e9 } }, 1), "not reached", "one seed reached nothing")
check.eq(verdict({}, 1), "not reached", "no trainings")
local _, lag, rel = experiment.lag_verdict({ cr, cr }, 1, 0.25)
check.ok(math.abs(lag.mean - 300) < 1e-9 and lag.sd == 0 and rel.n == 2, "the lag stats")

-- ---- summaries ---------------------------------------------------------------------------
local st = experiment.stats{ 2, 4, 4, 4, 5, 5, 7, 9, 0 / 0 }
check.eq(st.n, 8, "NaN left out")
check.eq(st.mean, 5.0, "mean")
check.ok(math.abs(st.sd - math.sqrt(32 / 7)) < 1e-12, "sample sd " .. st.sd)
check.eq(st.min, 2, "min")
check.eq(st.max, 9, "max")
check.eq(experiment.stats{ 3 }.sd, 0, "one value: sd 0")
check.eq(experiment.stats{}.n, 0, "no values")
check.eq(experiment.describe(experiment.stats{ 10, 20 }, "%+.0f"), "+15 +- 7 (+10..+20, n = 2)", "describe")
check.eq(experiment.describe(experiment.stats{ 0.5 }, "%.2f"), "0.50 (n = 1)", "describe one")
check.eq(experiment.describe(experiment.stats{}), "n = 0", "describe none")
check.eq(experiment.duration(12.34), "12.3 s", "seconds")
check.eq(experiment.duration(245), "4 min 05 s", "minutes")
check.eq(experiment.duration(3720), "1 h 02 min", "hours")

-- ---- one evaluation pass ---------------------------------------------------------------------
local model = bd.model("unet", { width = 4, size = 8, emb = 16, seed = 1 })
local evaluate, probe = experiment.evaluator{ size = 8, probe_step = 1, sample_steps = 2 }
check.eq(probe.n, 64, "an 8x8 probe")
local row, samples = evaluate(model)
for _, k in ipairs(experiment.row_keys) do
  check.eq(type(row[k]), "number", "row." .. k)
end
check.ok(row.acc_x >= 0 and row.acc_x <= 1, "acc_x in [0, 1]: " .. row.acc_x)
check.ok(row.r2_x_pca >= 0 and row.r2_x_pca <= 1, "r2_x_pca in [0, 1]: " .. row.r2_x_pca)
check.ok(math.abs(row.single - (1 - row.frac_none - row.frac_multi)) < 1e-12, "single")
if row.single < 0.25 then
  check.ok(row.place_x ~= row.place_x, "place_x NaN with few one-bump samples")
end
check.ok(row.snap_x ~= row.snap_x, "no lattice: snap_x NaN")
check.eq(samples.images:shape()[1], 64, "the samples")
check.eq(samples.taps.layer4:shape()[1], 64, "with the layer-4 tap")
local again = evaluate(model)
check.eq(again.acc_x, row.acc_x, "the same noise at every evaluation")
check.eq(again.r2_x, row.r2_x, "the same UMAP")

-- probe labels of one's own, a lattice, no manifold metric, another noise seed
local evaluate2, probe2 = experiment.evaluator{ labels = { { 2.5, 3.5 }, { 4.25, 6.0 } },
                                                lattice = { dx = 1, dy = 1 }, manifold = false,
                                                sample_steps = 2, seed = 7, min_single = 0 }
check.eq(probe2.n, 2, "two labels")
local row2, samples2 = evaluate2(model)
check.ok(row2.r2_x ~= row2.r2_x, "no manifold: r2_x NaN")
check.ok(not samples2.taps or next(samples2.taps) == nil, "no taps drawn")
check.ok(row2.single == 0 or row2.snap_x == row2.snap_x, "a lattice: snap_x a number")

-- ---- one training with its evaluations (experiment.train_one) ---------------------------
local root = os.tmpname()
os.remove(root)
local data = bd.data.bumps{ size = 8, sigma = 1.0, dx = 1, dy = 1 }
local function trained(name, steps, more, max_steps, keep_last)
  local m = bd.model("unet", { width = 4, size = 8, emb = 16, seed = 3 })
  local seen = {}
  local t = experiment.train_one{
    model = m, data = data,
    train = { steps = steps, batch = 8, lr = 1e-3, warmup = 1, ema = 0.9, seed = 5, every = 2,
              run = bd.run(name, { root = root }),
              progress = false },
    evaluate = function() return { loss_free = #seen } end,
    on_row = function(step) seen[#seen + 1] = step end,
    more = more, max_steps = max_steps, keep_last = keep_last,
  }
  return m, t, seen
end
local straight, ts, seen_s = trained("straight", 6)
check.eq(ts.steps, 6, "six steps")
check.eq(table.concat(ts.curve.steps, ","), "2,4,6", "an evaluation every 2 steps")
check.eq(table.concat(seen_s, ","), "2,4,6", "on_row after each")
check.ok(ts.eval_seconds >= 0 and ts.train_seconds >= ts.eval_seconds, "times")
-- trained on past 2 steps while `more` says so: the same weights as straight
local calls = 0
local extended, te = trained("extended", 2, function(curve)
  calls = calls + 1
  return curve:last().loss_free < 2  -- on after the evaluations at 2 and 4, not after 6
end, 10)
check.eq(te.steps, 6, "stopped when more said no")
check.eq(calls, 3, "asked after each stretch")
check.eq(table.concat(te.curve.steps, ","), "2,4,6", "the curve across the stretches")
check.eq(check.count_differences(straight, extended), 0, "the same weights as a straight training")
check.eq(#bd.ckpt.list(root .. "/extended/ckpt"), 0, "its checkpoints removed")
local _, tc = trained("capped", 2, function() return true end, 5, true)
check.eq(tc.steps, 4, "max_steps caps the stretches (a whole `every` each)")
local kept = bd.ckpt.list(root .. "/capped/ckpt")
check.eq(#kept, 1, "keep_last: the last checkpoint only")
check.eq(kept[1] and kept[1].step, 4, "at the last step")
os.execute("rm -rf " .. root)

check.done()
