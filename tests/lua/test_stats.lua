-- scripts/lib/stats.lua: distributions against tabulated values, intervals
-- against hand-computed ones, the seeded bootstrap.
local check = require "check"
local stats = require "stats"

local function near(got, want, tol, what)
  check.ok(math.abs(got - want) <= tol, string.format("%s: got %.9g, expected %.9g", what, got, want))
end

-- ---- distributions (tables of the normal and of Student's t) ----------------------------
near(stats.normal_cdf(0), 0.5, 1e-7, "Phi(0)")
near(stats.normal_cdf(1.959964), 0.975, 1e-6, "Phi(1.96)")
near(stats.normal_cdf(-1), 0.1586553, 1e-6, "Phi(-1)")
check.eq(stats.normal_cdf(math.huge), 1, "Phi(inf)")
check.eq(stats.normal_cdf(-math.huge), 0, "Phi(-inf)")
near(stats.normal_quantile(0.975), 1.959963984540054, 1e-14, "z 0.975 (the old erfc fit: 3e-8 off)")
near(stats.normal_quantile(0.95), 1.644854, 1e-5, "z 0.95")
near(stats.t_quantile(0.975, 1), 12.706205, 1e-4, "t 0.975, df 1")
near(stats.t_quantile(0.975, 2), 4.302653, 1e-5, "t 0.975, df 2")
near(stats.t_quantile(0.975, 10), 2.228139, 1e-5, "t 0.975, df 10")
near(stats.t_quantile(0.95, 4), 2.131847, 1e-5, "t 0.95, df 4")
local t25 = stats.t_quantile(0.975, 2.5)
check.ok(t25 < 4.302653 and t25 > 3.182446, "t 0.975 at df 2.5 between df 2 and df 3: " .. t25)
near(stats.t_cdf(0, 3), 0.5, 1e-12, "t cdf at 0")
near(stats.t_cdf(-2.228139, 10), 0.025, 1e-6, "t cdf lower tail")
near(stats.t_quantile(0.975, 1e6), 1.959964, 1e-4, "t tends to z")
near(stats.t_quantile(1e-6, 1), -318309.886, 1e-3, "beyond +-1e4 (the old bracket)")
check.ok(math.abs(stats.t_quantile(0.5, 1000)) < 1e-15, "the median 0 (was -2.4e-7)")

-- ---- summary ----------------------------------------------------------------------------
local st = stats.summary{ 2, 4, 4, 4, 5, 5, 7, 9, 0 / 0, math.huge }
check.eq(st.n, 8, "NaN and inf left out")
check.eq(st.mean, 5.0, "mean")
near(st.sd, math.sqrt(32 / 7), 1e-12, "sample sd")
check.eq(require("experiment").stats, stats.summary, "experiment.stats is this one")

-- ---- Wilson ------------------------------------------------------------------------------
-- 8 of 10 at 95%: centre (0.8 + 1.9208/10) / 1.38415, half 1.95996 / 1.38415 *
-- sqrt(0.016 + 0.0096) -> [0.4902, 0.9433] (a textbook example)
local w = stats.wilson(8, 10)
near(w.lo, 0.4902, 1e-4, "Wilson 8/10 lo")
near(w.hi, 0.9433, 1e-4, "Wilson 8/10 hi")
check.eq(w.p, 0.8, "Wilson p")
local w0 = stats.wilson(0, 20)
check.eq(w0.lo, 0, "0 of 20: lo 0")
near(w0.hi, 0.1611, 1e-4, "0 of 20: hi")
local w1 = stats.wilson(20, 20)
check.eq(w1.hi, 1, "20 of 20: hi 1")
near(w1.lo, 1 - 0.1611, 1e-4, "20 of 20: lo mirrors 0 of 20")
check.ok(stats.wilson(0, 0).lo ~= stats.wilson(0, 0).lo, "n = 0: NaN")
check.ok(stats.wilson(32, 64, 0.99).lo < stats.wilson(32, 64).lo, "a wider level")

-- ---- t interval -------------------------------------------------------------------------
local t = stats.t_interval{ 1, 2, 3 }
near(t.half, 4.302653 * 1 / math.sqrt(3), 1e-5, "t half-width, n = 3, sd 1")
near(t.lo, 2 - t.half, 1e-12, "lo")
check.ok(stats.t_interval{ 5 }.lo ~= stats.t_interval{ 5 }.lo, "one value: no interval")
check.eq(stats.t_interval{ 4, 4 }.half, 0, "no spread: a zero-width interval")

-- ---- Welch ---------------------------------------------------------------------------------
-- a = {1, 2, 3} (var 1), b = {4, 6, 8} (var 4): se^2 = 1/3 + 4/3 = 5/3;
-- df = (5/3)^2 / ((1/3)^2 / 2 + (4/3)^2 / 2) = 2.9412
local d = stats.welch({ 1, 2, 3 }, { 4, 6, 8 })
near(d.mean, -4, 1e-12, "difference of means")
near(d.df, (5 / 3) ^ 2 / ((1 / 9 + 16 / 9) / 2), 1e-9, "Welch df")
near(d.half, stats.t_quantile(0.975, d.df) * math.sqrt(5 / 3), 1e-9, "Welch half-width")
check.ok(d.lo < d.mean and d.mean < d.hi, "the difference inside")
check.ok(stats.welch({ 1 }, { 2, 3 }).lo ~= stats.welch({ 1 }, { 2, 3 }).lo, "one value: NaN")

-- ---- bootstrap ---------------------------------------------------------------------------
local xs = { 0.1, 0.4, 0.35, 0.8, 0.2, 0.55, 0.6, 0.3 }
local b1 = stats.bootstrap(xs, { seed = 7 })
local b2 = stats.bootstrap(xs, { seed = 7 })
local b3 = stats.bootstrap(xs, { seed = 8 })
check.eq(b1.lo, b2.lo, "the same seed, the same interval")
check.ok(b1.lo ~= b3.lo or b1.hi ~= b3.hi, "another seed, another draw")
check.ok(b1.lo < b1.mean and b1.mean < b1.hi, "the mean inside: " .. stats.describe(b1))
local tx = stats.t_interval(xs)
check.ok(math.abs(b1.hi - b1.lo - (tx.hi - tx.lo)) < 0.5 * (tx.hi - tx.lo),
         "about as wide as the t interval")
math.randomseed(5); local r1 = math.random()
math.randomseed(5); stats.bootstrap(xs); local r2 = math.random()
check.eq(r1, r2, "math.random is left alone")
local same = stats.bootstrap({ 3, 3, 3 })
check.eq(same.lo, 3, "no spread: lo")
check.eq(same.hi, 3, "no spread: hi")
local median = stats.bootstrap(xs, { statistic = function(v)
  table.sort(v); return (v[4] + v[5]) / 2 end })
check.ok(median.lo <= median.hi, "another statistic")

-- ---- describe ---------------------------------------------------------------------------
check.eq(stats.describe(stats.wilson(8, 10), "%.2f"), "0.80 [0.49, 0.94] (Wilson 95%, 8/10)", "Wilson")
check.eq(stats.describe(stats.t_interval{ 1, 2, 3 }, "%+.1f"), "+2.0 [-0.5, +4.5] (t 95%, n = 3)", "t")
check.eq(stats.describe(stats.t_interval{ 0.5 }), "0.50 (n = 1)", "one value")
check.eq(stats.describe(stats.t_interval{}), "n = 0", "none")

check.done()
