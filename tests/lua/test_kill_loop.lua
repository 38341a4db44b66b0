-- The kill loop: a training that checkpoints every step
-- (tests/fixtures/kill_train.lua) is killed KILLS times at random moments
-- (SIGKILL, and every third time SIGTERM or SIGINT), each time started
-- again with resume = "auto", then run to the end. Every checkpoint left
-- must verify, the last must equal an uninterrupted run's byte for byte
-- (weights, EMA, optimizer state, RNG), and metrics.jsonl must hold every
-- step exactly once (its loss line and its on_eval line). Prints where each
-- kill landed. CTest passes the bdrun to test:
--   bdrun test_kill_loop.lua bdrun=/path/to/bdrun [kills=10 seed=1]
local check = require "check"
local json = require "json"
local cfg = bd.config{ bdrun = "bdrun", kills = 10, seed = 1, steps = 60 }

local fixture = arg[0]:gsub("[^/]*$", "") .. "../fixtures/kill_train.lua"
local root = os.tmpname()
os.remove(root)
assert(os.execute("mkdir -p " .. root))

local function train(name, limit)
  local cmd = string.format("%s%s %s root=%s name=%s steps=%d >> %s/%s.log 2>&1",
                            limit or "", cfg.bdrun, fixture, root, name, cfg.steps, root, name)
  return os.execute(cmd)
end

-- The steps of the checkpoints in a run's ckpt folder, ascending.
local function checkpoints(name)
  local steps = {}
  local ls = io.popen("ls " .. root .. "/" .. name .. "/ckpt 2>/dev/null")
  for file in ls:lines() do
    local n = file:match("^step_(%d+)%.bdc$")
    if n then steps[#steps + 1] = tonumber(n) end
  end
  ls:close()
  table.sort(steps)
  return steps
end

-- How many times each step appears in metrics.jsonl, per kind of line.
local function history(name)
  local text = check.read(root .. "/" .. name .. "/metrics.jsonl") or ""
  local loss, eval, lines = {}, {}, 0
  for line in text:gmatch("[^\n]+") do
    lines = lines + 1
    local e = json.decode(line)
    local seen = e.event == "eval" and eval or loss
    seen[e.step] = (seen[e.step] or 0) + 1
  end
  return loss, eval, lines
end

-- The uninterrupted run: its start-up (process start to the run's opening,
-- and exit) and training times, from its last line's "time".
local t0 = bd.time()
check.ok(train("straight"), "the uninterrupted run")
local total_s = bd.time() - t0
local last_line = (check.read(root .. "/straight/metrics.jsonl") or ""):match("[^\n]+\n$") or "{}"
local training_s = json.decode(last_line).time or total_s
local startup_s = math.max(0, total_s - training_s)
bd.log.info("uninterrupted: %d steps, %.2f s in all, %.2f s of them training", cfg.steps,
            total_s, training_s)

-- Each kill lands at a moment drawn uniformly over what is left of the
-- training (from the times above); one that comes after the end (the
-- machine ran faster than measured) is not counted and drawn again.
math.randomseed(cfg.seed)
local signals = { "KILL", "KILL", "TERM", "KILL", "KILL", "INT" }
local landed, attempts = {}, 0
while #landed < cfg.kills and attempts < 4 * cfg.kills do
  attempts = attempts + 1
  local before = checkpoints("killed")
  local left = (cfg.steps - (before[#before] or 0)) / cfg.steps
  local delay = startup_s + math.random() * training_s * left
  local signal = signals[#landed % #signals + 1]
  local _, _, code = train("killed", string.format("timeout -s %s %.3f ", signal, delay))
  local after = checkpoints("killed")
  -- timeout exits 124 when it sent its signal, 128 + 9 when that was SIGKILL
  if (code == 124 or code == 137) and (after[#after] or 0) < cfg.steps then
    landed[#landed + 1] = string.format("%s at %.2f s: step %d -> %d", signal, delay,
                                        before[#before] or 0, after[#after] or 0)
  end
end
bd.log.info("%d kills in %d attempts: %s", #landed, attempts, table.concat(landed, "; "))
check.eq(#landed, cfg.kills, "every kill landed inside the training")
check.ok(train("killed"), "the killed run, resumed to the end")

local steps = checkpoints("killed")
check.eq(#steps, cfg.steps, "a checkpoint of every step")
local paths = {}
for _, s in ipairs(steps) do paths[#paths + 1] = string.format("%s/killed/ckpt/step_%d.bdc", root, s) end
check.ok(os.execute(string.format("%s ckpt verify %s > %s/verify.log 2>&1", cfg.bdrun,
                                  table.concat(paths, " "), root)),
         "every checkpoint verifies")
local last = string.format("/ckpt/step_%d.bdc", cfg.steps)
check.ok(check.read(root .. "/killed" .. last) == check.read(root .. "/straight" .. last),
         "the last checkpoint equals the uninterrupted run's, byte for byte")

local loss, eval, lines = history("killed")
local missing, repeated = {}, {}
for s = 1, cfg.steps do
  for kind, seen in pairs{ loss = loss, eval = eval } do
    if not seen[s] then missing[#missing + 1] = kind .. " " .. s end
    if (seen[s] or 0) > 1 then repeated[#repeated + 1] = kind .. " " .. s end
  end
end
check.eq(lines, 2 * cfg.steps, "two lines per step in metrics.jsonl")
check.eq(table.concat(missing, ", "), "", "no step missing")
check.eq(table.concat(repeated, ", "), "", "no step twice")

os.execute("rm -rf " .. root)
check.done()
