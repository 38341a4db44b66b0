-- bd.data.concat: stripes plus a few bumps (the compositional study's
-- training sets) as one dataset, split by split, in order.
local check = require "check"

local stripes = bd.data.stripes{ size = 8, dx = 2, dy = 4 }
local rim = bd.data.bumps{ size = 8, dx = 4, dy = 4, holdout = "rect", holdout_x0 = 2,
                           holdout_x1 = 6, holdout_y0 = 2, holdout_y1 = 6 }
local both = bd.data.concat(stripes, rim)

check.eq(stripes.n, 5 + 3, "stripes: 5 vertical, 3 horizontal")
check.eq(rim.n, 8, "rim: 9 sites less the centre")
check.eq(both.n, stripes.n + rim.n, "n")
check.eq(#both, both.n, "#")
check.eq(both.size, 8, "size")

-- labels: the stripes' (with the null label for the missing coordinate), then the rim's
local labels = both.labels:to_table()
check.eq(labels[1][1], 0.0, "first vertical stripe x")
check.eq(labels[1][2], -1.0, "vertical stripe: null y")
check.eq(labels[6][1], -1.0, "horizontal stripe: null x")
check.eq(labels[6][2], 0.0, "first horizontal stripe y")
local rim_labels = rim.labels:to_table()
for i = 1, rim.n do
  check.eq(labels[stripes.n + i][1], rim_labels[i][1], "rim label x " .. i)
  check.eq(labels[stripes.n + i][2], rim_labels[i][2], "rim label y " .. i)
end

-- images: the same pixels in the same order
local a, b, ab = stripes.images:to_table(), rim.images:to_table(), both.images:to_table()
local function same(x, y) return table.concat(x[1][4], ",") == table.concat(y[1][4], ",") end
check.ok(same(ab[1], a[1]) and same(ab[stripes.n], a[stripes.n]), "stripe images")
check.ok(same(ab[stripes.n + 1], b[1]) and same(ab[both.n], b[rim.n]), "rim images")

-- the held-out split joins too: only the rim has one (its centre)
check.eq(stripes.held, nil, "stripes hold nothing out")
check.eq(both.held.n, 1, "held-out split")
check.eq(both.held.labels:get(1, 1), 4.0, "held-out x")
check.ok(tostring(both):find("16 images of 8x8, 1 held out", 1, true), tostring(both))

-- the inputs are unchanged, and a size mismatch is refused
check.eq(stripes.n, 8, "stripes unchanged")
check.raises("dataset concat: images of 8x8 and 12x12, expected the same size",
             bd.data.concat, stripes, bd.data.bumps{ size = 12 })
check.raises("bd.Dataset expected", bd.data.concat, stripes, {})

check.done()
