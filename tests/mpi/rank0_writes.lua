-- Under mpirun every rank runs this script, and rank 0 alone writes: the
-- run directory, config.json, metrics.jsonl, checkpoints, sample grids.
-- Two ranks train a tiny MLP with a run and checkpoints; after a barrier
-- rank 0 finds each metrics event once, not once per rank.
local root = "mpi-runs-rank0"
local rank, size = bd.dist.rank(), bd.dist.size()
assert(size == 2, "expected 2 ranks, got " .. size)
if rank == 0 then os.execute("rm -rf " .. root) end
bd.dist.barrier()

local run = bd.run("writes", { root = root })
assert(run:save_config({ rank = rank }), "save_config")
local data = bd.data.bumps{ size = 8, sigma = 1, dx = 2, dy = 2 }
local model = bd.model("mlp", { size = 8, hidden = 16, seed = 3 })
bd.train(model, data, { steps = 6, batch = 4, lr = 1e-2, seed = 5, every = 2,
                        ckpt_every = 3, keep = 0, progress = false, run = run })
assert(run:log{ event = "done", rank = rank }, "run:log")
assert(bd.image.save_grid(run:path("grid.png"), bd.tensor.zeros{ 1, 1, 2, 2 }), "save_grid")
bd.dist.barrier()
if rank ~= 0 then return end

local function read(path)
  local f = assert(io.open(path, "rb"), "missing " .. path)
  local text = f:read("a")
  f:close()
  return text
end

local seen, lines = {}, 0
for line in read(run:path("metrics.jsonl")):gmatch("[^\n]+") do
  lines = lines + 1
  local key = line:match('"event":"done"') and "done" or line:match('"step":(%d+)')
  assert(key, "an event with neither step nor event: " .. line)
  assert(not seen[key], "event " .. key .. " written twice:\n" .. line)
  seen[key] = true
end
for _, key in ipairs{ "2", "4", "6", "done" } do
  assert(seen[key], "event " .. key .. " missing from metrics.jsonl")
end
assert(read(run:path("metrics.jsonl")):find('"rank":0'), "the done event is rank 0's")
assert(read(run:path("config.json")):find('"rank":0'), "config.json is rank 0's")
read(run:path("ckpt/step_3.bdc"))
read(run:path("ckpt/step_6.bdc"))
read(run:path("grid.png"))
print(string.format("rank0_writes: %d metrics lines, each event once; checkpoints 3 and 6", lines))
