-- The rule that decides whether two axes are learned together (coupled) or
-- apart, dense axis first (factorized), from the lags of trainings: pure
-- Lua, so tests can hand it synthetic lags (tests/lua/test_decision.lua).
--
--   local decision = require "decision"
--   local d = decision.decide{ balanced = {..}, x_dense = {..}, y_dense = {..},
--                              control_x = {..}, control_y = {..} }
--   print(d.decision, d.reason)
--
-- Each list holds one lag per training (seed): step_y - step_x, relative to
-- the learning time (experiment.axis_crossings' rel_lag), or nil / NaN for
-- a training that did not reach the threshold on both axes.
--   balanced    the null: dx = dy, no dense axis, so its lags are
--               what noise and any fixed x/y asymmetry give
--   x_dense, y_dense        the question: x dense / y sparse and the swap
--   control_x, control_y    the positive control: the same two data sets,
--               learned dense-axis-first by construction (the sparse axis's
--               label withheld for the first part of training)
--
-- The statistic is the contrast lag(x_dense) - lag(y_dense): factorized
-- learning learns the dense axis first, so the lag is positive with x dense
-- and negative with y dense, and the contrast is positive; coupled learning
-- gives a contrast near 0. A fixed asymmetry between x and y (the same in
-- both data sets) cancels in the contrast.
--
-- The tolerance comes from the null: the half-width that a contrast
-- between two conditions differing only by the null's seed-to-seed spread
-- would have at the given level,
--   tol = t_{(1+level)/2, n0-1} * sd(null) * sqrt(1/n_a + 1/n_b).
-- Verdict on a contrast C with its Welch interval:
--   "factorized"   C > tol        (dense axis first, the right sign)
--   "reversed"     C < -tol       (the sparse axis first)
--   "coupled"      |C| <= tol and the interval's upper end is below the
--                  positive control's contrast (a lag as large as a
--                  factorized learner's is excluded)
--   "undetermined" |C| <= tol but the interval reaches the control's size
--   "not computed" no contrast or no tolerance (fewer than two lags)
-- The decision is the main contrast's verdict only when the positive
-- control reads "factorized" under the same rule; otherwise, or when a
-- training did not reach the threshold, or there are fewer than two lags
-- in a list, it is "cannot decide", with the reason.
local stats = require "stats"

local decision = {}

local KEYS = { "balanced", "x_dense", "y_dense", "control_x", "control_y" }

-- The finite numbers of a list and how many entries were not.
local function finite(list)
  local out, missing = {}, 0
  for i = 1, #list do
    local v = list[i]
    if type(v) == "number" and v == v and math.abs(v) < math.huge then
      out[#out + 1] = v
    else
      missing = missing + 1
    end
  end
  return out, missing
end

-- The contrast mean(a) - mean(b) with its Welch interval, its null
-- tolerance and its verdict (control: the positive control's contrast, or
-- nil when judging the control itself).
local function judge(a, b, null, level, control)
  local c = stats.welch(a, b, level)
  c.tolerance = null.n > 1 and stats.t_quantile((1 + level) / 2, null.n - 1) * null.sd
                * math.sqrt(1 / #a + 1 / #b) or 0 / 0
  if not (c.mean == c.mean and c.tolerance == c.tolerance) then
    c.verdict = "not computed"
  elseif c.mean > c.tolerance then
    c.verdict = "factorized"
  elseif c.mean < -c.tolerance then
    c.verdict = "reversed"
  elseif control == nil or c.hi < control.mean then
    c.verdict = "coupled"
  else
    c.verdict = "undetermined"
  end
  return c
end

-- lags: { balanced =, x_dense =, y_dense =, control_x =, control_y = }
-- (lists of per-training relative lags); level (0.95). Returns { decision,
-- reason, null (t interval of the balanced lags), tolerance, contrast,
-- control (each a Welch interval with tolerance and verdict; NaN where a
-- list has fewer than two lags) }.
function decision.decide(lags, level)
  level = level or 0.95
  local clean, lost = {}, {}
  for _, k in ipairs(KEYS) do
    clean[k], lost[k] = finite(lags[k] or {})
  end
  local out = { level = level, missing = lost }
  out.null = stats.t_interval(clean.balanced, level)
  out.control = judge(clean.control_x, clean.control_y, out.null, level, nil)
  out.contrast = judge(clean.x_dense, clean.y_dense, out.null, level, out.control)
  out.tolerance = out.contrast.tolerance
  for _, k in ipairs(KEYS) do
    if lost[k] > 0 or #clean[k] < 2 then
      out.decision = "cannot decide"
      out.reason = lost[k] > 0
        and string.format("%d training(s) of %s did not reach the threshold on both axes",
                          lost[k], k)
        or string.format("%s has %d lag(s); an interval needs at least 2", k, #clean[k])
      return out
    end
  end
  if out.control.verdict ~= "factorized" then
    out.decision = "cannot decide"
    out.reason = string.format("the positive control reads %s, not factorized: this run could not"
                               .. " have detected factorized learning", out.control.verdict)
    return out
  end
  out.decision = out.contrast.verdict
  out.reason = ({
    factorized = "the contrast is above the null's tolerance: the dense axis is learned first",
    reversed = "the contrast is below minus the tolerance: the sparse axis is learned first",
    coupled = "the contrast is within the null's tolerance and its interval excludes the"
              .. " positive control's contrast",
    undetermined = "the contrast is within the null's tolerance but its interval reaches the"
                   .. " positive control's contrast: too noisy to tell",
  })[out.decision]
  return out
end

return decision
