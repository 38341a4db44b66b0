-- Sweeps (scripts/lib/sweep.lua), on tests/fixtures/tiny_sweep.lua: two
-- shards (shard=0/2 and a Slurm array task 1 of 2) run at once produce the
-- same runs and results as one process; a shard killed in a run (its share
-- from an MPI launcher's environment) runs only that run again when it
-- restarts; a done run met with other settings is kept, with a warning;
-- collect=true and procs=2 on a done sweep collect again. CTest passes the bdrun to test:
--   bdrun sweep_shards.lua bdrun=/path/to/bdrun
local check = require "check"
local json = require "json"
local cfg = bd.config{ bdrun = "bdrun" }

local fixture = arg[0]:gsub("[^/]*$", "") .. "../fixtures/tiny_sweep.lua"
local dir = check.scratch()

-- The shell command that runs the fixture with env and args; its output
-- goes to <dir>/<log>.
local function command(env, args, log)
  return string.format("cd %s && %s %s %s %s > %s.log 2>&1", dir, env or "", cfg.bdrun,
                       fixture, args, log)
end

local function sweep(env, args, log)
  local ok, how, code = os.execute(command(env, args, log))
  return ok, how, code, check.read(dir .. "/" .. log .. ".log") or ""
end

-- The runs of a summary by name, without their times.
local function summary(sub)
  local doc = assert(json.decode(assert(check.read(dir .. "/runs/" .. sub .. "/summary.json"))))
  local by_name = {}
  for _, r in ipairs(doc.runs) do
    r.seconds = nil
    by_name[r.name] = json.encode(r)
  end
  return by_name, doc
end

local function started(sub)
  local names = {}
  for line in (check.read(dir .. "/runs/" .. sub .. "/started.log") or ""):gmatch("[^\n]+") do
    names[#names + 1] = line
  end
  return table.concat(names, " ")
end

-- ---- one process ------------------------------------------------------------------
local ok, _, _, out = sweep(nil, "dir=runs/all", "all")
check.ok(ok and out:find("collected 4 runs", 1, true), "one process ran and collected: " .. out)
local all, doc = summary("all")
check.eq(#doc.runs, 4, "runs in the summary")
check.eq(#doc.missing, 0, "runs missing")
check.eq(started("all"), "dense_s1 dense_s2 sparse_s1 sparse_s2", "runs in order")
local first = doc.runs[1]
check.eq(first.results.steps, 6, "results kept")
check.eq(first.results.curve[2], 2.5, "nested results kept")
check.eq(doc.runs[3].condition.note, "y, sparser", "condition kept")
check.ok(first.results.loss > 0, "a loss")
local csv = check.read(dir .. "/runs/all/summary.csv")
check.eq(csv:match("^[^\n]*"), "index,name,condition,seed,dx,dy,note,converged,images,loss,steps",
         "csv header")
check.ok(csv:find('\n2,sparse_s1,sparse,1,2,4,"y, sparser",', 1, true), "csv row: " .. csv)

-- ---- two shards at once -------------------------------------------------------------
local both = command(nil, "dir=runs/sharded shard=0/2", "shard0") .. " & "
             .. command("SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0",
                        "dir=runs/sharded", "shard1") .. "; wait"
check.ok(os.execute(both), "two shards")
local out0, out1 = check.read(dir .. "/shard0.log"), check.read(dir .. "/shard1.log")
check.ok(out0:find("share 0/2 (shard=0/2) ran 2 of its 2 runs", 1, true), "shard 0: " .. out0)
check.ok(out1:find("share 1/2 (SLURM_ARRAY_TASK_ID 1 of 2) ran 2 of its 2 runs", 1, true),
         "shard 1: " .. out1)
local collected = select(2, (out0 .. out1):gsub("collected 4 runs", ""))
check.eq(collected, 1, "shards that collected")
local sharded = summary("sharded")
for name, text in pairs(all) do check.eq(sharded[name], text, "sharded run " .. name) end
check.eq(check.read(dir .. "/runs/sharded/summary.csv"), csv, "sharded csv")
local s = {}
for name in started("sharded"):gmatch("%S+") do s[#s + 1] = name end
table.sort(s)
check.eq(table.concat(s, " "), "dense_s1 dense_s2 sparse_s1 sparse_s2", "each run once")

-- ---- a killed shard -------------------------------------------------------------------
local mpi = "OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2"
local killed_ok, how, code = sweep(mpi, "dir=runs/killed crash=sparse_s1", "killed")
check.ok(not killed_ok and code == (how == "signal" and 9 or 137), "killed: " .. how .. " " .. code)
local mark = check.read(dir .. "/runs/killed/dense_s1/done.json")
check.ok(mark ~= nil, "the run before the kill is marked")
check.eq(check.read(dir .. "/runs/killed/sparse_s1/done.json"), nil, "the killed run is not")
ok, _, _, out = sweep(mpi, "dir=runs/killed", "resumed")
check.ok(ok and out:find("dense_s1 is done, skipped", 1, true), "resumed: " .. out)
check.ok(out:find('dense_s1 was done with crash = "sparse_s1", not "": its results are kept', 1, true),
         "the setting that differs: " .. out)
check.eq(started("killed"), "dense_s1 sparse_s1 sparse_s1", "only the killed run again")
check.eq(check.read(dir .. "/runs/killed/dense_s1/done.json"), mark, "the mark is kept")
ok, _, _, out = sweep("OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=2", "dir=runs/killed", "rest")
check.ok(ok and out:find("collected 4 runs", 1, true), "the other shard collects: " .. out)
local killed = summary("killed")
for name, text in pairs(all) do check.eq(killed[name], text, "resumed run " .. name) end

-- ---- collecting again, and errors ---------------------------------------------------------
ok, _, _, out = sweep(nil, "dir=runs/killed shard=1/2", "again")
check.ok(ok and out:find("already collected", 1, true) and not out:find("collected 4"),
         "a shard does not collect a done sweep twice: " .. out)
ok, _, _, out = sweep(nil, "dir=runs/killed", "whole")
check.ok(ok and out:find("collected 4 runs", 1, true),
         "one process running the whole done sweep collects it again: " .. out)
ok, _, _, out = sweep(nil, "dir=runs/killed procs=2", "procs")
check.ok(ok and out:find("collected 4 runs", 1, true) and not out:find("processes of one thread"),
         "procs=2 on a done sweep starts no process and collects it again: " .. out)
ok, _, _, out = sweep(nil, "dir=runs/killed steps=7 shard=1/2", "changed")
check.ok(ok and out:find("sparse_s2 was done with steps = 6, not 7: its results are kept (delete"
                         .. " runs/killed/sparse_s2 to run it again)", 1, true)
         and out:find("already collected", 1, true), "other settings: " .. out)
ok, _, _, out = sweep(nil, "dir=runs/killed collect=true", "collect")
check.ok(ok and out:find("collected 4 runs", 1, true), "collect=true: " .. out)
check.eq(started("killed"), "dense_s1 sparse_s1 sparse_s1 dense_s2 sparse_s2", "collecting runs nothing")
ok, _, _, out = sweep(nil, "dir=runs/bad shard=2/2", "bad")
check.ok(not ok and out:find("sweep: shard = '2/2', expected r/n with 0 <= r < n", 1, true),
         "a bad shard: " .. out)
ok, _, _, out = sweep("SLURM_ARRAY_TASK_ID=3", "dir=runs/bad", "bad_env")
check.ok(not ok and out:find("SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT = '3/?'", 1, true),
         "an array task without a count: " .. out)

os.execute("rm -rf " .. dir)
check.done()
