-- Datasets, models, training, sampling and checkpoints through the bd
-- module, on models small enough to train for a few steps in a test.
local check = require "check"
local root = "lua-runs-train"

os.execute("rm -rf " .. root)

-- ---- datasets -------------------------------------------------------------
local data = bd.data.bumps{ size = 8, sigma = 1, dx = 1, dy = 2 }
check.eq(data.n, 9 * 5, "lattice 0..8 by 1 in x, by 2 in y")
check.eq(#data, data.n, "#data")
check.eq(table.concat(data.images:shape(), "x"), "45x1x8x8", "images")
check.eq(table.concat(data.labels:shape(), "x"), "45x2", "labels")
check.eq(data.labels:get(2, 1), 1, "x inner")
check.eq(data.labels:get(10, 2), 2, "y outer")
check.eq(data.size, 8, "size")
check.eq(data.held, nil, "no held-out split")
local split = bd.data.bumps{ size = 8, dx = 1, dy = 1, holdout = "rect",
                             holdout_x0 = 2, holdout_x1 = 4, holdout_y0 = 2, holdout_y1 = 4 }
check.eq(split.held.n, 9, "a 3x3 held-out square")
check.eq(split.n + split.held.n, 81, "train + held")
check.eq(tostring(split), "bd.Dataset(bumps, 72 images of 8x8, 9 held out)", "tostring")
check.eq(bd.data.stripes{ size = 8 }.n, 18, "stripes: 9 vertical, 9 horizontal")
check.raises("size = -4, expected an integer in [2,", bd.data.bumps, { size = -4 })
check.raises("dx = 0, expected a number in [0.001,", bd.data.bumps, { dx = 0 })
check.raises("unknown key 'sigam' for dataset", bd.data.bumps, { sigam = 1 })
check.raises("kind is set by bd.data.bumps", bd.data.bumps, { kind = "stripes" })

local probe = bd.data.grid{ size = 8, step = 4 }
check.eq(probe.n, 4, "grid of 2x2")
check.eq(table.concat(probe.labels:to_table()[4], ","), "6.0,6.0", "grid from step/2 to size - step/2")
check.raises("grid: unknown key 'stpe'", bd.data.grid, { stpe = 1 })

-- ---- models -----------------------------------------------------------------
local cfg = { width = 8, size = 8, emb = 16, seed = 3 }
local model = bd.model("unet", cfg)
check.eq(model.arch, "unet", "arch")
check.eq(model.size, 8, "size")
local params = model:parameters()
local count, numel = 0, 0
for _, t in pairs(params) do count = count + 1; numel = numel + t:numel() end
check.eq(numel, model:num_parameters(), "parameters add up")
check.ok(count > 50, "named parameters: " .. count)
local same = bd.model("unet", cfg):parameters()
check.eq(same["head.weight"]:get(1, 1, 1, 1), params["head.weight"]:get(1, 1, 1, 1),
         "the same seed gives the same weights")
check.raises("unknown denoiser 'unte' (loaded: ", bd.model, "unte", {})
check.raises("unknown key 'widht' for unet", bd.model, "unet", { widht = 8 })
check.raises("seed = -1, expected an integer >= 0", bd.model, "unet", { seed = -1 })

-- ---- training ---------------------------------------------------------------
local evals = {}
local run = bd.run("train", { root = root })
local opts = { steps = 6, batch = 8, lr = 1e-3, seed = 5, every = 3, ema = 0.9,
               ckpt_every = 3, run = run, progress = false,
               on_eval = function(r)
                 evals[#evals + 1] = r.step
                 r:log{ evals = #evals }
               end }
local summary = bd.train(model, data, opts)
check.eq(summary.steps, 6, "steps")
check.ok(summary.loss > 0 and summary.loss < 10, "loss " .. summary.loss)
check.eq(table.concat(evals, ","), "3,6", "on_eval every 3 steps")
local lines = {}
for line in check.read(run:path("metrics.jsonl")):gmatch("[^\n]+") do lines[#lines + 1] = line end
check.eq(#lines, 4, "a metrics line and an eval line per evaluation")
check.ok(lines[1]:find('"step":3', 1, true) and lines[1]:find('"loss":', 1, true)
         and lines[1]:find('"lr":0.001', 1, true), "metrics line: " .. lines[1])
check.ok(lines[4]:find('^{"step":6,"time":[%d.]+,"evals":2}$'), "eval line: " .. lines[4])
check.ok(check.read(run:path("ckpt/step_3.bdc")), "checkpoint at step 3")
check.ok(check.read(run:path("ckpt/step_6.bdc")), "checkpoint at step 6")

check.raises("nan, expected a number in [0, 10]", bd.train, model, data, { steps = 1, lr = 0 / 0 })
check.raises("unknown key 'epohcs' for train", bd.train, model, data, { epohcs = 1 })
check.raises("on_eval is a number, expected a function", bd.train, model, data, { on_eval = 1 })
check.raises("takes 1 channel(s) of 8x8, the dataset has 1 of 12x12", bd.train, model,
             bd.data.bumps{ size = 12 }, { steps = 1, run = run })
-- a training writes only to a run it is given; steps = 0 is not "one epoch"
check.raises("train: no run given: pass run = bd.run(\"name\")", bd.train, model, data,
             { steps = 1 })
check.raises("train: steps = 0, expected an integer >= 1 (leave steps out to train"
             .. " `epochs` epochs)", bd.train, model, data, { steps = 0, run = run })
-- NaN or infinite labels are refused, not turned into NaN images
local nan_data = bd.data.bumps{ size = 8, sigma = 1, dx = 1, dy = 2 }
nan_data.labels:set(7, 2, 0 / 0)
check.raises("train: label 7 is (6, nan), expected finite numbers", bd.train,
             bd.model("unet", cfg), nan_data, { steps = 1, batch = 8, progress = false,
                                                run = bd.run("nan_labels", { root = root }) })
check.raises("sample: label 2 is (inf, 1), expected finite numbers", bd.sample, model,
             { { 1, 1 }, { 1 / 0, 1 } }, { steps = 2 })

-- an error in on_eval stops training, with the callback's line
local err = check.raises("eval broke", bd.train, bd.model("unet", cfg), data,
  { steps = 2, batch = 8, every = 1, run = bd.run("eval_broke", { root = root }),
    progress = false, on_eval = function() error("eval broke") end })
check.ok(tostring(err):find("test_train.lua:%d+: eval broke"), "file:line of the callback: " .. tostring(err))
check.ok(tostring(err):find("stack traceback", 1, true), "with its traceback")

-- ---- sampling -----------------------------------------------------------------
local s = bd.sample(model, probe, { sampler = "ddim", steps = 4, seed = 1, taps = { "layer4" } })
check.eq(table.concat(s.images:shape(), "x"), "4x1x8x8", "one image per label")
check.eq(s.taps.layer4:shape()[1], 4, "layer4 tap per image")
local again = bd.sample(model, probe.labels, { sampler = "ddim", steps = 4, seed = 1 })
check.eq(again.images:get(3, 1, 4, 5), s.images:get(3, 1, 4, 5), "same seed, same images")
local raw = bd.sample(model, { {2, 2} }, { sampler = "ddpm", steps = 3, ema = false })
check.eq(raw.images:shape()[1], 1, "labels as a table, raw weights")
check.raises("expected one of: ddpm, ddim", bd.sample, model, probe, { sampler = "ddmi" })
check.raises("tap 'layer5'", bd.sample, model, probe, { steps = 2, taps = { "layer5" } })
check.raises("the model has no EMA", bd.sample, bd.model("unet", cfg), probe, { ema = true })

check.raises("unknown metric 'bmup' (loaded: ", bd.metric, "bmup", {})

-- ---- checkpoints ----------------------------------------------------------------
local path = run:path("saved.bdc")
check.eq(bd.ckpt.save(path, model), true, "save")
local fresh = bd.model("unet", { width = 8, size = 8, emb = 16, seed = 99 })
local info = bd.ckpt.load(path, fresh)
check.eq(info.step, 6, "step of the checkpoint")
check.eq(check.count_differences(model, fresh), 0, "loaded weights equal the saved ones")
check.ok(check.count_differences(model, bd.model("unet", cfg)) > 1000, "training changed the weights")
local r0 = bd.sample(model, probe, { sampler = "ddim", steps = 4, seed = 2, ema = false })
local r1 = bd.sample(fresh, probe, { sampler = "ddim", steps = 4, seed = 2 })
check.eq(r1.images:get(2, 1, 3, 3), r0.images:get(2, 1, 3, 3), "same weights, same samples")
-- a load that fails raises, naming the file; an option it does not take is refused
check.raises("missing.bdc", bd.ckpt.load, run:path("missing.bdc"), fresh)
check.raises("holds a 'unet' model, expected 'mlp'", bd.ckpt.load, path,
             bd.model("mlp", { size = 8, hidden = 8 }))
check.raises("'emma'", bd.ckpt.load, path, fresh, { emma = true })
check.raises("'emma'", bd.ckpt.load_model, path, { emma = true })
check.raises("'lvl'", bd.ckpt.save, path, model, { lvl = 3 })

-- a model that loads weights forgets its last training (and its EMA)
check.ok(bd.ckpt.load(path, model), "load into the trained model")
check.raises("the model has no EMA", bd.sample, model, probe, { ema = true })

-- resuming from step 3 ends bit-exactly where the straight run ended
local straight = bd.model("unet", cfg)
bd.train(straight, data, { steps = 6, batch = 8, lr = 1e-3, seed = 5, ema = 0.9,
                           run = bd.run("straight", { root = root }), progress = false,
                           every = 100 })
local resumed = bd.model("unet", cfg)
bd.train(resumed, data, { steps = 6, batch = 8, lr = 1e-3, seed = 5, ema = 0.9,
                          run = bd.run("resumed", { root = root }), progress = false,
                          every = 100,
                          resume = run:path("ckpt/step_3.bdc") })
check.eq(check.count_differences(straight, resumed), 0, "resumed weights equal the straight run's")
check.eq(check.count_differences(straight, model), 0, "and the first run's")

-- a NaN weight makes the loss NaN: training stops naming the step
local broken = bd.model("unet", cfg)
broken:parameters()["head.bias"]:set(1, 0 / 0)
check.raises("step 1", bd.train, broken, data, { steps = 3, batch = 8, progress = false,
                                                 run = bd.run("broken", { root = root }) })

os.execute("rm -rf " .. root)
check.done()
