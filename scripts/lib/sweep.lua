-- Sweeps: a script declares its runs (conditions x seeds); each process
-- runs its share of them, a finished run is marked and skipped when the
-- sweep runs again, and the process that finishes the sweep collects every
-- run's results into one summary and gets them back for the statistics.
--
--   local sweep = require "sweep"
--   local cfg = bd.config(sweep.options{ steps = 2000 })  -- adds shard, collect
--   local runs = sweep.run{
--     name = "imbalance",                   -- for the log and the summary
--     dir = "runs/imbalance/train",         -- (default runs/<name>)
--     conditions = { { name = "balanced", dx = 0.32, dy = 0.32 }, ... },
--     seeds = { 1, 2, 3 },
--     config = cfg,
--     train = function(run, condition, seed) ... return { acc_x = 0.9 } end,
--   }
--   if runs then --[[ every run is done: statistics, figures, report ]] end
--
-- Runs. Run i = (c - 1) * #seeds + (s - 1) trains condition c with seed s;
-- it is named <condition name>_s<seed> and lives in <dir>/<name>/, a bd.run
-- whose config.json holds the sweep's config, the condition and the seed.
-- train(run, condition, seed) returns the run's results: a table that JSON
-- can hold (numbers, strings, booleans, nested tables).
--
-- Shares. This process runs the runs with i % n == r, where r/n is
--   shard=r/n on the command line, else the product of
--   a Slurm job array   SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of
--                       SLURM_ARRAY_TASK_COUNT, and
--   an MPI launcher     OMPI_COMM_WORLD_RANK of OMPI_COMM_WORLD_SIZE (Open
--                       MPI) or PMI_RANK of PMI_SIZE (MPICH, srun),
--   else 0/1: every run. The runs are independent, so the process trains
--   alone (bd.dist.alone) even under mpirun.
-- procs=n (n > 1) with none of those: this process starts n bdrun
-- processes of the same script and arguments, shard=0/n ... shard=n-1/n,
-- one OpenMP thread each (one per core on an n-core machine), passes their
-- log through, prints what they print (the answer, from the one that
-- collects) and returns nil; it fails when one of them does.
--
-- Marks. When train returns, <run dir>/done.json gets { name, index, seed,
-- condition (its plain values), results, seconds }, written atomically
-- (temp file, fsync, rename). A run without it (never started, or killed part way)
-- is run again from the start; one with it is skipped, with a warning when
-- its config.json holds other settings than this process's (shard and
-- collect aside): its results are kept.
--
-- Collecting. <dir>/summary.json holds { sweep, runs (every done.json, in
-- run order), missing (the names of runs not done) } and <dir>/summary.csv
-- one row per done run: index, name, condition, seed, the condition's
-- values and the results' numbers, strings and booleans. The first process
-- to find every run done collects (when several find it at once, the one
-- that makes the folder <dir>/collected; starting a run removes it), and
-- its sweep.run returns the runs, read back from the marks, so they are the
-- same whichever process ran them. A process that runs every run (share
-- 0/1) always collects, so running a finished sweep again prints its answer
-- again without training (procs=n too: with every run done it starts no
-- processes and runs as share 0/1). `collect=true` runs nothing and collects
-- what is done, returning the runs when none is missing. Otherwise
-- sweep.run returns nil.
local json = require "json"

local sweep = {}

-- The script's defaults plus the sweep's own keys: shard ("" or "r/n"),
-- collect (false) and procs (1).
function sweep.options(defaults)
  local t = { shard = "", collect = false, procs = 1 }
  for k, v in pairs(defaults) do t[k] = v end
  return t
end

-- ---- the runs ------------------------------------------------------------------

local function fail(fmt, ...) error("sweep: " .. string.format(fmt, ...), 0) end

local function check_name(name, what)
  if type(name) ~= "string" or not name:match("^[%w_%-][%w_%-%.]*$") then
    fail("%s has name %s, expected letters, digits, '_', '-' and '.', not"
         .. " starting with '.'", what, tostring(name))
  end
end

-- The plain values of a condition: what its marker and the summary keep.
local function plain(condition)
  local t = {}
  for k, v in pairs(condition) do
    local kind = type(v)
    if type(k) == "string" and (kind == "number" or kind == "string" or kind == "boolean") then
      t[k] = v
    end
  end
  return t
end

local function list_runs(opts)
  if type(opts.conditions) ~= "table" or #opts.conditions == 0
     or type(opts.seeds) ~= "table" or #opts.seeds == 0 then
    fail("expected conditions and seeds, each a non-empty list")
  end
  local runs, names = {}, {}
  for c, condition in ipairs(opts.conditions) do
    check_name(condition.name, "condition " .. c)
    for _, seed in ipairs(opts.seeds) do
      if not math.tointeger(seed) then fail("seed %s is not an integer", tostring(seed)) end
      local name = condition.name .. "_s" .. seed
      if names[name] then fail("two runs are named %s", name) end
      names[name] = true
      runs[#runs + 1] = { index = #runs, name = name, condition = condition, seed = seed }
    end
  end
  return runs
end

-- ---- shares --------------------------------------------------------------------

local function share_of(text, source)
  local r, n = text:match("^(%d+)/(%d+)$")
  r, n = math.tointeger(tonumber(r)), math.tointeger(tonumber(n))
  if not r or n < 1 or r >= n then
    fail("%s = '%s', expected r/n with 0 <= r < n", source, text)
  end
  return r, n
end

-- This process's place from a launcher's environment, or nil.
local function env_share(rank_var, size_var, min_var)
  local rank = os.getenv(rank_var)
  if not rank then return nil end
  local first = min_var and os.getenv(min_var) or "0"
  local r = math.tointeger(tonumber(rank)) and math.tointeger(tonumber(first))
            and math.tointeger(tonumber(rank)) - math.tointeger(tonumber(first))
  return share_of(string.format("%s/%s", r or rank, os.getenv(size_var) or "?"),
                  rank_var .. "/" .. size_var)
end

-- r, n and where they came from.
local function choose_share(shard)
  if shard ~= nil and shard ~= "" then
    local r, n = share_of(shard, "shard")
    return r, n, "shard=" .. shard
  end
  local r, n, from = 0, 1, {}
  local function add(rank_var, size_var, min_var)
    local sr, sn = env_share(rank_var, size_var, min_var)
    if not sr then return false end
    r, n = r * sn + sr, n * sn
    from[#from + 1] = string.format("%s %d of %d", rank_var, sr, sn)
    return true
  end
  add("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN")
  if not add("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE") then
    add("PMI_RANK", "PMI_SIZE")
  end
  return r, n, #from > 0 and table.concat(from, ", ") or "one process"
end

-- ---- processes on this machine ------------------------------------------------

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- This bdrun's path: the parent of the shell io.popen starts is this process.
local function self_exe()
  local p = io.popen("readlink /proc/$PPID/exe 2>/dev/null")
  local path = p and p:read("l")
  if p then p:close() end
  return path and path ~= "" and path or "bdrun"
end

-- Run the sweep as n one-thread processes, shard=r/n each (see the top).
local function spawn(opts, n)
  local words = { shell_quote(self_exe()), shell_quote(arg[0]) }
  for i = 1, #arg do
    if not arg[i]:find("^procs=") then words[#words + 1] = shell_quote(arg[i]) end
  end
  local base = table.concat(words, " ")
  bd.log.info("sweep %s: %d processes of one thread each, shard=0/%d ... %d/%d", opts.name, n,
              n, n - 1, n)
  local children = {}
  for r = 0, n - 1 do
    children[r + 1] = assert(io.popen(string.format("OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 %s"
                                                    .. " shard=%d/%d", base, r, n), "r"))
  end
  local failed = {}
  for r, child in ipairs(children) do
    io.write(child:read("a"))
    local ok, how, code = child:close()
    if not ok then failed[#failed + 1] = string.format("shard=%d/%d (%s %s)", r - 1, n, how, code) end
  end
  io.flush()
  if #failed > 0 then fail("%s failed", table.concat(failed, ", ")) end
end

-- ---- marks and files -----------------------------------------------------------

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

-- Write text to path atomically (temp file, fsync, rename): a reader sees
-- the old file or the new one.
local function write_atomic(path, text)
  local ok, err = bd.write_atomic(path, text)
  if not ok then fail("%s", err) end
end

local function mark_path(dir, run) return dir .. "/" .. run.name .. "/done.json" end

-- The run's mark, or nil when it is not done.
local function read_mark(dir, run)
  local path = mark_path(dir, run)
  local text = read_file(path)
  if not text then return nil end
  local mark, err = json.decode(text)
  if type(mark) ~= "table" or mark.name ~= run.name or type(mark.results) ~= "table" then
    fail("%s is not the mark of run %s (%s); delete it to run that run again", path,
         run.name, err or "another run's, or no results")
  end
  return mark
end

-- The settings (shard and collect aside) a done run ran with that differ
-- from `config`, as "key = its value, not this one" phrases.
local function changed_settings(dir, run, config)
  local saved = json.decode(read_file(dir .. "/" .. run.name .. "/config.json") or "null")
  local was = type(saved) == "table" and saved.config
  if type(was) ~= "table" or type(config) ~= "table" then return {} end
  local keys, seen = {}, { shard = true, collect = true }
  for _, t in ipairs{ was, config } do
    for k in pairs(t) do
      if not seen[k] then
        seen[k] = true
        keys[#keys + 1] = k
      end
    end
  end
  table.sort(keys)
  local changed = {}
  for _, k in ipairs(keys) do
    local before, now = json.encode(was[k]), json.encode(config[k])
    if before ~= now then changed[#changed + 1] = string.format("%s = %s, not %s", k, before, now) end
  end
  return changed
end

local function claim_path(dir) return dir .. "/collected" end

-- mkdir fails when the folder exists: one process of those that try wins.
local function claim(dir)
  return os.execute("mkdir " .. shell_quote(claim_path(dir)) .. " 2>/dev/null") == true
end

-- ---- running and collecting ----------------------------------------------------

local function train_one(opts, dir, run)
  os.remove(claim_path(dir))
  local started = bd.time()
  -- a run without its mark trains again from the start: it starts over
  local r = bd.run(run.name, { root = dir, overwrite = true })
  assert(r:save_config{ sweep = opts.name, index = run.index, seed = run.seed,
                        condition = plain(run.condition), config = opts.config })
  local results = opts.train(r, run.condition, run.seed)
  if type(results) ~= "table" then
    fail("train returned a %s for run %s, expected a table of results", type(results),
         run.name)
  end
  r:close()
  write_atomic(mark_path(dir, run), json.encode{
    name = run.name, index = run.index, seed = run.seed,
    condition = plain(run.condition), results = results,
    seconds = bd.time() - started } .. "\n")
end

local function csv_field(v)
  local kind = type(v)
  if kind == "nil" or kind == "table" then return "" end
  local text = kind == "number" and json.encode(v) or tostring(v)
  if text:find('[,"\r\n]') then text = '"' .. text:gsub('"', '""') .. '"' end
  return text
end

-- Sorted keys of the plain values under field `part` of every mark.
local function columns(marks, part, skip)
  local seen, keys = {}, {}
  for _, m in ipairs(marks) do
    for k in pairs(plain(m[part])) do
      if not seen[k] and not skip[k] then
        seen[k] = true
        keys[#keys + 1] = k
      end
    end
  end
  table.sort(keys)
  return keys
end

local function write_csv(path, marks)
  local ckeys = columns(marks, "condition", { name = true })
  local rkeys = columns(marks, "results", {})
  local header = { "index", "name", "condition", "seed" }
  table.move(ckeys, 1, #ckeys, #header + 1, header)
  table.move(rkeys, 1, #rkeys, #header + 1, header)
  local lines = { table.concat(header, ",") }
  for _, m in ipairs(marks) do
    local row = { csv_field(m.index), csv_field(m.name), csv_field(m.condition.name),
                  csv_field(m.seed) }
    for _, k in ipairs(ckeys) do row[#row + 1] = csv_field(m.condition[k]) end
    for _, k in ipairs(rkeys) do row[#row + 1] = csv_field(m.results[k]) end
    lines[#lines + 1] = table.concat(row, ",")
  end
  write_atomic(path, table.concat(lines, "\n") .. "\n")
end

-- Write the summary of the done runs; returns the marks in run order and
-- the names of the runs not done.
local function collect(opts, dir, runs)
  local marks, missing = json.array(), json.array()
  for _, run in ipairs(runs) do
    local mark = read_mark(dir, run)
    if mark then
      mark.index = run.index
      marks[#marks + 1] = mark
    else
      missing[#missing + 1] = run.name
    end
  end
  write_atomic(dir .. "/summary.json", json.encode{ sweep = opts.name, runs = marks,
                                                   missing = missing } .. "\n")
  write_csv(dir .. "/summary.csv", marks)
  bd.log.info("sweep %s: collected %d of %d runs into %s/summary.json and"
              .. " summary.csv%s", opts.name, #marks, #runs, dir,
              #missing > 0 and "; not done: " .. table.concat(missing, ", ") or "")
  return marks, missing
end

local function count_done(dir, runs)
  local n = 0
  for _, run in ipairs(runs) do
    if read_mark(dir, run) then n = n + 1 end
  end
  return n
end

function sweep.run(opts)
  check_name(opts.name, "the sweep")
  if type(opts.train) ~= "function" then fail("expected train = function(run, condition, seed)") end
  local cfg = opts.config or {}
  local dir = opts.dir or ("runs/" .. opts.name)
  local runs = list_runs(opts)
  bd.dist.alone()
  if cfg.collect then
    local marks, missing = collect(opts, dir, runs)
    return #missing == 0 and marks or nil
  end
  local r, n, from = choose_share(cfg.shard)
  local procs = math.tointeger(cfg.procs) or 1
  if n == 1 and procs > 1 and count_done(dir, runs) < #runs then
    spawn(opts, procs)
    return nil
  end
  local mine, ran = 0, 0
  for _, run in ipairs(runs) do
    if run.index % n == r then
      mine = mine + 1
      if read_mark(dir, run) then
        bd.log.info("sweep %s: %s is done, skipped", opts.name, run.name)
        local changed = changed_settings(dir, run, opts.config)
        if #changed > 0 then
          bd.log.warn("sweep %s: %s was done with %s: its results are kept (delete %s/%s"
                      .. " to run it again)", opts.name, run.name, table.concat(changed, ", "),
                      dir, run.name)
        end
      else
        bd.log.info("sweep %s: run %d of %d, %s (share %d/%d: %s)", opts.name,
                    run.index + 1, #runs, run.name, r, n, from)
        train_one(opts, dir, run)
        ran = ran + 1
      end
    end
  end
  local done = count_done(dir, runs)
  bd.log.info("sweep %s: share %d/%d (%s) ran %d of its %d runs; %d of %d done",
              opts.name, r, n, from, ran, mine, done, #runs)
  if done < #runs then return nil end
  if not claim(dir) and n > 1 then
    bd.log.info("sweep %s: already collected (collect=true collects again)", opts.name)
    return nil
  end
  return (collect(opts, dir, runs))
end

return sweep
