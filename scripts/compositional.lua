-- Can a diffusion model draw a bump at an (x, y) it never saw? PAPER.md,
-- finding 3: representations are factorized but not continuous, so
-- composition works when each factor is seen over its full range (stripes)
-- plus a few 2D examples, while interpolation across an unseen band fails
-- as the band widens.
--
--   bdrun scripts/compositional.lua [scale=quick|paper] [seeds=1,2] [steps=...]
--                                   [shard=r/n] [collect=true] ...
--
-- Five training sets, each a sweep condition (scripts/lib/sweep.lua), for
-- each seed a UNet trained on it:
--   cross        bumps, x or y in [hold_lo, hold_hi] held out (PAPER.md's "+")
--   square       bumps, x and y in [hold_lo, hold_hi] held out
--   band         bumps, x in [hold_lo, hold_hi] held out (a vertical band)
--   stripes      1D stripes only, each over the full range of its coordinate
--   stripes_rim  stripes plus a few bumps on the rim of the label space
--                (bumps with the interior [rim, size - rim]^2 held out, a
--                fraction rim_lambda of them kept), joined by bd.data.concat
-- Stripes are conditioned as bd.data makes them: a vertical stripe at mu_x
-- has the label (mu_x, null_label), a horizontal one (null_label, mu_y).
--
-- Every `every` steps a probe grid of bump labels is sampled. A sample is
-- correct when the bump metric finds one bump within `tolerance` of the
-- requested place in x and in y, and that bump is compact (at most
-- `compact` times the area a true bump has above the threshold, so a cross
-- of two stripes does not count). Accuracy is reported over the probe
-- labels outside the held-out region (in distribution), inside it, and
-- inside it farther than `tolerance` (in x or in y) from every 2D training
-- label ("far": no training bump is close enough to be copied for a
-- correct answer).
-- For the stripe conditions stripe probes are sampled too; a stripe sample
-- is correct when at least 90% of its lines along the stripe have their
-- centroid within `tolerance` of the label. The stripes-only condition has
-- no 2D training label: its in-distribution accuracy is that of stripes.
--
-- The answer: a condition generalizes when its far held-out accuracy is at
-- least `ratio` of its in-distribution accuracy, fails when below, and is
-- not learned when in-distribution accuracy is under `learned` (means
-- over seeds). Finding 3 predicts: square and stripes_rim generalize (each
-- x and y value is trained, with other partners), cross and band fail
-- (their x values are never trained); it says nothing of stripes alone.
--
-- Writes runs/compositional/: config.json, metrics.jsonl (a row per
-- condition with its verdict, then the answer),
-- accuracy.svg (in and held-out accuracy over training), map_<condition>.svg
-- (per-label accuracy, held-out labels outlined), report.html, and
-- train/<condition>_s<seed>/ (each training: config.json, metrics.jsonl,
-- samples.png with held-out labels on a blue ground, stripes.png, done.json;
-- train/summary.json and summary.csv).
local experiment = require "experiment"
local report = require "report"
local sweep = require "sweep"
local json = require "json"

local cfg = experiment.config(sweep.options{
  name = "compositional",
  sigma = 1.0,
  dx = 0.25,             -- bump lattice spacing (x and y), pixels
  stripe_dx = 0.25,      -- stripe lattice spacing
  null_label = -1.0,     -- the label of a stripe's missing coordinate
  rim_dx = 1.0,          -- lattice of the rim bumps
  tolerance = 1.0,       -- pixels, in each coordinate
  compact = 3.0,         -- largest bump area, in units of a true bump's
  ratio = 0.5,           -- far held-out / in-distribution accuracy that generalizes
  learned = 0.6,         -- in-distribution accuracy below which nothing is judged
  sampler = "ddpm",
  batch = 64,
  warmup = 100,
  conditions = "cross,square,band,stripes,stripes_rim",
}, {
  -- 16x16 (8x8 leaves too little room around a held-out region): a held-out
  -- interval of 6 px leaves 2 px of labels farther than the tolerance from
  -- every training bump; 5 trainings of 1200 steps take about 15 min of CPU
  quick = { size = 16, width = 8, emb = 64, attention_blocks = "down2,down3,up1",
            steps = 1200, lr = 2e-3, ema = 0.99, every = 300, sample_steps = 25,
            probe_step = 1.0, hold_lo = 5.0, hold_hi = 11.0, rim = 2.0, rim_lambda = 1.0,
            seeds = "1" },
  -- the paper's setting: 32x32, width 64, PAPER.md's cross x or y in [13, 19];
  -- the lattice, rim and training length are ours
  paper = { size = 32, width = 64, emb = 256, attention_blocks = "down1,down2,down3,up1,up2,up3",
            steps = 40000, lr = 3e-4, ema = 0.999, every = 2000, sample_steps = 100,
            probe_step = 1.0, hold_lo = 13.0, hold_hi = 19.0, rim = 3.0, rim_lambda = 1.0,
            dx = 0.5, stripe_dx = 0.5, seeds = "1,2,3" },
})
local seeds = experiment.seeds(cfg.seeds)
local N, tol = cfg.size, cfg.tolerance

-- ---- the training sets ------------------------------------------------------------

local lo, hi, rim_lo, rim_hi = cfg.hold_lo, cfg.hold_hi, cfg.rim, N - cfg.rim
local ALL = {
  cross = { holdout = "cross", x0 = lo, x1 = hi, y0 = lo, y1 = hi, predicted = "fails",
            what = string.format("bumps, x or y in [%g, %g] held out", lo, hi) },
  square = { holdout = "rect", x0 = lo, x1 = hi, y0 = lo, y1 = hi, predicted = "generalizes",
             what = string.format("bumps, x and y in [%g, %g] held out", lo, hi) },
  band = { holdout = "xband", x0 = lo, x1 = hi, predicted = "fails",
           what = string.format("bumps, x in [%g, %g] held out", lo, hi) },
  stripes = { holdout = "all", stripes = true, predicted = "not stated",
              what = "stripes only (no 2D example): every bump label is held out" },
  stripes_rim = { holdout = "rect", x0 = rim_lo, x1 = rim_hi, y0 = rim_lo, y1 = rim_hi,
                  stripes = true, rim = true, predicted = "generalizes",
                  what = string.format("stripes plus %g%% of the bumps (lattice %g) with x or y"
                                       .. " outside [%g, %g]", 100 * cfg.rim_lambda, cfg.rim_dx,
                                       rim_lo, rim_hi) },
}
local conditions = {}
for name in cfg.conditions:gmatch("[^,%s]+") do
  local c = ALL[name]
  if not c then
    error(string.format("conditions: unknown '%s', expected some of cross, square, band,"
                        .. " stripes, stripes_rim", name), 0)
  end
  c.name = name
  conditions[#conditions + 1] = c
end

-- Is the label (x, y) in condition c's held-out region? (bounds inclusive, as bd/data.h)
local function held_out(c, x, y)
  local inx = c.x0 and x >= c.x0 and x <= c.x1
  local iny = c.y0 and y >= c.y0 and y <= c.y1
  if c.holdout == "all" then return true end
  if c.holdout == "cross" then return inx or iny end
  if c.holdout == "rect" then return inx and iny end
  return inx
end

local function holdout_keys(c, t)
  t.holdout, t.holdout_x0, t.holdout_x1 = c.holdout, c.x0, c.x1
  if c.holdout ~= "xband" then t.holdout_y0, t.holdout_y1 = c.y0, c.y1 end
  return t
end

local function dataset(c)
  local stripes = c.stripes and bd.data.stripes{ size = N, sigma = cfg.sigma, dx = cfg.stripe_dx,
                                                 dy = cfg.stripe_dx, null_label = cfg.null_label }
  if not c.stripes then
    return bd.data.bumps(holdout_keys(c, { size = N, sigma = cfg.sigma, dx = cfg.dx, dy = cfg.dx }))
  elseif not c.rim then
    return stripes
  end
  local rim = bd.data.bumps(holdout_keys(c, { size = N, sigma = cfg.sigma, dx = cfg.rim_dx,
                                               dy = cfg.rim_dx, lambda = cfg.rim_lambda }))
  return bd.data.concat(stripes, rim), rim.n
end

-- The 2D labels of a training set (stripes have the null label in one coordinate).
local function labels_2d(data)
  local out = {}
  for _, l in ipairs(data.labels:to_table()) do
    if math.abs(l[1] - cfg.null_label) > 1e-4 and math.abs(l[2] - cfg.null_label) > 1e-4 then
      out[#out + 1] = l
    end
  end
  return out
end

-- ---- the probes and how a sample is scored -------------------------------------------

local probe = bd.data.grid{ size = N, step = cfg.probe_step }
local probe_labels = probe.labels:to_table()
local cols = math.floor(math.sqrt(probe.n) + 0.5)  -- x values per probe row

-- Stripe probes: a vertical stripe at each probe x, then a horizontal one at each y.
local stripe_labels = {}
for i = 1, cols do stripe_labels[i] = { probe_labels[i][1], cfg.null_label } end
for i = 1, cols do stripe_labels[cols + i] = { cfg.null_label, probe_labels[i][1] } end

-- The area above the threshold (p > 0, v > 1/2) of a true bump: pi r^2 with
-- exp(-r^2 / (2 sigma^2)) = 1/2.
local max_area = cfg.compact * 2 * math.pi * cfg.sigma ^ 2 * math.log(2)
local bump_metric = bd.metric("bump", { tolerance = tol })

-- Per sample: 1 when correct (one compact bump within tolerance), else 0;
-- the distance of its bump to the label (false unless one bump); and the
-- fraction of one-bump samples too large to be a bump.
local function score_bumps(images, labels)
  local b = bump_metric(images, labels)
  local class, centre, imgs = b.class:to_table(), b.centre:to_table(), images:to_table()
  local want = labels:to_table()
  local correct, err, large, single = {}, {}, 0, 0
  for i, img in ipairs(imgs) do
    local area = 0
    for _, row in ipairs(img[1]) do
      for _, p in ipairs(row) do if p > 0 then area = area + 1 end end
    end
    correct[i] = (class[i] == 3 and area <= max_area) and 1 or 0
    err[i] = class[i] >= 2 and math.sqrt((centre[i][1] - want[i][1]) ^ 2
                                         + (centre[i][2] - want[i][2]) ^ 2)
    if class[i] >= 2 then
      single = single + 1
      if area > max_area then large = large + 1 end
    end
  end
  return correct, err, single > 0 and large / single or 0 / 0
end

-- Per stripe sample: 1 when at least 90% of the lines along the stripe
-- have their on-pixels' centroid within tolerance of the label.
local function score_stripes(images, labels)
  local out = {}
  for i, img in ipairs(images:to_table()) do
    local rows, vertical = img[1], labels[i][2] == cfg.null_label
    local mu = vertical and labels[i][1] or labels[i][2]
    local good = 0
    for a = 1, N do
      local s, w = 0, 0
      for b = 1, N do
        local p = vertical and rows[a][b] or rows[b][a]
        if p > 0 then
          s, w = s + (p + 1) / 2 * (b - 0.5), w + (p + 1) / 2
        end
      end
      if w > 0 and math.abs(s / w - mu) <= tol then good = good + 1 end
    end
    out[i] = good >= 0.9 * N and 1 or 0
  end
  return out
end

-- The mean of the values whose mask entry is true (all without a mask), and their count.
local function mean_of(values, keep)
  local s, n = 0, 0
  for i, v in ipairs(values) do
    if not keep or keep[i] then s, n = s + v, n + 1 end
  end
  return n > 0 and s / n or 0 / 0, n
end

-- The median of the values (false: none) whose mask entry is true; NaN when none.
local function median_of(values, keep)
  local xs = {}
  for i = 1, #keep do
    if keep[i] and values[i] then xs[#xs + 1] = values[i] end
  end
  table.sort(xs)
  if #xs == 0 then return 0 / 0 end
  return (xs[(#xs + 1) // 2] + xs[#xs // 2 + 1]) / 2
end

-- The probe's masks for condition c: in distribution, held out, held out
-- and farther than the tolerance from every 2D training label.
local function masks(c, train_2d)
  local m = { inside = {}, held = {}, far = {}, dist = {} }
  for i, l in ipairs(probe_labels) do
    local d = math.huge
    for _, t in ipairs(train_2d) do
      d = math.min(d, math.max(math.abs(t[1] - l[1]), math.abs(t[2] - l[2])))
    end
    m.dist[i] = d
    m.held[i] = held_out(c, l[1], l[2])
    m.inside[i] = not m.held[i]
    m.far[i] = m.held[i] and d > tol
  end
  return m
end

-- ---- images ------------------------------------------------------------------------

-- The samples as RGB, held-out labels on a blue ground, so the region shows.
local function tinted(images, held)
  local out = {}
  for i, img in ipairs(images:to_table()) do
    local gray = img[1]
    local blue = {}
    for r, row in ipairs(gray) do
      blue[r] = {}
      for k, p in ipairs(row) do blue[r][k] = held[i] and math.max(p, -0.4) or p end
    end
    out[i] = { gray, gray, blue }
  end
  return bd.tensor.from_table(out)
end

local scale = math.max(1, 64 // N)  -- grids are stored uncompressed

-- ---- one training --------------------------------------------------------------------

local sample_opts = { sampler = cfg.sampler, steps = cfg.sample_steps, seed = 1 }

local function train(run, c, seed)
  local data, rim_n = dataset(c)
  local m = masks(c, labels_2d(data))
  local model = bd.model("unet", { width = cfg.width, size = N, emb = cfg.emb,
                                   attention_blocks = cfg.attention_blocks, seed = seed })
  local curve = { step = {}, inside = {}, held = {}, far = {}, stripes = {} }
  local last = {}
  local result = bd.train(model, data, {
    steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, warmup = cfg.warmup, ema = cfg.ema,
    seed = seed, every = cfg.every, run = run,
    on_eval = function(r)
      local s = bd.sample(model, probe, sample_opts)
      local correct, err, large = score_bumps(s.images, probe.labels)
      local row = { step = r.step, large = large, err_in = median_of(err, m.inside),
                    err_far = median_of(err, m.far) }
      row.acc_in = mean_of(correct, m.inside)
      row.acc_held = mean_of(correct, m.held)
      row.acc_far = mean_of(correct, m.far)
      if c.stripes then
        local st = bd.sample(model, stripe_labels, sample_opts)
        last.stripes = st.images
        local ok = score_stripes(st.images, stripe_labels)
        row.acc_stripes = mean_of(ok)
      end
      for k, key in pairs{ inside = "acc_in", held = "acc_held", far = "acc_far",
                           stripes = "acc_stripes" } do
        curve[k][#curve.step + 1] = row[key] or 0 / 0
      end
      curve.step[#curve.step + 1] = r.step
      last.images, last.correct, last.row = s.images, correct, row
      assert(r:log(row))
      bd.log.info("%s seed %d step %d: in %.2f held %.2f far %.2f%s", c.name, seed, r.step,
                  row.acc_in, row.acc_held, row.acc_far,
                  row.acc_stripes and string.format(" stripes %.2f", row.acc_stripes) or "")
    end,
  })
  assert(bd.image.save_grid(run:path("samples.png"), tinted(last.images, m.held),
                            { labels = probe.labels, cols = cols, scale = scale }))
  if last.stripes then -- marked at the middle of the stripe asked for
    local marks = {}
    for i, l in ipairs(stripe_labels) do
      marks[i] = { l[1] == cfg.null_label and N / 2 or l[1],
                   l[2] == cfg.null_label and N / 2 or l[2] }
    end
    assert(bd.image.save_grid(run:path("stripes.png"), last.stripes,
                              { labels = bd.tensor.from_table(marks), cols = cols, scale = scale }))
  end
  local row = last.row
  local _, n_in = mean_of(last.correct, m.inside)
  local _, n_held = mean_of(last.correct, m.held)
  local _, n_far = mean_of(last.correct, m.far)
  return { acc_in = row.acc_in, acc_held = row.acc_held, acc_far = row.acc_far,
           acc_stripes = row.acc_stripes, large = row.large, err_in = row.err_in,
           err_far = row.err_far, n_in = n_in, n_held = n_held,
           n_far = n_far, images = data.n, rim_images = rim_n, seconds = result.seconds,
           params = model:num_parameters(), curve = curve, correct = last.correct }
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

local run = bd.run(cfg.name)
local saved = { training_sets = {} }
for k, v in pairs(cfg) do saved[k] = v end
for i, c in ipairs(conditions) do
  saved.training_sets[i] = { name = c.name, holdout = c.holdout, x0 = c.x0, x1 = c.x1, y0 = c.y0,
                          y1 = c.y1, what = c.what }
end
assert(run:save_config(saved))

-- The marks of each condition, in seed order.
local by_condition = {}
for _, mark in ipairs(runs) do
  local list = by_condition[mark.condition.name] or {}
  list[#list + 1] = mark
  by_condition[mark.condition.name] = list
end

local function stats_of(c, key)
  local xs = {}
  for _, mark in ipairs(by_condition[c.name]) do xs[#xs + 1] = mark.results[key] end
  return experiment.stats(xs)
end

-- ---- the answer ----------------------------------------------------------------------------

for _, c in ipairs(conditions) do
  c.stripe_in = c.stripes and not c.rim
  c.acc_in = stats_of(c, c.stripe_in and "acc_stripes" or "acc_in")
  c.acc_held, c.acc_far = stats_of(c, "acc_held"), stats_of(c, "acc_far")
  c.acc_stripes = stats_of(c, "acc_stripes")
  c.err_in, c.err_far = stats_of(c, "err_in"), stats_of(c, "err_far")
  c.seconds = stats_of(c, "seconds")
  local first = by_condition[c.name][1].results
  c.n_far, c.n_held, c.images, c.rim_images = first.n_far, first.n_held, first.images,
                                                 first.rim_images
  if not (c.acc_in.mean >= cfg.learned) then
    c.verdict = "not learned"
  elseif c.acc_far.n == 0 then
    c.verdict = "no far labels"
  elseif c.acc_far.mean >= cfg.ratio * c.acc_in.mean then
    c.verdict = "generalizes"
  else
    c.verdict = "fails"
  end
  assert(run:log{ event = "condition", condition = c.name, verdict = c.verdict,
                  predicted = c.predicted, acc_in = c.acc_in.mean, acc_held = c.acc_held.mean,
                  acc_far = c.acc_far.mean, acc_stripes = c.acc_stripes.mean,
                  acc_in_sd = c.acc_in.sd, acc_far_sd = c.acc_far.sd, n_far = c.n_far })
end

local agree, disagree, open = {}, {}, {}
for _, c in ipairs(conditions) do
  if c.predicted == "not stated" or c.verdict == "not learned" or c.verdict == "no far labels" then
    open[#open + 1] = c.name
  elseif c.verdict == c.predicted then
    agree[#agree + 1] = c.name
  else
    disagree[#disagree + 1] = c.name
  end
end
local agreement
if #agree + #disagree == 0 then
  agreement = "cannot be compared with finding 3 (no condition was learned and predicted)"
elseif #disagree == 0 then
  agreement = string.format("agrees with PAPER.md finding 3 (%s as predicted)",
                            table.concat(agree, ", "))
elseif #agree == 0 then
  agreement = string.format("disagrees with PAPER.md finding 3 (%s against the prediction)",
                            table.concat(disagree, ", "))
else
  agreement = string.format("agrees with PAPER.md finding 3 in part: as predicted %s; against"
                            .. " it %s", table.concat(agree, ", "), table.concat(disagree, ", "))
end

local function pct(st)
  if st.n == 0 then return "-" end
  if st.n == 1 then return string.format("%.0f%%", 100 * st.mean) end
  return string.format("%.0f%% +- %.0f", 100 * st.mean, 100 * st.sd)
end

local function px(st) return st.n > 0 and string.format("%.2f", st.mean) or "-" end

local total = bd.time() - started
local lines = { string.format("answer: the model %s", agreement),
                string.format("  (far held-out accuracy >= %.2f x in-distribution: generalizes;"
                              .. " in-distribution under %.0f%%: not learned; %d seed(s))",
                              cfg.ratio, 100 * cfg.learned, #seeds) }
for _, c in ipairs(conditions) do
  lines[#lines + 1] = string.format("  %-11s %-12s (predicted %s): in %s%s, held out %s, far %s"
                                    .. " (%d labels; median error %s px, in %s px)%s", c.name,
                                    c.verdict, c.predicted, pct(c.acc_in),
                                    c.stripe_in and " (stripes)" or "", pct(c.acc_held),
                                    pct(c.acc_far), c.n_far or 0, px(c.err_far), px(c.err_in),
                                    (c.rim and string.format("; stripes %s", pct(c.acc_stripes)))
                                    or "")
end
local run_seconds = 0 -- what the runs took, whichever process ran them
for _, mark in ipairs(runs) do run_seconds = run_seconds + mark.seconds end
lines[#lines + 1] = string.format("  %d trainings of %d steps: %s of training and evaluation;"
                                  .. " this process %s (scale %s)", #runs, cfg.steps,
                                  experiment.duration(run_seconds), experiment.duration(total),
                                  cfg.scale)
local answer = table.concat(lines, "\n")
local verdicts = {}
for _, c in ipairs(conditions) do verdicts[c.name] = c.verdict end
assert(run:log{ event = "answer", agreement = agreement, verdicts = verdicts, seconds = total })

-- ---- figures ---------------------------------------------------------------------------------

-- Accuracy over training, mean over seeds: in distribution solid, far held-out dashed.
local series = {}
for i, c in ipairs(conditions) do
  local marks = by_condition[c.name]
  for _, part in ipairs{ { c.stripe_in and "stripes" or "inside", false, "in" },
                         { "far", true, "far held-out" } } do
    local ys = {}
    for k = 1, #marks[1].results.curve.step do
      local xs = {}
      for _, mark in ipairs(marks) do xs[#xs + 1] = mark.results.curve[part[1]][k] end
      ys[k] = experiment.stats(xs).mean
    end
    series[#series + 1] = { name = c.name .. " " .. part[3], x = marks[1].results.curve.step,
                            y = ys, color = report.colors[i], dash = part[2] }
  end
end
assert(report.save(run:path("accuracy.svg"), report.lines{
  title = string.format("accuracy: in distribution (solid), far held-out (dashed); %d seed(s)",
                        #seeds),
  xlabel = "training step", ylabel = "accuracy", ylim = { 0, 1 }, xlim = { 0, cfg.steps },
  series = series }))

-- Per-label accuracy (mean over seeds) as a map laid out like the sample
-- grids (y down), held-out labels outlined in red.
local function accuracy_map(c)
  local marks, cell, pad = by_condition[c.name], 22, 30
  local W = pad + cols * cell + 70
  local out = { string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d"'
                              .. ' font-family="sans-serif" font-size="11">', W,
                              pad + cols * cell + 24),
                string.format('<rect width="%d" height="%d" fill="white"/>', W,
                              pad + cols * cell + 24),
                string.format('<text x="%d" y="16" text-anchor="middle" font-size="13">%s:'
                              .. ' accuracy per requested (x, y)</text>', W // 2,
                              report.escape(c.name)) }
  for i, l in ipairs(probe_labels) do
    local s = 0
    for _, mark in ipairs(marks) do s = s + mark.results.correct[i] end
    local x, y = pad + ((i - 1) % cols) * cell, pad + ((i - 1) // cols) * cell
    out[#out + 1] = string.format('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"%s/>',
                                  x, y, cell, cell, report.viridis(s / #marks),
                                  held_out(c, l[1], l[2])
                                  and ' stroke="#d62728" stroke-width="2"' or "")
  end
  for k = 1, cols, math.max(1, cols // 4) do
    local v = report.format(probe_labels[k][1])
    out[#out + 1] = string.format('<text x="%d" y="%d" text-anchor="middle">%s</text>',
                                  pad + (k - 0.5) * cell, pad - 4, v)
    out[#out + 1] = string.format('<text x="%d" y="%d" text-anchor="end">%s</text>', pad - 4,
                                  pad + (k - 0.5) * cell + 4, v)
  end
  local x0 = pad + cols * cell + 16
  for k = 0, 9 do
    out[#out + 1] = string.format('<rect x="%d" y="%.1f" width="12" height="%.1f" fill="%s"/>',
                                  x0, pad + (9 - k) * cols * cell / 10, cols * cell / 10 + 0.5,
                                  report.viridis((k + 0.5) / 10))
  end
  out[#out + 1] = string.format('<text x="%d" y="%d">1</text><text x="%d" y="%d">0</text>',
                                x0 + 16, pad + 10, x0 + 16, pad + cols * cell)
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n") .. "\n"
end
for _, c in ipairs(conditions) do
  assert(report.save(run:path("map_" .. c.name .. ".svg"), accuracy_map(c)))
end

-- ---- the report ------------------------------------------------------------------------------

local doc = report.new("Compositional generalization: bumps at labels never trained")
doc:question("Trained with a region of the (x, y) label space held out, or on 1D stripes"
  .. " (plus a few 2D bumps on the rim), does the model draw one bump at the requested place"
  .. " for held-out labels as well as for trained ones? PAPER.md, finding 3: composition works"
  .. " when each factor is seen over its full range, and interpolation across an unseen band"
  .. " fails.")
doc:heading("Answer")
doc:answer(answer)
doc:paragraph("This run " .. agreement .. ".")
doc:heading("Setup")
local first = runs[1].results
doc:table({
  { "scale", cfg.scale }, { "image size", N }, { "bump / stripe sigma (px)", cfg.sigma },
  { "denoiser", string.format("unet, width %d, emb %d, attention %s, %d parameters", cfg.width,
                              cfg.emb, cfg.attention_blocks, first.params) },
  { "training", string.format("%d steps, batch %d, AdamW lr %g, warm-up %d, EMA %g", cfg.steps,
                              cfg.batch, cfg.lr, cfg.warmup, cfg.ema) },
  { "seeds", cfg.seeds },
  { "stripe conditioning", string.format("a vertical stripe at mu_x has the label (mu_x, %g),"
                                         .. " a horizontal one (%g, mu_y): the null label %g"
                                         .. " goes through the same sinusoidal encoding as a"
                                         .. " coordinate", cfg.null_label, cfg.null_label,
                                         cfg.null_label) },
  { "probe", string.format("%d bump labels on a grid of step %g px (%s %d steps, EMA weights,"
                           .. " the same noise each time), every %d steps", probe.n,
                           cfg.probe_step, cfg.sampler, cfg.sample_steps, cfg.every) },
  { "correct", string.format("bump metric: one bump within %g px of the label in x and in y;"
                             .. " and at most %.1f px above the threshold (%g x a true bump's"
                             .. " area), so a cross of two stripes is not a bump", tol, max_area,
                             cfg.compact) },
  { "in / held / far", string.format("probe labels outside the held-out region / inside it /"
                                     .. " inside it and more than %g px (in x or y) from every"
                                     .. " 2D training label", tol) },
  { "stripe accuracy", string.format("%d stripe probes (a vertical and a horizontal stripe at"
                                     .. " each probe coordinate): correct when 90%% of the lines"
                                     .. " along the stripe have their centroid within %g px",
                                     #stripe_labels, tol) },
  { "rule", string.format("generalizes: far accuracy >= %g x in-distribution accuracy (means over"
                          .. " seeds); fails: below; not learned: in-distribution under %g",
                          cfg.ratio, cfg.learned) },
}, { header = { "setting", "value" } })
local data_rows = {}
for _, c in ipairs(conditions) do
  data_rows[#data_rows + 1] = { c.name, c.what, c.images, c.rim_images or "-", c.n_held,
                                c.n_far, c.predicted }
end
doc:table(data_rows, { header = { "condition", "training set", "images", "2D rim images",
                                  "held-out probe labels", "far ones", "finding 3 predicts" } })

doc:heading("Figures")
doc:figure("accuracy.svg", "In-distribution accuracy (stripe accuracy for stripes only) and"
           .. " far held-out accuracy over training, mean over seeds.")
for _, c in ipairs(conditions) do
  doc:figure("map_" .. c.name .. ".svg", string.format("%s: fraction of seeds with a correct"
             .. " sample at each probe label at step %d; held-out labels outlined in red.",
             c.name, cfg.steps), 280)
end
for _, c in ipairs(conditions) do
  local mark = by_condition[c.name][1]
  local dir = "train/" .. mark.name .. "/"
  doc:figure(dir .. "samples.png", string.format("%s, seed %d, step %d: one sample per probe label"
             .. " (red cross: the requested place); held-out labels on a blue ground.", c.name,
             mark.seed, cfg.steps), 300)
  if c.stripes then
    doc:figure(dir .. "stripes.png", string.format("%s, seed %d: stripe probes, vertical (first"
               .. " row) then horizontal (second row).", c.name, mark.seed), 300)
  end
end

doc:heading("Numbers")
local rows = {}
for _, c in ipairs(conditions) do
  for _, mark in ipairs(by_condition[c.name]) do
    local r = mark.results
    rows[#rows + 1] = { c.name, mark.seed, r.acc_in, r.acc_held, r.acc_far, r.acc_stripes or "-",
                        r.err_in, r.err_far, r.large, string.format("%.0f s", r.seconds) }
  end
end
doc:table(rows, { header = { "condition", "seed", "in", "held out", "far held out", "stripes",
                             "median error in (px)", "median error far (px)", "too large",
                             "train time" },
                  caption = string.format("Accuracy at step %d; median distance of the bump to"
                            .. " the label over one-bump samples; too large: fraction of one-bump"
                            .. " samples above the area limit.", cfg.steps) })
doc:paragraph("Every evaluation is a row of train/<condition>_s<seed>/metrics.jsonl;"
              .. " train/summary.csv has one row per training.")
assert(doc:write(run:path("report.html")))

print(answer)
print("report: " .. run:path("report.html"))
