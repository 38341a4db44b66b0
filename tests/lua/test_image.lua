-- bd.image.save_grid: a PNG file, marks from labels, argument errors.
-- (tests/test_png.c decodes the files bit by bit.)
local check = require "check"
local dir = "lua-image"
os.execute("rm -rf " .. dir .. " && mkdir -p " .. dir)

local images = bd.tensor.zeros{ 3, 1, 8, 8 }
for i = 1, 3 do images:set(i, 1, 2 * i, 2 * i, 1) end
local path = dir .. "/grid.png"
check.eq(bd.image.save_grid(path, images, { labels = { {1.5, 1.5}, {3.5, 3.5}, {5.5, 5.5} },
                                            cols = 3, scale = 2, pad = 1 }),
         true, "save_grid")
local png = check.read(path)
check.eq(png:sub(1, 8), "\137PNG\r\n\26\n", "PNG signature")
-- IHDR: width = 3 * (16 + 1) + 1 = 52, height = 16 + 2 = 18, RGB
check.eq(string.unpack(">I4", png, 17), 52, "width")
check.eq(string.unpack(">I4", png, 21), 18, "height")
check.eq(png:byte(26), 2, "colour type RGB")
check.eq(png:sub(-8, -5), "IEND", "ends with IEND")

-- labels as a tensor, and no labels at all
local labels = bd.tensor.from_table{ {1, 1}, {2, 2}, {3, 3} }
check.eq(bd.image.save_grid(path, images, { labels = labels }), true, "tensor labels")
check.eq(bd.image.save_grid(path, images), true, "no options")

check.raises("labels have 2 rows of 2, expected 3 rows of 2", bd.image.save_grid,
             path, images, { labels = { {1, 1}, {2, 2} } })
check.raises("scale 0, expected 1 to 32", bd.image.save_grid, path, images, { scale = 0 })
check.raises("cols is 1.5, expected an integer", bd.image.save_grid, path, images, { cols = 1.5 })
check.raises("images have shape (2, 2), expected", bd.image.save_grid, path,
             bd.tensor.zeros{ 2, 2 })
local ok, msg, stage = bd.image.save_grid(dir .. "/no/such/dir/g.png", images)
check.eq(ok, nil, "unwritable path")
check.ok(msg and msg:find("cannot create", 1, true), "message: " .. tostring(msg))
check.eq(stage, "io", "stage")

os.execute("rm -rf " .. dir)
check.done()
