-- Reading a sum of stripes (bd.data.stripe_sum) back from an image: where
-- its vertical stripe (x) and horizontal stripe (y) are, and whether the
-- image is a sum of two stripes at all.
--
--   local sos = require "sos"
--   local read = sos.reader{ size = 16, sigma = 1.0 }
--   for i, r in ipairs(read(images)) do ... r.x, r.y, r.rmse, r.formed ... end
--
-- An image's pixels p in [-1, 1] are read as v = (p + 1) / 2. A sum of
-- stripes is v = (g(x - mu_x) + g(y - mu_y)) / 2 with g(d) = exp(-d^2 /
-- (denom sigma^2)), so the column means of v are g(x - mu_x) / 2 plus a
-- constant, and the row means g(y - mu_y) / 2 plus another:
--   x, y     the centre of the best least-squares fit of a stripe profile
--            (amplitude and offset free) to the column (row) means, to
--            1/100 px; nil when no fit has a positive amplitude
--   rmse     root mean square difference between the image and the ideal
--            sum of stripes at (x, y), in pixel units of [-1, 1]
--   formed   rmse <= max_rmse: half the rmse between an ideal sum of stripes
--            and the same image with one stripe missing (the nearest image
--            that is not a sum of two stripes), so the bound is set by the
--            geometry, not by hand
local sos = {}

local function profile_g(sigma, denom)
  return function(d) return math.exp(-d * d / (denom * sigma * sigma)) end
end

-- The residual of the best fit a * g(k - 0.5 - mu) + b to a profile
-- (least squares in a and b, for this mu).
local function fit_residual(means, mu, g)
  local n, sg, sgg, sv, sgv, svv = #means, 0, 0, 0, 0, 0
  for k = 1, n do
    local gk, v = g(k - 0.5 - mu), means[k]
    sg, sgg, sv, sgv, svv = sg + gk, sgg + gk * gk, sv + v, sgv + gk * v, svv + v * v
  end
  local det = n * sgg - sg * sg
  if det <= 1e-12 then return math.huge, 0 end
  local a = (n * sgv - sg * sv) / det
  local b = (sv - a * sg) / n
  return svv - 2 * a * sgv - 2 * b * sv + a * a * sgg + 2 * a * b * sg + n * b * b, a
end

-- Where a profile's stripe is: the mu of the best least-squares fit
-- a * g(k - 0.5 - mu) + b with a > 0, searched over [-1, n + 1] on a grid
-- of 1/4 px and refined to 1/100 px around the best; nil when no fit has a
-- positive amplitude. Unlike a centroid, it is unbiased at the image edge.
local function locate(means, g)
  local n, best, best_r = #means, nil, math.huge
  local function try(mu)
    local r, a = fit_residual(means, mu, g)
    if a > 0 and r < best_r then best, best_r = mu, r end
  end
  for k = -4, 4 * (n + 1) do try(k / 4) end
  if not best then return nil end
  local centre = best
  for k = -25, 25 do try(centre + k / 100) end
  return best
end

-- The root mean square difference, over an N x N image (rows of pixels in
-- [-1, 1]), to the ideal sum of stripes at (x, y).
local function rmse_to_ideal(rows, x, y, g)
  local N, ss = #rows, 0
  local gx, gy = {}, {}
  for k = 1, N do gx[k], gy[k] = g(k - 0.5 - x), g(k - 0.5 - y) end
  for i = 1, N do
    local row = rows[i]
    for j = 1, N do
      local d = row[j] - (gx[j] + gy[i] - 1)
      ss = ss + d * d
    end
  end
  return math.sqrt(ss / (N * N))
end

-- The bound on rmse for a formed sum of stripes (see the header): the rms
-- of g over the rows of an N-pixel image, a stripe at the middle, halved.
function sos.max_rmse(size, sigma, denom)
  local g, ss = profile_g(sigma, denom or 2), 0
  for i = 1, size do ss = ss + g(i - 0.5 - size / 2) ^ 2 end
  return math.sqrt(ss / size) / 2
end

-- reader{size, sigma, denom (2)} -> read(images) -> { {x, y, rmse, formed}, ... }
-- images: (n, 1, N, N) tensor. A sample with a flat profile has no x (or y)
-- and is not formed.
function sos.reader(opts)
  local g = profile_g(opts.sigma, opts.denom or 2)
  local bound = sos.max_rmse(opts.size, opts.sigma, opts.denom)
  return function(images)
    local out = {}
    for n, img in ipairs(images:to_table()) do
      local rows = img[1]
      local N = #rows
      local cols, lines = {}, {}
      for k = 1, N do cols[k], lines[k] = 0, 0 end
      for i = 1, N do
        for j = 1, N do
          local v = (rows[i][j] + 1) / 2
          cols[j], lines[i] = cols[j] + v / N, lines[i] + v / N
        end
      end
      local x, y = locate(cols, g), locate(lines, g)
      local rmse = (x and y) and rmse_to_ideal(rows, x, y, g) or math.huge
      out[n] = { x = x, y = y, rmse = rmse, formed = rmse <= bound }
    end
    return out
  end, bound
end

return sos
