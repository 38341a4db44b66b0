-- Can a diffusion model draw a sum of stripes at an (x, y) it never saw?
-- docs/PAPER.md, finding 3 (the follow-up, Liang, Liu, Ostrow, Fiete 2024):
-- representations are factorized but not continuous, so composition works
-- when each factor is seen over its full range plus a few 2D examples,
-- while interpolation across an unseen band fails as the band widens.
--
--   bdrun scripts/compositional.lua [scale=quick|standard|paper] [seeds=1,2,3]
--                                   [steps=...] [shard=r/n] [collect=true] ...
--
-- Data, as the follow-up: sums of a vertical and a horizontal stripe
-- (bd.data.stripe_sum) with centres on a lattice of spacing dx over a
-- latent canvas of size + 2 margin pixels, cropped to the centred size x
-- size image. Labels are the centres in image coordinates, in [-margin,
-- size + margin]: a label with y outside [0, size] is an image with one
-- vertical stripe, a real coordinate, not a null label. Each condition
-- holds a region of labels out of training (bounds inclusive unless said):
--   control      x > size/2, every y: no x value of the right half is ever
--                seen (built to fail), and its mirror image x -> size - x,
--                labels on trained lattice values (built to generalize)
--   band_<w>     size/2 - w/2 < x < size/2 + w/2 (open; the edges are on the
--                lattice), every y: a band of unseen x values of width w
--   square_<W>   x and y in [size/2 - W/2, size/2 + W/2]: an interior square
--   edge_<W>     x in [size - W, size], y in [size/2 - W/2, size/2 + W/2]:
--                a square against the image's right edge
--   stripes_rim  x and y in [rim, size - rim]: what is left is the 1D
--                stripes (labels with a coordinate out of the image) plus
--                the sums of stripes on the rim of the image
-- For each condition and seed a UNet is trained on what is left.
--
-- Probes. Every `every` steps the model draws one sample per probe label:
--   in    an 8 x 8 grid of trained labels ((k - 1/2) size/8), the reference
--   held  labels of the region: its grid points (step probe_step, doubled
--         until at most max_probes) whose Chebyshev distance d to the
--         nearest training label is at least half the largest such d;
--         for a band, its centre line x = size/2 at every probe_step of y
--   gen   (control only) the mirror of held: labels on trained values
-- A sample is read as a sum of stripes (scripts/lib/sos.lua: each stripe's
-- place by a least-squares profile fit, and whether the image is a sum of
-- two stripes at all). It is right on an axis when it is a sum of stripes
-- and that stripe is within the condition's tolerance of the label:
-- min(tolerance, d_min / 2), d_min the smallest distance of its held probes
-- to a training label, so a sample that snaps to the nearest training value
-- is wrong; correct when right on both axes. The in probes are scored at
-- the same tolerance, so held and in accuracies compare.
--
-- The rule, per condition and seed: score = (held - floor) / (in - floor),
-- the part of the way from chance placement to in-distribution accuracy
-- that held-out accuracy covers, where floor = (2 tol / size)^2, the
-- accuracy of a sum of stripes placed uniformly in the image. Over seeds:
-- generalizes when the t interval (95%) of the score lies above 1/2 (the
-- midpoint between floor and in-distribution), fails when below it, and
-- cannot tell otherwise; not learned when the mean in accuracy is under
-- `learned`. The controls must read fails and generalizes; if either does
-- not, the experiment says it cannot decide and gives no verdict.
-- Finding 3 predicts: squares, edges and stripes_rim generalize; the
-- widest band fails, and the score falls as the band widens.
--
-- Writes runs/compositional/: config.json, metrics.jsonl (a row per
-- condition with its verdict, then the answer), accuracy.svg, bands.svg,
-- report.html, and train/<condition>_s<seed>/ (each training: config.json,
-- metrics.jsonl, done.json; samples.png for the first seed; the sweep's
-- summary.json and summary.csv).
local experiment = require "experiment"
local report = require "report"
local sweep = require "sweep"
local stats = require "stats"
local heldout = require "heldout"
local json = require "json"
local sos = require "sos"

local cfg = experiment.config(sweep.options{
  name = "compositional",
  sigma = 1.0,
  margin = 6,              -- latent canvas = size + 2 margin (the follow-up: 44 for 32)
  dx = 0.25,               -- lattice spacing of the centres, x and y (a divisor of 1)
  tolerance = 1.0,         -- px per axis, at most (lowered per condition, see above)
  learned = 0.5,           -- in accuracy under which a condition is not judged: the
                           -- model must draw most trained labels right first
  max_probes = 64,         -- held probes per condition, at most
  sampler = "ddpm",
  batch = 64,
  warmup = 100,
  conditions = "control,bands,squares,edges,stripes_rim",
}, {
  -- 16x16 (canvas 28), widths scaled from the follow-up's 32x32 by 1/2;
  -- 9 conditions x 3 seeds in about 30 CPU-minutes
  quick = { size = 16, width = 8, emb = 64, attention_blocks = "", steps = 900, lr = 4e-3,
            ema = 0.99, every = 450, sample_steps = 25, probe_step = 0.5, bands = "0.5,1.75,4",
            squares = "4,8", rim = 2.0, seeds = "1,2,3" },
  -- 32x32 (canvas 44) as the follow-up, with a CPU-sized width
  standard = { size = 32, width = 16, emb = 128, attention_blocks = "down3,up1", steps = 6000,
               lr = 1e-3, ema = 0.995, every = 2000, sample_steps = 50, probe_step = 0.5,
               bands = "1,3.5,8", squares = "8,16", rim = 4.0, seeds = "1,2,3" },
  -- the paper's net (width 64, attention everywhere); the training length is ours
  paper = { size = 32, width = 64, emb = 256, attention_blocks = "down1,down2,down3,up1,up2,up3",
            steps = 40000, lr = 3e-4, ema = 0.999, every = 4000, sample_steps = 100,
            probe_step = 0.5, bands = "1,3.5,8", squares = "8,16", rim = 4.0, seeds = "1,2,3" },
})
local seeds = experiment.seeds(cfg.seeds)
local N, half, dx = cfg.size, cfg.size / 2, cfg.dx
local canvas = N + 2 * cfg.margin
local eps = dx / 10 -- makes a bound exclusive of the lattice value it sits on

-- ---- the conditions ----------------------------------------------------------------

local function numbers(text, key)
  local out = {}
  for token in tostring(text):gmatch("[^,%s]+") do
    local v = tonumber(token)
    if not v or v <= 0 or math.abs(v / dx - math.floor(v / dx + 0.5)) > 1e-9 then
      error(string.format("%s = '%s': '%s' is not a positive multiple of dx = %g", key, text,
                          token, dx), 0)
    end
    out[#out + 1] = v
  end
  return out
end

local function lattice_floor(v) return math.floor(v / dx + 1e-9) * dx end

local groups = {
  control = function()
    return { { name = "control", holdout = "xband", x0 = half + eps, x1 = N + cfg.margin,
               control = true, predicted = "controls",
               what = string.format("x > %g held out for every y (and its mirror, trained)",
                                    half) } }
  end,
  bands = function()
    local out = {}
    for _, w in ipairs(numbers(cfg.bands, "bands")) do
      local a = lattice_floor(half - w / 2)
      out[#out + 1] = { name = "band_" .. w, holdout = "xband", x0 = a + eps, x1 = a + w - eps,
                        band = w, centre = a + w / 2, predicted = "see the trend",
                        what = string.format("%g < x < %g held out for every y", a, a + w) }
    end
    out[#out].predicted = "fails" -- the widest
    return out
  end,
  squares = function()
    local out = {}
    for _, W in ipairs(numbers(cfg.squares, "squares")) do
      out[#out + 1] = { name = "square_" .. W, holdout = "rect", x0 = half - W / 2,
                        x1 = half + W / 2, y0 = half - W / 2, y1 = half + W / 2,
                        predicted = "generalizes",
                        what = string.format("x and y in [%g, %g] held out", half - W / 2,
                                             half + W / 2) }
    end
    return out
  end,
  edges = function()
    local out = {}
    for _, W in ipairs(numbers(cfg.squares, "squares")) do
      out[#out + 1] = { name = "edge_" .. W, holdout = "rect", x0 = N - W, x1 = N,
                        y0 = half - W / 2, y1 = half + W / 2, predicted = "generalizes",
                        what = string.format("x in [%g, %g], y in [%g, %g] held out", N - W, N,
                                             half - W / 2, half + W / 2) }
    end
    return out
  end,
  stripes_rim = function()
    local lo, hi = cfg.rim, N - cfg.rim
    return { { name = "stripes_rim", holdout = "rect", x0 = lo, x1 = hi, y0 = lo, y1 = hi,
               predicted = "generalizes",
               what = string.format("x and y in [%g, %g] held out: 1D stripes plus the rim", lo,
                                    hi) } }
  end,
}

local conditions = {}
for group in cfg.conditions:gmatch("[^,%s]+") do
  if not groups[group] then
    error(string.format("conditions: unknown '%s', expected some of control, bands, squares,"
                        .. " edges, stripes_rim", group), 0)
  end
  for _, c in ipairs(groups[group]()) do conditions[#conditions + 1] = c end
end

local function dataset(c)
  local t = { size = N, canvas = canvas, sigma = cfg.sigma, dx = dx, dy = dx,
              holdout = c.holdout, holdout_x0 = c.x0, holdout_x1 = c.x1 }
  if c.y0 then t.holdout_y0, t.holdout_y1 = c.y0, c.y1 end
  return bd.data.stripe_sum(t)
end

-- Is (x, y) in condition c's held-out region? (as bd/data.h: bounds inclusive)
local function held_out(c, x, y)
  local inx = x >= c.x0 and x <= c.x1
  if c.holdout == "xband" then return inx end
  return inx and y >= c.y0 and y <= c.y1
end

-- ---- the probes ---------------------------------------------------------------------

-- The Chebyshev distance from (x, y) to the nearest label of a set of
-- lattice sites (keys from site_key), by rings of lattice sites around it.
local function site_key(i, j) return i * 65536 + j end
local function nearest_distance(sites, x, y)
  local ci, cj = math.floor((x + cfg.margin) / dx + 0.5), math.floor((y + cfg.margin) / dx + 0.5)
  local best = math.huge
  for r = 0, math.floor(canvas / dx) + 1 do
    if r * dx - dx > best then break end -- every farther ring is farther than best
    for i = ci - r, ci + r do
      for j = cj - r, cj + r do
        if (math.abs(i - ci) == r or math.abs(j - cj) == r) and sites[site_key(i, j)] then
          local d = math.max(math.abs(i * dx - cfg.margin - x), math.abs(j * dx - cfg.margin - y))
          best = math.min(best, d)
        end
      end
    end
  end
  return best
end

local function trained_sites(labels)
  local sites = {}
  for _, l in ipairs(labels) do
    sites[site_key(math.floor((l[1] + cfg.margin) / dx + 0.5),
                   math.floor((l[2] + cfg.margin) / dx + 0.5))] = true
  end
  return sites
end

-- Grid labels of step s inside the image ([s, size - s]) and condition c's region.
local function region_grid(c, s)
  local out = {}
  for j = 1, math.floor(N / s - 1e-9) do
    for i = 1, math.floor(N / s - 1e-9) do
      local x, y = i * s, j * s
      if held_out(c, x, y) then out[#out + 1] = { x, y } end
    end
  end
  return out
end

-- The probe sets of condition c given its training labels: in, held, gen
-- (lists of {x, y}), the tolerance and d_min (see the header).
local function probes_of(c, labels)
  local sites = trained_sites(labels)
  local probes = { ["in"] = {} }
  for j = 1, 8 do
    for i = 1, 8 do
      local x, y = (i - 0.5) * N / 8, (j - 0.5) * N / 8
      if not held_out(c, x, y) then probes["in"][#probes["in"] + 1] = { x, y } end
    end
  end
  local held, d_min = {}, math.huge
  if c.band then
    for k = 1, math.floor(N / cfg.probe_step - 1e-9) do held[#held + 1] = { c.centre, k * cfg.probe_step } end
  else
    local step, cand = cfg.probe_step, nil
    repeat
      cand = region_grid(c, step)
      local d_max = 0
      for _, p in ipairs(cand) do
        p.d = nearest_distance(sites, p[1], p[2])
        d_max = math.max(d_max, p.d)
      end
      held = {}
      for _, p in ipairs(cand) do
        if p.d >= d_max / 2 - 1e-9 then held[#held + 1] = { p[1], p[2] } end
      end
      step = step * 2
    until #held <= cfg.max_probes
  end
  for _, p in ipairs(held) do d_min = math.min(d_min, nearest_distance(sites, p[1], p[2])) end
  probes.held = held
  if c.control then
    probes.gen = {}
    for i, p in ipairs(held) do probes.gen[i] = { N - p[1], p[2] } end
  end
  probes.d_min = d_min
  probes.tolerance = math.min(cfg.tolerance, d_min / 2)
  return probes
end

-- ---- scoring ------------------------------------------------------------------------

local read = sos.reader{ size = N, sigma = cfg.sigma }

-- Counts over one probe set: k (correct), kx, ky (right on that axis),
-- formed (sums of stripes), n; and per probe 1/0 correct.
local function score(reads, labels, tol)
  local out = { k = 0, kx = 0, ky = 0, formed = 0, n = #labels, correct = {} }
  for i, l in ipairs(labels) do
    local r = reads[i]
    local okx = r.formed and math.abs(r.x - l[1]) <= tol
    local oky = r.formed and math.abs(r.y - l[2]) <= tol
    out.formed = out.formed + (r.formed and 1 or 0)
    out.kx, out.ky = out.kx + (okx and 1 or 0), out.ky + (oky and 1 or 0)
    out.correct[i] = (okx and oky) and 1 or 0
    out.k = out.k + out.correct[i]
  end
  return out
end

local function fraction(s) return s.n > 0 and s.k / s.n or 0 / 0 end

-- The chance floor: a sum of stripes placed uniformly in the image is
-- within tol of the label on both axes with probability (2 tol / size)^2.
local function floor_of(tol) return (2 * tol / N) ^ 2 end

-- ---- one training -------------------------------------------------------------------

local SETS = { "in", "held", "gen" }

-- Samples as RGB, held-out probes on a blue ground.
local function tinted(images, n_in)
  local out = {}
  for i, img in ipairs(images:to_table()) do
    local gray, blue = img[1], {}
    for r, row in ipairs(gray) do
      blue[r] = {}
      for k, p in ipairs(row) do blue[r][k] = i > n_in and math.max(p, -0.4) or p end
    end
    out[i] = { gray, gray, blue }
  end
  return bd.tensor.from_table(out)
end

local function train(run, c, seed)
  local data = dataset(c)
  local probes = probes_of(c, data.labels:to_table())
  local tol = probes.tolerance
  local all, first = {}, {}
  for _, set in ipairs(SETS) do
    first[set] = #all + 1
    for _, p in ipairs(probes[set] or {}) do all[#all + 1] = p end
  end
  local model = experiment.unet(cfg, seed, N)
  -- evaluation noise derived from the training seed (its own key)
  local sample_opts = { sampler = cfg.sampler, steps = cfg.sample_steps, seed = 1000 + seed }
  local curve, last = { step = {} }, nil
  for _, set in ipairs(SETS) do curve[set] = {} end
  local result = bd.train(model, data, {
    steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, warmup = cfg.warmup, ema = cfg.ema,
    seed = seed, every = cfg.every, run = run,
    on_eval = function(r)
      local s = bd.sample(model, all, sample_opts)
      local reads = read(s.images)
      local row, scores = { step = r.step, tolerance = tol }, {}
      for _, set in ipairs(SETS) do
        local list = probes[set]
        if list then
          local part = {}
          for i = 1, #list do part[i] = reads[first[set] + i - 1] end
          scores[set] = score(part, list, tol)
          row["acc_" .. set] = fraction(scores[set])
          row["formed_" .. set] = scores[set].formed / math.max(1, #list)
          curve[set][#curve.step + 1] = row["acc_" .. set]
        end
      end
      curve.step[#curve.step + 1] = r.step
      last = { images = s.images, scores = scores, reads = reads }
      assert(r:log(row))
      bd.log.info("%s seed %d step %d (tolerance %.3g px): in %.2f held %.2f%s", c.name, seed,
                  r.step, tol, row.acc_in, row.acc_held,
                  row.acc_gen and string.format(" gen %.2f", row.acc_gen) or "")
    end,
  })
  if seed == seeds[1] then
    assert(bd.image.save_grid(run:path("samples.png"), tinted(last.images, #probes["in"]),
                              { labels = bd.tensor.from_table(all), cols = 8,
                                scale = math.max(1, 32 // N) }))
  end
  local out = { images = data.n, tolerance = tol, d_min = probes.d_min, curve = curve,
                seconds = result.seconds, params = model:num_parameters() }
  for _, set in ipairs(SETS) do
    local s = last.scores[set]
    if s then
      out[set] = { k = s.k, kx = s.kx, ky = s.ky, formed = s.formed, n = s.n,
                   correct = s.correct, labels = probes[set] }
    end
  end
  return out
end

-- ---- the sweep -------------------------------------------------------------------------

-- A finished training is skipped when the sweep runs again, so one made
-- with other settings would be reported as if made with these: refuse it.
local function check_marks(dir)
  for _, c in ipairs(conditions) do
    for _, seed in ipairs(seeds) do
      local sub = string.format("%s/%s_s%d/", dir, c.name, seed)
      local mark, saved = io.open(sub .. "done.json"), io.open(sub .. "config.json")
      if mark and saved then
        local old = (json.decode(saved:read("a")) or {}).config or {}
        for k, v in pairs(cfg) do
          if k ~= "shard" and k ~= "collect" and old[k] ~= v then
            error(string.format("%s was trained with %s = %s, not %s; delete %s or choose"
                                .. " another name=", sub, k, tostring(old[k]), tostring(v),
                                dir), 0)
          end
        end
      end
      if mark then mark:close() end
      if saved then saved:close() end
    end
  end
end

local started = bd.time()
local root = "runs/" .. cfg.name
check_marks(root .. "/train")
local runs = sweep.run{ name = cfg.name, dir = root .. "/train", conditions = conditions,
                        seeds = seeds, config = cfg, train = train }
if not runs then return end

-- the report's run is made again from the sweep's marks each time: it starts over
local run = bd.run(cfg.name, { overwrite = true })
local saved = { training_sets = {} }
for k, v in pairs(cfg) do saved[k] = v end
for i, c in ipairs(conditions) do
  saved.training_sets[i] = { name = c.name, holdout = c.holdout, x0 = c.x0, x1 = c.x1, y0 = c.y0,
                          y1 = c.y1, what = c.what, predicted = c.predicted }
end
assert(run:save_config(saved))

local by_condition = {}
for _, mark in ipairs(runs) do
  local list = by_condition[mark.condition.name] or {}
  list[#list + 1] = mark.results
  by_condition[mark.condition.name] = list
end

-- ---- the statistic -----------------------------------------------------------------------

-- One probe set of one condition over its seeds (scripts/lib/heldout.lua):
-- per seed the accuracy with its Wilson interval; over seeds the verdict,
-- the t intervals of the accuracies and of the score, the axes apart.
local function judge(c, set)
  local res = by_condition[c.name]
  local accs, ins, per_seed, axis = {}, {}, {}, { x = {}, y = {} }
  local tol = res[1].tolerance
  for i, r in ipairs(res) do
    local s, ref = r[set], r["in"]
    per_seed[i] = stats.wilson(s.k, s.n)
    accs[i], ins[i] = s.k / s.n, ref.k / ref.n
    axis.x[i], axis.y[i] = s.kx / s.n, s.ky / s.n
  end
  local j = heldout.judge{ held = accs, ["in"] = ins, floor = floor_of(tol),
                           learned = cfg.learned }
  j.set, j.tol, j.per_seed, j.n_probes, j.d_min = set, tol, per_seed, res[1][set].n, res[1].d_min
  j.acc_x, j.acc_y = stats.summary(axis.x), stats.summary(axis.y)
  return j
end

for _, c in ipairs(conditions) do
  c.judged = judge(c, "held")
  if c.control then c.gen = judge(c, "gen") end
  assert(run:log{ event = "condition", condition = c.name, verdict = c.judged.verdict,
                  predicted = c.predicted, tolerance = c.judged.tol, floor = c.judged.floor,
                  threshold = c.judged.threshold, acc_in = c.judged["in"].mean,
                  acc_held = c.judged.acc.mean, acc_held_lo = c.judged.acc.lo,
                  acc_held_hi = c.judged.acc.hi, score = c.judged.score.mean,
                  score_lo = c.judged.score.lo, score_hi = c.judged.score.hi,
                  gen_verdict = c.gen and c.gen.verdict, n_held = c.judged.n_probes })
end

-- The controls: every control condition must read fails on held and
-- generalizes on gen.
local controls_ok, control_lines = nil, {}
for _, c in ipairs(conditions) do
  if c.control then
    local ok = c.judged.verdict == "fails" and c.gen.verdict == "generalizes"
    controls_ok = (controls_ok == nil or controls_ok) and ok
    control_lines[#control_lines + 1] = { c = c, ok = ok }
  end
end

-- The band trend: the score of the narrowest band learned at its
-- tolerance minus the widest one's (Welch), when two bands were learned.
local bands, learned_bands = {}, {}
for _, c in ipairs(conditions) do
  if c.band then
    bands[#bands + 1] = c
    if c.judged.verdict ~= "not learned" then learned_bands[#learned_bands + 1] = c end
  end
end
local trend
if #learned_bands >= 2 then
  local function values(c)
    local xs = {}
    for _, r in ipairs(by_condition[c.name]) do
      xs[#xs + 1] = heldout.score(r.held.k / r.held.n, r["in"].k / r["in"].n,
                                  floor_of(r.tolerance))
    end
    return xs
  end
  trend = stats.welch(values(learned_bands[1]), values(learned_bands[#learned_bands]))
  trend.narrow, trend.wide = learned_bands[1], learned_bands[#learned_bands]
  trend.falls = trend.lo == trend.lo and trend.lo > 0
end

-- Agreement with finding 3, over the conditions it predicts.
local agree, disagree, open = {}, {}, {}
for _, c in ipairs(conditions) do
  local v = c.judged.verdict
  if c.predicted == "generalizes" or c.predicted == "fails" then
    if v == c.predicted then agree[#agree + 1] = c.name
    elseif v == "generalizes" or v == "fails" then disagree[#disagree + 1] = c.name
    else open[#open + 1] = c.name end
  end
end
if trend then
  local name = "band trend"
  if trend.falls then agree[#agree + 1] = name
  elseif trend.hi == trend.hi and trend.hi < 0 then disagree[#disagree + 1] = name
  else open[#open + 1] = name end
end

local function list(t) return #t > 0 and table.concat(t, ", ") or "none" end
local agreement
if controls_ok == false then
  agreement = "cannot decide: a control did not come out as designed (below); no verdict is given"
elseif controls_ok == nil then
  agreement = "cannot decide: no control was run (conditions= without control)"
elseif #agree + #disagree == 0 then
  agreement = "cannot be compared with finding 3 (no prediction was decided)"
else
  agreement = string.format("%s docs/PAPER.md finding 3: as predicted %s; against it %s;"
                            .. " undecided %s", #disagree == 0 and "agrees with"
                            or #agree == 0 and "disagrees with" or "agrees in part with",
                            list(agree), list(disagree), list(open))
end

-- ---- the answer in words --------------------------------------------------------------------

local function pct(iv)
  if iv.n == 0 then return "-" end
  if iv.lo ~= iv.lo then return string.format("%.0f%%", 100 * iv.mean) end
  return string.format("%.0f%% [%.0f, %.0f]", 100 * iv.mean, 100 * math.max(0, iv.lo),
                       100 * math.min(1, iv.hi))
end

local function score_words(iv)
  if iv.n == 0 then return "-" end
  if iv.lo ~= iv.lo then return string.format("%.2f", iv.mean) end
  return string.format("%.2f [%.2f, %.2f]", iv.mean, iv.lo, iv.hi)
end

local function condition_line(label, c, j)
  return string.format("  %-12s %-13s acc %s (x %.0f%%, y %.0f%%; %d probes, d >= %.2f px)"
                       .. " vs in %s at %.3g px: score %s", label, j.verdict, pct(j.acc),
                       100 * j.acc_x.mean, 100 * j.acc_y.mean, j.n_probes, j.d_min,
                       pct(j["in"]), j.tol, score_words(j.score))
end

local total = bd.time() - started
local lines = { "answer: the model " .. agreement,
                string.format("  (rule: score = (held - floor) / (in - floor), floor = chance"
                              .. " placement (2 tol / %d)^2; generalizes when its t 95%% interval"
                              .. " over %d seed(s) is above 0.5, fails below; in under %.0f%%:"
                              .. " not learned; intervals: t 95%% over seeds)", N, #seeds,
                              100 * cfg.learned) }
lines[#lines + 1] = "  controls (must read: held fails, mirror generalizes):"
for _, cl in ipairs(control_lines) do
  lines[#lines + 1] = condition_line("held", cl.c, cl.c.judged)
  lines[#lines + 1] = condition_line("mirror", cl.c, cl.c.gen)
  lines[#lines + 1] = string.format("    threshold (midpoint of floor %.3f and in %.2f): %.2f;"
                                    .. " the controls %s", cl.c.judged.floor,
                                    cl.c.judged["in"].mean, cl.c.judged.threshold,
                                    cl.ok and "came out as designed"
                                    or "did NOT come out as designed")
end
for i, c in ipairs(conditions) do
  if i == #control_lines + 1 then lines[#lines + 1] = "  conditions (predicted by finding 3):" end
  if not c.control then
    lines[#lines + 1] = condition_line(c.name, c, c.judged)
                        .. string.format(" (predicted %s)", c.predicted)
  end
end
if trend then
  lines[#lines + 1] = string.format("  band trend: score of band %g minus band %g = %s (Welch t"
                                    .. " 95%%): %s", trend.narrow.band, trend.wide.band,
                                    trend.lo == trend.lo and string.format("%+.2f [%+.2f, %+.2f]",
                                    trend.mean, trend.lo, trend.hi) or string.format("%+.2f",
                                    trend.mean), trend.falls and "falls as the band widens"
                                    or "no fall shown")
elseif #bands >= 2 then
  lines[#lines + 1] = string.format("  band trend: not judged (%d of %d bands learned at their"
                                    .. " tolerance)", #learned_bands, #bands)
end
local run_seconds = 0
for _, mark in ipairs(runs) do run_seconds = run_seconds + mark.seconds end
lines[#lines + 1] = string.format("  %d trainings of %d steps: %s of training and evaluation;"
                                  .. " this process %s (scale %s)", #runs, cfg.steps,
                                  experiment.duration(run_seconds), experiment.duration(total),
                                  cfg.scale)
lines[#lines + 1] = string.format("  this scale (%dx%d, canvas %d, lattice %g px) can say whether"
                                  .. " held-out sums of stripes are drawn where asked at these"
                                  .. " tolerances; it cannot say what happens at 32x32, with the"
                                  .. " paper's net, or for bumps rather than sums of stripes",
                                  N, N, canvas, dx)
local answer = table.concat(lines, "\n")
local verdicts = {}
for _, c in ipairs(conditions) do verdicts[c.name] = c.judged.verdict end
assert(run:log{ event = "answer", agreement = agreement, verdicts = verdicts,
                controls = controls_ok, seconds = total })

-- ---- figures ---------------------------------------------------------------------------------

-- Accuracy over training, mean over seeds: in solid, held dashed.
local series = {}
for i, c in ipairs(conditions) do
  local res = by_condition[c.name]
  for _, part in ipairs{ { "in", false }, { "held", true } } do
    local ys = {}
    for k = 1, #res[1].curve.step do
      local xs = {}
      for _, r in ipairs(res) do xs[#xs + 1] = r.curve[part[1]][k] end
      ys[k] = stats.summary(xs).mean
    end
    series[#series + 1] = { name = c.name .. " " .. part[1], x = res[1].curve.step, y = ys,
                            color = report.colors[(i - 1) % #report.colors + 1], dash = part[2] }
  end
end
assert(report.save(run:path("accuracy.svg"), report.lines{
  title = string.format("accuracy at each condition's tolerance: in (solid), held (dashed);"
                        .. " mean of %d seed(s)", #seeds),
  xlabel = "training step", ylabel = "accuracy", ylim = { 0, 1 }, xlim = { 0, cfg.steps },
  series = series }))
if #bands > 0 then
  local xs, ys, lo, hi = {}, {}, {}, {}
  for i, c in ipairs(bands) do
    xs[i], ys[i] = c.band, c.judged.score.mean
    lo[i], hi[i] = c.judged.score.lo, c.judged.score.hi
  end
  assert(report.save(run:path("bands.svg"), report.lines{
    title = "score against band width (mean and t 95% interval over seeds)",
    xlabel = "band width (px)", ylabel = "score (0: chance, 1: as in distribution)",
    series = { { name = "score", x = xs, y = ys }, { name = "low", x = xs, y = lo, dash = true },
               { name = "high", x = xs, y = hi, dash = true } },
    hlines = { { y = 0.5, label = "threshold" } } }))
end

-- ---- the report ------------------------------------------------------------------------------

local doc = report.new("Compositional generalization: sums of stripes at labels never trained")
doc:question("Trained on sums of stripes with a region of labels held out, does the model draw"
  .. " a sum of stripes at the requested place for held-out labels as well as for trained ones?"
  .. " docs/PAPER.md, finding 3: composition works when each factor is seen over its full range"
  .. " (squares, stripes plus the rim), and interpolation across an unseen band fails as the"
  .. " band widens.")
doc:heading("Answer")
doc:answer(answer)
doc:paragraph("This run " .. agreement .. ".")
doc:heading("Setup")
local first = runs[1].results
doc:table({
  { "scale", cfg.scale }, { "image", string.format("%dx%d, cropped from a %dx%d latent canvas",
                                                   N, N, canvas, canvas) },
  { "data", string.format("sums of a vertical and a horizontal stripe, sigma %g px, centres on"
                          .. " a lattice of %g px over the canvas (labels in [%g, %g])",
                          cfg.sigma, dx, -cfg.margin, N + cfg.margin) },
  { "denoiser", string.format("unet, width %d, emb %d, attention '%s', %d parameters",
                              cfg.width, cfg.emb, cfg.attention_blocks, first.params) },
  { "training", string.format("%d steps, batch %d, AdamW lr %g, warm-up %d, EMA %g", cfg.steps,
                              cfg.batch, cfg.lr, cfg.warmup, cfg.ema) },
  { "seeds", cfg.seeds .. " (evaluation noise keyed by 1000 + the training seed)" },
  { "probes", string.format("in: 8x8 grid of trained labels; held: the region's grid (step %g,"
                            .. " doubled to at most %d), keeping the half farthest from training"
                            .. " labels; bands: their centre line; %s %d steps, EMA weights",
                            cfg.probe_step, cfg.max_probes, cfg.sampler, cfg.sample_steps) },
  { "reading", string.format("least-squares stripe profile fits to the column and row means; a"
                             .. " sum of stripes when the rms difference to the ideal image is at"
                             .. " most %.3f (half that of a missing stripe)",
                             sos.max_rmse(N, cfg.sigma)) },
  { "tolerance", string.format("min(%g, d_min / 2) per axis, d_min the held probes' smallest"
                               .. " distance to a training label", cfg.tolerance) },
}, { header = { "setting", "value" } })
local data_rows = {}
for _, c in ipairs(conditions) do
  local r = by_condition[c.name][1]
  data_rows[#data_rows + 1] = { c.name, c.what, r.images, r.held.n, r.d_min, r.tolerance,
                                c.predicted }
end
doc:table(data_rows, { header = { "condition", "held out", "training images", "held probes",
                                  "d_min (px)", "tolerance (px)", "finding 3 predicts" } })
doc:heading("Figures")
doc:figure("accuracy.svg", "Accuracy over training at each condition's tolerance, mean over"
           .. " seeds: in distribution (solid) and held out (dashed).")
if #bands > 0 then
  doc:figure("bands.svg", "The score (0: chance placement, 1: as good as in distribution) of"
             .. " each band's centre line against the band's width.")
end
for _, c in ipairs(conditions) do
  doc:figure("train/" .. c.name .. "_s" .. seeds[1] .. "/samples.png", string.format("%s, seed"
             .. " %d, step %d: in probes, then held probes (blue ground)%s; the requested place"
             .. " marked.", c.name, seeds[1], cfg.steps, c.control and ", then the mirror" or ""),
             300)
end
doc:heading("Numbers")
local rows = {}
for _, c in ipairs(conditions) do
  for i, r in ipairs(by_condition[c.name]) do
    for _, set in ipairs(SETS) do
      if r[set] then
        local w = c.judged.per_seed[i]
        if set == "gen" then w = c.gen.per_seed[i] end
        if set == "in" then w = stats.wilson(r["in"].k, r["in"].n) end
        rows[#rows + 1] = { c.name, seeds[i], set, stats.describe(w, "%.2f"), r[set].kx / r[set].n,
                            r[set].ky / r[set].n, r[set].formed / r[set].n, r.tolerance }
      end
    end
  end
end
doc:table(rows, { header = { "condition", "seed", "probes", "accuracy (Wilson 95%)", "x right",
                             "y right", "sums of stripes", "tolerance (px)" },
                  caption = string.format("At step %d.", cfg.steps) })
doc:paragraph("Every evaluation is a row of train/<condition>_s<seed>/metrics.jsonl;"
              .. " train/summary.csv has one row per training.")
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
