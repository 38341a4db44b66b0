-- scripts/lib/decision.lua: the imbalance rule on synthetic learning curves
-- built to be coupled and built to be factorized, with a positive control
-- that works and one that does not.
local check = require "check"
local decision = require "decision"
local experiment = require "experiment"

-- A training's curve: place_x and place_y rise as logistic functions with
-- midpoints tx, ty (steps) and width 60, evaluated every 50 steps to 2000;
-- the relative lag of its crossings of 0.6.
local function lag_of(tx, ty)
  local c = experiment.curve()
  for step = 50, 2000, 50 do
    c:add(step, { place_x = 1 / (1 + math.exp(-(step - tx) / 60)),
                  place_y = 1 / (1 + math.exp(-(step - ty) / 60)) })
  end
  return experiment.axis_crossings(c, 0.6, 2000, "place_x", "place_y").rel_lag
end

-- Seed-to-seed jitter: a fixed list of offsets in steps.
local JITTER = { { -40, 10 }, { 25, -30 }, { 5, 35 }, { -15, -20 }, { 30, 5 } }

-- One condition over `seeds` trainings: x learned at mx, y at my (+ jitter * scale).
local function condition(mx, my, seeds, scale)
  local lags = {}
  for s = 1, seeds do
    local j = JITTER[s]
    lags[s] = lag_of(mx + scale * j[1], my + scale * j[2])
  end
  return lags
end

-- A whole run: the null, the question's two data sets and the control.
-- main_lag: steps by which the dense axis leads in the question (0:
-- coupled); bias: a fixed lead of y in every condition; ctrl_lag: the
-- control's lead of the dense axis.
local function run(main_lag, ctrl_lag, opts)
  opts = opts or {}
  local n, bias, scale = opts.seeds or 3, opts.bias or 0, opts.scale or 1
  local main_scale = opts.main_scale or scale
  return {
    balanced = condition(800, 800 - bias, n, scale),
    x_dense = condition(800 - main_lag / 2, 800 + main_lag / 2 - bias, n, main_scale),
    y_dense = condition(800 + main_lag / 2, 800 - main_lag / 2 - bias, n, main_scale),
    control_x = condition(600, 600 + ctrl_lag - bias, n, scale),
    control_y = condition(600 + ctrl_lag, 600 - bias, n, scale),
  }
end

-- built coupled: both axes together, the control factorized
local d = decision.decide(run(0, 700))
check.eq(d.decision, "coupled", "coupled curves: " .. tostring(d.reason))
check.eq(d.control.verdict, "factorized", "the control reads factorized")
check.ok(d.tolerance > 0 and d.contrast.lo < 0 and d.contrast.hi > 0, "an interval around 0")

-- built factorized: the dense axis 500 steps ahead in both data sets
d = decision.decide(run(500, 700))
check.eq(d.decision, "factorized", "factorized curves: " .. tostring(d.reason))
check.ok(d.contrast.mean > d.tolerance, "the contrast above the tolerance")

-- the sparse axis first
check.eq(decision.decide(run(-500, 700)).decision, "reversed", "sparse first")

-- a fixed y-first asymmetry in every condition cancels in the contrast
d = decision.decide(run(0, 700, { bias = 120 }))
check.eq(d.decision, "coupled", "coupled with an asymmetry")
check.ok(d.null.mean < 0, "the null shows the asymmetry: " .. d.null.mean)
check.eq(decision.decide(run(500, 700, { bias = 120 })).decision, "factorized",
         "factorized with an asymmetry")

-- a control that is not factorized: cannot decide, whatever the question says
d = decision.decide(run(0, 0))
check.eq(d.decision, "cannot decide", "a coupled control")
check.ok(d.reason:find("positive control reads coupled", 1, true), d.reason)
check.eq(decision.decide(run(500, -700)).decision, "cannot decide", "a control with the wrong sign")

-- a question far noisier than the null: its interval reaches the control's size
d = decision.decide(run(0, 250, { main_scale = 8, seeds = 3 }))
check.eq(d.decision, "undetermined", "noisy: " .. tostring(d.reason))

-- a training that never reached the threshold on y
local lags = run(0, 700)
lags.x_dense[2] = experiment.axis_crossings(experiment.curve(), 0.6, 2000).rel_lag
d = decision.decide(lags)
check.eq(d.decision, "cannot decide", "not reached")
check.ok(d.reason:find("1 training(s) of x_dense", 1, true), d.reason)

-- one seed: no interval
d = decision.decide(run(0, 700, { seeds = 1 }))
check.eq(d.decision, "cannot decide", "one seed")
check.ok(d.reason:find("at least 2", 1, true), d.reason)
check.eq(d.control.verdict, "not computed", "one seed: the control is not computed")

-- more seeds narrow the tolerance (t quantile and sqrt(1/n) both shrink)
local t3 = decision.decide(run(0, 700, { seeds = 3 })).tolerance
local t5 = decision.decide(run(0, 700, { seeds = 5 })).tolerance
check.ok(t5 < t3, string.format("tolerance with 5 seeds %.3f < with 3 %.3f", t5, t3))

check.done()
