-- A checkpoint rebuilds its model: bd.ckpt.load_model makes the unet a
-- training wrote (architecture, config, EMA weights, diffusion settings)
-- from the file alone, and it samples the same images, bit for bit; the
-- run's checkpoint folder through bd.ckpt.path and bd.ckpt.list; `bdrun
-- sample CKPT` writes a grid.
local check = require "check"
local cfg = bd.config{ bdrun = "bdrun" }
local root = "lua-runs-ckpt-model"
os.execute("rm -rf " .. root)

local data = bd.data.bumps{ size = 8, sigma = 1, dx = 2, dy = 2 }
local run = bd.run("model", { root = root })
local model = bd.model("unet", { width = 8, size = 8, emb = 16, attention_blocks = "", seed = 3 })
bd.train(model, data, { steps = 8, batch = 8, lr = 1e-3, seed = 5, every = 100, ema = 0.9,
                        schedule = "cosine", timesteps = 200, progress = false,
                        ckpt_every = 4, keep = 0, run = run })

local list = bd.ckpt.list(run)
check.eq(#list, 2, "two checkpoints")
check.eq(list[2] and list[2].step, 8, "by step")
local path = bd.ckpt.path(run, 8)
check.eq(list[2] and list[2].path, path, "bd.ckpt.path names the listed file")
check.eq(#bd.ckpt.list(root .. "/none"), 0, "a missing folder holds none")

local probe = bd.data.grid{ size = 8, step = 4 }
local opts = { sampler = "ddim", steps = 10, seed = 4 }
local want = bd.sample(model, probe, opts).images:to_table()

local rebuilt, info = bd.ckpt.load_model(path)
check.ok(rebuilt, "load_model: " .. tostring(info))
check.eq(rebuilt.arch, "unet", "arch")
check.eq(info.step, 8, "step")
check.eq(rebuilt:num_parameters(), model:num_parameters(), "the same architecture")
local got = bd.sample(rebuilt, probe, opts).images:to_table()
local differ = 0
for n = 1, #want do
  for y = 1, 8 do
    for x = 1, 8 do
      if want[n][1][y][x] ~= got[n][1][y][x] then differ = differ + 1 end
    end
  end
end
check.eq(differ, 0, "pixels that differ from the trained model's samples")

check.raises("missing.bdc", bd.ckpt.load_model, root .. "/missing.bdc")

local out = root .. "/grid.png"
check.ok(os.execute(string.format('"%s" sample "%s" per_side=2 steps=5 out=%s 2>/dev/null',
                                  cfg.bdrun, path, out)), "bdrun sample")
local png = check.read(out)
check.ok(png and png:sub(2, 4) == "PNG", "a PNG grid")
check.done()
