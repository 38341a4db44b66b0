-- scripts/lib/additivity.lua: the additive share of a code on a grid of
-- labels (two-way ANOVA with replication). Hand-computed cases: the ideal
-- Clifford torus is a sum (1), the 3D torus with R / r = 2 is 0.90 (main
-- effects 4 + 0.5, interaction 0.5), a product cos a cos b is pure
-- interaction (0), Gaussian bump images (a place code) match the share the
-- product formula gives from their 1D profiles. With noise, replicates and
-- the within-cell correction give unbiased sums of squares (also with a
-- noise variance that differs from cell to cell); without the correction
-- the share is biased low. Bad grids and replicates are refused.
local additivity = require "additivity"
local check = require "check"
local stats = require "stats"
local tori = require "tori"

-- one period of each axis: x, y = 0.5, 1.5, ..., 15.5
local SIZE, G = 16, 16
local labels = bd.data.grid{ size = SIZE, step = SIZE / G }.labels:to_table()
check.eq(#labels, G * G, "a 16 x 16 grid")
local function angles(l) return 2 * math.pi * l[1] / SIZE, 2 * math.pi * l[2] / SIZE end
-- A code of the labels from a function of the angles (a, b) -> { values }.
local function code_of(fn)
  local rows = {}
  for n, l in ipairs(labels) do rows[n] = fn(angles(l)) end
  return rows
end
local function near(got, want, tol, what)
  check.ok(math.abs(got - want) <= tol, string.format("%s: %.9g, expected %.9g +- %g", what, got,
                                                       want, tol))
end

-- ---- clean codes: the hand-computed shares --------------------------------------------------
-- On 16 equally spaced angles every sum of cos(k a) or sin(k a) over a period with
-- 0 < k < 16 is 0, so the decompositions below are exact; the tori come from
-- tori.embed as float32 tensors (7 digits), hence 1e-6.
local TOL = 1e-6
local clifford = additivity.read({ tori.embed("clifford", labels, SIZE) }, labels)
near(clifford.share, 1, TOL, "the Clifford torus is a sum")
near(clifford.between, 1, TOL, "Clifford: between-label variance 4 x 1/4")
check.eq(clifford.noise, 0, "one replicate: no noise estimate")
check.ok(clifford.grid[1] == G and clifford.grid[2] == G and clifford.features == 4, "16 x 16, 4")
local torus = additivity.read({ tori.embed("torus3d", labels, SIZE, { ratio = 2 }) }, labels)
near(torus.share, 0.9, TOL, "the 3D torus R / r = 2")
near(torus.main_x, 4, TOL, "3D torus: x effects 2 cos a, 2 sin a (variance 2 + 2)")
near(torus.main_y, 0.5, TOL, "3D torus: y effect sin b (0.5)")
near(torus.between, 5, TOL, "3D torus: interaction cos b cos a, cos b sin a (0.25 + 0.25)")
local product = additivity.read({ code_of(function(a, b) return { math.cos(a) * math.cos(b) } end) },
                                labels)
near(product.share, 0, 1e-12, "cos a cos b is all interaction")
local mixed = additivity.read({ code_of(function(a, b)
  return { (1 + math.cos(a)) * (1 + math.cos(b)) } end) }, labels)
near(mixed.share, 0.8, 1e-12, "(1 + cos a)(1 + cos b): main 0.5 + 0.5, interaction 0.25")
print(string.format("   clean: Clifford %.6f, 3D torus %.6f, cos a cos b %.6f", clifford.share,
                    torus.share, product.share))

-- Bump images: pixel (p, q) of label (x, y) is u_p(x) v_q(y) (a Gaussian of the wrapped
-- distance from the pixel centre), a place code. Per pixel the product's main effects
-- are var(u) mean(v)^2 and mean(u)^2 var(v), its interaction var(u) var(v): the share
-- from the 1D profiles alone, against the decomposition of the images.
local function profile(p, x)
  local d = math.abs(p + 0.5 - x) % SIZE
  d = math.min(d, SIZE - d)
  return math.exp(-d * d / 2)
end
local function moments(p)
  local m, m2 = 0, 0
  for i = 0, G - 1 do
    local u = profile(p, (i + 0.5) * SIZE / G)
    m, m2 = m + u / G, m2 + u * u / G
  end
  return m, m2 - m * m
end
local main, inter = 0, 0
for p = 0, SIZE - 1 do
  local mu, vu = moments(p)
  for q = 0, SIZE - 1 do
    local mv, vv = moments(q)
    main, inter = main + vu * mv * mv + mu * mu * vv, inter + vu * vv
  end
end
local images = {}
for n, l in ipairs(labels) do
  local row = {}
  for q = 0, SIZE - 1 do
    for p = 0, SIZE - 1 do row[#row + 1] = profile(p, l[1]) * profile(q, l[2]) end
  end
  images[n] = row
end
local place = additivity.read({ images }, labels)
near(place.share, main / (main + inter), 1e-9, "bump images: the product formula")
check.ok(place.share < 0.5, "a place code reads far from a sum: " .. place.share)
-- bd.data's own periodic bump images (pixel values scaled to [-1, 1]: an affine map of
-- each pixel, which leaves the shares as they are)
local data = bd.data.bumps{ size = SIZE, sigma = 1, dx = 1, dy = 1, periodic = true }
local drawn = additivity.read({ data.images }, data.labels)
print(string.format("   bump images: %.4f (formula %.4f); bd.data's %.4f", place.share,
                    main / (main + inter), drawn.share))
near(drawn.share, place.share, 0.02, "bd.data's bumps: the same place code")

-- ---- noise: replicates and the within-cell correction ---------------------------------------
-- The 3D torus plus Gaussian noise whose sd grows with x (0.3 to 0.8: cells differ), R = 2
-- replicates, K draws: each corrected sum of squares is unbiased, so its mean over the draws
-- lies within 4 standard errors of the clean value; the uncorrected interaction carries
-- (G - 1)^2 / G^2 x (mean noise variance) / R per feature.
local clean = code_of(function(a, b)
  local ring = 2 + math.cos(b)
  return { ring * math.cos(a), ring * math.sin(a), math.sin(b), 0 }
end)
local function noisy(seed)
  local u, out = stats.uniforms(seed), {}
  for n, row in ipairs(clean) do
    local sd = 0.3 + 0.5 * labels[n][1] / SIZE
    local v = {}
    for k, x in ipairs(row) do
      v[k] = x + sd * stats.normal(u)
    end
    out[n] = v
  end
  return out
end
local K, R = 40, 2
local fields = { "share", "main_x", "main_y", "between", "noise" }
local corrected, raw = {}, {}
for _, f in ipairs(fields) do corrected[f], raw[f] = {}, {} end
local interaction, raw_interaction = {}, {}
for k = 1, K do
  local reps = { noisy(2 * k), noisy(2 * k + 1) }
  local a = additivity.read(reps, labels)
  local b = additivity.read(reps, labels, { correct = false })
  for _, f in ipairs(fields) do corrected[f][k], raw[f][k] = a[f], b[f] end
  interaction[k], raw_interaction[k] = a.between * a.interaction, b.between * b.interaction
end
-- mean noise variance per feature: the mean over cells of sd^2
local s2 = 0
for n = 1, #labels do s2 = s2 + (0.3 + 0.5 * labels[n][1] / SIZE) ^ 2 / #labels end
local function unbiased(list, want, what)
  local s = stats.summary(list)
  local se = s.sd / math.sqrt(s.n)
  check.ok(math.abs(s.mean - want) < 4 * se + 1e-9, string.format("%s: mean %.4f (se %.4f) over"
           .. " %d draws, expected %.4f", what, s.mean, se, s.n, want))
  return s.mean
end
unbiased(corrected.main_x, 4, "corrected x effects")
unbiased(corrected.main_y, 0.5, "corrected y effects")
local ci = unbiased(interaction, 0.5, "corrected interaction")
unbiased(corrected.noise, 4 * s2, "the within-cell noise estimate (4 features)")
local bias = 4 * (G - 1) ^ 2 / G ^ 2 * s2 / R
local ri = stats.summary(raw_interaction).mean
local share = stats.summary(corrected.share).mean
local raw_share = stats.summary(raw.share).mean
print(string.format("   3D torus in noise (sd 0.3-0.8, R = %d, %d draws): interaction corrected"
                    .. " %.4f, uncorrected %.4f (expected bias %.4f); share %.4f, uncorrected"
                    .. " %.4f", R, K, ci, ri, bias, share, raw_share))
check.ok(math.abs(ri - 0.5 - bias) < 0.05, "the uncorrected interaction carries the noise")
near(share, 0.9, 0.01, "the corrected share over draws")
check.ok(raw_share < 0.85, "without the correction the share reads low: " .. raw_share)

-- One draw of the Clifford torus at a noise of half its between-label variance, R = 2:
-- corrected it reads a sum (within 0.03: the estimate's spread at this noise is about 0.01
-- over seeds, printed); uncorrected, the cell means keep 0.5 / R = 0.25 of noise, 30/256
-- of it in the main effects and 225/256 in the interaction: (1 + 0.029) / (1 + 0.249) = 0.82.
local spread = {}
for seed = 1, 5 do
  local reps = additivity.noisy_replicates(tori.embed("clifford", labels, SIZE), labels, 0.5, 2,
                                           10 * seed)
  local a = additivity.read(reps, labels)
  spread[seed] = a.share
  near(a.share, 1, 0.03, "noisy Clifford torus, corrected, seed " .. seed)
  near(a.noise / a.between, 0.5, 0.1, "noisy_replicates: noise half the between variance")
  near(additivity.read(reps, labels, { correct = false }).share, 0.824, 0.03,
       "noisy Clifford torus, uncorrected, reads low")
end
local sp = stats.summary(spread)
print(string.format("   Clifford torus, noise 0.5 of its variance, R = 2: %.4f (sd %.4f, 5 seeds)",
                    sp.mean, sp.sd))

-- ---- errors ---------------------------------------------------------------------------------
local partial = { table.unpack(labels, 1, #labels - 1) }
check.raises("255 labels with 16 values of x and 16 of y are not a complete grid", function()
  additivity.read({ { table.unpack(images, 1, #images - 1) } }, partial) end)
local twice = { table.unpack(labels) }
twice[2] = twice[1]
check.raises("not a complete grid", function() additivity.read({ images }, twice) end)
check.raises("replicate 2 has 255 rows of 256 values, expected 256 rows", function()
  additivity.read({ images, { table.unpack(images, 1, #images - 1) } }, labels) end)
check.raises("replicates is a userdata, expected a list of codes", function()
  additivity.read(data.images, data.labels) end)
check.done()
