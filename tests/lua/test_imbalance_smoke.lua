-- scripts/imbalance.lua at a tiny scale (a 4-step training per condition and
-- seed): it must write every file of its run directory, with the rows, the
-- figures and the verdict in them. CTest passes the bdrun to use:
--   bdrun test_imbalance_smoke.lua bdrun=/path/to/bdrun
local check = require "check"
local cfg = bd.config{ bdrun = "bdrun" }

local script = arg[0]:gsub("[^/]*$", "") .. "../../scripts/imbalance.lua"
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))

local args = "size=8 width=4 emb=16 steps=4 every=2 warmup=1 seeds=1,2 sample_steps=2"
             .. " probe_step=1 name=smoke"
local p = io.popen(string.format("cd %s && %s %s %s 2>&1", dir, cfg.bdrun, script, args))
local out = p:read("a")
local _, _, code = p:close()
check.eq(code, 0, "exit status; output:\n" .. out)

local run = dir .. "/runs/smoke/"
local conditions = { "balanced", "x_dense", "y_dense" }

-- the verdict is printed: 4 steps learn nothing, and it says so
check.ok(out:find("decision: undetermined", 1, true), "undetermined after 4 steps:\n" .. out)
for _, c in ipairs(conditions) do
  check.ok(out:find("  " .. c .. " .-: not reached; neither axis reached 60%% %(final acc_x/acc_y"
                    .. " per seed: [%d.]+/[%d.]+, [%d.]+/[%d.]+%)"),
           c .. ": the accuracies reached per seed")
end
check.ok(out:find("placement among one%-bump samples: not reached; neither axis reached 60%% %(final"
                  .. " place_x/place_y per seed: [%d.-]+/[%d.-]+, "), "the placement check")
check.ok(out:find("6 trainings of 4 steps in", 1, true), "trainings and timing")

-- config.json: the resolved settings and the three training sets
local config = check.read(run .. "config.json") or ""
check.ok(config:find('"steps":4', 1, true), "config steps")
check.ok(config:find('"scale":"quick"', 1, true), "config scale")
check.ok(config:find('"conditions":[{"dx":0.316', 1, true), "config conditions: " .. config)
check.ok(config:find('"dx":0.1,"dy":1,"name":"x_dense"', 1, true), "x dense")
check.ok(config:find('"dx":1,"dy":0.1,"name":"y_dense"', 1, true), "the swap")

-- metrics.jsonl: a row per condition, seed and evaluation; crossings; the decision
local rows, crossings, decisions = {}, 0, 0
for line in (check.read(run .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
  if line:find('"event":"crossings"', 1, true) then
    crossings = crossings + 1
  elseif line:find('"event":"decision"', 1, true) then
    decisions = decisions + 1
    check.ok(line:find('"decision":"undetermined"', 1, true), "decision row: " .. line)
  else
    local c, seed, step = line:match('"condition":"([%w_]+)".*"seed":(%d+).*"step":(%d+)')
    check.ok(c and line:find('"acc_x":', 1, true) and line:find('"r2_y":', 1, true)
             and line:find('"r2_x_pca":', 1, true), "evaluation row: " .. line)
    if c then rows[#rows + 1] = c .. seed .. "@" .. step end
  end
end
check.eq(#rows, 3 * 2 * 2, "rows: 3 conditions x 2 seeds x 2 evaluations")
check.eq(rows[1], "balanced1@2", "first row")
check.eq(rows[12], "y_dense2@4", "last row")
check.eq(crossings, 6, "a crossings row per training")
check.eq(decisions, 1, "one decision row")

-- figures: SVG curves, PNG sample grids, each shown in the report
local html = check.read(run .. "report.html") or ""
check.ok(html:find("decision: undetermined", 1, true), "the answer in the report")
check.ok(html:find("<h2>Setup</h2>", 1, true) and html:find("<h2>Numbers</h2>", 1, true),
         "setup and numbers")
local figures = { "accuracy.svg" }
for _, c in ipairs(conditions) do
  figures[#figures + 1] = "curves_" .. c .. ".svg"
  figures[#figures + 1] = "samples_" .. c .. ".png"
end
for _, f in ipairs(figures) do
  local data = check.read(run .. f) or ""
  if f:find("%.svg$") then
    check.ok(data:find("^<svg ") and data:find("</svg>\n$") and data:find("<polyline", 1, true),
             f .. " is an SVG with curves")
  else
    check.eq(data:sub(1, 8), "\137PNG\r\n\26\n", f .. " is a PNG")
  end
  check.ok(html:find('<img src="' .. f .. '"', 1, true), f .. " is in the report")
end

-- each training's own loss log
for _, c in ipairs(conditions) do
  for seed = 1, 2 do
    local m = check.read(string.format("%strain/%s_s%d/metrics.jsonl", run, c, seed)) or ""
    check.ok(m:find('"loss":', 1, true), c .. " seed " .. seed .. " loss log")
  end
end

os.execute("rm -rf " .. dir)
check.done()
