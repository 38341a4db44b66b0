-- A sample grid from any checkpoint, without knowing how it was made:
--   bdrun sample runs/quickstart/ckpt/step_2000.bdc [per_side=8 sampler=ddim steps=50 seed=0 out=...]
-- The model is rebuilt from the checkpoint (its architecture, config and,
-- when it has one, EMA weights; bd.ckpt.load_model) and draws one image at
-- each of per_side x per_side positions spread over the image; each is
-- marked with the position asked for. Writes <checkpoint>_samples.png
-- unless out= names another file.
local cfg = bd.config{ ckpt = "", out = "", per_side = 8, sampler = "ddim", steps = 50,
                       seed = 0, scale = 0 }
if cfg.ckpt == "" then error("sample: ckpt= names the checkpoint to sample from", 0) end

local model, info = bd.ckpt.load_model(cfg.ckpt)
local probe = bd.data.grid{ size = model.size, step = model.size / cfg.per_side }
local s = bd.sample(model, probe, { sampler = cfg.sampler, steps = cfg.steps, seed = cfg.seed })
local out = cfg.out ~= "" and cfg.out or cfg.ckpt:gsub("%.bdc$", "") .. "_samples.png"
local scale = cfg.scale > 0 and cfg.scale or math.max(1, 128 // model.size)
assert(bd.image.save_grid(out, s.images, { labels = probe.labels, cols = cfg.per_side,
                                           scale = scale }))
bd.log.info("%s: %s of %d parameters at step %d; %d samples (%s, %d steps, seed %d) in %s",
            cfg.ckpt, info.arch, model:num_parameters(), info.step, probe.n, cfg.sampler,
            cfg.steps, cfg.seed, out)
