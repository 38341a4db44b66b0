-- How much data does a diffusion model need as the image grows? docs/PAPER.md,
-- finding 3 (the follow-up, Liang, Liu, Ostrow, Fiete 2024): trained on 2D
-- bumps the data needed to reach 60% accuracy grows about as N^2; trained on
-- 1D stripes plus a few 2D examples it grows about as N.
--
--   bdrun scripts/efficiency.lua [scale=quick|standard|paper] [seeds=1,2]
--                                [sizes=8,16] [spacings=3,2,1] [examples=8] ...
--   bdrun scripts/efficiency.lua shard=0/2 ...   (and shard=1/2: the same sweep)
--
-- Arms, each at every image size N and lattice spacing d of a ladder:
--   bumps     2D bumps with centres on the lattice of spacing d:
--             (N/d + 1)^2 images
--   stripes   1D stripes (vertical at every lattice x, horizontal at every
--             lattice y; the missing coordinate's label is bd.data's null
--             label) plus `examples` 2D bumps at lattice sites chosen by the
--             seed (bd.data's lambda): 2 (N/d + 1) + examples images
-- For each arm, N, d and seed a UNet is trained for the size's fixed budget
-- (steps, one per size) and then draws one sample per probe label: `probes`
-- positions drawn uniformly in [margin, N - margin]^2 (seeded, the same for
-- every training of a size), asking for a 2D bump in both arms. A sample is
-- correct when it holds one bump within `tolerance` px of the label on both
-- axes (the bump metric; the papers' accuracy). The fraction snapped to a
-- training lattice value (nearer it than to the asked value, per axis) is
-- reported as its own number: at spacings up to 2 tolerance a snapped bump
-- can still count as correct, so accuracy there asks for placement, not
-- interpolation.
--
-- Data needed: for one arm, N and seed, the number of training images n* at
-- which accuracy first reaches `level` (0.6, the follow-up's), interpolated
-- linearly in log n between the ladder's trainings; censored (none) when no
-- spacing of the ladder reaches it, or when the smallest data set already
-- does (then n* is at most that size and is not located).
-- The statistic: per arm and seed, the least-squares slope of log n* on
-- log N (every size located), with a t interval over seeds. Rule: the
-- midpoint of the two references, 1.5, splits "near quadratic" (interval
-- above 1.5) from "near linear" (interval below), "cannot tell" otherwise.
-- Controls through the same fit and rule: the data sets' own sizes at the
-- ladder's finest spacing (the answer known by construction: bumps' counts
-- grow as N^2, stripes' as N), which must read near quadratic and near
-- linear; if either does not, the run cannot decide. The finding agrees when
-- bumps read near quadratic and stripes near linear; disagrees when either
-- reads the other way.
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
  probes = 36,
  probe_seed = 7,
  examples = 8,         -- 2D examples beside the stripes ("a few")
  sampler = "ddpm",
  batch = 64,
  warmup = 100,
  arms = "bumps,stripes",
}, {
  -- 8x8 and 16x16 at width 8, no attention, one budget per size: 900 steps
  -- teach 8x8 (the percolation script's development run), 16x16 needs about
  -- 1,500 (scripts/quickstart.lua: 94% at step 1,500). 24 trainings, 25
  -- CPU-minutes as run: two one-thread processes (procs=2) fit 20 minutes;
  -- 32x32 does not fit.
  quick = { sizes = "8,16", steps = "900,1500", spacings = "3,2,1", width = 8, emb = 64,
            attention_blocks = "", lr = 4e-3, ema = 0.99, sample_steps = 25, seeds = "1,2",
            procs = 2 },
  -- the follow-up's sizes up to 32x32 with a CPU-sized width (configured, not run here)
  standard = { sizes = "8,16,32", steps = "1500,3000,6000", spacings = "4,3,2,1", width = 16,
               emb = 128, attention_blocks = "down3,up1", lr = 1e-3, ema = 0.995,
               sample_steps = 50, seeds = "1,2,3" },
  -- the paper's net (width 64, attention everywhere); ladder and budgets are ours
  paper = { sizes = "8,16,32", steps = "10000,20000,40000", spacings = "4,3,2,1.5,1,0.5",
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
local sizes, spacings = numbers(cfg.sizes, "sizes"), numbers(cfg.spacings, "spacings")
local budgets = numbers(cfg.steps, "steps")
if #budgets ~= #sizes then
  error(string.format("steps = '%s' has %d budgets for %d sizes ('%s'); expected one per size",
                      cfg.steps, #budgets, #sizes, cfg.sizes), 0)
end
local ARMS = {
  bumps = "2D bumps on the lattice",
  stripes = string.format("1D stripes on the lattice plus %d 2D bumps", cfg.examples),
}
local arms = {}
for name in tostring(cfg.arms):gmatch("[^,%s]+") do
  if not ARMS[name] then
    error(string.format("arms = '%s': '%s' is not an arm; expected bumps, stripes", cfg.arms,
                        name), 0)
  end
  arms[#arms + 1] = name
end

local conditions = {}
for i, N in ipairs(sizes) do
  for _, arm in ipairs(arms) do
    for _, d in ipairs(spacings) do
      conditions[#conditions + 1] = { name = string.format("%s_n%d_d%g", arm, N, d), arm = arm,
                                      size = N, d = d, steps = budgets[i] }
    end
  end
end

-- ---- data and probes ------------------------------------------------------------------

local function sites(N, d) return math.floor(N / d + 1e-9) + 1 end -- lattice values per axis

-- The training set of an arm at size N, spacing d; the seed chooses the 2D examples.
local function dataset(arm, N, d, seed)
  local common = { size = N, sigma = cfg.sigma, dx = d, dy = d }
  local bumps = {}
  for k, v in pairs(common) do bumps[k] = v end
  if arm == "bumps" then return bd.data.bumps(bumps) end
  bumps.lambda, bumps.seed = math.min(1, cfg.examples / sites(N, d) ^ 2), seed
  return bd.data.concat(bd.data.stripes(common), bd.data.bumps(bumps))
end

-- The images an arm's data set holds at size N, spacing d (its known size).
local function count(arm, N, d)
  local s = sites(N, d)
  if arm == "bumps" then return s * s end
  return 2 * s + math.floor(math.min(1, cfg.examples / (s * s)) * s * s + 0.5)
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
  local data = dataset(c.arm, c.size, c.d, seed)
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
local function results(arm, N, d) return by_name[string.format("%s_n%d_d%g", arm, N, d)] end

-- the report's run is made again from the sweep's marks each time: it starts over
local run = bd.run(cfg.name, { overwrite = true })
local saved = {}
for k, v in pairs(cfg) do saved[k] = v end
assert(run:save_config(saved))
for _, m in ipairs(marks) do
  local line = { event = "training", arm = m.condition.arm, size = m.condition.size,
                 d = m.condition.d, seed = m.seed }
  for k, v in pairs(m.results) do line[k] = v end
  assert(run:log(line))
end

-- ---- data needed -------------------------------------------------------------------------

-- The images at which accuracy first reaches the level over (images,
-- accuracy) points, interpolated in log images; nil and why when it cannot
-- be located.
local function needed(points)
  table.sort(points, function(a, b) return a[1] < b[1] end)
  for i, p in ipairs(points) do
    if p[2] >= cfg.level then
      if i == 1 then return nil, "reached by the smallest data set" end
      local q = points[i - 1]
      local f = (cfg.level - q[2]) / (p[2] - q[2])
      return math.exp(math.log(q[1]) + f * (math.log(p[1]) - math.log(q[1])))
    end
  end
  return nil, "not reached"
end

-- The least-squares slope of log y on log x over the pairs with both.
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

local MIDPOINT = 1.5 -- between the linear (1) and quadratic (2) references
-- The rule on a slope's interval [lo, hi] (an exact value: lo = hi).
local function read(lo, hi)
  if lo > MIDPOINT then return "near quadratic" end
  if hi < MIDPOINT then return "near linear" end
  return "cannot tell" -- also when the interval is NaN
end

local need, slopes = {}, {}
for _, arm in ipairs(arms) do
  need[arm], slopes[arm] = {}, {}
  for _, seed in ipairs(seeds) do
    need[arm][seed] = {}
    local ys = {}
    for i, N in ipairs(sizes) do
      local points = {}
      for _, d in ipairs(spacings) do
        for _, r in ipairs(results(arm, N, d)) do
          if r.seed == seed then points[#points + 1] = { r.images, r.correct / r.probes } end
        end
      end
      local n, why = needed(points)
      need[arm][seed][N] = { n = n, why = why }
      ys[i] = n or 0 / 0
      assert(run:log{ event = "needed", arm = arm, size = N, seed = seed, images = n,
                      censored = why })
    end
    slopes[arm][#slopes[arm] + 1] = slope(sizes, ys)
  end
  slopes[arm] = stats.t_interval(slopes[arm])
  slopes[arm].reads = read(slopes[arm].lo, slopes[arm].hi)
end

-- the controls: the data sets' own sizes at the finest spacing
local finest = math.min(table.unpack(spacings))
local controls = {}
for _, arm in ipairs(arms) do
  local ys = {}
  for i, N in ipairs(sizes) do ys[i] = count(arm, N, finest) end
  local s = slope(sizes, ys)
  controls[arm] = { slope = s, reads = read(s, s),
                    expected = arm == "bumps" and "near quadratic" or "near linear" }
  controls[arm].ok = controls[arm].reads == controls[arm].expected
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
  decision, reason = "cannot decide", "a slope's interval straddles 1.5 or a size's data"
                                      .. " needed was not located"
end

-- ---- numbers in words --------------------------------------------------------------------

local function iv(x, fmt) return stats.describe(x, fmt or "%.2f") end
local lines = {}
local function say(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
say("answer: %s (%s)", decision, reason)
for _, arm in ipairs(arms) do
  say("  %s (%s): slope of log images needed on log N %s: %s", arm, ARMS[arm],
      iv(slopes[arm]), slopes[arm].reads)
  for _, seed in ipairs(seeds) do
    local parts = {}
    for _, N in ipairs(sizes) do
      local v = need[arm][seed][N]
      parts[#parts + 1] = string.format("N %d: %s", N, v.n and string.format("%.0f", v.n) or v.why)
    end
    say("    seed %d: images to reach %.0f%%: %s", seed, 100 * cfg.level,
        table.concat(parts, "; "))
  end
end
say("controls (data set sizes at spacing %g, through the same fit and rule; midpoint %.1f):",
    finest, MIDPOINT)
for _, arm in ipairs(arms) do
  local c = controls[arm]
  say("  %s: slope %.2f reads %s (must read %s)", arm, c.slope, c.reads, c.expected)
end
say("accuracy (one bump within %g px on both axes, Wilson 95%%, pooled over %d seeds):",
    cfg.tolerance, #seeds)
for _, N in ipairs(sizes) do
  for _, arm in ipairs(arms) do
    for _, d in ipairs(spacings) do
      local k, n, snaps = 0, 0, {}
      for _, r in ipairs(results(arm, N, d)) do
        k, n = k + r.correct, n + r.probes
        snaps[#snaps + 1] = (r.snap_x + r.snap_y) / 2
      end
      say("  N %d %s d %g (%d images): %s, snapped %s", N, arm, d, count(arm, N, d),
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
local row = { event = "decision", decision = decision, reason = reason }
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
    for _, d in ipairs(spacings) do
      local k, n = 0, 0
      for _, r in ipairs(results(arm, N, d)) do k, n = k + r.correct, n + r.probes end
      xs[#xs + 1], ys[#ys + 1] = log2(count(arm, N, d)), k / n
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
  .. " accuracy as the image size N grows, trained on 2D bumps, or on 1D stripes plus %d 2D"
  .. " examples? The follow-up paper finds about N^2 for bumps and about N for stripes.",
  100 * cfg.level, cfg.examples))
doc:heading("Answer")
doc:answer(answer)
doc:heading("Controls")
local control_rows = {}
for _, arm in ipairs(arms) do
  local c = controls[arm]
  control_rows[#control_rows + 1] = { arm, string.format("data set sizes at spacing %g", finest),
    string.format("%.2f", c.slope), c.reads .. (c.ok and " (as built)" or " (NOT as built)") }
end
doc:table(control_rows, { header = { "arm", "case", "slope", "reads" } })
doc:paragraph("The controls put numbers whose growth is known (the data sets' own sizes) through"
  .. " the slope fit and the rule; the rule's cut, 1.5, is the midpoint of the two references.")
doc:heading("What this scale can and cannot say")
doc:paragraph(string.format("Sizes %s with budgets of %s steps; %d seeds give a t quantile of"
  .. " %.2f, so only slopes far from 1.5 can be read. The ladder of spacings (%s) locates the data"
  .. " needed between two trainings; when the smallest data set already reaches the level, or"
  .. " none does, that size's data needed is not located and the seed has no slope. At spacings up"
  .. " to %g px a bump snapped to a training value can count as correct.", cfg.sizes, cfg.steps,
  #seeds, stats.t_quantile(0.975, math.max(1, #seeds - 1)), cfg.spacings, 2 * cfg.tolerance))
doc:heading("Setup")
doc:table({
  { "scale", cfg.scale }, { "sizes", cfg.sizes }, { "budgets (steps)", cfg.steps },
  { "spacings (px)", cfg.spacings }, { "sigma (px)", cfg.sigma },
  { "arms", table.concat(arms, ", ") }, { "2D examples with the stripes", cfg.examples },
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
  rows[#rows + 1] = { m.condition.arm, m.condition.size, m.condition.d, m.seed, r.images,
                      iv(stats.wilson(r.correct, r.probes)), r.single, (r.snap_x + r.snap_y) / 2,
                      string.format("%.0f s", r.train_seconds) }
end
doc:table(rows, { header = { "arm", "N", "d", "seed", "images", "accuracy", "one bump",
                             "snapped", "time" },
                  caption = "Each training; Wilson intervals on its k of n." })
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
