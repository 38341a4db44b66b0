-- A tensor of any step read straight from an archive of a run's history
-- equals the one in that step's checkpoint; a missing step or name, and a
-- file that is not an archive, fail with nil, message, stage. An analysis
-- archive (optimizer=keys): a non-key step extracts as an analysis
-- checkpoint that bd.ckpt.load_model samples from as from the original and
-- that refuses to resume; a key step resumes. From Lua: bd.ckpt.archive
-- writes the same archive as bdrun, archive_list and archive_verify read
-- it, and bd.ckpt.load / load_model read any step of it ({step = N}).
local check = require "check"
local cfg = bd.config{ bdrun = "bdrun" }
local root = "lua-runs-ckpt-archive"
os.execute("rm -rf " .. root)

local data = bd.data.bumps{ size = 8, sigma = 1, dx = 2, dy = 2 }
local run = bd.run("history", { root = root })
local model = bd.model("mlp", { size = 8, hidden = 16, seed = 3 })
bd.train(model, data, { steps = 6, batch = 4, lr = 1e-2, seed = 5, every = 100,
                        progress = false, ckpt_every = 2, keep = 0, run = run })

local bda = run:path("history.bda")
check.ok(os.execute(string.format('"%s" ckpt archive "%s" "%s" key_every=2 > /dev/null',
                                  cfg.bdrun, run.dir, bda)), "bdrun ckpt archive")

-- The same weights, through a checkpoint loaded into a second model.
local function weights_at(step)
  local m = bd.model("mlp", { size = 8, hidden = 16, seed = 9 })
  assert(bd.ckpt.load(run:path(string.format("ckpt/step_%d.bdc", step)), m))
  return m:parameters()["in.weight"]:to_table()
end

for _, step in ipairs{ 2, 4, 6 } do
  local t = assert(bd.ckpt.archive_tensor(bda, step, "in.weight"))
  local want, got = weights_at(step), t:to_table()
  local same = #got == #want
  for i = 1, #want do
    for j = 1, #want[i] do same = same and got[i][j] == want[i][j] end
  end
  check.ok(same, "in.weight of step " .. step .. " equals the checkpoint's")
end

local t, msg, stage = bd.ckpt.archive_tensor(bda, 3, "in.weight")
check.ok(t == nil and msg:find("step 3") and stage ~= nil, "missing step: " .. tostring(msg))
t, msg = bd.ckpt.archive_tensor(bda, 4, "nope")
check.ok(t == nil and msg:find("nope"), "missing tensor: " .. tostring(msg))
t, msg, stage = bd.ckpt.archive_tensor(run:path("ckpt/step_2.bdc"), 2, "in.weight")
check.ok(t == nil and stage == "format", "not an archive: " .. tostring(msg))

-- the analysis archive: keys at steps 2 and 6, step 4 without optimizer state
local abda = run:path("analysis.bda")
check.ok(os.execute(string.format('"%s" ckpt archive "%s" "%s" key_every=2 optimizer=keys > /dev/null',
                                  cfg.bdrun, run.dir, abda)), "bdrun ckpt archive optimizer=keys")
t = assert(bd.ckpt.archive_tensor(abda, 4, "ema.in.weight"))
local want = assert(bd.ckpt.archive_tensor(bda, 4, "ema.in.weight")):to_table()
check.ok(t:to_table()[3][5] == want[3][5], "the analysis step's EMA is the original's")
t, msg = bd.ckpt.archive_tensor(abda, 4, "optim.m.in.weight")
check.ok(t == nil and msg:find("key steps only %(the last before it: step 2%)"),
         "no optimizer state at step 4: " .. tostring(msg))

local extracted = run:path("step_4_analysis.bdc")
check.ok(os.execute(string.format('"%s" ckpt extract "%s" 4 "%s" > /dev/null',
                                  cfg.bdrun, abda, extracted)), "extract step 4")
local probe = { { 2, 3 }, { 5, 6 } }
local function samples(path)
  local m = assert(bd.ckpt.load_model(path))
  return bd.sample(m, probe, { sampler = "ddim", steps = 4, seed = 2 }).images:to_table()
end
local a, b = samples(extracted), samples(run:path("ckpt/step_4.bdc"))
check.ok(a[2][1][4][4] == b[2][1][4][4] and a[1][1][2][7] == b[1][1][2][7],
         "the analysis checkpoint samples as the original")

local function resume_from(path)
  local m = bd.model("mlp", { size = 8, hidden = 16, seed = 3 })
  local r2 = bd.run("resumed", { root = root })
  return bd.train(m, data, { steps = 8, batch = 4, lr = 1e-2, seed = 5, every = 100,
                             progress = false, run = r2, resume = path })
end
check.raises("an analysis checkpoint", resume_from, extracted)
check.raises("cannot resume", resume_from, extracted)
check.ok(os.execute(string.format('"%s" ckpt extract "%s" 6 "%s" > /dev/null',
                                  cfg.bdrun, abda, run:path("step_6_key.bdc"))), "extract step 6")
check.ok(resume_from(run:path("step_6_key.bdc")), "a key step resumes")

-- ---- the archive from Lua -----------------------------------------------------
local lbda = run:path("lua.bda")
local made = assert(bd.ckpt.archive(run, lbda, { key_every = 2, optimizer = "keys" }))
check.eq(made.entries, 3, "entries of the archive made from Lua")
check.eq(check.read(lbda), check.read(abda), "bd.ckpt.archive writes what bdrun ckpt archive writes")
check.eq(assert(bd.ckpt.archive(run.dir, run:path("dir.bda"))).entries, 3, "a run folder")
check.eq(made.bytes, #check.read(lbda), "its size")
local list = assert(bd.ckpt.archive_list(lbda))
check.eq(#list, 3, "archive_list: every entry")
for i, e in ipairs(list) do
  check.eq(e.step, 2 * i, "entry " .. i .. "'s step")
  check.eq(e.key, i ~= 2, "key entries at steps 2 and 6")
  check.eq(e.analysis, i == 2, "step 4 is an analysis entry")
  check.ok(e.stored_bytes > 0 and e.file_bytes > 0, "entry sizes")
end
check.eq(bd.ckpt.archive_verify(lbda), 3, "archive_verify counts the good entries")
check.raises("unknown key 'optimiser'", bd.ckpt.archive, run, lbda, { optimiser = "keys" })
check.raises("optimizer", bd.ckpt.archive, run, lbda, { optimizer = "some" })
t, msg, stage = bd.ckpt.archive(root, lbda)
check.ok(t == nil and msg:find(root .. "/ckpt", 1, true) and stage == "io",
         "a folder without ckpt/: " .. tostring(msg))
t, msg, stage = bd.ckpt.archive_list(run:path("ckpt/step_2.bdc"))
check.ok(t == nil and stage == "format", "archive_list of a checkpoint: " .. tostring(msg))

-- a damaged payload byte: verify names the entry and counts it
local bytes = check.read(lbda)
local at = #bytes // 3  -- inside an entry's payloads (the index is at the end)
local bad = run:path("damaged.bda")
local f = assert(io.open(bad, "wb"))
f:write(bytes:sub(1, at - 1), string.char(bytes:byte(at) ~ 0x55), bytes:sub(at + 1))
f:close()
local n
n, msg, stage = bd.ckpt.archive_verify(bad)
check.ok(n == nil and msg:find("entries failed%)$") and stage == "format",
         "a damaged archive fails verify: " .. tostring(msg))

-- any step loads straight from the archive, as from the original file
for _, step in ipairs{ 2, 4, 6 } do
  local m = assert(bd.ckpt.load_model(lbda, { step = step }))
  local orig = assert(bd.ckpt.load_model(run:path(string.format("ckpt/step_%d.bdc", step))))
  check.eq(check.count_differences(m, orig), 0, "load_model step " .. step .. " (EMA)")
  local raw = bd.model("mlp", { size = 8, hidden = 16, seed = 9 })
  local info = assert(bd.ckpt.load(lbda, raw, { step = step }))
  check.eq(info.step, step, "load reads step " .. step)
  check.eq(raw:parameters()["in.weight"]:to_table()[2][3], weights_at(step)[2][3],
           "load step " .. step .. ": the raw weights")
end
check.raises("is an archive, not a checkpoint: pass {step = N}", bd.ckpt.load_model, lbda)
check.raises("step 5", bd.ckpt.load_model, lbda, { step = 5 })
check.raises("step = -1", bd.ckpt.load, lbda, model, { step = -1 })
check.raises("unknown key 'stp'", bd.ckpt.load, lbda, model, { stp = 2 })
check.done()
