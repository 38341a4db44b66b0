-- Does learning switch on where the training images percolate? docs/PAPER.md,
-- finding 3 (the follow-up, Liang, Liu, Ostrow, Fiete 2024): learning the
-- manifold switches on abruptly once training images overlap enough, that is
-- once the sites whose bumps overlap form a cluster that spans the label
-- space.
--
--   bdrun scripts/percolation.lua [scale=quick|standard|paper] [seeds=1,2,3]
--                                 [sigmas=...] [lambdas=...] [steps=...] ...
--   bdrun scripts/percolation.lua shard=0/2 ...   (and shard=1/2: the same sweep)
-- The quick scale runs as two one-thread processes (procs=2, one per core
-- here); procs=1 runs the sweep in this process.
--
-- Data: bumps of width sigma centred on a square lattice of spacing d over
-- the image, of whose sites a fraction lambda is kept (bd.data's lambda; the
-- kept sites are chosen by the training seed). For each sigma and lambda and
-- seed a UNet is trained for a fixed budget of `steps`.
--
-- Percolation (no training; the percolation metric, plugins/metrics/
-- percolation): two kept sites are linked when their bumps' normalised
-- overlap exp(-r^2 / (4 sigma^2)) is above a threshold, at each of the
-- follow-up's two overlap thresholds (0.005 and 0.05; the metric's own
-- default, 0.5, is not used). A cluster spans when it holds a site of the
-- first and of the last lattice column and of the first and of the last
-- lattice row (the usual spanning rule of site percolation on a finite
-- lattice). For each lambda of a fine grid, `draws` datasets (seeds 1 ..
-- draws) give the fraction whose largest cluster spans (Wilson interval) and
-- its mean size; the percolation point lambda_p is where that fraction
-- crosses 1/2 (interpolated), its interval where the Wilson bounds do.
-- Controls: the full lattice (lambda = 1) must span at every threshold and
-- sigma (every neighbour is within the cutoff), and the smallest lambda of
-- the grid must not.
--
-- Accuracy. After training the model draws one sample per probe label:
--   between  the centres of the lattice's cells ((k + 1/2) d on each axis),
--            never training labels at any lambda: the model must place a bump
--            between the images it saw. A sample is correct when it holds one
--            bump within `tolerance` px of the label on each axis; the
--            tolerance is below d/2, the probes' distance to the nearest
--            training value on each axis, so a bump snapped to a training
--            site scores as wrong (the script refuses otherwise). Decided.
--   sites    the lattice sites inside the margin, scored apart as kept (the
--            model saw them: memorisation) and not kept (unseen sites).
-- The floor is the untrained model on the same probes and noise (each
-- training's, pooled per sigma); the ceiling is lambda = 1 (the full
-- lattice, the last lambda of the grid), pooled over seeds. Positive control:
-- the ceiling must be above the floor (Wilson intervals disjoint) and reach
-- `learned`, else the budget did not teach the full lattice and the run
-- cannot decide for that sigma. Threshold: the midpoint of floor and ceiling (derived, not chosen).
-- lambda_on per seed: where its accuracy over lambda first reaches the
-- midpoint (interpolated, from the floor at lambda = 0); t interval over
-- seeds.
--
-- The statistic, per sigma and overlap threshold: lambda_on against lambda_p.
-- They match when lambda_on's interval, widened by the grid's resolution
-- there (the switch is only located between two trained lambdas: half the
-- gap around each seed's switch, the largest over the seeds), overlaps
-- lambda_p's interval; before / after otherwise;
-- not located when lambda_on's interval covers every trained lambda.
-- Across sigmas (the first and the last), the shift lambda_on(last) -
-- lambda_on(first) with its Welch interval (widened by the larger of the two
-- resolutions) against the shift of lambda_p:
-- "tracks" when the interval holds the percolation shift and excludes 0,
-- "does not track" when it holds 0 and excludes the percolation shift,
-- "cannot tell" otherwise (0, the null: accuracy unmoved by sigma). Verdict
-- per threshold: agrees when every sigma matches and the shift tracks;
-- disagrees when a sigma switches before or after; cannot decide otherwise
-- or when a control fails.
--
-- Writes runs/percolation/: config.json, metrics.jsonl (a row per training
-- with its accuracies and its own dataset's clusters; the percolation curves;
-- the verdicts), accuracy_s<sigma>.svg (accuracy against lambda with the
-- spanning fraction and the percolation points), report.html, and
-- train/<condition>_s<seed>/ (each training: config, loss log, done.json;
-- samples.png for the first seed).
local bumps = require "bumps"
local experiment = require "experiment"
local report = require "report"
local stats = require "stats"
local sweep = require "sweep"

local cfg = experiment.config(sweep.options{
  name = "percolation",
  thresholds = "0.005,0.05", -- overlap thresholds (the follow-up's figures)
  draws = 200,               -- datasets per lambda for the spanning fraction
  learned = 0.5,             -- the full lattice's accuracy must reach it (as compositional.lua):
                             -- a midpoint under an unlearned ceiling is noise
  curve_step = 0.05,         -- the fine lambda grid of the percolation curves
  samples = 1,               -- samples per between probe (noise draws of the training seed)
  sampler = "ddpm",
  batch = 64,
  warmup = 50,
}, {
  -- 8x8 (16x16 width 8 needs about 96k training images before it places
  -- bumps, scripts/quickstart.lua: about 140 CPU-s a training, far too
  -- many for a sweep), d = 2 (a 5 x 5 lattice, 25 sites), sigma 0.85 and
  -- 1.6. The lever is sigma / d: the link cutoffs (4.60 sigma at 0.005,
  -- 3.46 sigma at 0.05) reach 1.96 d and 1.47 d at sigma 0.85 (past the
  -- diagonal neighbour, short of 2 d), 3.68 d and 2.77 d at sigma 1.6 (past
  -- sqrt 5 d), and the spanning curves (200 draws, measured before any
  -- training) put lambda_p at 0.48 and 0.48 (sigma 0.85), 0.27 and 0.30
  -- (sigma 1.6): it moves by -0.21 and -0.18. On 5 x 5 sites lambda_p
  -- cannot go under about 0.27 (a spanning cluster needs a site on every
  -- edge), so the upper sigma only has to pass sqrt 5 d at 0.05 (1.3 and
  -- up); the lower one has to stay short of sqrt 5 d at 0.005 (under 0.97)
  -- for the 0.005 point to move at all (0.9 and 0.95 move it by -0.10).
  -- The full lattice must interpolate in every seed, or a seed's switch
  -- is never located. Pilots of the full lattice, between probes correct
  -- of 32 for seeds 1 to 5 (accuracy every 300 steps): at lr 4e-3 the
  -- width-8 net places the probes for a few hundred steps around step 900,
  -- then memorises the 25 sites (snaps), and seed 2 places at most 10 at
  -- any sigma from 0.75 to 1.3 (sigma 0.95, 900 steps: 25, 4, 26, 25, 23;
  -- sigma 1.3: 19, 5, 9, 27, 27). At lr 5e-4 the window is wider and
  -- later: after 1,500 steps sigma 0.85 places 19, 17, 27, 23, 11 (the
  -- midpoint of floor and ceiling is 9.7 of 32) and sigma 1.6 32, 17, 32,
  -- 32, 32 (midpoint 14.5); at sigma 0.8 seed 2 never reaches 8, sigma
  -- 1.3's seed 2 falls under its midpoint after 1,200 steps (12 of 32 at
  -- 1,500), 1.6's after 1,500 (11 at 1,800).
  -- Sigma cannot go under 0.6 (the bump metric sees no bump centred on a
  -- pixel corner there, measured on exact images); d cannot grow without
  -- leaving a 4 x 4 lattice. Margin 1.5: the border sites' bumps are cut
  -- in half and read 0.65 sigma and more inside, so a probe d/2 from them
  -- cannot tell a copy (the script refuses such probes; none is refused
  -- from sigma 0.75 to 2); the between probes are the 4 cell centres
  -- (3, 5)^2, each drawn `samples` = 8 times (32 samples); the untrained
  -- model places none of them.
  -- Lambdas 0.2 to 0.9 by 0.1, and 1: a grid of 0.1 around both lambda_p,
  -- so a switch there is located to +-0.05. Seeds: the first run's
  -- lambda_on spread over seeds by 0.075 (pooled sd of 0.30/0.42/0.47 and
  -- 0.32/0.37/0.44); with 5 seeds a sigma the shift's Welch interval is
  -- +-2.31 * 0.075 * sqrt(2/5) = +-0.11, +-0.16 with the grid, under the
  -- 0.21 and 0.18 it must tell from 0 (3 seeds give +-0.22). 2 x 9 x 5 =
  -- 90 trainings of 1,500 steps, about 20 CPU-s each with its evaluations
  -- (measured beside another run): 30 CPU-minutes, 15 minutes on 2 quiet
  -- cores as two one-thread processes (procs=2, the quick default).
  quick = { size = 8, d = 2, margin = 1.5, tolerance = 0.5, sigmas = "0.85,1.6",
            lambdas = "0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1", samples = 8, width = 8, emb = 64,
            attention_blocks = "", steps = 1500, lr = 5e-4, ema = 0.99, sample_steps = 25,
            seeds = "1,2,3,4,5", procs = 2 },
  -- the follow-up's 32x32 with a CPU-sized width (configured, not run here):
  -- the quick scale's sigma / d (0.425 and 0.8) at d = 4 (9 x 9 sites);
  -- margin d keeps the probes off the border sites
  standard = { size = 32, d = 4, margin = 4, tolerance = 1.0, sigmas = "1.7,3.2",
               lambdas = "0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1", samples = 1, width = 16, emb = 128,
               attention_blocks = "down3,up1", steps = 6000, lr = 1e-3, ema = 0.995,
               sample_steps = 50, seeds = "1,2,3,4,5", draws = 100 },
  -- the paper's net (width 64, attention everywhere); sigmas, lambdas and the
  -- training length are ours (sigma 1.25 is the smallest whose 0.05 cutoff
  -- reaches d = 4)
  paper = { size = 32, d = 4, margin = 4, tolerance = 1.0, sigmas = "1.25,1.5,2,2.6",
            lambdas = "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1", samples = 1, width = 64,
            emb = 256, attention_blocks = "down1,down2,down3,up1,up2,up3", steps = 40000,
            lr = 3e-4, ema = 0.999, sample_steps = 100, seeds = "1,2,3,4,5", draws = 100 },
})
local seeds = experiment.seeds(cfg.seeds)
local started = bd.time()

-- A comma-separated list of positive numbers, ascending.
local function numbers(text, key)
  local out = {}
  for token in tostring(text):gmatch("[^,%s]+") do
    local v = tonumber(token)
    if not v or v <= 0 or (#out > 0 and v <= out[#out]) then
      error(string.format("%s = '%s': '%s' is not a positive number above the one before it",
                          key, text, token), 0)
    end
    out[#out + 1] = v
  end
  if #out == 0 then error(string.format("%s = '%s': expected numbers", key, text), 0) end
  return out
end
local sigmas, lambdas = numbers(cfg.sigmas, "sigmas"), numbers(cfg.lambdas, "lambdas")
local thresholds = numbers(cfg.thresholds, "thresholds")
if lambdas[#lambdas] ~= 1 then
  error(string.format("lambdas = '%s': the last must be 1, the full lattice (the ceiling and"
                      .. " the positive control)", cfg.lambdas), 0)
end
if cfg.tolerance >= cfg.d / 2 then
  error(string.format("tolerance = %g px cannot tell a snapped bump: the between probes are"
                      .. " %g px from the nearest training value on each axis; expected a"
                      .. " tolerance below that", cfg.tolerance, cfg.d / 2), 0)
end
-- How finely the grid locates a switch at lambda x: half the gap between the
-- two trained lambdas around it (from 0, where nothing is learned), so a grid
-- fine where the switches fall locates them finely there.
local function resolution_at(x)
  local below = 0
  for _, lambda in ipairs(lambdas) do
    if x <= lambda + 1e-9 then return (lambda - below) / 2 end
    below = lambda
  end
  return (1 - below) / 2
end
local coarsest, finest = 0, math.huge -- the grid's largest and smallest half-gaps
for i, lambda in ipairs(lambdas) do
  local gap = (lambda - (lambdas[i - 1] or 0)) / 2
  coarsest, finest = math.max(coarsest, gap), math.min(finest, gap)
end

local function cell_name(sigma, lambda) return string.format("s%g_l%g", sigma, lambda) end
local conditions = {}
for _, sigma in ipairs(sigmas) do
  for _, lambda in ipairs(lambdas) do
    conditions[#conditions + 1] = { name = cell_name(sigma, lambda), sigma = sigma,
                                    lambda = lambda }
  end
end

-- ---- the lattice, its clusters -----------------------------------------------------

local last_site = math.floor(cfg.size / cfg.d + 1e-9) -- sites k d, k = 0 .. last_site
local function on_lattice(v) return math.abs(v / cfg.d - math.floor(v / cfg.d + 0.5)) < 1e-6 end
local function index_of(v) return math.floor(v / cfg.d + 0.5) end

local function dataset(sigma, lambda, seed)
  return bd.data.bumps{ size = cfg.size, sigma = sigma, dx = cfg.d, dy = cfg.d, lambda = lambda,
                        seed = seed }
end

-- One percolation metric per sigma and overlap threshold.
local metrics = {}
local function metric(sigma, threshold)
  local key = sigma .. "/" .. threshold
  metrics[key] = metrics[key] or bd.metric("percolation", { sigma = sigma, threshold = threshold })
  return metrics[key]
end

-- The largest cluster of a dataset's sites at one sigma and threshold:
-- { fraction (of the kept sites), size, spans, cutoff }.
local function largest_cluster(data, sigma, threshold)
  local r = metric(sigma, threshold)(data.images, data.labels)
  local lo, hi = { math.huge, math.huge }, { -math.huge, -math.huge }
  for i = 1, data.n do
    if r.in_largest:get(i) > 0.5 then
      for a = 1, 2 do
        local k = index_of(data.labels:get(i, a))
        lo[a], hi[a] = math.min(lo[a], k), math.max(hi[a], k)
      end
    end
  end
  return { fraction = r.largest_fraction, size = r.largest, cutoff = r.cutoff,
           spans = lo[1] == 0 and lo[2] == 0 and hi[1] == last_site and hi[2] == last_site }
end

-- ---- probes -----------------------------------------------------------------------

-- Coordinates k d + offset d inside [margin, size - margin].
local function coords(offset)
  local out = {}
  for k = 0, last_site do
    local v = (k + offset) * cfg.d
    if v >= cfg.margin - 1e-9 and v <= cfg.size - cfg.margin + 1e-9 then out[#out + 1] = v end
  end
  return out
end
local function grid(offset)
  local labels = {}
  for _, y in ipairs(coords(offset)) do
    for _, x in ipairs(coords(offset)) do labels[#labels + 1] = { x, y } end
  end
  return labels
end
local SITES = grid(0)
-- each between probe `samples` times (one noise draw each): the probes are few
local BETWEEN = {}
for _ = 1, cfg.samples do
  for _, l in ipairs(grid(0.5)) do BETWEEN[#BETWEEN + 1] = l end
end
if #BETWEEN == 0 then
  error(string.format("margin = %g px leaves no between probe on the %gx%g image (d = %g);"
                      .. " expected a smaller margin", cfg.margin, cfg.size, cfg.size, cfg.d), 0)
end

-- The probes can tell a copied training image only if no training image,
-- drawn exactly, reads as correct at any between probe. A site on the
-- image's border can: half its bump is cut off, so its centroid reads up to
-- 0.65 sigma inside (0.65 px at sigma 0.75, 1.02 px at 1.3, measured), and
-- a probe d/2 from it would score a copy of it as correct.
local function refuse_copies(sigma)
  local data = dataset(sigma, 1, 1)
  local bump = bd.metric("bump", { tolerance = cfg.tolerance, axis_tolerance = cfg.tolerance })
  for _, p in ipairs(grid(0.5)) do
    local labels = {}
    for i = 1, data.n do labels[i] = p end
    local r = bump(data.images, bd.tensor.from_table(labels))
    for i = 1, data.n do
      if r.class:get(i) == bumps.CLASS.correct then
        error(string.format("between probe (%g, %g) cannot tell a copied training image: the"
          .. " exact image of site (%g, %g) at sigma %g reads as correct there (tolerance %g"
          .. " px); expected a margin that keeps probes away from such sites", p[1], p[2],
          data.labels:get(i, 1), data.labels:get(i, 2), sigma, cfg.tolerance), 0)
      end
    end
  end
end
for _, sigma in ipairs(sigmas) do refuse_copies(sigma) end

-- ---- one training: a run of the sweep -------------------------------------------------

-- The k of n correct samples of a bump metric's per-image classes, over the
-- images where keep(i) holds.
local function correct(result, keep)
  local k, n = 0, 0
  for i = 1, result.class:shape()[1] do
    if keep(i) then
      n = n + 1
      if result.class:get(i) == bumps.CLASS.correct then k = k + 1 end
    end
  end
  return k, n
end

local function train_one(sub, c, seed)
  local data = dataset(c.sigma, c.lambda, seed)
  local model = experiment.unet(cfg, seed)
  local bump = bd.metric("bump", { tolerance = cfg.tolerance, axis_tolerance = cfg.tolerance,
                                   lattice_dx = cfg.d, lattice_dy = cfg.d })
  local kept = {}
  for i = 1, data.n do
    kept[index_of(data.labels:get(i, 1)) .. "," .. index_of(data.labels:get(i, 2))] = true
  end
  local site_kept = {}
  for i, l in ipairs(SITES) do
    site_kept[i] = kept[index_of(l[1]) .. "," .. index_of(l[2])] or false
  end
  local sets = { between = bd.tensor.from_table(BETWEEN), sites = bd.tensor.from_table(SITES) }
  -- One sample per label of probe set `name` (noise derived from the seed).
  local function evaluate(name, i)
    local probe = { labels = sets[name], n = sets[name]:shape()[1] }
    local s = bd.sample(model, probe, { sampler = cfg.sampler, steps = cfg.sample_steps,
                                        seed = 1000 * seed + i })
    return { result = bump(s.images, probe.labels), images = s.images, probe = probe }
  end
  local floor = evaluate("between", 1).result
  local t = experiment.train_final{
    model = model, data = data,
    evaluate = function()
      return { between = evaluate("between", 1), sites = evaluate("sites", 2) }
    end,
    train = { steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, warmup = cfg.warmup,
              ema = cfg.ema, seed = seed, run = sub } }
  local final = t.row
  local b, s = final.between.result, final.sites.result
  local out = { images = data.n, params = t.params,
                train_seconds = t.train_seconds - t.eval_seconds,
                between_single = b.frac_single, between_error = b.median_error }
  out.floor_k, out.floor_n = correct(floor, function() return true end)
  out.between_k, out.between_n = correct(b, function() return true end)
  out.kept_k, out.kept_n = correct(s, function(i) return site_kept[i] end)
  out.unkept_k, out.unkept_n = correct(s, function(i) return not site_kept[i] end)
  for _, t in ipairs(thresholds) do
    local cl = largest_cluster(data, c.sigma, t)
    out["largest_" .. t], out["spans_" .. t] = cl.fraction, cl.spans
  end
  if seed == seeds[1] then
    experiment.save_samples(sub:path("samples.png"), final.between.images, final.between.probe,
                            math.max(1, 64 // cfg.size))
    out.samples = "samples.png"
  end
  bd.log.info("%s seed %d: %d images; between %d/%d correct (untrained %d/%d), kept sites %d/%d,"
              .. " unseen sites %d/%d", c.name, seed, data.n, out.between_k, out.between_n,
              out.floor_k, out.floor_n, out.kept_k, out.kept_n, out.unkept_k, out.unkept_n)
  return out
end

-- ---- every condition for every seed: the sweep -------------------------------------------

local TRAIN = "train"
local marks = sweep.run{ name = cfg.name, dir = "runs/" .. cfg.name .. "/" .. TRAIN,
                         conditions = conditions, seeds = seeds, config = cfg, train = train_one }
if not marks then return end

local by_name, runtime = {}, 0 -- each condition's results, one per seed
for _, m in ipairs(marks) do
  local name = m.condition.name
  by_name[name] = by_name[name] or {}
  m.results.seed = m.seed
  table.insert(by_name[name], m.results)
  runtime = runtime + m.seconds
end
local function cell(sigma, lambda) return by_name[cell_name(sigma, lambda)] end

-- the report's run is made again from the sweep's marks each time: it starts over
local run = bd.run(cfg.name, { overwrite = true })
local saved = {}
for k, v in pairs(cfg) do saved[k] = v end
assert(run:save_config(saved))
for _, m in ipairs(marks) do
  local line = { event = "training", sigma = m.condition.sigma, lambda = m.condition.lambda,
                 seed = m.seed }
  for k, v in pairs(m.results) do line[k] = v end
  assert(run:log(line))
end

-- ---- percolation curves (no training) ------------------------------------------------

-- For each sigma and threshold: a curve over the fine lambda grid of the
-- spanning fraction (with its Wilson bounds) and the mean largest fraction,
-- and the percolation point with its interval.
local fine = {}
for k = 1, math.floor(1 / cfg.curve_step + 1e-9) do fine[#fine + 1] = k * cfg.curve_step end
if math.abs(fine[#fine] - 1) > 1e-9 then fine[#fine + 1] = 1 end
local perc = {}
for _, sigma in ipairs(sigmas) do
  perc[sigma] = {}
  for _, t in ipairs(thresholds) do perc[sigma][t] = { curve = experiment.curve(), cutoff = 0 } end
end
for _, lambda in ipairs(fine) do
  local spans, sizes = {}, {}
  for draw = 1, cfg.draws do
    local ok, data = pcall(dataset, sigmas[1], lambda, draw) -- kept sites do not depend on sigma
    for _, sigma in ipairs(sigmas) do
      for _, t in ipairs(thresholds) do
        local key = sigma .. "/" .. t
        spans[key], sizes[key] = spans[key] or 0, sizes[key] or {}
        if ok then
          local cl = largest_cluster(data, sigma, t)
          spans[key] = spans[key] + (cl.spans and 1 or 0)
          sizes[key][#sizes[key] + 1] = cl.fraction
          perc[sigma][t].cutoff = cl.cutoff
        else -- lambda keeps no site: no cluster
          sizes[key][#sizes[key] + 1] = 0
        end
      end
    end
  end
  for _, sigma in ipairs(sigmas) do
    for _, t in ipairs(thresholds) do
      local key = sigma .. "/" .. t
      local w = stats.wilson(spans[key], cfg.draws)
      perc[sigma][t].curve:add(lambda, { span = w.p, span_lo = w.lo, span_hi = w.hi,
                                         largest = stats.summary(sizes[key]).mean })
    end
  end
end
local perc_ok = true -- the controls: the full lattice spans, the smallest lambda does not
for _, sigma in ipairs(sigmas) do
  for _, t in ipairs(thresholds) do
    local p = perc[sigma][t]
    local c = p.curve
    p.point = c:crossing("span", 0.5)
    p.lo, p.hi = c:crossing("span_hi", 0.5), c:crossing("span_lo", 0.5)
    p.full, p.sparse = c:last().span, c.rows[1].span
    p.control_ok = p.full == 1 and p.sparse < 0.5
    perc_ok = perc_ok and p.control_ok
    for i, lambda in ipairs(c.steps) do
      local row = { event = "percolation", sigma = sigma, threshold = t, lambda = lambda }
      for k, v in pairs(c.rows[i]) do row[k] = v end
      assert(run:log(row))
    end
  end
end

-- ---- accuracy: floor, ceiling, switch --------------------------------------------------

local function pooled(list, k, n)
  local kk, nn = 0, 0
  for _, r in ipairs(list) do kk, nn = kk + r[k], nn + r[n] end
  return stats.wilson(kk, nn)
end

local acc = {}
for _, sigma in ipairs(sigmas) do
  local a = { lambdas = {} }
  local all = {}
  for _, lambda in ipairs(lambdas) do
    for _, r in ipairs(cell(sigma, lambda)) do all[#all + 1] = r end
  end
  a.floor = pooled(all, "floor_k", "floor_n")
  a.ceiling = pooled(cell(sigma, 1), "between_k", "between_n")
  a.control_ok = a.ceiling.lo > a.floor.hi and a.ceiling.p >= cfg.learned
  a.level = (a.floor.p + a.ceiling.p) / 2
  -- per seed: accuracy over lambda and where it reaches the level
  a.on = {}
  local curves = {}
  for i, seed in ipairs(seeds) do
    local curve = experiment.curve()
    for _, lambda in ipairs(lambdas) do
      for _, r in ipairs(cell(sigma, lambda)) do
        if r.seed == seed then curve:add(lambda, { acc = r.between_k / r.between_n }) end
      end
    end
    curves[i] = curve
    a.on[i] = curve:crossing("acc", a.level, a.floor.p) or 0 / 0
  end
  a.lambda_on = stats.t_interval(a.on)
  -- the resolution of the seeds' switches: the coarsest gap that holds one
  a.resolution = 0
  for _, x in ipairs(a.on) do
    if x == x then a.resolution = math.max(a.resolution, resolution_at(x)) end
  end
  for _, lambda in ipairs(lambdas) do
    local l = cell(sigma, lambda)
    local per = {}
    for i, r in ipairs(l) do per[i] = r.between_k / r.between_n end
    local between = stats.t_interval(per) -- a fraction: its interval clipped to [0, 1]
    if between.lo == between.lo then
      between.lo, between.hi = math.max(0, between.lo), math.min(1, between.hi)
    end
    a.lambdas[lambda] = { between = between,
                          pooled = pooled(l, "between_k", "between_n"),
                          kept = pooled(l, "kept_k", "kept_n"),
                          unkept = pooled(l, "unkept_k", "unkept_n") }
  end
  acc[sigma] = a
end

-- ---- the verdicts -------------------------------------------------------------------------

local function where(a, p)
  local lo, hi = a.lambda_on.lo - a.resolution, a.lambda_on.hi + a.resolution
  if not (p.point and p.lo and p.hi) then return "no percolation point" end
  if a.lambda_on.lo <= lambdas[1] and a.lambda_on.hi >= 1 then return "not located" end
  if hi < p.lo then return "before" end
  if lo > p.hi then return "after" end
  return "matches"
end

local verdicts = {}
for _, t in ipairs(thresholds) do
  local v = { threshold = t, per_sigma = {} }
  local reasons = {}
  for _, sigma in ipairs(sigmas) do
    local a, p = acc[sigma], perc[sigma][t]
    local w = "cannot decide"
    if not p.control_ok then
      reasons[#reasons + 1] = string.format("sigma %g: percolation control failed", sigma)
    elseif not a.control_ok then
      reasons[#reasons + 1] = string.format("sigma %g: the full lattice is not learned (accuracy"
                                            .. " %.2f: not above the untrained floor or under %g)",
                                            sigma, a.ceiling.p, cfg.learned)
    elseif a.lambda_on.n < #seeds or a.lambda_on.n < 2 then
      reasons[#reasons + 1] = string.format("sigma %g: %d of %d seeds reach the midpoint", sigma,
                                            a.lambda_on.n, #seeds)
    else
      w = where(a, p)
    end
    v.per_sigma[sigma] = w
  end
  local first, last = sigmas[1], sigmas[#sigmas]
  v.shift = stats.welch(acc[last].on, acc[first].on)
  v.perc_shift = (perc[last][t].point or 0 / 0) - (perc[first][t].point or 0 / 0)
  v.resolution = math.max(acc[first].resolution, acc[last].resolution)
  local holds = function(x)
    return x >= v.shift.lo - v.resolution and x <= v.shift.hi + v.resolution
  end
  if #sigmas < 2 or v.shift.lo ~= v.shift.lo then
    v.tracks = "cannot tell"
  elseif holds(v.perc_shift) and not holds(0) then
    v.tracks = "tracks"
  elseif holds(0) and not holds(v.perc_shift) then
    v.tracks = "does not track"
  else
    v.tracks = "cannot tell"
  end
  for _, sigma in ipairs(sigmas) do
    if v.per_sigma[sigma] == "not located" or v.per_sigma[sigma] == "no percolation point" then
      reasons[#reasons + 1] = string.format("sigma %g: %s", sigma, v.per_sigma[sigma])
    end
  end
  local all_match, any_off = true, false
  for _, sigma in ipairs(sigmas) do
    local w = v.per_sigma[sigma]
    all_match = all_match and w == "matches"
    any_off = any_off or w == "before" or w == "after"
  end
  if #reasons > 0 then
    v.decision, v.reason = "cannot decide", table.concat(reasons, "; ")
  elseif any_off then
    v.decision, v.reason = "disagrees", "accuracy switches on away from the percolation point"
  elseif all_match and v.tracks == "tracks" then
    v.decision, v.reason = "agrees", "accuracy switches on at the percolation point for every"
                                     .. " sigma and moves with it"
  else
    v.decision, v.reason = "cannot decide", "the switch matches the percolation point, but its"
                                            .. " shift with sigma " .. v.tracks
  end
  verdicts[#verdicts + 1] = v
end

-- ---- numbers in words -------------------------------------------------------------------

local function iv(x, fmt) return stats.describe(x, fmt or "%.2f") end
local function lam(x) return x and string.format("%.2f", x) or "none" end
local lines = {}
local function say(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
for _, v in ipairs(verdicts) do
  say("overlap threshold %g: %s (%s)", v.threshold, v.decision, v.reason)
  for _, sigma in ipairs(sigmas) do
    local p = perc[sigma][v.threshold]
    local per_seed = {}
    for i, x in ipairs(acc[sigma].on) do
      per_seed[i] = x == x and string.format("%.2f", x) or "-"
    end
    say("  sigma %g (link cutoff %.2f px = %.2f d): lambda_p %s [%s, %s]; lambda_on %s (seeds: %s;"
        .. " grid ±%.2f): %s", sigma, p.cutoff, p.cutoff / cfg.d, lam(p.point), lam(p.lo),
        lam(p.hi), iv(acc[sigma].lambda_on), table.concat(per_seed, ", "),
        acc[sigma].resolution, v.per_sigma[sigma])
  end
  say("  shift with sigma %g -> %g: lambda_on %s (grid ±%.2f), lambda_p %+.2f: %s", sigmas[1],
      sigmas[#sigmas], iv(v.shift, "%+.2f"), v.resolution, v.perc_shift, v.tracks)
end
say("controls (accuracy on between probes, Wilson 95%%, pooled over %d seeds):", #seeds)
for _, sigma in ipairs(sigmas) do
  local a = acc[sigma]
  say("  sigma %g: untrained floor %s, full lattice (ceiling) %s: %s; midpoint %.2f", sigma,
      iv(a.floor), iv(a.ceiling), a.control_ok and "learned, above the floor"
      or string.format("NOT learned (must be above the floor and reach %g)", cfg.learned), a.level)
  for _, t in ipairs(thresholds) do
    local p = perc[sigma][t]
    say("    threshold %g: spanning fraction at lambda 1: %.2f (must be 1), at lambda %g: %.2f"
        .. " (must be under 0.5)", t, p.full, fine[1], p.sparse)
  end
end
say("accuracy after %d steps (between probes: t 95%% over seeds; kept / unseen sites pooled):",
    cfg.steps)
for _, sigma in ipairs(sigmas) do
  for _, lambda in ipairs(lambdas) do
    local l = acc[sigma].lambdas[lambda]
    say("  sigma %g lambda %g: between %s; kept sites %s; unseen sites %s", sigma, lambda,
        iv(l.between), iv(l.kept), iv(l.unkept))
  end
end
local agreement = {}
for _, v in ipairs(verdicts) do
  agreement[#agreement + 1] = string.format("threshold %g: %s", v.threshold,
    v.decision == "agrees" and "agrees with it" or v.decision == "disagrees" and
    "disagrees with it" or "can neither confirm nor refute it")
end
say("PAPER.md finding 3 (learning switches on at percolation): %s", table.concat(agreement, "; "))
say("%d trainings of %d steps: %s of training and evaluation; this process %s (scale %s)",
    #marks, cfg.steps, experiment.duration(runtime), experiment.duration(bd.time() - started),
    cfg.scale)
local answer = table.concat(lines, "\n")
for _, v in ipairs(verdicts) do
  local row = { event = "decision", threshold = v.threshold, decision = v.decision,
                reason = v.reason, tracks = v.tracks, shift = v.shift.mean, shift_lo = v.shift.lo,
                shift_hi = v.shift.hi, perc_shift = v.perc_shift }
  for _, sigma in ipairs(sigmas) do
    local p = perc[sigma][v.threshold]
    row["s" .. sigma .. "_verdict"] = v.per_sigma[sigma]
    row["s" .. sigma .. "_lambda_p"] = p.point
    row["s" .. sigma .. "_lambda_on"] = acc[sigma].lambda_on.mean
  end
  assert(run:log(row))
end

-- ---- figures -----------------------------------------------------------------------------

local DASHES = { true, false }
for _, sigma in ipairs(sigmas) do
  local a, series = acc[sigma], {}
  local function add(name, key, color, dash)
    local y = {}
    for i, lambda in ipairs(lambdas) do
      local l = a.lambdas[lambda]
      y[i] = key == "lo" and l.between.lo or key == "hi" and l.between.hi
             or key == "between" and l.between.mean or l[key].p
    end
    series[#series + 1] = { name = name, x = lambdas, y = y, color = report.colors[color],
                            dash = dash }
  end
  add("accuracy, between", "between", 1, false)
  add("t 95% low", "lo", 1, true)
  add("t 95% high", "hi", 1, true)
  add("kept sites", "kept", 3, false)
  add("unseen sites", "unkept", 5, false)
  for i, t in ipairs(thresholds) do
    local p = perc[sigma][t]
    series[#series + 1] = { name = "spanning, " .. t, x = p.curve.steps,
                            y = p.curve:values("span"), color = report.colors[7 + i],
                            dash = DASHES[i] }
    if p.point then
      series[#series + 1] = { name = "lambda_p, " .. t, x = { p.point, p.point }, y = { 0, 1 },
                              color = report.colors[3 + i * 1], dash = true }
    end
  end
  if a.lambda_on.mean == a.lambda_on.mean then
    series[#series + 1] = { name = "lambda_on", x = { a.lambda_on.mean, a.lambda_on.mean },
                            y = { 0, 1 }, color = report.colors[1], dash = false }
  end
  assert(report.save(run:path(string.format("accuracy_s%g.svg", sigma)), report.lines{
    title = string.format("sigma %g, d %g: accuracy after %d steps and spanning fraction",
                          sigma, cfg.d, cfg.steps),
    xlabel = "lambda (fraction of lattice sites kept)", ylabel = "fraction", xlim = { 0, 1 },
    ylim = { 0, 1 }, series = series,
    hlines = { { y = a.level, label = "midpoint of floor and ceiling" } } }))
end

-- ---- the report ---------------------------------------------------------------------------

local doc = report.new("Percolation: does learning switch on where training images connect?")
doc:question("As a growing fraction lambda of lattice sites is kept for training, does the"
  .. " model's accuracy between the training images switch on where the sites whose bumps"
  .. " overlap form a cluster that spans the label space (the follow-up paper's finding), at"
  .. " overlap thresholds 0.005 and 0.05?")
doc:heading("Answer")
doc:answer(answer)
doc:heading("Controls")
local control_rows = {}
for _, sigma in ipairs(sigmas) do
  local a = acc[sigma]
  control_rows[#control_rows + 1] = { "sigma " .. sigma, "floor: untrained model",
    iv(a.floor), "sets the midpoint's low end" }
  control_rows[#control_rows + 1] = { "sigma " .. sigma, "positive control: full lattice",
    iv(a.ceiling), a.control_ok and "learned, above the floor"
    or "not learned: cannot decide" }
  for _, t in ipairs(thresholds) do
    local p = perc[sigma][t]
    control_rows[#control_rows + 1] = { "sigma " .. sigma, string.format(
      "clusters at threshold %g: full lattice / lambda %g", t, fine[1]),
      string.format("spans in %.0f%% / %.0f%% of %d draws", 100 * p.full, 100 * p.sparse,
                    cfg.draws), p.control_ok and "as built" or "NOT as built: cannot decide" }
  end
end
doc:table(control_rows, { header = { "sigma", "case", "value (95% interval)", "reads" } })
doc:paragraph("The midpoint between the untrained floor and the full lattice's accuracy is the"
  .. " level that counts as switched on; lambda_on is located between two trained lambdas, so"
  .. " its interval is widened by half the gap of the grid around each seed's switch (the"
  .. " largest over the seeds; 'grid' in the answer) before it is compared with lambda_p.")
doc:heading("What this scale can and cannot say")
doc:paragraph(string.format("At %dx%d the lattice has %d x %d sites %g px apart; a training set"
  .. " holds between %d and %d images. Percolation on so small a lattice is a smooth crossover,"
  .. " not a sharp threshold: lambda_p is where half the draws span. The %d between probes"
  .. " (%d samples each) sit %g px from every training value on each axis and are scored at %g"
  .. " px, so a bump snapped to a training site is wrong, and no training image drawn exactly"
  .. " reads as correct at any of them (checked at the start). %d seeds give a t quantile of"
  .. " %.2f. %d trained lambdas locate a switch to within %.2f where the grid is finest and"
  .. " %.2f where it is coarsest.", cfg.size, cfg.size, last_site + 1, last_site + 1, cfg.d,
  math.floor(lambdas[1] * (last_site + 1) ^ 2 + 0.5), (last_site + 1) ^ 2,
  #BETWEEN // cfg.samples, cfg.samples, cfg.d / 2, cfg.tolerance, #seeds,
  stats.t_quantile(0.975, math.max(1, #seeds - 1)), #lambdas, finest, coarsest))
doc:heading("Setup")
doc:table({
  { "scale", cfg.scale }, { "image size", cfg.size }, { "lattice spacing d (px)", cfg.d },
  { "sigmas (px)", cfg.sigmas }, { "lambdas", cfg.lambdas },
  { "overlap thresholds", cfg.thresholds },
  { "denoiser", string.format("unet, width %d, emb %d, attention %s", cfg.width, cfg.emb,
                              cfg.attention_blocks == "" and "none" or cfg.attention_blocks) },
  { "parameters", marks[1].results.params },
  { "training", string.format("%d steps, batch %d, AdamW lr %g, warm-up %d, EMA %g", cfg.steps,
                              cfg.batch, cfg.lr, cfg.warmup, cfg.ema) },
  { "seeds", cfg.seeds .. " (each also chooses the kept sites)" },
  { "probes", string.format("%d between (cell centres inside a margin of %g px) x %d samples,"
                            .. " %d sites; %s %d steps, EMA weights; tolerance %g px per axis",
                            #BETWEEN // cfg.samples, cfg.margin, cfg.samples, #SITES,
                            cfg.sampler, cfg.sample_steps, cfg.tolerance) },
  { "percolation", string.format("%d draws per lambda on a grid of %g; link when overlap"
                                 .. " exp(-r^2 / (4 sigma^2)) > threshold; spans: holds a site"
                                 .. " of the first and last row and column", cfg.draws,
                                 cfg.curve_step) },
}, { header = { "setting", "value" } })
doc:heading("Figures")
for _, sigma in ipairs(sigmas) do
  doc:figure(string.format("accuracy_s%g.svg", sigma), string.format("sigma %g: accuracy on"
    .. " the between probes (mean over seeds, t interval dashed), on kept and unseen sites"
    .. " (pooled), the fraction of datasets whose largest cluster spans at each threshold, and"
    .. " the percolation points lambda_p and the switch lambda_on (vertical).", sigma))
end
for _, c in ipairs(conditions) do
  local r = cell(c.sigma, c.lambda)[1]
  if r.samples then
    doc:figure(string.format("%s/%s_s%d/%s", TRAIN, c.name, r.seed, r.samples),
               string.format("sigma %g, lambda %g, seed %d: one sample per between probe", c.sigma,
                             c.lambda, r.seed), 128)
  end
end
doc:heading("Numbers")
local rows = {}
for _, m in ipairs(marks) do
  local r = m.results
  local row = { m.condition.sigma, m.condition.lambda, m.seed, r.images,
                iv(stats.wilson(r.between_k, r.between_n)), iv(stats.wilson(r.floor_k, r.floor_n)),
                iv(stats.wilson(r.kept_k, r.kept_n)), iv(stats.wilson(r.unkept_k, r.unkept_n)) }
  for _, t in ipairs(thresholds) do
    row[#row + 1] = string.format("%.2f%s", r["largest_" .. t], r["spans_" .. t] and " spans" or "")
  end
  row[#row + 1] = string.format("%.0f s", r.train_seconds)
  rows[#rows + 1] = row
end
local header = { "sigma", "lambda", "seed", "images", "between", "untrained", "kept sites",
                 "unseen sites" }
for _, t in ipairs(thresholds) do header[#header + 1] = "largest cluster, " .. t end
header[#header + 1] = "time"
doc:table(rows, { header = header, caption = "Each training: Wilson intervals on its k of n;"
                  .. " its own dataset's largest cluster (fraction of its sites)." })
doc:paragraph("metrics.jsonl holds a row per training, the percolation curves (event"
              .. " percolation) and the verdicts (event decision).")
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
