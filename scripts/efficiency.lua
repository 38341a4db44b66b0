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
--   alone     the stripes arm's 2D examples without the stripes (the same
--             seed's sites, the same ladder of e): e images. Do the stripes
--             reduce the 2D examples needed? At N = 16 (seed 1, 1,500
--             steps) 16 examples reached 0.66 beside the stripes and 0.51
--             alone, 32 reached 0.90 and 0.91: without this arm nothing in
--             a run says whether the stripes help.
-- Why a ladder of examples, not of stripe lattices: at N = 16 and 1,500
-- steps, stripes on 17, 33 or 65 values with 8 examples stay under 60%
-- (0.38, 0.35, 0.27; finer stripes dilute the examples), while more
-- examples reach it: the examples decide whether the level is reached.
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
-- Data needed: for one arm, N and seed, the count at which accuracy
-- reaches `level` (0.6, the follow-up's): n* in images, and for the
-- stripes and alone arms e* in 2D examples. Accuracy is first made
-- non-decreasing in the count (adjacent violators pooled, k over n), then
-- the count is interpolated linearly in its log between the two rungs
-- around the level. Censored when the smallest data set already reaches it
-- (at most that) or none does (more than the largest); a censored seed has
-- no slope or difference, and a statistic is read only when every seed
-- located every count it uses (dropping censored seeds would bias it).
-- The statistics, each of one quantity, with t intervals over seeds:
--   bumps: the slope of log n* on log N. Read against the midpoint of two
--     ideal codes' slopes, snapping oracles that answer each probe with the
--     nearest training value on every lattice of 2 to 2N + 1 values: in 2D
--     (a memorizer, s^2 images: the paper's N^2) and per axis (a composer
--     of stripes, 2 s images: the paper's N); above it "near quadratic",
--     below "near linear" (not the nominal 1.5: at N = 8, 16 the lattice's
--     edges pull the two to 1.46 and 0.73).
--   stripes, alone: the slope of log e* on log N. Read against the
--     midpoint of the ideal composer's (it needs no 2D example beside the
--     stripes at any N: flat, 0) and the 2D memorizer's of the same seed's
--     example sites (the nearest example in 2D: it needs the 2D lattice
--     covered, its e* grows about as N^2): below "near flat", above "near
--     the memorizer".
--   the stripes' saving at each N: e*_alone - e*_stripes, paired by seed:
--     above 0 "fewer beside the stripes", below "more", else "cannot
--     tell". A learner that ignores the stripes (the memorizer) saves 0;
--     the composer beside the stripes against the memorizer alone saves
--     all the memorizer's examples: the two controls of this rule.
--   The stripes arm's total images (2 s stripes + e 2D) are printed with
--     their slope, not read: the fixed 2 s is linear in N by construction,
--     so that slope is near 0.9 at N = 8, 16 whatever the examples do.
-- The paper predicts bumps near quadratic; beside the stripes few 2D
-- examples, near flat in N; alone like the bumps (near the memorizer); a
-- saving above 0 growing with N. The run agrees when bumps read near
-- quadratic, the stripes' e* near flat and the saving at the largest N
-- fewer; disagrees when bumps read near linear, the stripes' e* near the
-- memorizer or the saving at the largest N more; cannot decide otherwise,
-- or when a control does not read as built.
--
-- Writes runs/efficiency/: config.json, metrics.jsonl (a row per training; a
-- row per arm, size and seed with n* and e*; the slopes, savings and the
-- verdict), accuracy_n<N>.svg (accuracy against log2 images per arm),
-- scaling.svg (log2 n* against log2 N with linear and quadratic reference
-- lines), examples.svg (log2 e* against log2 N: beside the stripes, alone,
-- the memorizer), report.html, and train/<condition>_s<seed>/ (each
-- training).
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
  arms = "bumps,stripes,alone",
}, {
  -- 8x8 and 16x16 at width 8, no attention, one budget per size: 900 steps
  -- teach 8x8 (the percolation script's development run), 16x16 needs about
  -- 1,500 (scripts/quickstart.lua: 94% at step 1,500). Stripes at 1 px.
  -- 63 trainings (21 an arm), about 10 CPU-s each at N = 8 and 55 to 63
  -- at N = 16 (pilots at load 3: about 33 CPU-minutes): two one-thread
  -- processes (procs=2) fit 20 minutes on quiet cores; 32x32 (4 times the
  -- cost a step, 4 times the steps) does not fit. Every rung stays: at
  -- N = 16 the lowest rungs (0.16, 0.32 pooled in the last run) are where
  -- one seed's n* or e* was located, and the never-near rungs at N = 8
  -- (4 bumps, 32 examples) would save under a minute of wall.
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
  alone = "the stripes arm's 2D bumps without the stripes",
}
local arms = {}
for name in tostring(cfg.arms):gmatch("[^,%s]+") do
  if not ARMS[name] then
    error(string.format("arms = '%s': '%s' is not an arm; expected bumps, stripes, alone", cfg.arms,
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
-- { name, arm, size, sites (s), d, examples (e, stripes and alone), images,
-- steps }.
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
        c.name, c.sites, c.examples = string.format("%s_n%d_e%d", arm, N, v), s, v
        c.images = arm == "stripes" and 2 * s + v or v
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
-- d = N / (s - 1) (both edges on it); the seed chooses the 2D examples
-- (the same sites beside the stripes and alone).
local function dataset(c, seed)
  local common = { size = c.size, sigma = cfg.sigma, dx = c.d, dy = c.d }
  if c.arm == "bumps" then return bd.data.bumps(common) end
  local examples = { lambda = c.examples / (c.sites * c.sites), seed = seed }
  for k, v in pairs(common) do examples[k] = v end
  if c.arm == "alone" then return bd.data.bumps(examples) end
  return bd.data.concat(bd.data.stripes(common), bd.data.bumps(examples))
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
  if c.examples then -- the 2D examples' sites (the last rows: concat puts the stripes first)
    local labels, sites = data.labels:to_table(), {}
    for k = #labels - c.examples + 1, #labels do
      sites[#sites + 1] = string.format("%g,%g", labels[k][1], labels[k][2])
    end
    out.example_sites = table.concat(sites, ";")
  end
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

-- The ideal codes of the image slopes: a snapping oracle answers each probe
-- with the nearest training value, in 2D for the bumps arm (a memorizer: it
-- needs the lattice in 2D, s^2 images, the paper's N^2) and per axis for the
-- stripes arm (a composer of the stripes: the same lattice per axis and no
-- 2D example, 2 s images, the paper's N); scored on the same probes on every
-- lattice of 2 to 2N + 1 values, its n* goes through the same location and
-- fit.
local ORACLES = { bumps = "the nearest training site in 2D",
                  stripes = "the nearest stripe on each axis" }
local probes_at = {}
for _, N in ipairs(sizes) do probes_at[N] = probe_labels(N) end
-- Probes of size N within tolerance of the lattice of s values per axis on
-- both axes.
local function oracle_correct(N, s)
  local d, k = N / (s - 1), 0
  for _, label in ipairs(probes_at[N]) do
    local near = true
    for _, v in ipairs(label) do
      near = near and math.abs(v - d * math.floor(v / d + 0.5)) <= cfg.tolerance
    end
    if near then k = k + 1 end
  end
  return k
end
local controls = {}
for _, arm in ipairs{ "bumps", "stripes" } do
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
-- A rule on an interval [lo, hi] (an exact value: lo = hi) against a cut:
-- `above` when it lies above, `below` when below, else "cannot tell" (also
-- when the interval is NaN).
local function rule(cut, above, below)
  return function(lo, hi)
    if lo > cut then return above end
    if hi < cut then return below end
    return "cannot tell"
  end
end
local read = rule(CUT, "near quadratic", "near linear")
-- the controls: the ideal codes through the same rule
for _, c in pairs(controls) do
  c.reads = read(c.slope, c.slope)
  c.ok = c.reads == c.expected
end

-- The ideal codes of the 2D examples: the composer answers every probe
-- from the stripes (per axis, the nearest stripe), so beside the stripes
-- it needs no 2D example when that reaches the level (e* = 0 at every N:
-- flat); the 2D memorizer answers with the nearest 2D example, on the
-- sites each seed gives every count of examples from 1 to s^2 (bd.data's
-- own choice), so it needs the 2D lattice covered.
local function memorizer_correct(N, sites)
  local k = 0
  for _, p in ipairs(probes_at[N]) do
    local best, near = math.huge, nil
    for _, q in ipairs(sites) do
      local r = (p[1] - q[1]) ^ 2 + (p[2] - q[2]) ^ 2
      if r < best then best, near = r, q end
    end
    if math.abs(p[1] - near[1]) <= cfg.tolerance and math.abs(p[2] - near[2]) <= cfg.tolerance then
      k = k + 1
    end
  end
  return k
end
local composer = { needed = {}, slope = 0 }
for i, N in ipairs(sizes) do
  local reaches = oracle_correct(N, stripe_sites[i]) >= cfg.level * cfg.probes
  composer.needed[i] = reaches and 0 or 0 / 0
  if not reaches then composer.slope = 0 / 0 end
end
local memorizer = { needed = {} } -- [seed][i]: e*
local memorizer_slopes = {}
for _, seed in ipairs(seeds) do
  memorizer.needed[seed] = {}
  for i, N in ipairs(sizes) do
    local s, points = stripe_sites[i], {}
    for e = 1, s * s do
      local c = { size = N, arm = "alone", sites = s, d = N / (s - 1), examples = e }
      points[e] = { e, memorizer_correct(N, dataset(c, seed).labels:to_table()), cfg.probes }
    end
    memorizer.needed[seed][i] = needed(points) or 0 / 0
  end
  memorizer_slopes[#memorizer_slopes + 1] = slope(sizes, memorizer.needed[seed])
end
memorizer.slope = stats.summary(memorizer_slopes).mean
-- The cut of the 2D examples' slopes: the midpoint of the composer's (0)
-- and the memorizer's (mean over seeds).
local CUT_E = (composer.slope + memorizer.slope) / 2
local read_examples = rule(CUT_E, "near the memorizer", "near flat")
-- The rule of the stripes' saving (2D examples alone minus beside the
-- stripes): 0 is a learner that ignores the stripes.
local read_saving = rule(0, "fewer beside the stripes", "more beside the stripes")
-- a t interval over seeds read by `reads` only when every seed gave a value
local function read_by(values, reads)
  local iv = stats.t_interval(values)
  iv.reads = iv.n == #seeds and reads(iv.lo, iv.hi) or "cannot tell"
  return iv
end
composer.reads = read_examples(composer.slope, composer.slope)
memorizer.reads = read_examples(memorizer.slope, memorizer.slope)
-- the saving's controls: the memorizer beside the stripes ignores them
-- (it saves 0); the composer beside them against the memorizer alone saves
-- all the memorizer's examples; at every size
local saving_controls = {}
for i in ipairs(sizes) do
  local none, all = {}, {}
  for k, seed in ipairs(seeds) do
    none[k] = memorizer.needed[seed][i] - memorizer.needed[seed][i]
    all[k] = memorizer.needed[seed][i] - composer.needed[i]
  end
  saving_controls[i] = { null = read_by(none, read_saving), positive = read_by(all, read_saving) }
end
local examples_ok = composer.reads == "near flat" and memorizer.reads == "near the memorizer"
for _, c in ipairs(saving_controls) do
  examples_ok = examples_ok and c.null.reads == "cannot tell"
                and c.positive.reads == "fewer beside the stripes"
end

-- The points { count, correct, probes } of an arm's trainings at size
-- index i and one seed; the count is 2D examples with `examples`, else
-- images.
local function points_of(arm, i, seed, examples)
  local points = {}
  for _, c in ipairs(rungs[arm][i]) do
    for _, r in ipairs(results(c)) do
      if r.seed == seed then
        points[#points + 1] = { examples and c.examples or r.images, r.correct, r.probes }
      end
    end
  end
  return points
end

-- Per seed and size the count needed ({ n, why }: why it is censored) and
-- the slope of its log on log N over seeds, read by `rule`.
local function locate(arm, examples, rule)
  local per, slopes = {}, {}
  for _, seed in ipairs(seeds) do
    per[seed] = {}
    local ys = {}
    for i, N in ipairs(sizes) do
      local n, why = needed(points_of(arm, i, seed, examples))
      per[seed][N] = { n = n, why = why }
      ys[i] = n or 0 / 0
    end
    slopes[#slopes + 1] = slope(sizes, ys)
  end
  return per, read_by(slopes, rule)
end

local has = {}
for _, arm in ipairs(arms) do has[arm] = true end
local need, slopes = {}, {}         -- images: bumps, stripes
local need_e, slopes_e = {}, {}     -- 2D examples: stripes, alone
for _, arm in ipairs(arms) do
  if arm ~= "alone" then need[arm], slopes[arm] = locate(arm, false, read) end
  if arm ~= "bumps" then need_e[arm], slopes_e[arm] = locate(arm, true, read_examples) end
  for _, seed in ipairs(seeds) do
    for _, N in ipairs(sizes) do
      local n, e = (need[arm] or need_e[arm])[seed][N], need_e[arm] and need_e[arm][seed][N] or {}
      assert(run:log{ event = "needed", arm = arm, size = N, seed = seed, images = n.n,
                      censored = n.why, examples = e.n, examples_censored = e.why })
    end
  end
end
-- the stripes' saving at each size, paired by seed
local savings = {}
if has.stripes and has.alone then
  for i, N in ipairs(sizes) do
    local d = {}
    for k, seed in ipairs(seeds) do
      local a, b = need_e.alone[seed][N].n, need_e.stripes[seed][N].n
      d[k] = a and b and a - b or 0 / 0
    end
    savings[i] = read_by(d, read_saving)
  end
end

local decision, reason
local controls_ok = #sizes >= 2 and controls.bumps.ok and controls.stripes.ok and examples_ok
local last = savings[#sizes]
if not controls_ok then
  decision, reason = "cannot decide", "a control does not read as built (or fewer than two sizes)"
elseif not (has.bumps and has.stripes and has.alone) then
  decision, reason = "cannot decide", "the three arms are needed for the comparison"
else
  local readings = string.format("bumps %s; 2D examples beside the stripes %s; saving at N %d %s",
                                 slopes.bumps.reads, slopes_e.stripes.reads, sizes[#sizes],
                                 last.reads)
  if slopes.bumps.reads == "near linear" or slopes_e.stripes.reads == "near the memorizer"
     or last.reads == "more beside the stripes" then
    decision, reason = "disagrees", readings
  elseif slopes.bumps.reads == "near quadratic" and slopes_e.stripes.reads == "near flat"
         and last.reads == "fewer beside the stripes" then
    decision, reason = "agrees", readings
  else
    decision, reason = "cannot decide", readings
  end
end

-- ---- numbers in words --------------------------------------------------------------------

local function iv(x, fmt) return stats.describe(x, fmt or "%.2f") end
local lines = {}
local function say(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
local function count(v, fmt) return v.n and string.format(fmt, v.n) or v.why end
say("answer: %s (%s)", decision, reason)
for _, arm in ipairs(arms) do
  if arm == "bumps" then
    say("  bumps (%s): slope of log images needed on log N %s, located in %d of %d seeds: %s",
        ARMS.bumps, iv(slopes.bumps), slopes.bumps.n, #seeds, slopes.bumps.reads)
  else
    say("  %s (%s): slope of log 2D examples needed on log N %s, located in %d of %d seeds: %s",
        arm, ARMS[arm], iv(slopes_e[arm]), slopes_e[arm].n, #seeds, slopes_e[arm].reads)
  end
  for _, seed in ipairs(seeds) do
    local parts = {}
    for _, N in ipairs(sizes) do
      local text = arm == "bumps" and count(need.bumps[seed][N], "%.0f")
                   or count(need_e[arm][seed][N], "%.1f")
      if arm == "stripes" and need.stripes[seed][N].n then
        text = string.format("%s (%.0f images)", text, need.stripes[seed][N].n)
      end
      parts[#parts + 1] = string.format("N %d: %s", N, text)
    end
    say("    seed %d: %s to reach %.0f%%: %s", seed, arm == "bumps" and "images" or "2D examples",
        100 * cfg.level, table.concat(parts, "; "))
  end
end
for i, N in ipairs(sizes) do
  if savings[i] then
    say("  saving at N %d (2D examples alone minus beside the stripes, paired by seed): %s: %s", N,
        iv(savings[i], "%+.1f"), savings[i].reads)
  end
end
if has.stripes then
  say("  not read: the stripes arm's images (2 s stripes + 2D examples; the fixed 2 s is linear"
      .. " in N) slope %s", iv(slopes.stripes))
end
say("controls (ideal codes through the same location, fit and rule; the cut of the image slopes,"
    .. " %.2f, is the midpoint of the first two, that of the 2D examples' slopes, %.2f, of the"
    .. " next two):", CUT, CUT_E)
for _, arm in ipairs{ "bumps", "stripes" } do
  local c, parts = controls[arm], {}
  for i, N in ipairs(sizes) do parts[i] = string.format("N %d: %.0f", N, c.needed[i]) end
  say("  %s (%s): images needed %s; slope %.2f reads %s (must read %s)", arm, ORACLES[arm],
      table.concat(parts, ", "), c.slope, c.reads, c.expected)
end
local parts = {}
for i, N in ipairs(sizes) do parts[i] = string.format("N %d: %.0f", N, composer.needed[i]) end
say("  composer (the nearest stripe on each axis, beside the stripes): 2D examples needed %s;"
    .. " slope %.2f reads %s (must read near flat)", table.concat(parts, ", "), composer.slope,
    composer.reads)
parts = {}
for i, N in ipairs(sizes) do
  local ys = {}
  for k, seed in ipairs(seeds) do ys[k] = memorizer.needed[seed][i] end
  parts[i] = string.format("N %d: %.1f", N, stats.summary(ys).mean)
end
say("  memorizer (the nearest of the seed's 2D examples): 2D examples needed %s (mean over seeds);"
    .. " slope %.2f reads %s (must read near the memorizer)", table.concat(parts, ", "),
    memorizer.slope, memorizer.reads)
for i, N in ipairs(sizes) do
  local c = saving_controls[i]
  say("  saving at N %d: the memorizer beside the stripes (ignores them) %s reads %s (must read"
      .. " cannot tell); the memorizer alone minus the composer %s reads %s (must read fewer"
      .. " beside the stripes)", N, iv(c.null, "%+.1f"), c.null.reads, iv(c.positive, "%+.1f"),
      c.positive.reads)
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
      local snapped = stats.summary(snaps).mean -- NaN when no answer held one bump
      say("  N %d %s d %.3g%s (%d images): %s, snapped %s", c.size, arm, c.d,
          c.examples and string.format(", %d 2D examples", c.examples) or "", c.images,
          iv(stats.wilson(k, n)), snapped == snapped and string.format("%.2f", snapped) or "-")
    end
  end
end
say("the paper predicts: bumps near quadratic; beside the stripes few 2D examples, near flat in"
    .. " N; alone like the bumps; a saving above 0 that grows with N")
say("PAPER.md finding 3 (data needed grows as N^2 for bumps, as N for stripes plus a few 2D"
    .. " examples): this run %s", decision == "agrees" and "agrees with it" or
    decision == "disagrees" and "disagrees with it" or "can neither confirm nor refute it")
say("%d trainings: %s of training and evaluation; this process %s (scale %s)", #marks,
    experiment.duration(runtime), experiment.duration(bd.time() - started), cfg.scale)
local answer = table.concat(lines, "\n")
local row = { event = "decision", decision = decision, reason = reason, cut = CUT,
              cut_examples = CUT_E, memorizer_slope = memorizer.slope }
for _, arm in ipairs(arms) do
  if slopes[arm] then
    local s = slopes[arm]
    row[arm .. "_slope"], row[arm .. "_lo"], row[arm .. "_hi"] = s.mean, s.lo, s.hi
    row[arm .. "_reads"] = s.reads
  end
  if slopes_e[arm] then
    local s = slopes_e[arm]
    row[arm .. "_examples_slope"], row[arm .. "_examples_lo"] = s.mean, s.lo
    row[arm .. "_examples_hi"], row[arm .. "_examples_reads"] = s.hi, s.reads
  end
end
for i, N in ipairs(sizes) do
  if savings[i] then
    row["saving_n" .. N], row["saving_n" .. N .. "_lo"] = savings[i].mean, savings[i].lo
    row["saving_n" .. N .. "_hi"], row["saving_n" .. N .. "_reads"] = savings[i].hi, savings[i].reads
  end
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

-- log2 of the geometric mean over seeds of per[seed][N].n at each size
-- (NaN unless every seed located it).
local function log_mean(per)
  local ys = {}
  for i, N in ipairs(sizes) do
    local logs = {}
    for _, seed in ipairs(seeds) do
      local n = per[seed][N].n
      if n then logs[#logs + 1] = log2(n) end
    end
    local m = stats.summary(logs)
    ys[i] = m.n == #seeds and m.mean or 0 / 0
  end
  return ys
end
-- A log-log figure of counts needed against N: curves { name, per } with
-- lines of slope 1 and 2 through the first curve's first point.
local function save_needed(file, title, ylabel, curves)
  local series, lx = {}, {}
  for i, N in ipairs(sizes) do lx[i] = log2(N) end
  for a, c in ipairs(curves) do
    series[a] = { name = c.name .. " (geometric mean)", x = lx, y = log_mean(c.per),
                  color = report.colors[a] }
  end
  local first = series[1] and series[1].y[1]
  if first and first == first then
    for p = 1, 2 do
      local ref = {}
      for i = 1, #sizes do ref[i] = first + p * (lx[i] - lx[1]) end
      series[#series + 1] = { name = string.format("%s x N^%d", curves[1].name, p), x = lx,
                              y = ref, color = report.colors[#curves + p], dash = true }
    end
  end
  assert(report.save(run:path(file), report.lines{ title = title, xlabel = "log2 N",
                                                   ylabel = ylabel, series = series }))
end
local curves = {}
for _, arm in ipairs{ "bumps", "stripes" } do
  if has[arm] then curves[#curves + 1] = { name = arm, per = need[arm] } end
end
save_needed("scaling.svg", string.format("images needed to reach %.0f%% accuracy",
                                         100 * cfg.level), "log2 images needed", curves)
local memorizer_per = {}
for _, seed in ipairs(seeds) do
  memorizer_per[seed] = {}
  for i, N in ipairs(sizes) do
    local n = memorizer.needed[seed][i]
    memorizer_per[seed][N] = { n = n == n and n or nil }
  end
end
curves = { { name = "memorizer", per = memorizer_per } }
for _, arm in ipairs{ "alone", "stripes" } do
  if has[arm] then
    curves[#curves + 1] = { name = arm == "alone" and "alone" or "beside the stripes",
                            per = need_e[arm] }
  end
end
save_needed("examples.svg", string.format("2D examples needed to reach %.0f%% accuracy",
                                          100 * cfg.level), "log2 2D examples needed", curves)

-- ---- the report ----------------------------------------------------------------------------

local doc = report.new("Data efficiency: how does the data needed grow with the image size?")
doc:question(string.format("How many training images does a model need to reach %.0f%%"
  .. " accuracy as the image size N grows, trained on 2D bumps, or on 1D stripes plus a few 2D"
  .. " examples? The follow-up paper finds about N^2 for bumps and about N for stripes. Do the"
  .. " stripes reduce the 2D examples needed (against the same examples alone)?",
  100 * cfg.level))
doc:heading("Answer")
doc:answer(answer)
doc:heading("Controls")
local function per_size(values, fmt)
  local parts = {}
  for i in ipairs(sizes) do parts[i] = string.format(fmt, values[i]) end
  return table.concat(parts, ", ")
end
local function as_built(reads, ok) return reads .. (ok and " (as built)" or " (NOT as built)") end
local control_rows = {}
for _, arm in ipairs{ "bumps", "stripes" } do
  local c = controls[arm]
  control_rows[#control_rows + 1] = { "images, " .. arm, "snapping oracle: " .. ORACLES[arm],
    per_size(c.needed, "%.0f"), string.format("%.2f", c.slope), as_built(c.reads, c.ok) }
end
local mean_memorizer = {}
for i in ipairs(sizes) do
  local ys = {}
  for k, seed in ipairs(seeds) do ys[k] = memorizer.needed[seed][i] end
  mean_memorizer[i] = stats.summary(ys).mean
end
control_rows[#control_rows + 1] = { "2D examples", "composer: the nearest stripe on each axis",
  per_size(composer.needed, "%.0f"), string.format("%.2f", composer.slope),
  as_built(composer.reads, composer.reads == "near flat") }
control_rows[#control_rows + 1] = { "2D examples", "memorizer: the nearest of the seed's examples",
  per_size(mean_memorizer, "%.1f"), string.format("%.2f", memorizer.slope),
  as_built(memorizer.reads, memorizer.reads == "near the memorizer") }
for i, N in ipairs(sizes) do
  local c = saving_controls[i]
  control_rows[#control_rows + 1] = { "saving at N " .. N, "memorizer beside the stripes"
    .. " (ignores them)", "", iv(c.null, "%+.1f"), as_built(c.null.reads,
                                                           c.null.reads == "cannot tell") }
  control_rows[#control_rows + 1] = { "saving at N " .. N, "memorizer alone minus composer", "",
    iv(c.positive, "%+.1f"), as_built(c.positive.reads,
                                      c.positive.reads == "fewer beside the stripes") }
end
doc:table(control_rows, { header = { "statistic", "case", "needed per N", "slope or saving",
                                     "reads" } })
doc:paragraph("The snapping oracles answer each probe with the nearest training value (in 2D for"
  .. " the bumps arm, per axis for the stripes arm), so their data needed grows with the lattice"
  .. " they need. Their accuracies on every lattice of 2 to 2N + 1 values per axis go through the"
  .. string.format(" same pooling, interpolation, fit and rule as the models'; the cut of the image"
  .. " slopes, %.2f, is the midpoint of their slopes (at small N the lattice's edges pull both"
  .. " below the nominal 2 and 1). The 2D examples' cut, %.2f, is the midpoint of the composer's"
  .. " slope (it needs no 2D example beside the stripes) and the memorizer's (the nearest of each"
  .. " seed's own example sites, every count from 1 to s^2). The saving's rule has 0 for a learner"
  .. " that ignores the stripes; the memorizer alone against the composer must read fewer.", CUT,
  CUT_E))
doc:heading("What this scale can and cannot say")
doc:paragraph(string.format("Sizes %s with budgets of %s steps; %d seeds give a t quantile of"
  .. " %.2f, so only slopes and savings far from their cuts can be read. The ladders (bumps:"
  .. " lattice values per axis %s; 2D examples %s, beside stripes on %s values per axis and"
  .. " alone; ':' between sizes) locate the data needed between two trainings, after pooling"
  .. " rungs whose accuracy falls as data grows; when the smallest data set already reaches the"
  .. " level, or none does, that count is censored and the statistics using it are not read. The"
  .. " stripes arm's slope in images is near 0.9 at these sizes by construction and is not read."
  .. " At spacings up to %g px a bump snapped to a training value can count as correct.",
  cfg.sizes, cfg.steps, #seeds, stats.t_quantile(0.975, math.max(1, #seeds - 1)),
  cfg.bumps_sites, cfg.stripes_examples, cfg.stripes_sites, 2 * cfg.tolerance))
doc:heading("Setup")
doc:table({
  { "scale", cfg.scale }, { "sizes", cfg.sizes }, { "budgets (steps)", cfg.steps },
  { "lattice values per axis, bumps", cfg.bumps_sites },
  { "lattice values per axis, stripes", cfg.stripes_sites }, { "sigma (px)", cfg.sigma },
  { "arms", table.concat(arms, ", ") },
  { "2D examples, beside the stripes and alone", cfg.stripes_examples },
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
doc:figure("examples.svg", "2D examples needed to reach the level against N (log2 both;"
           .. " geometric mean over seeds where every seed located it): the memorizer, the"
           .. " examples alone and beside the stripes, with lines of slope 1 and 2 through the"
           .. " memorizer's smallest size.")
doc:figure("scaling.svg", "Images needed to reach the level against N (log2 both; geometric"
           .. " mean over seeds where every seed located it) with lines of slope 1 and 2"
           .. " through the bumps' smallest size.")
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
