-- The guide works as written: every Lua code block of README.md runs with
-- bdrun, as shown, in a folder of its own. A block that is part of a longer
-- script says so on its first line ("-- fragment ...") and is only
-- compiled; there may be at most MAX_FRAGMENTS of them. Settings a block
-- declares with bd.config are scaled down by key=value arguments (SMALL),
-- so that the training in the bd module's script takes seconds. CTest passes:
--   bdrun test_readme.lua bdrun=<bdrun> readme=<README.md>
local check = require "check"
local cfg = bd.config{ bdrun = "bdrun", readme = "README.md" }

local MAX_FRAGMENTS = 3
local SMALL = { steps = 2, every = 1, width = 4 }

-- The ```lua blocks of the README: { text =, line = } each.
local function lua_blocks(path)
  local blocks, cur = {}, nil
  local n = 0
  for line in io.lines(path) do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        blocks[#blocks + 1] = cur
        cur = nil
      else
        cur.text = cur.text .. line .. "\n"
      end
    elseif line:match("^```lua%s*$") then
      cur = { text = "", line = n + 1 }
    end
  end
  check.ok(cur == nil, "a lua block is not closed")
  return blocks
end

local dir = os.tmpname()
os.remove(dir)
local blocks = lua_blocks(cfg.readme)
check.ok(#blocks >= 3, "found " .. #blocks .. " lua blocks")
local fragments, ran = 0, 0
for i, b in ipairs(blocks) do
  local where = string.format("README.md:%d", b.line)
  local chunk, err = load(b.text, "=" .. where)
  check.ok(chunk ~= nil, "block compiles: " .. tostring(err))
  if b.text:match("^%-%- fragment") then
    fragments = fragments + 1
  else
    local here = string.format("%s/block%d", dir, i)
    assert(os.execute("mkdir -p " .. here))
    local f = assert(io.open(here .. "/block.lua", "w"))
    f:write(b.text)
    f:close()
    local args = {}
    local declared = b.text:match("bd%.config%s*(%b{})") or ""
    for key, value in pairs(SMALL) do
      if declared:match("[{,%s]" .. key .. "%s*=") then
        args[#args + 1] = key .. "=" .. value
      end
    end
    table.sort(args)
    local p = io.popen(string.format("cd %s && OMP_NUM_THREADS=1 %s block.lua %s 2>&1",
                                     here, cfg.bdrun, table.concat(args, " ")))
    local out = p:read("a")
    local _, _, code = p:close()
    check.eq(code, 0, where .. " runs as shown (" .. table.concat(args, " ")
             .. "); its output:\n" .. out)
    ran = ran + 1
  end
end
check.ok(fragments <= MAX_FRAGMENTS, fragments .. " fragments, at most "
         .. MAX_FRAGMENTS)
check.ok(ran >= 1, "a block ran")
print(string.format("%d lua blocks: %d ran, %d fragments compiled", #blocks,
                    ran, fragments))

-- The bd module's script logged the bump metric's keys from acc(s) and the
-- manifold's from order(s), in its run folder.
local log = check.read(dir .. "/block1/runs/mine/metrics.jsonl") or ""
check.ok(log:find('"accuracy":', 1, true) and log:find('"mean_error":', 1, true)
         and log:find('"r2_x":', 1, true) and log:find('"trustworthiness":', 1, true),
         "the metrics' keys in runs/mine/metrics.jsonl:\n" .. log:sub(1, 300))
os.execute("rm -rf " .. dir)
check.done()
