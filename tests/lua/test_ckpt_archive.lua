-- A tensor of any step read straight from an archive of a run's history
-- equals the one in that step's checkpoint; a missing step or name, and a
-- file that is not an archive, fail with nil, message, stage.
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
check.done()
