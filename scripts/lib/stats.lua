-- Summaries and intervals the experiment scripts print: the summary of a
-- list (n, mean, sd, min, max), a Wilson interval for an accuracy k of n,
-- a t interval or a seeded bootstrap interval for the mean of per-seed
-- values, and a Welch t interval for a difference of two means.
--
--   local stats = require "stats"
--   local acc = stats.wilson(52, 64)             -- { p, lo, hi, k, n, level }
--   local lag = stats.t_interval{ 0.1, 0.3, 0.2 } -- summary + lo, hi, half
--   local b   = stats.bootstrap(values, { seed = 7 })
--   print(stats.describe(lag, "%+.2f"))         -- "+0.20 [-0.05, +0.45] (t 95%, n = 3)"
--
-- Levels are two-sided confidence levels (default 0.95). An interval that
-- cannot be formed (no values; one value for t) has NaN bounds.
local stats = {}

local NAN = 0 / 0

-- n, mean, sd (n - 1 in the denominator; 0 for one value), min, max of the
-- finite numbers of a list.
function stats.summary(list)
  local xs = {}
  for _, v in ipairs(list) do
    if type(v) == "number" and v == v and math.abs(v) < math.huge then xs[#xs + 1] = v end
  end
  local n = #xs
  if n == 0 then return { n = 0, mean = NAN, sd = NAN, min = NAN, max = NAN } end
  local sum, lo, hi = 0, math.huge, -math.huge
  for _, v in ipairs(xs) do sum, lo, hi = sum + v, math.min(lo, v), math.max(hi, v) end
  local mean, ss = sum / n, 0
  for _, v in ipairs(xs) do ss = ss + (v - mean) ^ 2 end
  return { n = n, mean = mean, sd = n > 1 and math.sqrt(ss / (n - 1)) or 0, min = lo, max = hi,
           values = xs }
end

-- ---- distributions ------------------------------------------------------------------

-- log Gamma(x), x > 0 (Lanczos, g = 7, 9 terms: about 15 digits).
local LANCZOS = { 0.99999999999980993, 676.5203681218851, -1259.1392167224028,
                  771.32342877765313, -176.61502916214059, 12.507343278686905,
                  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7 }
local function log_gamma(x)
  if x < 0.5 then return math.log(math.pi / math.abs(math.sin(math.pi * x))) - log_gamma(1 - x) end
  x = x - 1
  local a, t = LANCZOS[1], x + 7.5
  for i = 2, 9 do a = a + LANCZOS[i] / (x + i - 1) end
  return 0.5 * math.log(2 * math.pi) + (x + 0.5) * math.log(t) - t + math.log(a)
end

-- The continued fraction of the incomplete beta function (modified Lentz).
local function beta_fraction(a, b, x)
  local tiny, c, d = 1e-300, 1, 1 - (a + b) * x / (a + 1)
  if math.abs(d) < tiny then d = tiny end
  d = 1 / d
  local h = d
  for m = 1, 300 do
    local m2 = 2 * m
    local num = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
    d = 1 + num * d; if math.abs(d) < tiny then d = tiny end
    c = 1 + num / c; if math.abs(c) < tiny then c = tiny end
    d = 1 / d; h = h * d * c
    num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
    d = 1 + num * d; if math.abs(d) < tiny then d = tiny end
    c = 1 + num / c; if math.abs(c) < tiny then c = tiny end
    d = 1 / d
    local delta = d * c
    h = h * delta
    if math.abs(delta - 1) < 1e-15 then break end
  end
  return h
end

-- The regularized incomplete beta function I_x(a, b), 0 <= x <= 1.
local function incomplete_beta(a, b, x)
  if x <= 0 then return 0 elseif x >= 1 then return 1 end
  local front = math.exp(log_gamma(a + b) - log_gamma(a) - log_gamma(b)
                         + a * math.log(x) + b * math.log(1 - x))
  if x < (a + 1) / (a + b + 2) then return front * beta_fraction(a, b, x) / a end
  return 1 - front * beta_fraction(b, a, 1 - x) / b
end

-- P(T <= t) for Student's t with df degrees of freedom (df > 0). The tail
-- is I_x(df/2, 1/2) / 2 with x = df / (df + t^2); for t^2 < df (the tail
-- above 0.15) from 1 - I_(1-x)(1/2, df/2), as x rounds to 1 near t = 0.
function stats.t_cdf(t, df)
  local t2 = t * t
  local tail = t2 < df and 0.5 - 0.5 * incomplete_beta(0.5, df / 2, t2 / (df + t2))
               or 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t2))
  return t >= 0 and 1 - tail or tail
end

-- Q(a, x) = 1 - P(a, x), the regularized upper incomplete gamma function,
-- x >= 0: P by its series below a + 1, Q by its continued fraction above
-- (modified Lentz).
local function upper_gamma(a, x)
  if x <= 0 then return 1 elseif x == math.huge then return 0 end
  local front = math.exp(a * math.log(x) - x - log_gamma(a))
  if x < a + 1 then
    local term, sum = 1 / a, 1 / a
    for n = 1, 500 do
      term = term * x / (a + n)
      sum = sum + term
      if math.abs(term) < math.abs(sum) * 1e-16 then break end
    end
    return 1 - front * sum
  end
  local tiny, b = 1e-300, x + 1 - a
  local c, d = 1 / tiny, 1 / b
  local h = d
  for i = 1, 500 do
    local an = -i * (i - a)
    b = b + 2
    d = an * d + b; if math.abs(d) < tiny then d = tiny end
    c = b + an / c; if math.abs(c) < tiny then c = tiny end
    d = 1 / d
    local delta = d * c
    h = h * delta
    if math.abs(delta - 1) < 1e-15 then break end
  end
  return front * h
end

-- P(Z <= z) for the standard normal: erfc(|z| / sqrt 2) = Q(1/2, z^2 / 2).
function stats.normal_cdf(z)
  local erfc = upper_gamma(0.5, z * z / 2)
  return z >= 0 and 1 - erfc / 2 or erfc / 2
end

-- The x where an increasing cdf(x) = p, 0 < p < 1: [-1, 1] widened by
-- doubling until it holds p, then bisection down to adjacent doubles.
local function invert(cdf, p)
  local lo, hi = -1.0, 1.0  -- floats: doubling an integer would wrap
  while lo > -math.huge and cdf(lo) > p do lo = 2 * lo end
  while hi < math.huge and cdf(hi) < p do hi = 2 * hi end
  for _ = 1, 2100 do
    local mid = (lo + hi) / 2
    if mid == lo or mid == hi then break end
    if cdf(mid) < p then lo = mid else hi = mid end
  end
  return (lo + hi) / 2
end

-- The p-quantile of the standard normal, 0 < p < 1.
function stats.normal_quantile(p)
  return invert(stats.normal_cdf, p)
end

-- The p-quantile of Student's t with df degrees of freedom.
function stats.t_quantile(p, df)
  return invert(function(t) return stats.t_cdf(t, df) end, p)
end

-- ---- intervals ---------------------------------------------------------------------

-- The Wilson score interval for a proportion: k successes of n trials.
-- { p = k / n, lo, hi, k, n, level }; NaN for n = 0.
function stats.wilson(k, n, level)
  level = level or 0.95
  local out = { k = k, n = n, level = level, method = "Wilson" }
  if n <= 0 then out.p, out.lo, out.hi = NAN, NAN, NAN; return out end
  local z = stats.normal_quantile((1 + level) / 2)
  local p, z2 = k / n, z * z
  local centre = (p + z2 / (2 * n)) / (1 + z2 / n)
  local half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
  out.p, out.lo, out.hi = p, math.max(0, centre - half), math.min(1, centre + half)
  return out
end

-- The summary of a list (stats.summary) with a t interval on its mean:
-- mean +- t_{(1+level)/2, n-1} sd / sqrt(n) as lo, hi, half.
function stats.t_interval(list, level)
  level = level or 0.95
  local st = stats.summary(list)
  st.level, st.method = level, "t"
  if st.n < 2 then
    st.lo, st.hi, st.half = NAN, NAN, NAN
    return st
  end
  st.half = stats.t_quantile((1 + level) / 2, st.n - 1) * st.sd / math.sqrt(st.n)
  st.lo, st.hi = st.mean - st.half, st.mean + st.half
  return st
end

-- The Welch t interval for mean(a) - mean(b): { diff, lo, hi, half, df,
-- level, a, b (their summaries) }; NaN bounds with fewer than two values in
-- either, or with no spread in both.
function stats.welch(a, b, level)
  level = level or 0.95
  local sa, sb = stats.summary(a), stats.summary(b)
  local out = { a = sa, b = sb, level = level, mean = sa.mean - sb.mean, method = "Welch t",
                n = math.min(sa.n, sb.n), lo = NAN, hi = NAN, half = NAN, df = NAN }
  if sa.n < 2 or sb.n < 2 then return out end
  local va, vb = sa.sd ^ 2 / sa.n, sb.sd ^ 2 / sb.n
  if va + vb == 0 then return out end
  out.df = (va + vb) ^ 2 / (va ^ 2 / (sa.n - 1) + vb ^ 2 / (sb.n - 1))
  out.half = stats.t_quantile((1 + level) / 2, out.df) * math.sqrt(va + vb)
  out.lo, out.hi = out.mean - out.half, out.mean + out.half
  return out
end

-- A generator of integers (splitmix64) from a seed: its own state, so the
-- bootstrap neither reads nor moves math.random's.
local function splitmix(seed)
  local state = math.tointeger(seed) or 0
  return function()
    state = state + 0x9E3779B97F4A7C15
    local z = state
    z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ~ (z >> 27)) * 0x94D049BB133111EB
    return z ~ (z >> 31)
  end
end

-- A seeded generator of uniform numbers in (0, 1) (53 bits of splitmix64),
-- with its own state as the bootstrap's.
function stats.uniforms(seed)
  local next = splitmix(seed)
  return function() return ((next() >> 11) + 0.5) / 2 ^ 53 end
end

-- A standard normal from a generator of uniforms u (stats.uniforms), by
-- Box-Muller (two uniforms a draw).
function stats.normal(u) return math.sqrt(-2 * math.log(u())) * math.cos(2 * math.pi * u()) end

-- The q-quantile of a sorted list, interpolated linearly.
local function quantile(sorted, q)
  local pos = 1 + q * (#sorted - 1)
  local i = math.floor(pos)
  if i >= #sorted then return sorted[#sorted] end
  return sorted[i] + (pos - i) * (sorted[i + 1] - sorted[i])
end

-- The summary of a list with a percentile bootstrap interval on its mean
-- (or on opts.statistic(values)): opts.reps resamples (2000) drawn with
-- opts.seed (1), so the same list and seed give the same interval.
function stats.bootstrap(list, opts)
  opts = opts or {}
  local level, reps = opts.level or 0.95, opts.reps or 2000
  local statistic = opts.statistic or function(xs) return stats.summary(xs).mean end
  local st = stats.summary(list)
  st.level, st.method = level, "bootstrap"
  if st.n == 0 then
    st.lo, st.hi = NAN, NAN
    return st
  end
  local next_int, draws, sample = splitmix(opts.seed or 1), {}, {}
  for r = 1, reps do
    for i = 1, st.n do sample[i] = st.values[(next_int() >> 11) % st.n + 1] end
    draws[r] = statistic(sample)
  end
  table.sort(draws)
  st.lo, st.hi = quantile(draws, (1 - level) / 2), quantile(draws, (1 + level) / 2)
  return st
end

-- "m [lo, hi] (method level, n = k)" with `fmt` for the numbers (an
-- interval from stats.wilson, t_interval, welch or bootstrap); "m (n = 1)"
-- and "n = 0" where there is no interval.
function stats.describe(iv, fmt)
  fmt = fmt or "%.2f"
  local f = function(v) return string.format(fmt, v) end
  local centre = iv.p or iv.mean
  if iv.n == 0 then return "n = 0" end
  if iv.lo ~= iv.lo then return string.format("%s (n = %d)", f(centre), iv.n) end
  local count = iv.k and string.format("%d/%d", iv.k, iv.n) or string.format("n = %d", iv.n)
  return string.format("%s [%s, %s] (%s %.0f%%, %s)", f(centre), f(iv.lo), f(iv.hi), iv.method,
                       100 * iv.level, count)
end

return stats
