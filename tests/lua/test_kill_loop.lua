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
local root = check.scratch()

local function train(name, extra)
  local cmd = string.format("%s %s root=%s name=%s steps=%d %s >> %s/%s.log 2>&1", cfg.bdrun,
                            fixture, root, name, cfg.steps, extra or "", root, name)
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

-- A step's time in the uninterrupted run, from its second half: the first
-- steps pay for page faults and the plugin's loading, and a step time that
-- counted them would let a delay of "two steps" run past the end.
local t0 = bd.time()
check.ok(train("straight"), "the uninterrupted run")
local total_s = bd.time() - t0
local loss_time = {}
for line in (check.read(root .. "/straight/metrics.jsonl") or ""):gmatch("[^\n]+") do
  local e = json.decode(line)
  if e.event ~= "eval" then loss_time[e.step] = e.time end
end
local half = cfg.steps // 2
local step_s = (loss_time[cfg.steps] - loss_time[half]) / (cfg.steps - half)
bd.log.info("uninterrupted: %d steps, %.2f s in all, %.3f s a step", cfg.steps, total_s, step_s)

-- Each kill: the run is started again (resuming) and, from the report of
-- a step drawn ahead of where it stands, killed after a random delay of up
-- to two steps' time: in a step, a checkpoint's writing or a report.
math.randomseed(cfg.seed)
local signals = { "KILL", "KILL", "TERM", "KILL", "KILL", "INT" }
local landed, attempts = {}, 0
while #landed < cfg.kills and attempts < 2 * cfg.kills
      and (checkpoints("killed")[cfg.steps] == nil) do
  attempts = attempts + 1
  local before = checkpoints("killed")
  local at = before[#before] or 0
  -- kills stop 10 steps before the end, far beyond a delay of two steps
  -- even when the machine's load drops and steps run faster than measured
  local room = (cfg.steps - 10 - at) // (cfg.kills - #landed)
  local kill_at = at + math.random(1, math.max(1, room))
  local after_s = math.random() * 2 * step_s
  local signal = signals[#landed % #signals + 1]
  local _, how, code = train("killed", string.format("kill_at=%d kill_after=%.3f signal=%s",
                                                          kill_at, after_s, signal))
  local now = checkpoints("killed")
  local what = string.format("%s %.3f s after step %d: %d -> %d", signal, after_s, kill_at,
                             at, now[#now] or 0)
  if how == "signal" or code > 128 then
    landed[#landed + 1] = what
  else
    bd.log.warn("missed (%s %s): %s", how, code, what)
  end
end
bd.log.info("%d kills in %d attempts: %s", #landed, attempts, table.concat(landed, "; "))
check.eq(#landed, cfg.kills, "every kill landed inside the training")
check.ok(train("killed"), "the killed run, resumed to the end")
local log = check.read(root .. "/killed.log") or ""
local function count(pattern) local n = 0; for _ in log:gmatch(pattern) do n = n + 1 end; return n end
bd.log.info("%d resumes; %d kills left a checkpoint half-written (its temp file removed on"
            .. " resume); %d resumes dropped lines of metrics.jsonl past their step",
            count("train: resumed from"), count("left unfinished by process"),
            count("dropped %d+ line"))

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
