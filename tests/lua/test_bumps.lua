-- scripts/lib/bumps.lua, the bump counter quickstart reports with: on the
-- dataset's own images it must find every bump where its label says.
local check = require "check"
local bumps = require "bumps"

local data = bd.data.bumps{ size = 12, sigma = 1, dx = 1.5, dy = 2.5 }
local r = bumps.score(data.images, data.labels)
check.eq(r.n, data.n, "all images scored")
check.eq(r.frac_single, 1, "one bump in every training image")
-- bumps at the canvas edge are half cut off, which shifts their centroid
-- inward by up to about 0.8 pixel: still within the 1-pixel tolerance
check.eq(r.accuracy, 1, "every bump within 1 pixel of its label")
check.ok(r.mean_error < 0.5, "mean localisation error " .. r.mean_error)

-- labels moved by 3 pixels: nothing is within tolerance in x
local moved = data.labels:to_table()
for _, l in ipairs(moved) do l[1] = l[1] + 3 end
local m = bumps.score(data.images, bd.tensor.from_table(moved))
check.eq(m.acc_x, 0, "x accuracy with labels moved 3 pixels")
check.eq(m.acc_y, 1, "y accuracy unchanged")

-- two bumps, none, and a centroid on a hand-made image
local img = bd.tensor.zeros{ 3, 1, 6, 6 }
for i = 1, 3 do for y = 1, 6 do for x = 1, 6 do img:set(i, 1, y, x, -1) end end end
img:set(1, 1, 2, 2, 1); img:set(1, 1, 5, 5, 1)          -- two apart
img:set(3, 1, 3, 3, 1); img:set(3, 1, 3, 4, 1)          -- one of two pixels
local s = bumps.score(img, bd.tensor.from_table{ {1, 1}, {3, 3}, {3.5, 2.5} })
check.eq(s.frac_multi, 1 / 3, "image 1 has two bumps")
check.eq(s.frac_none, 1 / 3, "image 2 has none")
check.eq(s.frac_single, 1 / 3, "image 3 has one")
local found = bumps.find(img:to_table()[3][1])
check.eq(found[1].x, 3.0, "centroid x between columns 3 and 4 (centres 2.5, 3.5)")
check.eq(found[1].y, 2.5, "centroid y at the centre of row 3")
check.eq(s.accuracy, 1 / 3, "image 3 is where asked")

-- bumps.CLASS names the bump metric plugin's per-image classes: the same
-- images, image 3 also asked 2 px off in x (one bump, wrong place)
local four = bd.tensor.zeros{ 4, 1, 6, 6 }
for i = 1, 4 do
  for y = 1, 6 do
    for x = 1, 6 do four:set(i, 1, y, x, img:get(math.min(i, 3), 1, y, x)) end
  end
end
local class = bd.metric("bump", { tolerance = 1.0 })(
  four, bd.tensor.from_table{ {1, 1}, {3, 3}, {3.5, 2.5}, {5.5, 2.5} }).class
check.eq(class:get(1), bumps.CLASS.several, "the plugin's class of two bumps")
check.eq(class:get(2), bumps.CLASS.none, "the plugin's class of no bump")
check.eq(class:get(3), bumps.CLASS.correct, "the plugin's class of a bump where asked")
check.eq(class:get(4), bumps.CLASS.wrong, "the plugin's class of a bump 2 px off")
check.done()
