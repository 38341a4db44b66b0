-- scripts/lib/tori.lua: the ideal tori read through the factorization
-- metric (the control the torus experiment rests on): the Clifford torus
-- reads factorized and the 3D torus coupled, clean and placed in 128
-- dimensions with noise, over several seeds; the Wasserstein-1 distance
-- against hand-computed values; bad kinds and settings are refused.
local check = require "check"
local tori = require "tori"

local SIZE, G = 16, 16
local labels = {}
for j = 0, G - 1 do
  for i = 0, G - 1 do labels[#labels + 1] = { i * SIZE / G, j * SIZE / G } end
end

-- ---- Wasserstein-1 ------------------------------------------------------------------------
-- five bins of width 0.4: all the mass moved two bins is 0.8; half of it, 0.4
check.eq(tori.w1({ 1, 0, 0, 0, 0 }, { 1, 0, 0, 0, 0 }), 0, "w1 of a histogram with itself")
check.ok(math.abs(tori.w1({ 0, 1, 0, 0, 0 }, { 0, 0, 0, 1, 0 }) - 0.8) < 1e-12, "w1 two bins")
check.ok(math.abs(tori.w1({ 0, 1, 0, 0, 0 }, { 0, 0.5, 0, 0.5, 0 }) - 0.4) < 1e-12, "w1 half")

-- ---- the references -----------------------------------------------------------------------
local refs = tori.references(labels, SIZE)
print(string.format("   Clifford vs 3D torus: distance %.4f", refs.between))
check.ok(refs.between > 0.05, "the two ideal tori are apart: " .. refs.between)
check.ok(math.abs(refs.clifford.xy[11] - 1) < 1e-6, "Clifford: every x-y cosine at 0")
check.ok(refs.torus3d.orthogonality > 0.2, "3D torus: x- and y-steps not orthogonal")

-- each ideal torus, fed through the same comparison, reads as what it is
local c = tori.compare(tori.histograms(tori.embed("clifford", labels, SIZE), labels), refs)
local t = tori.compare(tori.histograms(tori.embed("torus3d", labels, SIZE), labels), refs)
check.eq(c.reading, "factorized", "the ideal Clifford torus reads factorized")
check.eq(t.reading, "coupled", "the ideal 3D torus reads coupled")
check.ok(c.position < 1e-9 and t.position > 1 - 1e-9 and not c.neither and not t.neither,
         string.format("positions %g and %g", c.position, t.position))

-- clean, in both spaces of tori.read; the spectrum of a 4D code
for _, case in ipairs{ { "clifford", "factorized" }, { "torus3d", "coupled" } } do
  local r = tori.read(tori.embed(case[1], labels, SIZE), labels, refs)
  check.ok(r.raw.reading == case[2] and r.pca4.reading == case[2], case[1] .. ": both spaces")
  check.ok(math.abs(r.top4 - 1) < 1e-5 and #r.spectrum >= 4 and #r.embedding == #labels,
           case[1] .. ": all the variance in 4 components, " .. r.top4)
end

-- placed in 128 dimensions by a random isometry with 5% of the variance
-- noise, each still reads as what it is in the top 4 components, seed by
-- seed and over seeds
for _, case in ipairs{ { "clifford", "factorized" }, { "torus3d", "coupled" } } do
  local positions, raw = {}, {}
  for seed = 1, 3 do
    local act = tori.embed(case[1], labels, SIZE, { dims = 128, noise = 0.05, seed = seed })
    check.eq(table.concat(act:shape(), "x"), #labels .. "x128x1x1", "embedded in 128 dims")
    local r = tori.read(act, labels, refs)
    positions[seed], raw[seed] = r.pca4.position, r.raw.position
    check.eq(r.pca4.reading, case[2], string.format("%s, noise 0.05, seed %d: position %.3f",
                                                    case[1], seed, r.pca4.position))
    check.ok(math.abs(r.top4 - 0.95) < 0.02, "top 4 share near 0.95: " .. r.top4)
  end
  local verdict, iv = tori.verdict(positions)
  local raw_iv = select(2, tori.verdict(raw))
  print(string.format("   %s in 128 dims, noise 0.05: pca4 position %.3f [%.3f, %.3f]; raw %.3f"
                      .. " [%.3f, %.3f]", case[1], iv.mean, iv.lo, iv.hi, raw_iv.mean, raw_iv.lo,
                      raw_iv.hi))
  check.eq(verdict, case[2], case[1] .. " over seeds")
end
-- with a third of the variance noise the steps between neighbours drown
-- (printed, not asserted: what the noise does, not what the code must do)
for _, kind in ipairs{ "clifford", "torus3d" } do
  local r = tori.read(tori.embed(kind, labels, SIZE, { dims = 128, noise = 1 / 3 }), labels, refs)
  print(string.format("   %s in 128 dims, noise 1/3: pca4 position %.3f, raw %.3f", kind,
                      r.pca4.position, r.raw.position))
end

-- implanted: a code's top 4 components replaced by an ideal torus read as
-- that torus, whatever the code held before (the run's matched control)
for _, case in ipairs{ { "torus3d", "clifford", "factorized" },
                       { "clifford", "torus3d", "coupled" } } do
  local act = tori.embed(case[1], labels, SIZE, { dims = 32, noise = 0.05, seed = 4 })
  local before = tori.read(act, labels, refs)
  local implanted = tori.implant(act, labels, SIZE, case[2], before.embedding)
  check.eq(table.concat(implanted:shape(), "x"), #labels .. "x32x1x1", "implanted shape")
  local after = tori.read(implanted, labels, refs)
  print(string.format("   %s with %s implanted: pca4 position %.3f -> %.3f, top 4 %.3f -> %.3f",
                      case[1], case[2], before.pca4.position, after.pca4.position, before.top4,
                      after.top4))
  check.eq(after.pca4.reading, case[3], case[2] .. " implanted in " .. case[1])
  check.ok(math.abs(after.top4 - before.top4) < 0.01, "the implant keeps the variance")
end

-- seeds give other draws
local a = tori.embed("clifford", labels, SIZE, { dims = 8, noise = 0.5, seed = 1 }):to_table()
local b = tori.embed("clifford", labels, SIZE, { dims = 8, noise = 0.5, seed = 2 }):to_table()
check.ok(a[1][1][1][1] ~= b[1][1][1][1], "another seed, another draw")

-- positions spread on both sides of 1/2 cannot decide
check.eq((tori.verdict{ 0.2, 0.8, 0.5 }), "cannot decide", "a spread verdict")
check.eq((tori.verdict{ 0.3 }), "cannot decide", "one seed has no interval")

-- persistence: each ideal torus has two long H1 bars (rms units), a Gaussian cloud of the
-- Clifford torus's spectrum (1/4 on each of 4 dimensions) none as long; the cloud's variances
local ph = {}
for _, kind in ipairs{ "clifford", "torus3d" } do
  ph[kind] = tori.barcode(tori.embed(kind, labels, SIZE), labels)
end
local spectrum = { 0.25, 0.25, 0.25, 0.25 }
local null = tori.barcode(tori.gaussian_like(spectrum, #labels, 3), labels)
print(string.format("   H1 bars (rms units): Clifford %.3f %.3f %.3f, 3D torus %.3f %.3f %.3f,"
                    .. " Gaussian %.3f", ph.clifford.lengths[1], ph.clifford.lengths[2],
                    ph.clifford.lengths[3], ph.torus3d.lengths[1], ph.torus3d.lengths[2],
                    ph.torus3d.lengths[3], null.lengths[1]))
local cut = (null.lengths[1] + math.min(ph.clifford.lengths[2], ph.torus3d.lengths[2])) / 2
check.eq(tori.count_long(ph.clifford.lengths, cut), 2, "the Clifford torus: two long bars")
check.eq(tori.count_long(ph.torus3d.lengths, cut), 2, "the 3D torus: two long bars")
check.eq(tori.count_long(null.lengths, cut), 0, "a Gaussian cloud: none")
check.ok(#ph.clifford.bars == 10 and ph.clifford.bars[1][2] > ph.clifford.bars[1][1],
         "the 10 longest bars, (birth, death)")
local g = tori.gaussian_like({ 4, 1 }, 4000, 5):to_table()
local v1, v2 = 0, 0
for _, row in ipairs(g) do v1, v2 = v1 + row[1][1][1] ^ 2 / #g, v2 + row[2][1][1] ^ 2 / #g end
check.ok(math.abs(v1 - 4) < 0.3 and math.abs(v2 - 1) < 0.08, "gaussian_like: the variances")

-- ---- errors ---------------------------------------------------------------------------------
check.raises("kind = 'sphere', expected clifford or torus3d",
             function() tori.embed("sphere", labels, SIZE) end)
check.raises("expected dims >= 4 and noise in [0, 1)",
             function() tori.embed("clifford", labels, SIZE, { noise = 1 }) end)
check.done()
