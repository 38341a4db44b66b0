-- Quickstart: can a small conditional diffusion model learn to draw a
-- Gaussian bump where it is asked to?
--
--   bdrun scripts/quickstart.lua [steps=2000 width=16 ...]
--
-- Trains a small UNet on 16x16 images of one bump (sigma 1 pixel, centres
-- on a lattice of 0.25 pixel), then draws one sample for each position of
-- an 8x8 probe grid and reports the fraction that hold a single bump
-- within 1 pixel of the requested place (scripts/lib/bumps.lua). Writes
-- runs/quickstart/: config.json, metrics.jsonl (loss and that score every
-- `every` steps), samples.png (the requested positions marked in red) and
-- the final checkpoint in ckpt/.
local bumps = require "bumps"

local cfg = bd.config{
  size = 16, width = 8, emb = 64, steps = 2000, batch = 64, lr = 1e-3,
  ema = 0.995, seed = 1, every = 500, sampler = "ddpm", sample_steps = 100,
  probe_step = 2.0,
  -- self-attention everywhere but at full resolution, where 256 tokens per
  -- image would cost as much as the rest of the net
  attention_blocks = "down1,down2,down3,up1,up2",
}

local data  = bd.data.bumps{ size = cfg.size, sigma = 1.0, dx = 0.25, dy = 0.25 }
local model = bd.model("unet", { width = cfg.width, size = cfg.size, emb = cfg.emb,
                                 attention_blocks = cfg.attention_blocks, seed = cfg.seed })
local probe = bd.data.grid{ size = cfg.size, step = cfg.probe_step }
local run   = bd.run("quickstart", { overwrite = true })  -- each run starts over
bd.log.info("%s, %d parameters; %s; probe of %d positions", model.arch,
            model:num_parameters(), tostring(data), probe.n)

local last -- the latest samples and their score
local function evaluate(r)
  local s = bd.sample(model, probe, { sampler = cfg.sampler, steps = cfg.sample_steps,
                                      seed = cfg.seed })
  local score = bumps.score(s.images, probe.labels, { tolerance = 1.0 })
  r:log(score)
  bd.log.info("step %d: %.0f%% single bump within 1 px (%.0f%% several, %.0f%% none),"
              .. " mean error %s", r.step, 100 * score.accuracy, 100 * score.frac_multi,
              100 * score.frac_none, score.frac_single > 0
              and string.format("%.2f px", score.mean_error) or "-")
  last = { samples = s, score = score }
end

local result = bd.train(model, data, {
  steps = cfg.steps, batch = cfg.batch, lr = cfg.lr, warmup = 100, ema = cfg.ema,
  seed = cfg.seed, every = cfg.every, ckpt_every = cfg.steps, run = run,
  on_eval = evaluate,
})

local grid = run:path("samples.png")
assert(bd.image.save_grid(grid, last.samples.images,
                          { labels = probe.labels, cols = 8, scale = 4 }))
bd.log.info("trained %d steps in %.0f s (%.1f images/s); samples in %s",
            result.steps, result.seconds, result.images_per_s, grid)
print(string.format("%.1f%% of %d samples hold a single bump within 1 pixel of"
                    .. " the requested place", 100 * last.score.accuracy, last.score.n))
