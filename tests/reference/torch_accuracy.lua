-- The accuracy PyTorch gets from bd's weights, against bd's own. The
-- checkpoint's model samples the probe in bd; `bdrun ckpt export` writes
-- its weights under the PyTorch recipe's names; sample_torch.py loads them
-- into tests/bench/unet_torch.py's net and samples the same labels with
-- bd's DDPM sampler (other noise); scripts/lib/bumps.lua scores both.
--
--   bdrun tests/reference/torch_accuracy.lua ckpt=runs/quickstart/ckpt/step_2000.bdc
--         [probe_step=1 steps=100 seed=1 bdrun=build/bdrun out=runs/torch_accuracy]
--
-- Needs python3-torch and python3-numpy.
local bumps = require "bumps"
local cfg = bd.config{ ckpt = "", probe_step = 1.0, steps = 100, seed = 1,
                       bdrun = "build/bdrun", out = "runs/torch_accuracy" }
assert(cfg.ckpt ~= "", "ckpt=PATH: the unet checkpoint to compare")
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
os.execute("mkdir -p " .. cfg.out)
local function path(name) return cfg.out .. "/" .. name end
local function run(cmd)
  assert(os.execute(cmd), "failed: " .. cmd)
end

local model, info = assert(bd.ckpt.load_model(cfg.ckpt))
local probe = bd.data.grid{ size = model.size, step = cfg.probe_step }
local function report(who, images)
  local s = bumps.score(images, probe.labels, { tolerance = 1.0 })
  print(string.format("%-8s %5.1f%% of %d samples hold a single bump within 1 px"
                      .. " (%.1f%% several, %.1f%% none), mean error %.2f px",
                      who, 100 * s.accuracy, s.n, 100 * s.frac_multi, 100 * s.frac_none,
                      s.mean_error))
end

local t0 = os.clock()
local mine = bd.sample(model, probe, { sampler = "ddpm", steps = cfg.steps,
                                       seed = cfg.seed })
print(string.format("%s: unet step %d, %dx%d, its EMA weights if it has them;"
                    .. " DDPM %d steps; bd sampled in %.1f s CPU", cfg.ckpt,
                    info.step, model.size, model.size, cfg.steps, os.clock() - t0))
report("bd", mine.images)

run(string.format('"%s" ckpt export "%s" "%s" > /dev/null', cfg.bdrun, cfg.ckpt,
                  path("model.safetensors")))
assert(probe.labels:save_npy(path("labels.npy")))
run(string.format('/usr/bin/python3 "%ssample_torch.py" "%s" "%s" "%s" --steps %d'
                  .. ' --seed %d', here, path("model.safetensors"),
                  path("labels.npy"), path("torch_samples.safetensors"), cfg.steps,
                  cfg.seed))
local theirs = assert(bd.tensor.load_safetensors(path("torch_samples.safetensors")))
report("PyTorch", theirs.images)
