-- scripts/lib/sos.lua reads sums of stripes back: the exact centres of
-- bd.data's own images (in the image and against its edges), and "not a
-- sum of stripes" for one stripe, for a flat image and for a bump.
local check = require "check"
local sos = require "sos"

local N, sigma = 12, 1.0
local read, bound = sos.reader{ size = N, sigma = sigma }

-- the bound: half the rms of one stripe over the image
local ss = 0
for i = 1, N do ss = ss + math.exp(-((i - 0.5 - N / 2) ^ 2) / 2) ^ 2 end
check.ok(math.abs(bound - math.sqrt(ss / N) / 2) < 1e-12, "max_rmse: " .. bound)
check.eq(sos.max_rmse(N, sigma), bound, "max_rmse agrees with the reader's bound")

-- sums of stripes on a canvas of 16 cropped to 12: labels in [-2, 14]
local d = bd.data.stripe_sum{ size = N, canvas = N + 4, sigma = sigma, dx = 0.25, dy = 0.25 }
local reads, labels = read(d.images), d.labels:to_table()
local inside, worst = 0, 0
for i, l in ipairs(labels) do
  if l[1] >= 0 and l[1] <= N and l[2] >= 0 and l[2] <= N then
    inside = inside + 1
    local r = reads[i]
    check.ok(r.formed, string.format("(%g, %g) is a sum of stripes", l[1], l[2]))
    worst = math.max(worst, math.abs(r.x - l[1]), math.abs(r.y - l[2]), r.rmse)
  end
end
check.eq(inside, 49 * 49, "labels in the image")
check.ok(worst < 1e-3, "centres read to 1/100 px, edges included: worst " .. worst)

-- one stripe (the other out of the image), a flat image, a bump: not formed
local stripes = bd.data.stripes{ size = N, sigma = sigma, dx = 1, dy = 1 }
for i, r in ipairs(read(stripes.images)) do
  check.ok(not r.formed, "stripe " .. i .. " is not a sum of stripes (rmse " .. r.rmse .. ")")
end
local flat = {}
for i = 1, N do
  flat[i] = {}
  for j = 1, N do flat[i][j] = -1 end
end
check.ok(not read(bd.tensor.from_table{ { flat } })[1].formed, "a flat image")
local bump = bd.data.bumps{ size = N, sigma = sigma, dx = 6, dy = 6 }
for i, r in ipairs(read(bump.images)) do
  check.ok(not r.formed, "bump " .. i .. " is not a sum of stripes")
end
check.done()
