-- The checkpoints bd.train keeps in a run: the newest `keep` plus pinned
-- ones; resume = "auto" after a simulated kill, bit-identical to a straight
-- run; a damaged latest checkpoint skipped for the one before; temp files
-- of a killed writer removed. Tiny MLPs, a few steps each.
local check = require "check"
local root = "lua-runs-ckpt-store"
os.execute("rm -rf " .. root)

local data = bd.data.bumps{ size = 8, sigma = 1, dx = 2, dy = 2 }
local function mlp(seed) return bd.model("mlp", { size = 8, hidden = 16, seed = seed or 3 }) end

-- bd.train's options: these, over the ones every run here shares.
local function opts(extra)
  local o = { steps = 8, batch = 4, lr = 1e-2, seed = 5, ema = 0.9, every = 100,
              progress = false }
  for k, v in pairs(extra) do o[k] = v end
  return o
end

-- The steps of a run's checkpoints: "2,4,6".
local function steps(run)
  local found = {}
  local ls = io.popen('ls "' .. run:path("ckpt") .. '" 2>/dev/null')
  for name in ls:lines() do
    local n = name:match("^step_(%d+)%.bdc$")
    if n then found[#found + 1] = tonumber(n) end
  end
  ls:close()
  table.sort(found)
  return table.concat(found, ",")
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function run(name) return bd.run(name, { root = root }) end

-- ---- keep and pin --------------------------------------------------------------
local r = run("keep")
bd.train(mlp(), data, opts{ steps = 10, ckpt_every = 1, keep = 2, pin = { 3, 7 }, run = r })
check.eq(steps(r), "3,7,9,10", "the newest 2 and the pinned")

r = run("predicate")
bd.train(mlp(), data, opts{ steps = 10, ckpt_every = 1, keep = 1, run = r,
                            pin = function(step) return step % 4 == 0 end })
check.eq(steps(r), "4,8,10", "pinned by a function, and the last")

r = run("default")
bd.train(mlp(), data, opts{ steps = 10, ckpt_every = 2, run = r })
check.eq(steps(r), "6,8,10", "keep = 3 by default")

r = run("all")
bd.train(mlp(), data, opts{ steps = 5, ckpt_every = 2, keep = 0, run = r })
check.eq(steps(r), "2,4,5", "keep = 0 keeps all; the last step always writes one")
-- a run that holds a training is not started again by accident
check.raises("train: '" .. r.dir .. "' already holds a training (metrics.jsonl to step 5,"
             .. " 3 checkpoint(s) to step 5): resume = \"auto\" continues it, a run opened"
             .. " with overwrite = true starts it over", bd.train, mlp(), data,
             opts{ steps = 3, ckpt_every = 1, keep = 1, run = r })
check.eq(steps(r), "2,4,5", "and nothing of it is touched")
-- a shorter run over it, started over: the old checkpoints go first
r:close()
r = bd.run("all", { root = root, overwrite = true })
bd.train(mlp(), data, opts{ steps = 3, ckpt_every = 1, keep = 1, run = r })
check.eq(steps(r), "3", "overwrite = true removed the old checkpoints")

check.raises("train: pin[2] = 3 is not a step that writes a checkpoint (every 2 steps,"
             .. " and the last, 10)", bd.train, mlp(), data,
             opts{ steps = 10, ckpt_every = 2, pin = { 4, 3 }, run = r })
check.raises("train: pin needs ckpt_every > 0", bd.train, mlp(), data,
             opts{ pin = { 4 }, run = r })
check.raises("train: pin is a string, expected a list of steps or a function(step)",
             bd.train, mlp(), data, opts{ ckpt_every = 2, pin = "4", run = r })
check.raises("keep = -1, expected an integer >= 0", bd.train, mlp(), data,
             opts{ ckpt_every = 2, keep = -1, run = r })
local err = check.raises("pin broke", bd.train, mlp(), data,
  opts{ ckpt_every = 1, keep = 1, run = run("pin_error"),
        pin = function() error("pin broke") end })
check.ok(tostring(err):find("test_ckpt_store.lua:%d+: pin broke"), "the pin's line: " .. tostring(err))

-- ---- resume = "auto" -----------------------------------------------------------
local straight = mlp()
bd.train(straight, data, opts{ ckpt_every = 2, run = run("straight") })
-- resumed models start from other weights: only the checkpoint makes them equal
check.ok(check.count_differences(straight, mlp(99)) > 100, "training and the seed change the weights")

-- Train toward 8 steps in run `name` and stop at step 5 as if killed: the
-- checkpoints of steps 2 and 4 are written.
local function killed_run(name)
  local k = run(name)
  check.raises("killed at step 5", bd.train, mlp(), data, opts{
    ckpt_every = 2, every = 1, run = k,
    on_eval = function(e) if e.step == 5 then error("killed at step 5") end end })
  check.eq(steps(k), "2,4", "checkpoints before the kill")
  return k
end

local k = killed_run("killed")
-- a writer killed while saving step 6 left its temp file; one of a live
-- process (pid 1) is not touched
local stale = k:path("ckpt/step_6.bdc.tmp-2147483647")
local live = k:path("ckpt/step_6.bdc.tmp-1")
write(stale, "half a checkpoint")
write(live, "being written")
local resumed = mlp(99)
local summary = bd.train(resumed, data, opts{ ckpt_every = 2, run = k, resume = "auto" })
check.eq(summary.steps, 8, "resumed to the end")
check.ok(summary.resumed and summary.resumed:find("/ckpt/step_4%.bdc$"), "from step 4: "
         .. tostring(summary.resumed))
check.eq(#summary.skipped, 0, "nothing skipped")
check.eq(check.count_differences(straight, resumed), 0, "bit-identical to the straight run")
check.ok(not exists(stale), "the stale temp file is removed")
check.ok(exists(live), "a live writer's temp file stays")
os.remove(live)
check.eq(steps(k), "4,6,8", "the newest 3")

-- the latest checkpoint is damaged: skipped with its name, the one before used
k = killed_run("corrupt")
local latest = k:path("ckpt/step_4.bdc")
local bytes = check.read(latest)
write(latest, bytes:sub(1, #bytes // 2))
resumed = mlp(99)
summary = bd.train(resumed, data, opts{ ckpt_every = 2, run = k, resume = "auto" })
check.ok(summary.resumed and summary.resumed:find("/ckpt/step_2%.bdc$"), "from step 2: "
         .. tostring(summary.resumed))
check.eq(#summary.skipped, 1, "one skipped")
check.eq(summary.skipped[1] and summary.skipped[1].path, latest, "the damaged one, named")
check.ok(summary.skipped[1] and summary.skipped[1].error:find(latest, 1, true),
         "with the reason: " .. tostring(summary.skipped[1] and summary.skipped[1].error))
check.eq(check.count_differences(straight, resumed), 0, "bit-identical after the fallback")
check.eq(steps(k), "4,6,8", "step 4 written again")

-- no checkpoint that loads: an error naming the folder and the latest's fault
r = run("unreadable")
os.execute('mkdir -p "' .. r:path("ckpt") .. '"')
write(r:path("ckpt/step_2.bdc"), "not a checkpoint")
check.raises("resume = auto: none of the 1 checkpoints in '" .. r:path("ckpt")
             .. "' loads; the latest: ", bd.train, mlp(), data,
             opts{ ckpt_every = 2, run = r, resume = "auto" })

-- no checkpoint yet: a fresh start
local fresh = mlp()
summary = bd.train(fresh, data, opts{ run = run("fresh"), resume = "auto" })
check.eq(summary.resumed, nil, "nothing to resume from")
check.eq(check.count_differences(straight, fresh), 0, "the same as a straight run")

-- an explicit path is reported too
summary = bd.train(mlp(), data, opts{ run = run("path"), resume = run("straight"):path("ckpt/step_6.bdc") })
check.ok(summary.resumed:find("straight/ckpt/step_6%.bdc$"), tostring(summary.resumed))

os.execute("rm -rf " .. root)
check.done()
