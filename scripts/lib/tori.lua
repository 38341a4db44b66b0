-- Ideal tori, and which of them a code's step geometry is nearer: the
-- follow-up paper's comparison of a representation of data on a torus with
-- an ideal 4D Clifford torus (x and y turn in orthogonal planes:
-- factorized) and an ideal 3D torus (x and y bend one surface: coupled).
-- All three are read by the same code, the factorization metric's cosine
-- histograms (plugins/metrics/factorization, periodic = 1): x-steps against
-- y-steps (hist_xy), x against x (hist_xx), y against y (hist_yy).
--
--   local tori = require "tori"
--   local refs = tori.references(labels, size, { bins = 21 })
--   local h = tori.histograms(act, labels, 21)   -- act: (n, ...), labels on a periodic grid
--   local c = tori.compare(h, refs)  -- { d_clifford, d_torus, position, reading, neither }
--   local r = tori.read(act, labels, refs)  -- both spaces, the PCA spectrum
--   local b = tori.barcode(act, labels)     -- H1 bar lengths (persistence metric)
--   local g = tori.gaussian_like(spectrum, n, seed)  -- a null cloud of that spectrum
--
-- The distance between two codes is the Wasserstein-1 (earth mover's)
-- distance between their cosine histograms, in cosine units, averaged over
-- the three histograms. position = d_clifford / (d_clifford + d_torus): 0
-- on the Clifford torus, 1 on the 3D torus; below 1/2 the code is nearer
-- the Clifford torus (reads factorized), above it nearer the 3D torus
-- (coupled). The boundary is where the two distances are equal, not a
-- chosen number.
--
-- Two spaces (tori.read): the code as it is ("raw"), and its top 4
-- principal components ("pca4", the ideal tori's own dimension). Noise
-- spread over many dimensions swamps the small steps between neighbouring
-- labels in the raw space (tests/lua/test_tori.lua: with a third of the
-- variance noise over 128 dimensions both ideal tori read about 0.46);
-- PCA keeps the torus and drops most of it. But on a torus the principal
-- components of any translation-invariant code are Fourier modes, and a
-- 2D place code's first four are the first harmonics of x and of y: a
-- Clifford torus. So a code can read factorized in pca4 because it is
-- translation-invariant; scripts/torus.lua reads the training images
-- themselves (a conjunctive place code) beside the model to show it.
local additivity = require "additivity"
local stats = require "stats"

local tori = {}

tori.KINDS = { "xy", "xx", "yy" }
tori.ratio = 2 -- R / r of the 3D torus (ours: the papers do not give it)

-- (n, 2) labels as a Lua table of { x, y }.
local function label_rows(labels)
  return type(labels) == "table" and labels or labels:to_table()
end

-- The ideal point of (x, y) on a torus of side `size` (angles 2 pi x / size,
-- 2 pi y / size): "clifford" (cos a, sin a, cos b, sin b) / sqrt(2) (radius
-- 1 in each plane before the 1 / sqrt(2)), "torus3d" ((R + cos b) cos a,
-- (R + cos b) sin a, sin b, 0), R = ratio.
local function ideal_point(kind, x, y, size, ratio)
  local a, b = 2 * math.pi * x / size, 2 * math.pi * y / size
  if kind == "clifford" then
    local s = 1 / math.sqrt(2)
    return { s * math.cos(a), s * math.sin(a), s * math.cos(b), s * math.sin(b) }
  elseif kind == "torus3d" then
    local ring = ratio + math.cos(b)
    return { ring * math.cos(a), ring * math.sin(a), math.sin(b), 0 }
  end
  error(string.format("tori: kind = '%s', expected clifford or torus3d", tostring(kind)), 3)
end

-- `dims` x 4 columns, orthonormal (Gram-Schmidt on Gaussian columns).
local function orthonormal_columns(dims, u)
  local cols = {}
  for c = 1, 4 do
    local v = {}
    for k = 1, dims do v[k] = stats.normal(u) end
    for _, q in ipairs(cols) do
      local dot = 0
      for k = 1, dims do dot = dot + v[k] * q[k] end
      for k = 1, dims do v[k] = v[k] - dot * q[k] end
    end
    local norm = 0
    for k = 1, dims do norm = norm + v[k] * v[k] end
    for k = 1, dims do v[k] = v[k] / math.sqrt(norm) end
    cols[c] = v
  end
  return cols
end

-- The ideal torus `kind` at the labels (a tensor (n, 2) or a table of
-- { x, y }) on a torus of side `size`. opts: ratio
-- (tori.ratio), dims (4: the torus's own coordinates; more: placed by a
-- random isometry, seeded), noise (0: the share of the total variance that
-- is isotropic Gaussian noise added over the dims, in [0, 1)), seed (1).
-- The tensor is (n, dims, 1, 1), as a tap is (metrics take images' shape).
function tori.embed(kind, labels, size, opts)
  opts = opts or {}
  local dims, noise = opts.dims or 4, opts.noise or 0
  if dims < 4 or noise < 0 or noise >= 1 then
    error(string.format("tori.embed: dims = %s, noise = %s; expected dims >= 4 and noise in"
                        .. " [0, 1)", tostring(dims), tostring(noise)), 2)
  end
  local rows, points = label_rows(labels), {}
  for i, l in ipairs(rows) do points[i] = ideal_point(kind, l[1], l[2], size, opts.ratio or tori.ratio) end
  -- the clean code's total variance, which the noise's share is of
  local mean, variance = { 0, 0, 0, 0 }, 0
  for _, p in ipairs(points) do
    for k = 1, 4 do mean[k] = mean[k] + p[k] / #points end
  end
  for _, p in ipairs(points) do
    for k = 1, 4 do variance = variance + (p[k] - mean[k]) ^ 2 / #points end
  end
  local u = stats.uniforms(opts.seed or 1)
  local sd = math.sqrt(variance * noise / (1 - noise) / dims)
  local cols = dims > 4 and orthonormal_columns(dims, u)
  local out = {}
  for i, p in ipairs(points) do
    local v = {}
    for k = 1, dims do
      local x = cols and (p[1] * cols[1][k] + p[2] * cols[2][k] + p[3] * cols[3][k]
                          + p[4] * cols[4][k]) or p[k]
      v[k] = { { noise > 0 and x + sd * stats.normal(u) or x } }
    end
    out[i] = v
  end
  return bd.tensor.from_table(out)
end

-- The factorization metric's histograms of a code: { xy, xx, yy (lists of
-- bins fractions), orthogonality, parallel_x, parallel_y, aligned_x,
-- aligned_y }. act: (n, ...) activations; labels: (n, 2) on a grid that is
-- one period of the torus.
local metrics = {}
function tori.histograms(act, labels, bins)
  bins = bins or 21
  metrics[bins] = metrics[bins] or bd.metric("factorization", { periodic = 1, bins = bins })
  local labels_t = type(labels) == "table" and bd.tensor.from_table(labels) or labels
  local r = metrics[bins](act, labels_t)
  local h = {}
  for _, k in ipairs(tori.KINDS) do h[k] = r["hist_" .. k]:to_table() end
  for _, k in ipairs{ "orthogonality", "parallel_x", "parallel_y", "aligned_x", "aligned_y" } do
    h[k] = r[k]
  end
  return h
end

-- The Wasserstein-1 distance between two histograms over [-1, 1] with
-- equal bins: the bin width times the summed |difference of the CDFs|.
function tori.w1(a, b)
  assert(#a == #b and #a > 0, "tori.w1: histograms of equal, non-zero length")
  local width, ca, cb, sum = 2 / #a, 0, 0, 0
  for k = 1, #a - 1 do
    ca, cb = ca + a[k], cb + b[k]
    sum = sum + math.abs(ca - cb)
  end
  return width * sum
end

-- The distance between two codes' histograms: the mean of w1 over xy, xx
-- and yy; and each of them.
function tori.distance(h, g)
  local each, sum = {}, 0
  for _, k in ipairs(tori.KINDS) do
    each[k] = tori.w1(h[k], g[k])
    sum = sum + each[k]
  end
  return sum / #tori.KINDS, each
end

-- The histograms of both ideal tori at the labels: { clifford, torus3d,
-- between (their distance) }. opts: bins, ratio.
function tori.references(labels, size, opts)
  opts = opts or {}
  local refs = {}
  for _, kind in ipairs{ "clifford", "torus3d" } do
    refs[kind] = tori.histograms(tori.embed(kind, labels, size, { ratio = opts.ratio }), labels,
                                 opts.bins)
  end
  refs.between = tori.distance(refs.clifford, refs.torus3d)
  return refs
end

-- A code read in both spaces: { raw, pca4 (tori.compare of each), hist
-- (the raw space's histograms), spectrum
-- (the explained variance ratios of the top `pcs` components), top4 (their
-- sum over the first four), eff_dim (participation ratio), embedding (the
-- top 4 scores, a table of rows) }. opts: bins, pcs (15).
local projections = {}
function tori.read(act, labels, refs, opts)
  opts = opts or {}
  local pcs = math.max(4, opts.pcs or 15)
  projections[pcs] = projections[pcs]
                     or bd.metric("manifold", { method = "pca", dims = 4, pcs = pcs, seed = 1 })
  local labels_t = type(labels) == "table" and bd.tensor.from_table(labels) or labels
  local m = projections[pcs](act, labels_t)
  local embedding, scores = m.embedding:to_table(), {}
  for i, e in ipairs(embedding) do scores[i] = { { { e[1] } }, { { e[2] } }, { { e[3] } }, { { e[4] } } } end
  local hist = tori.histograms(act, labels_t, opts.bins)
  local out = { raw = tori.compare(hist, refs), hist = hist,
                pca4 = tori.compare(tori.histograms(bd.tensor.from_table(scores), labels_t,
                                                    opts.bins), refs),
                spectrum = m.explained_variance_ratio:to_table(), eff_dim = m.eff_dim,
                embedding = embedding, top4 = 0 }
  for k = 1, 4 do out.top4 = out.top4 + (out.spectrum[k] or 0) end
  return out
end

-- The code `act` (n, ...) with its top 4 principal components replaced by
-- the ideal torus `kind` at the labels, with the same variance and in the
-- same subspace, the rest of the code as it is: what the comparison would
-- read if the code's main four dimensions were that torus (the control
-- scripts/torus.lua builds from each model). `scores`: the code's top 4
-- principal component scores (tori.read's embedding). Returns a tensor
-- (n, d, 1, 1). opts: ratio.
function tori.implant(act, labels, size, kind, scores, opts)
  local x, n = additivity.rows(act), #scores
  local d = #x[1]
  local mean = {}
  for k = 1, d do
    mean[k] = 0
    for i = 1, n do mean[k] = mean[k] + x[i][k] / n end
  end
  -- the components' directions V_c ~ X_c^T s_c (unit), and the code's
  -- projections on them (whatever the scores' scale)
  local comps = {}
  for c = 1, 4 do
    local v, norm = {}, 0
    for k = 1, d do
      local sum = 0
      for i = 1, n do sum = sum + (x[i][k] - mean[k]) * scores[i][c] end
      v[k], norm = sum, norm + sum * sum
    end
    for k = 1, d do v[k] = v[k] / math.sqrt(norm) end
    comps[c] = v
  end
  local proj, variance = {}, 0
  for i = 1, n do
    proj[i] = {}
    for c = 1, 4 do
      local dot = 0
      for k = 1, d do dot = dot + (x[i][k] - mean[k]) * comps[c][k] end
      proj[i][c], variance = dot, variance + dot * dot / n
    end
  end
  local ideal = tori.embed(kind, labels, size, { ratio = opts and opts.ratio }):to_table()
  local centre, ideal_var = { 0, 0, 0, 0 }, 0
  for i = 1, n do
    for c = 1, 4 do centre[c] = centre[c] + ideal[i][c][1][1] / n end
  end
  for i = 1, n do
    for c = 1, 4 do ideal_var = ideal_var + (ideal[i][c][1][1] - centre[c]) ^ 2 / n end
  end
  local scale = math.sqrt(variance / ideal_var)
  local out = {}
  for i = 1, n do
    local v = {}
    for k = 1, d do
      local y = x[i][k] - mean[k]
      for c = 1, 4 do
        y = y + ((ideal[i][c][1][1] - centre[c]) * scale - proj[i][c]) * comps[c][k]
      end
      v[k] = { { y } }
    end
    out[i] = v
  end
  return bd.tensor.from_table(out)
end

-- The H0 and H1 persistence of a code (the persistence metric: Vietoris-
-- Rips over Z/2, to the enclosing radius, so every H1 bar is finite), in
-- rms units (distances divided by the code's root mean square distance to
-- its centroid, so codes of any scale compare): { lengths (every H1 bar's
-- length, longest first), bars (the `keep` longest, { birth, death }; 10),
-- h0_max (the longest finite H0 bar) }. Both ideal tori have two loops; a
-- Gaussian cloud none.
local barcodes
function tori.barcode(act, labels, keep)
  barcodes = barcodes or bd.metric("persistence", { normalize = "rms" })
  local labels_t = type(labels) == "table" and bd.tensor.from_table(labels) or labels
  local r = barcodes(act, labels_t)
  local out = { lengths = {}, bars = {}, h0_max = r.h0_max }
  for i, b in ipairs(r.h1 and r.h1:to_table() or {}) do
    out.lengths[i] = b[2] - b[1]
    if i <= (keep or 10) then out.bars[i] = b end
  end
  return out
end

-- The number of lengths (a barcode's, longest first) above threshold.
function tori.count_long(lengths, threshold)
  local n = 0
  while lengths[n + 1] and lengths[n + 1] > threshold do n = n + 1 end
  return n
end

-- n points (a tensor (n, #spectrum, 1, 1), as a tap) drawn from a Gaussian whose variances
-- are `spectrum` (a code's explained variance ratios, all of them): a cloud
-- of the code's size and spectrum with no structure, seeded.
function tori.gaussian_like(spectrum, n, seed)
  local u, rows = stats.uniforms(seed), {}
  for i = 1, n do
    local row = {}
    for k, v in ipairs(spectrum) do row[k] = { { math.sqrt(v) * stats.normal(u) } } end
    rows[i] = row
  end
  return bd.tensor.from_table(rows)
end

-- What one position says: factorized below 1/2, coupled above, neither at it.
function tori.reading(position)
  if position < 0.5 then return "factorized" end
  if position > 0.5 then return "coupled" end
  return "equidistant"
end

-- A code's histograms against the references: { d_clifford, d_torus (and
-- each histogram's, d_clifford_xy ...), position, reading, neither (true
-- when it is farther from both than they are from each other) }.
function tori.compare(h, refs)
  local dc, each_c = tori.distance(h, refs.clifford)
  local dt, each_t = tori.distance(h, refs.torus3d)
  local out = { d_clifford = dc, d_torus = dt, position = dc + dt > 0 and dc / (dc + dt) or 0.5,
                neither = math.min(dc, dt) > refs.between }
  for _, k in ipairs(tori.KINDS) do
    out["d_clifford_" .. k], out["d_torus_" .. k] = each_c[k], each_t[k]
  end
  out.reading = tori.reading(out.position)
  return out
end

-- The reading of positions over seeds: their t interval (95%) and
-- "factorized" when it lies below 1/2, "coupled" above, "cannot decide"
-- when it holds 1/2 or cannot be formed.
function tori.verdict(positions)
  local iv = stats.t_interval(positions)
  local v = "cannot decide"
  if iv.hi == iv.hi and iv.hi < 0.5 then
    v = "factorized"
  elseif iv.lo == iv.lo and iv.lo > 0.5 then
    v = "coupled"
  end
  return v, iv
end

return tori
