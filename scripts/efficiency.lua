-- How much data does a diffusion model need as the image grows? docs/PAPER.md,
-- finding 3 (the follow-up, Liang, Liu, Ostrow, Fiete 2024): trained on 2D
-- bumps the data needed to reach 60% accuracy grows about as N^2; trained on
-- 1D stripes plus a few 2D examples it grows about as N.
--
--   bdrun scripts/efficiency.lua [scale=quick|standard|paper] [seeds=1,2,3]
--                                [sizes=8,16] [steps=900,1500]
--                                [bumps_sites=2,3,4,5:4,6,9] [stripes_sites=9,17]
--                                [stripes_examples=4,8,16,32:8,16,32] ...
--   bdrun scripts/efficiency.lua shard=0/2 ...   (and shard=1/2: the same sweep)
--
-- Arms, each at every image size N on a ladder of data sets of its own (a
-- lattice of s values per axis has spacing d = N / (s - 1), both edges on
-- it; ladders per size, ':' between sizes):
--   bumps     2D bumps with centres on the lattice: s^2 images; the ladder
--             is of lattices (`bumps_sites`)
--   stripes   1D stripes on one lattice per size (`stripes_sites`, one s per
--             size: vertical at every lattice x, horizontal at every lattice
--             y; the missing coordinate's label is bd.data's null label)
--             plus e 2D bumps at lattice sites chosen by the seed (bd.data's
--             lambda): 2 s + e images; the ladder is of e
--             (`stripes_examples`): how many 2D examples the stripes need
-- Why a ladder of examples, not of stripe lattices: at N = 16 and 1,500
-- steps, stripes on 17, 33 or 65 values with 8 examples stay under 60%
-- (0.38, 0.35, 0.27; finer stripes dilute the examples), while 16 or 32
-- examples beside 17-value stripes reach 0.66 and 0.90 (seed 1): the
-- examples, not the stripes' spacing, decide whether the level is reached.
-- For each arm, N, rung and seed a UNet is trained for the size's fixed budget
-- (steps, one per size, the same for both arms) and then draws one sample
-- per probe label: `probes` positions drawn uniformly in
-- [margin, N - margin]^2 (seeded, the same for every training of a size),
-- asking for a 2D bump in both arms. A sample is correct when it holds one
-- bump within `tolerance` px of the label on both axes (the bump metric; the
-- papers' accuracy). The fraction snapped to a training lattice value
-- (nearer it than to the asked value, per axis) is reported as its own
-- number: at spacings up to 2 tolerance a snapped bump can still count as
-- correct, so accuracy there asks for placement, not interpolation.
--
-- Data needed: for one arm, N and seed, the number of training images n* at
-- which accuracy reaches `level` (0.6, the follow-up's). Accuracy is first
-- made non-decreasing in images (adjacent violators pooled, k over n), then
-- n* is interpolated linearly in log n between the two rungs around the
-- level. Censored when the smallest data set already reaches it (n* at most
-- that) or none does (n* more than the largest); a censored seed has no
-- slope, and an arm is read only when every seed located n* at every size
-- (dropping the censored seeds would bias the slope).
-- The statistic: per arm and seed, the least-squares slope of log n* on
-- log N, with a t interval over seeds.
-- Ideal codes, the references and controls: a snapping oracle that answers
-- each probe with the nearest training value, in 2D for the bumps arm (a
-- memorizer: it needs the 2D lattice, its n* grows with s^2: the paper's
-- N^2) and per axis for the stripes arm (a composer of stripes: it needs
-- no 2D example, its n* grows with 2 s: the paper's N), scored on the same
-- probes on every lattice of 2 to 2N + 1 values, through the same location
-- and fit. Rule: the midpoint of their two slopes (not the nominal 1.5: at
-- N = 8, 16 the lattice's edges pull them to 1.46 and 0.73) splits "near
-- quadratic" (interval above it) from "near linear" (below), "cannot tell"
-- otherwise. The ideal codes must read near quadratic and near linear
-- through it; if either does not, the run cannot decide. The finding agrees
-- when bumps read near quadratic and stripes near linear; disagrees when
-- either reads the other way.
--
-- Writes runs/efficiency/: config.json, metrics.jsonl (a row per training; a
-- row per arm, size and seed with n*; the slopes and the verdict),
-- accuracy_n<N>.svg (accuracy against log2 images per arm), scaling.svg
-- (log2 n* against log2 N with linear and quadratic reference lines),
-- report.html, and train/<condition>_s<seed>/ (each training).
local experiment = require "experiment"
local report = require "report"
local stats = require "stats"
local sweep = require "sweep"

local cfg = experiment.config(sweep.options{
  name = "efficiency",
  sigma = 1.0,
  level = 0.6,          -- the follow-up's "reaches 60% accuracy"
  tolerance = 1.0,      -- px per axis (the papers' accuracy, ours: 1 px)
  margin = 1.0,         -- probes keep this far (px, one sigma) from the image's edges
  probes = 100,
  probe_seed = 7,
  sampler = "ddpm",
  batch = 64,
  warmup = 100,
  arms = "bumps,stripes",
}, {
  -- 8x8 and 16x16 at width 8, no attention, one budget per size: 900 steps
  -- teach 8x8 (the percolation script's development run), 16x16 needs about
  -- 1,500 (scripts/quickstart.lua: 94% at step 1,500). Stripes at 1 px.
  -- 42 trainings, about 11 CPU-s each at N = 8 and 57 at N = 16 (24
  -- CPU-minutes): two one-thread processes (procs=2) fit 20 minutes; 32x32
  -- (4 times the cost a step, 4 times the steps) does not fit.
  quick = { sizes = "8,16", steps = "900,1500", bumps_sites = "2,3,4,5:4,6,9",
            stripes_sites = "9,17", stripes_examples = "4,8,16,32:8,16,32", width = 8,
            emb = 64, attention_blocks = "", lr = 4e-3, ema = 0.99, sample_steps = 25,
            seeds = "1,2,3", procs = 2 },
  -- the follow-up's sizes up to 32x32 with a CPU-sized width (configured, not run here)
  standard = { sizes = "8,16,32", steps = "1500,3000,6000", bumps_sites = "2,3,4,5,6:4,5,6,7,9:5,7,9,11,13,17",
               stripes_sites = "9,17,33", stripes_examples = "2,4,8,16,32:4,8,16,32,64:8,16,32,64,128",
               width = 16, emb = 128, attention_blocks = "down3,up1", lr = 1e-3, ema = 0.995,
               sample_steps = 50, seeds = "1,2,3" },
  -- the paper's net (width 64, attention everywhere); ladder and budgets are ours
  paper = { sizes = "8,16,32", steps = "10000,20000,40000", bumps_sites = "2,3,4,5,6,9:3,4,5,6,7,9,17:5,7,9,11,13,17,33",
            stripes_sites = "9,17,33", stripes_examples = "1,2,4,8,16,32:2,4,8,16,32,64:4,8,16,32,64,128",
            width = 64, emb = 256, attention_blocks = "down1,down2,down3,up1,up2,up3",
            lr = 3e-4, ema = 0.999, sample_steps = 100, seeds = "1,2,3" },
})
local seeds = experiment.seeds(cfg.seeds)
local started = bd.time()

-- A comma-separated list of positive numbers.
local function numbers(text, key)
  local out = {}
  for token in tostring(text):gmatch("[^,%s]+") do
    local v = tonumber(token)
    if not v or v <= 0 then
      error(string.format("%s = '%s': '%s' is not a positive number", key, text, token), 0)
    end
    out[#out + 1] = v
  end
  if #out == 0 then error(string.format("%s = '%s': expected numbers", key, text), 0) end
  return out
end
local sizes, budgets = numbers(cfg.sizes, "sizes"), numbers(cfg.steps, "steps")
if #budgets ~= #sizes then
  error(string.format("steps = '%s' has %d budgets for %d sizes ('%s'); expected one per size",
                      cfg.steps, #budgets, #sizes, cfg.sizes), 0)
end
local ARMS = {
  bumps = "2D bumps on the lattice",
  stripes = "1D stripes on one lattice per size plus a ladder of 2D bumps",
}
local arms = {}
for name in tostring(cfg.arms):gmatch("[^,%s]+") do
  if not ARMS[name] then
    error(string.format("arms = '%s': '%s' is not an arm; expected bumps, stripes", cfg.arms,
                        name), 0)
  end
  arms[#arms + 1] = name
end

-- `list` (numbers from the text of cfg[key]) when each is an integer of at
-- least `least`; raises naming the first that is not.
local function counts(list, key, least, what)
  for _, v in ipairs(list) do
    if math.type(v) ~= "integer" or v < least then
      error(string.format("%s = '%s': '%s' is not %s (an integer of at least %d)", key,
                          tostring(cfg[key]), v, what, least), 0)
    end
  end
  return list
end

-- A ladder: counts per size, the sizes' lists separated by ':'
-- ("2,3,4:3,4,6"), each an integer of at least `least`; sorted.
local function ladder(key, least, what)
  local text, out = tostring(cfg[key]), {}
  for group in (text .. ":"):gmatch("([^:]*):") do
    local list = counts(numbers(group, key), key, least, what)
    table.sort(list)
    out[#out + 1] = list
  end
  if #out ~= #sizes then
    error(string.format("%s = '%s' has %d ladders for %d sizes ('%s'); expected one per size,"
                        .. " separated by ':'", key, text, #out, #sizes, cfg.sizes), 0)
  end
  return out
end

-- The stripes' lattice per size: one count of values per axis each.
local stripe_sites = counts(numbers(cfg.stripes_sites, "stripes_sites"), "stripes_sites", 2,
                            "a count of lattice values")
if #stripe_sites ~= #sizes then
  error(string.format("stripes_sites = '%s' has %d lattices for %d sizes ('%s'); expected one"
                      .. " per size", cfg.stripes_sites, #stripe_sites, #sizes, cfg.sizes), 0)
end

-- The rungs of an arm's ladder per size, fewest images first: conditions
-- { name, arm, size, sites (s), d, examples (e, stripes only), images, steps }.
local function rungs_of(arm)
  local out = {}
  local values = arm == "bumps" and ladder("bumps_sites", 2, "a count of lattice values")
                 or ladder("stripes_examples", 1, "a count of 2D examples")
  for i, N in ipairs(sizes) do
    out[i] = {}
    for _, v in ipairs(values[i]) do
      local c = { size = N, arm = arm, steps = budgets[i] }
      if arm == "bumps" then
        c.name, c.sites, c.images = string.format("bumps_n%d_s%d", N, v), v, v * v
      else
        local s = stripe_sites[i]
        if v > s * s then
          error(string.format("stripes_examples = '%s': at N = %d the stripes' lattice of %d"
                              .. " values per axis has %d sites, fewer than %d 2D examples",
                              cfg.stripes_examples, N, s, s * s, v), 0)
        end
        c.name, c.sites, c.examples = string.format("stripes_n%d_e%d", N, v), s, v
        c.images = 2 * s + v
      end
      c.d = N / (c.sites - 1)
      out[i][#out[i] + 1] = c
    end
  end
  return out
end

local rungs, conditions = {}, {}
for _, arm in ipairs(arms) do rungs[arm] = rungs_of(arm) end
-- the largest size first: the longest trainings start first, so the
-- processes of a sweep end together (and the rungs most likely to miss the
-- level are known first)
for i = #sizes, 1, -1 do
  for _, arm in ipairs(arms) do
    for _, c in ipairs(rungs[arm][i]) do conditions[#conditions + 1] = c end
  end
end

-- ---- data and probes ------------------------------------------------------------------

-- A rung's training set: the lattice of s values per axis, spacing
-- d = N / (s - 1) (both edges on it); the seed chooses the 2D examples.
local function dataset(c, seed)
  local common = { size = c.size, sigma = cfg.sigma, dx = c.d, dy = c.d }
  local bumps = {}
  for k, v in pairs(common) do bumps[k] = v end
  if c.arm == "bumps" then return bd.data.bumps(bumps) end
  bumps.lambda, bumps.seed = c.examples / (c.sites * c.sites), seed
  return bd.data.concat(bd.data.stripes(common), bd.data.bumps(bumps))
end

-- `probes` labels uniform in [margin, N - margin]^2, the same for every
-- training of size N (their own seeded generator).
local function probe_labels(N)
  math.randomseed(cfg.probe_seed, N)
  local labels = {}
  for i = 1, cfg.probes do
    labels[i] = { cfg.margin + (N - 2 * cfg.margin) * math.random(),
                  cfg.margin + (N - 2 * cfg.margin) * math.random() }
  end
  return labels
end

-- ---- one training: a run of the sweep ------------------------------------------------

local function train_one(sub, c, seed)
  local data = dataset(c, seed)
  if data.n ~= c.images then
    error(string.format("%s: the data set holds %d images where %d were expected", c.name, data.n,
                        c.images), 0)
  end
  local model = experiment.unet(cfg, seed, c.size)
  local evaluate, probe = experiment.evaluator{
    labels = probe_labels(c.size), lattice = { dx = c.d, dy = c.d }, sampler = cfg.sampler,
    sample_steps = cfg.sample_steps, tolerance = cfg.tolerance, axis_tolerance = cfg.tolerance,
    manifold = false, seed = 1000 * seed + 1 }
  local t = experiment.train_final{
    model = model, data = data, evaluate = evaluate,
    train = { steps = c.steps, batch = cfg.batch, lr = cfg.lr, warmup = cfg.warmup,
              ema = cfg.ema, seed = seed, run = sub } }
  local row, samples = t.row, t.samples
  local out = { images = data.n, params = t.params,
                train_seconds = t.train_seconds - t.eval_seconds,
                probes = probe.n, correct = math.floor(row.accuracy * probe.n + 0.5),
                single = row.single, snap_x = row.snap_x, snap_y = row.snap_y,
                error = row.median_error }
  if seed == seeds[1] then
    experiment.save_samples(sub:path("samples.png"), samples.images, probe,
                            math.max(1, 64 // c.size))
    out.samples = "samples.png"
  end
  bd.log.info("%s seed %d: %d images, %d steps; %d/%d correct, one bump %.2f", c.name, seed,
              data.n, c.steps, out.correct, probe.n, row.single)
  return out
end

-- ---- the sweep ------------------------------------------------------------------------------

local TRAIN = "train"
local marks = sweep.run{ name = cfg.name, dir = "runs/" .. cfg.name .. "/" .. TRAIN,
                         conditions = conditions, seeds = seeds, config = cfg, train = train_one }
if not marks then return end

local NUMBERS = { "single", "snap_x", "snap_y", "error" } -- NaN came back from JSON as nil
local by_name, runtime = {}, 0
for _, m in ipairs(marks) do
  for _, k in ipairs(NUMBERS) do m.results[k] = m.results[k] or 0 / 0 end
  m.results.seed = m.seed
  by_name[m.condition.name] = by_name[m.condition.name] or {}
  table.insert(by_name[m.condition.name], m.results)
  runtime = runtime + m.seconds
end
local function results(c) return by_name[c.name] end

-- the report's run is made again from the sweep's marks each time: it starts over
local run = bd.run(cfg.name, { overwrite = true })
local saved = {}
for k, v in pairs(cfg) do saved[k] = v end
assert(run:save_config(saved))
for _, m in ipairs(marks) do
  local line = { event = "training", arm = m.condition.arm, size = m.condition.size,
                 sites = m.condition.sites, examples = m.condition.examples,
                 d = m.condition.d, seed = m.seed }
  for k, v in pairs(m.results) do line[k] = v end
  assert(run:log(line))
end

-- ---- data needed -------------------------------------------------------------------------

-- Accuracy made non-decreasing in images: adjacent violators are pooled
-- (their correct answers over their probes), so a lucky small data set
-- cannot place n* alone. points: { images, correct, probes } sorted by
-- images -> the pooled accuracy of each point.
local function monotone(points)
  local blocks = {} -- { k, n, count }
  for _, p in ipairs(points) do
    blocks[#blocks + 1] = { k = p[2], n = p[3], count = 1 }
    while #blocks > 1 and blocks[#blocks - 1].k * blocks[#blocks].n
                          > blocks[#blocks].k * blocks[#blocks - 1].n do
      local top = table.remove(blocks)
      local below = blocks[#blocks]
      below.k, below.n, below.count = below.k + top.k, below.n + top.n, below.count + top.count
    end
  end
  local out = {}
  for _, b in ipairs(blocks) do
    for _ = 1, b.count do out[#out + 1] = b.k / b.n end
  end
  return out
end

-- The images at which the pooled accuracy first reaches the level,
-- interpolated linearly in log images between the two rungs around it; nil,
-- why and the bound when it is censored: at most the smallest data set
-- (it reaches the level already) or more than the largest (none does).
local function needed(points)
  table.sort(points, function(a, b) return a[1] < b[1] end)
  local acc = monotone(points)
  for i, p in ipairs(points) do
    if acc[i] >= cfg.level then
      if i == 1 then return nil, "at most " .. p[1] .. " (the smallest data set reaches it)" end
      local q, f = points[i - 1], (cfg.level - acc[i - 1]) / (acc[i] - acc[i - 1])
      return math.exp(math.log(q[1]) + f * (math.log(p[1]) - math.log(q[1])))
    end
  end
  return nil, "more than " .. points[#points][1] .. " (no data set reaches it)"
end

-- The least-squares slope of log y on log x; NaN unless every y is a number.
local function slope(xs, ys)
  local lx, ly = {}, {}
  for i = 1, #xs do
    if ys[i] and ys[i] == ys[i] then lx[#lx + 1], ly[#ly + 1] = math.log(xs[i]), math.log(ys[i]) end
  end
  if #lx < 2 or #lx < #xs then return 0 / 0 end
  local mx, my = stats.summary(lx).mean, stats.summary(ly).mean
  local sxy, sxx = 0, 0
  for i = 1, #lx do
    sxy, sxx = sxy + (lx[i] - mx) * (ly[i] - my), sxx + (lx[i] - mx) ^ 2
  end
  return sxy / sxx
end

-- The ideal codes: a snapping oracle answers each probe with the nearest
-- training value, in 2D for the bumps arm (a memorizer: it needs the
-- lattice in 2D, s^2 images, the paper's N^2) and per axis for the stripes
-- arm (a composer of the stripes: the same lattice per axis and no 2D
-- example, 2 s images, the paper's N); scored on the same probes on every
-- lattice of 2 to 2N + 1 values, its n* goes through the same location and
-- fit.
local ORACLES = { bumps = "the nearest training site in 2D",
                  stripes = "the nearest stripe on each axis" }
local function oracle_correct(N, s)
  local d, k = N / (s - 1), 0
  for _, label in ipairs(probe_labels(N)) do
    local near = true
    for _, v in ipairs(label) do
      near = near and math.abs(v - d * math.floor(v / d + 0.5)) <= cfg.tolerance
    end
    if near then k = k + 1 end
  end
  return k
end
local controls = {}
for arm in pairs(ARMS) do
  local ys = {}
  for i, N in ipairs(sizes) do
    local points = {}
    for s = 2, 2 * N + 1 do
      points[#points + 1] = { arm == "bumps" and s * s or 2 * s, oracle_correct(N, s),
                              cfg.probes }
    end
    ys[i] = needed(points) or 0 / 0
  end
  controls[arm] = { slope = slope(sizes, ys), needed = ys,
                    expected = arm == "bumps" and "near quadratic" or "near linear" }
end

-- The rule's cut: the midpoint of the two ideal codes' slopes. At small N
-- the lattice's edges (s = N/d + 1) pull them below the nominal 2 and 1
-- (N = 8, 16 with 100 probes: 1.46 and 0.73), so the nominal midpoint 1.5
-- would read even the 2D memorizer as "cannot tell".
local CUT = (controls.bumps.slope + controls.stripes.slope) / 2
-- The rule on a slope's interval [lo, hi] (an exact value: lo = hi).
local function read(lo, hi)
  if lo > CUT then return "near quadratic" end
  if hi < CUT then return "near linear" end
  return "cannot tell" -- also when the interval is NaN
end
-- the controls: the ideal codes through the same rule
for _, c in pairs(controls) do
  c.reads = read(c.slope, c.slope)
  c.ok = c.reads == c.expected
end

local need, slopes = {}, {}
for _, arm in ipairs(arms) do
  need[arm] = {}
  local per_seed = {}
  for _, seed in ipairs(seeds) do
    need[arm][seed] = {}
    local ys = {}
    for i, N in ipairs(sizes) do
      local points = {}
      for _, c in ipairs(rungs[arm][i]) do
        for _, r in ipairs(results(c)) do
          if r.seed == seed then points[#points + 1] = { r.images, r.correct, r.probes } end
        end
      end
      local n, why = needed(points)
      need[arm][seed][N] = { n = n, why = why }
      ys[i] = n or 0 / 0
      assert(run:log{ event = "needed", arm = arm, size = N, seed = seed, images = n,
                      censored = why })
    end
    per_seed[#per_seed + 1] = slope(sizes, ys)
  end
  -- a seed whose n* is censored at a size has no slope; dropping it would
  -- bias the rest, so the arm is read only when every seed located every size
  slopes[arm] = stats.t_interval(per_seed)
  slopes[arm].reads = slopes[arm].n == #seeds and read(slopes[arm].lo, slopes[arm].hi)
                      or "cannot tell"
end

local decision, reason
local controls_ok = #sizes >= 2
for _, arm in ipairs(arms) do controls_ok = controls_ok and controls[arm].ok end
if not controls_ok then
  decision, reason = "cannot decide", "a control does not read as built (or fewer than two sizes)"
elseif not (slopes.bumps and slopes.stripes) then
  decision, reason = "cannot decide", "both arms are needed for the comparison"
elseif slopes.bumps.reads == "near linear" or slopes.stripes.reads == "near quadratic" then
  decision, reason = "disagrees", "an arm's slope reads the other way"
elseif slopes.bumps.reads == "near quadratic" and slopes.stripes.reads == "near linear" then
  decision, reason = "agrees", "bumps' data grows near quadratically, stripes' near linearly"
else
  decision, reason = "cannot decide", "a slope's interval straddles the cut or a size's data"
                                      .. " needed was not located"
end

-- ---- numbers in words --------------------------------------------------------------------

local function iv(x, fmt) return stats.describe(x, fmt or "%.2f") end
local lines = {}
local function say(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
say("answer: %s (%s)", decision, reason)
for _, arm in ipairs(arms) do
  say("  %s (%s): slope of log images needed on log N %s, located in %d of %d seeds: %s", arm,
      ARMS[arm], iv(slopes[arm]), slopes[arm].n, #seeds, slopes[arm].reads)
  for _, seed in ipairs(seeds) do
    local parts = {}
    for i, N in ipairs(sizes) do
      local v, text = need[arm][seed][N], nil
      if v.n and arm == "stripes" then
        text = string.format("%.0f (%.1f of them 2D)", v.n, v.n - 2 * stripe_sites[i])
      end
      parts[#parts + 1] = string.format("N %d: %s", N, text or v.n and string.format("%.0f", v.n)
                                                      or v.why)
    end
    say("    seed %d: images to reach %.0f%%: %s", seed, 100 * cfg.level,
        table.concat(parts, "; "))
  end
end
say("controls (ideal codes on every lattice, through the same location, fit and rule; the"
    .. " rule's cut %.2f is the midpoint of their slopes):", CUT)
for _, arm in ipairs(arms) do
  local c, parts = controls[arm], {}
  for i, N in ipairs(sizes) do parts[i] = string.format("N %d: %.0f", N, c.needed[i]) end
  say("  %s (%s): images needed %s; slope %.2f reads %s (must read %s)", arm, ORACLES[arm],
      table.concat(parts, ", "), c.slope, c.reads, c.expected)
end
say("accuracy (one bump within %g px on both axes, Wilson 95%%, pooled over %d seeds):",
    cfg.tolerance, #seeds)
for i = #sizes, 1, -1 do
  for _, arm in ipairs(arms) do
    for _, c in ipairs(rungs[arm][i]) do
      local k, n, snaps = 0, 0, {}
      for _, r in ipairs(results(c)) do
        k, n = k + r.correct, n + r.probes
        snaps[#snaps + 1] = (r.snap_x + r.snap_y) / 2
      end
      say("  N %d %s d %.3g%s (%d images): %s, snapped %s", c.size, arm, c.d,
          c.examples and string.format(", %d 2D examples", c.examples) or "", c.images,
          iv(stats.wilson(k, n)), report.format(stats.summary(snaps).mean))
    end
  end
end
say("PAPER.md finding 3 (data needed grows as N^2 for bumps, as N for stripes plus a few 2D"
    .. " examples): this run %s", decision == "agrees" and "agrees with it" or
    decision == "disagrees" and "disagrees with it" or "can neither confirm nor refute it")
say("%d trainings: %s of training and evaluation; this process %s (scale %s)", #marks,
    experiment.duration(runtime), experiment.duration(bd.time() - started), cfg.scale)
local answer = table.concat(lines, "\n")
local row = { event = "decision", decision = decision, reason = reason, cut = CUT }
for _, arm in ipairs(arms) do
  row[arm .. "_slope"], row[arm .. "_lo"], row[arm .. "_hi"] = slopes[arm].mean, slopes[arm].lo,
                                                               slopes[arm].hi
  row[arm .. "_reads"], row[arm .. "_control"] = slopes[arm].reads, controls[arm].slope
end
assert(run:log(row))

-- ---- figures ------------------------------------------------------------------------------

local log2 = function(v) return math.log(v, 2) end
for i, N in ipairs(sizes) do
  local series = {}
  for a, arm in ipairs(arms) do
    local xs, ys = {}, {}
    for _, c in ipairs(rungs[arm][i]) do
      local k, n = 0, 0
      for _, r in ipairs(results(c)) do k, n = k + r.correct, n + r.probes end
      xs[#xs + 1], ys[#ys + 1] = log2(c.images), k / n
    end
    series[#series + 1] = { name = arm, x = xs, y = ys, color = report.colors[a] }
  end
  assert(report.save(run:path(string.format("accuracy_n%d.svg", N)), report.lines{
    title = string.format("%dx%d: accuracy after %d steps (pooled over seeds)", N, N,
                          budgets[i]),
    xlabel = "log2 training images", ylabel = "accuracy", ylim = { 0, 1 }, series = series,
    hlines = { { y = cfg.level, label = "level" } } }))
end
local series, lx = {}, {}
for i, N in ipairs(sizes) do lx[i] = log2(N) end
for a, arm in ipairs(arms) do
  local ys = {}
  for i, N in ipairs(sizes) do
    local logs = {}
    for _, seed in ipairs(seeds) do
      local n = need[arm][seed][N].n
      if n then logs[#logs + 1] = log2(n) end
    end
    local m = stats.summary(logs)
    ys[i] = m.n == #seeds and m.mean or 0 / 0 -- log2 of the geometric mean
  end
  series[#series + 1] = { name = arm .. " (geometric mean)", x = lx, y = ys,
                          color = report.colors[a] }
  local first = ys[1]
  if first == first then
    for p = 1, 2 do
      local ref = {}
      for i = 1, #sizes do ref[i] = first + p * (lx[i] - lx[1]) end
      series[#series + 1] = { name = string.format("%s x N^%d", arm, p), x = lx, y = ref,
                              color = report.colors[a + 2 * p], dash = true }
    end
  end
end
assert(report.save(run:path("scaling.svg"), report.lines{
  title = string.format("images needed to reach %.0f%% accuracy", 100 * cfg.level),
  xlabel = "log2 N", ylabel = "log2 images needed", series = series }))

-- ---- the report ----------------------------------------------------------------------------

local doc = report.new("Data efficiency: how does the data needed grow with the image size?")
doc:question(string.format("How many training images does a model need to reach %.0f%%"
  .. " accuracy as the image size N grows, trained on 2D bumps, or on 1D stripes plus a few 2D"
  .. " examples? The follow-up paper finds about N^2 for bumps and about N for stripes.",
  100 * cfg.level))
doc:heading("Answer")
doc:answer(answer)
doc:heading("Controls")
local control_rows = {}
for _, arm in ipairs(arms) do
  local c = controls[arm]
  local parts = {}
  for i, N in ipairs(sizes) do parts[i] = string.format("%.0f", c.needed[i]) end
  control_rows[#control_rows + 1] = { arm, "snapping oracle: " .. ORACLES[arm],
    table.concat(parts, ", "), string.format("%.2f", c.slope),
    c.reads .. (c.ok and " (as built)" or " (NOT as built)") }
end
doc:table(control_rows, { header = { "arm", "case", "images needed per N", "slope", "reads" } })
doc:paragraph("The controls answer each probe with the nearest training value (in 2D for the bumps"
  .. " arm, per axis for the stripes arm), so their data needed grows with the lattice they need:"
  .. " in 2D for one, on each axis for the other. Their accuracies on every lattice of 2 to 2N + 1"
  .. " values per axis go through the same pooling, interpolation, fit and rule as the models';"
  .. string.format(" the rule's cut, %.2f, is the midpoint of their slopes. At small N the lattice's"
  .. " edges pull both below the nominal 2 and 1, so the nominal"
  .. " midpoint 1.5 would not tell them apart.", CUT))
doc:heading("What this scale can and cannot say")
doc:paragraph(string.format("Sizes %s with budgets of %s steps; %d seeds give a t quantile of"
  .. " %.2f, so only slopes far from the cut can be read. The ladders (bumps: lattice values per"
  .. " axis %s; stripes: 2D examples %s beside stripes on %s values per axis; ':' between sizes)"
  .. " locate the data needed between two trainings,"
  .. " after pooling rungs whose accuracy falls as data grows; when the smallest data set already"
  .. " reaches the level, or none does, that size's data needed is censored, the seed has no"
  .. " slope and the arm is not read. At spacings up to %g px a bump snapped to a training value"
  .. " can count as correct.", cfg.sizes, cfg.steps, #seeds,
  stats.t_quantile(0.975, math.max(1, #seeds - 1)), cfg.bumps_sites, cfg.stripes_examples,
  cfg.stripes_sites, 2 * cfg.tolerance))
doc:heading("Setup")
doc:table({
  { "scale", cfg.scale }, { "sizes", cfg.sizes }, { "budgets (steps)", cfg.steps },
  { "lattice values per axis, bumps", cfg.bumps_sites },
  { "lattice values per axis, stripes", cfg.stripes_sites }, { "sigma (px)", cfg.sigma },
  { "arms", table.concat(arms, ", ") }, { "2D examples with the stripes", cfg.stripes_examples },
  { "denoiser", string.format("unet, width %d, emb %d, attention %s", cfg.width, cfg.emb,
                              cfg.attention_blocks == "" and "none" or cfg.attention_blocks) },
  { "training", string.format("batch %d, AdamW lr %g, warm-up %d, EMA %g", cfg.batch, cfg.lr,
                              cfg.warmup, cfg.ema) },
  { "seeds", cfg.seeds },
  { "probes", string.format("%d uniform positions in [%g, N - %g]^2 (seed %d), %s %d steps;"
                            .. " tolerance %g px per axis", cfg.probes, cfg.margin, cfg.margin,
                            cfg.probe_seed, cfg.sampler, cfg.sample_steps, cfg.tolerance) },
}, { header = { "setting", "value" } })
doc:heading("Figures")
doc:figure("scaling.svg", "Images needed to reach the level against N (log2 both; geometric"
           .. " mean over seeds where every seed located it) with lines of slope 1 and 2"
           .. " through the smallest size.")
for _, N in ipairs(sizes) do
  doc:figure(string.format("accuracy_n%d.svg", N), string.format("%dx%d: accuracy against"
             .. " training images, per arm.", N, N))
end
doc:heading("Numbers")
local rows = {}
for _, m in ipairs(marks) do
  local r = m.results
  rows[#rows + 1] = { m.condition.arm, m.condition.size, string.format("%.3g", m.condition.d),
                      m.condition.examples or "", m.seed, r.images,
                      iv(stats.wilson(r.correct, r.probes)), r.single, (r.snap_x + r.snap_y) / 2,
                      string.format("%.0f s", r.train_seconds) }
end
doc:table(rows, { header = { "arm", "N", "d", "2D examples", "seed", "images", "accuracy",
                             "one bump", "snapped", "time" },
                  caption = "Each training; Wilson intervals on its k of n." })
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
