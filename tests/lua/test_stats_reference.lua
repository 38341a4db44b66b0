-- scripts/lib/stats.lua against scipy.stats: the committed fixture
-- tests/reference/stats_scipy.lua (written by make_stats_reference.py; the
-- versions on its second line) holds scipy's normal and t quantiles and
-- cdfs, t intervals, Welch intervals, Wilson intervals, bootstrap
-- percentiles (numpy.quantile of stats.lua's own resamples), and the t
-- quantiles to 30 digits (mpmath; scipy's t.ppf is off by up to 2e-9).
-- Every value must lie within its family's tolerance on the relative
-- difference |got - want| / max(1, |want|) (the largest measured are
-- printed), and each family's comparison must fail on a perturbed input.
-- CTest passes: bdrun test_stats_reference.lua reference=<stats_scipy.lua>
local check = require "check"
local stats = require "stats"
local cfg = bd.config{ reference = "../../tests/reference/stats_scipy.lua" }
local ref = dofile(cfg.reference)

-- Each family: its fixture rows, a tolerance on the difference, and
-- the pairs { got, want } of one row, its input moved when `moved`.
local FAMILIES = {
  { name = "normal quantile", rows = ref.normal, tol = 1e-13, pairs = function(r, moved)
      return { { stats.normal_quantile(r.p * (moved and 1.001 or 1)), r.quantile } } end },
  { name = "normal cdf", rows = ref.normal_cdf, tol = 1e-14, pairs = function(r, moved)
      return { { stats.normal_cdf(r.z + (moved and 1e-3 or 0)), r.cdf } } end },
  { name = "t quantile", rows = ref.t, tol = 1e-8, pairs = function(r, moved)
      return { { stats.t_quantile(r.p * (moved and 1.001 or 1), r.df), r.quantile } } end },
  { name = "t quantile exact", rows = ref.t, tol = 1e-11, pairs = function(r, moved)
      return { { stats.t_quantile(r.p * (moved and 1.001 or 1), r.df), r.exact } } end },
  { name = "t cdf", rows = ref.t, tol = 1e-12, pairs = function(r, moved)
      return { { stats.t_cdf(r.quantile + (moved and 1e-3 or 0), r.df), r.cdf } } end },
  { name = "t interval", rows = ref.t_interval, tol = 1e-8, pairs = function(r, moved)
      local v = { table.unpack(r.values) }
      if moved then v[1] = v[1] + 0.01 end
      local iv = stats.t_interval(v, r.level)
      return { { iv.lo, r.lo }, { iv.hi, r.hi } } end },
  { name = "Welch interval", rows = ref.welch, tol = 1e-8, pairs = function(r, moved)
      local a = { table.unpack(r.a) }
      if moved then a[1] = a[1] + 0.01 end
      local iv = stats.welch(a, r.b, r.level)
      return { { iv.df, r.df }, { iv.lo, r.lo }, { iv.hi, r.hi } } end },
  { name = "Wilson interval", rows = ref.wilson, tol = 1e-13, pairs = function(r, moved)
      local iv = stats.wilson(r.k, r.n + (moved and 1 or 0), r.level)
      return { { iv.lo, r.lo }, { iv.hi, r.hi } } end },
  { name = "bootstrap", rows = ref.bootstrap, tol = 1e-13, pairs = function(r, moved)
      local iv = stats.bootstrap(r.values, { seed = r.seed + (moved and 1 or 0), reps = r.reps,
                                             level = r.level })
      return { { iv.lo, r.lo }, { iv.hi, r.hi } } end },
}

-- The largest relative difference over a family's rows, and where.
local function worst_gap(f, moved)
  local worst, at = 0, "every row"
  for i, r in ipairs(f.rows) do
    for _, p in ipairs(f.pairs(r, moved)) do
      local g = p[1] == p[2] and 0 or math.abs(p[1] - p[2]) / math.max(1, math.abs(p[2]))
      if not (g <= worst) then worst, at = g, "row " .. i end
    end
  end
  return worst, at
end

for _, f in ipairs(FAMILIES) do
  local g, at = worst_gap(f)
  print(string.format("   %-16s %2d rows: largest difference %.2g (%s; bound %g)", f.name,
                      #f.rows, g, at, f.tol))
  check.ok(g <= f.tol, string.format("%s: difference %.3g at %s, bound %g", f.name, g, at, f.tol))
  local moved = worst_gap(f, true)
  check.ok(moved > f.tol, string.format("%s with its input moved: difference %.3g, expected"
                                        .. " > %g", f.name, moved, f.tol))
end

check.done()
