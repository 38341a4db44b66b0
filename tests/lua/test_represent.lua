-- bd.represent: the taps of one forward pass on one fixed noisy input per
-- label (the label's own clean bump noised to t with shared noise, or the
-- noise alone), labels given as bd.sample takes them, and its errors.
local check = require "check"

local model = bd.model("unet", { width = 4, size = 8, emb = 16, seed = 3 })
local probe = bd.data.grid{ size = 8, step = 2 }

local r = bd.represent(model, probe, { taps = { "layer4", "layer4_pre" }, seed = 5 })
check.eq(table.concat(r.taps.layer4:shape(), "x"), "16x16x1x1", "layer4 of 16 labels")
check.eq(table.concat(r.taps.layer4_pre:shape(), "x"), "16x16x1x1", "layer4_pre")
check.eq(table.concat(r.images:shape(), "x"), "16x1x8x8", "the inputs")
check.eq(r.tap_t, 500, "t defaults to T / 2")
check.eq(r.seed, 5, "seed")
check.eq(r.labels, probe.labels, "the labels")

local function max_diff(a, b)
  local d = 0
  local function walk(x, y)
    if type(x) == "table" then
      for i = 1, #x do walk(x[i], y[i]) end
    else
      d = math.max(d, math.abs(x - y))
    end
  end
  walk(a, b)
  return d
end

-- the same call again gives the same taps; another seed, other taps; the
-- batch does not matter (to rounding)
local again = bd.represent(model, probe.labels, { taps = { "layer4" }, seed = 5, batch = 3 })
check.ok(max_diff(again.taps.layer4:to_table(), r.taps.layer4:to_table()) < 1e-5,
         "same seed, batch 3: same taps")
local other = bd.represent(model, probe, { taps = { "layer4" }, seed = 6 })
check.ok(max_diff(other.taps.layer4:to_table(), r.taps.layer4:to_table()) > 1e-3,
         "another seed: other taps")

-- input = "bump": at t = 0 the input is the label's clean bump (noise
-- scaled by sqrt(1 - abar[0]) = 0.01), as bd.data.bumps draws it
local at0 = bd.represent(model, { { 2, 3 } }, { taps = { "layer4" }, t = 0 })
local lattice = bd.data.bumps{ size = 8, dx = 1, dy = 1 }
check.eq(table.concat(lattice.labels:to_table()[3 * 9 + 3], ","), "2.0,3.0", "lattice label")
check.ok(max_diff(at0.images:to_table()[1], lattice.images:to_table()[3 * 9 + 3]) < 0.06,
         "t = 0: the input is the clean bump")
local wide = bd.represent(model, { { 2, 3 } }, { taps = { "layer4" }, t = 0,
                                                 data = bd.data.bumps{ size = 8, sigma = 2 } })
check.ok(max_diff(wide.images:to_table(), at0.images:to_table()) > 0.3,
         "data = a dataset of sigma 2: its drawing")

-- the shared noise: with input = "noise" every label has the same input
local noise = bd.represent(model, probe, { taps = { "layer4" }, input = "noise" })
local imgs = noise.images:to_table()
check.eq(max_diff(imgs[1], imgs[16]), 0, "noise: one input for all labels")
check.ok(max_diff(noise.taps.layer4:to_table()[1], noise.taps.layer4:to_table()[16]) > 1e-4,
         "noise: the labels still differ through the conditioning")
local own = bd.represent(model, probe, { taps = { "layer4" }, input = "noise", shared_noise = 0 })
imgs = own.images:to_table()
check.ok(max_diff(imgs[1], imgs[16]) > 0.5, "shared_noise = 0: each label its own noise")
local bumps = r.images:to_table()
check.ok(max_diff(bumps[1], bumps[16]) > 0.1, "bump: the inputs differ by the label's bump")

-- errors
check.raises("represent: no taps", bd.represent, model, probe, {})
check.raises("represent: input = bumps, expected bump", bd.represent, model, probe,
             { taps = { "layer4" }, input = "bumps" })
check.raises("represent: data has images of 16x16, the model 8x8", bd.represent, model, probe,
             { taps = { "layer4" }, data = bd.data.bumps{ size = 16, dx = 4, dy = 4 } })
check.raises("unknown key 'tap_t' for represent", bd.represent, model, probe,
             { taps = { "layer4" }, tap_t = 3 })
check.raises("t = 1000, expected an integer in [-1, 999]", bd.represent, model, probe,
             { taps = { "layer4" }, t = 1000 })
check.raises("offered no tap 'layer5'", bd.represent, model, probe, { taps = { "layer5" } })
check.raises("a stripe has one coordinate", bd.represent, model, probe,
             { taps = { "layer4" }, data = bd.data.stripes{ size = 8 } })
check.raises("the model has no EMA", bd.represent, model, probe,
             { taps = { "layer4" }, ema = true })

check.done()
