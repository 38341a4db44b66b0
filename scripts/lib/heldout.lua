-- The rule that calls a held-out probe set generalized or failed, as a
-- pure function of per-seed accuracies (scripts/compositional.lua):
--
--   local heldout = require "heldout"
--   local j = heldout.judge{ held = { 0.9, 0.8, 0.85 }, ["in"] = { 0.95, 0.9, 0.9 },
--                            floor = 0.016, learned = 0.5 }
--   print(j.verdict, j.score.mean, j.score.lo, j.score.hi, j.threshold)
--
-- Per seed, score = (held - floor) / (in - floor): the part of the way from
-- the floor (chance) to in-distribution accuracy that held-out accuracy
-- covers (NaN when in <= floor). Over seeds, with the t interval (95%) of
-- the score:
--   "not learned"             mean in accuracy under `learned`
--   "cannot tell (one seed)"  fewer than two scores
--   "generalizes"             the interval lies at or above 1/2, the
--                             midpoint between floor and in-distribution
--   "fails"                   the interval lies below 1/2
--   "cannot tell"             the interval holds 1/2
-- Also returns the t intervals of held and in accuracy and the threshold in
-- accuracy units (floor + (mean in - floor) / 2), for printing.
local stats = require "stats"

local heldout = {}

function heldout.score(held, ref, floor)
  return ref > floor and (held - floor) / (ref - floor) or 0 / 0
end

function heldout.judge(opts)
  local scores = {}
  for i, h in ipairs(opts.held) do scores[i] = heldout.score(h, opts["in"][i], opts.floor) end
  local j = { floor = opts.floor, acc = stats.t_interval(opts.held),
              ["in"] = stats.t_interval(opts["in"]), score = stats.t_interval(scores) }
  j.threshold = opts.floor + 0.5 * (j["in"].mean - opts.floor)
  if not (j["in"].mean >= opts.learned) then
    j.verdict = "not learned"
  elseif j.score.n < 2 or j.score.lo ~= j.score.lo then
    j.verdict = "cannot tell (one seed)"
  elseif j.score.lo >= 0.5 then
    j.verdict = "generalizes"
  elseif j.score.hi < 0.5 then
    j.verdict = "fails"
  else
    j.verdict = "cannot tell"
  end
  return j
end

return heldout
