-- scripts/lib/heldout.lua: the rule classifies per-seed accuracies built
-- to generalize, to fail, to be undecided, not learned, and one seed.
local check = require "check"
local heldout = require "heldout"

local floor, learned = 0.02, 0.5
local function verdict(held, ins)
  return heldout.judge{ held = held, ["in"] = ins, floor = floor, learned = learned }
end

-- held as good as in distribution: generalizes
local g = verdict({ 0.88, 0.80, 0.90 }, { 0.90, 0.85, 0.92 })
check.eq(g.verdict, "generalizes", "held near in")
check.ok(g.score.lo >= 0.5 and g.score.mean > 0.9, "score interval above 1/2")
check.ok(math.abs(g.threshold - (floor + 0.5 * ((0.90 + 0.85 + 0.92) / 3 - floor))) < 1e-12,
         "the threshold is the midpoint of floor and in")
-- held at chance: fails
local f = verdict({ 0.00, 0.03, 0.02 }, { 0.90, 0.85, 0.92 })
check.eq(f.verdict, "fails", "held at chance")
check.ok(f.score.hi < 0.5, "score interval below 1/2")
-- seeds that disagree: the interval holds 1/2
check.eq(verdict({ 0.10, 0.90, 0.50 }, { 0.90, 0.90, 0.90 }).verdict, "cannot tell",
         "seeds that disagree")
-- a model that did not learn the trained labels is not judged
check.eq(verdict({ 0.30, 0.35, 0.40 }, { 0.40, 0.45, 0.40 }).verdict, "not learned",
         "in distribution under learned")
-- one seed: no interval
check.eq(verdict({ 0.9 }, { 0.9 }).verdict, "cannot tell (one seed)", "one seed")
-- the score is relative to the floor and in, NaN without room between them
check.ok(math.abs(heldout.score(0.51, 1.0, 0.02) - 0.5) < 1e-12, "score of the midpoint")
check.ok(heldout.score(0.5, 0.01, 0.02) ~= heldout.score(0.5, 0.01, 0.02), "NaN when in <= floor")
check.done()
