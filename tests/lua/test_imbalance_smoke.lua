-- scripts/imbalance.lua at a tiny scale (a 4-step training per condition and
-- seed): it must write every file of its run directory, with the rows, the
-- figures and the verdict in them; run as a sweep in two shards at once, it
-- must collect the same decision, report and rows, and collect=true must
-- write them again. CTest passes the bdrun to use:
--   bdrun test_imbalance_smoke.lua bdrun=/path/to/bdrun
local check = require "check"
local json = require "json"
local cfg = bd.config{ bdrun = "bdrun" }

local script = arg[0]:gsub("[^/]*$", "") .. "../../scripts/imbalance.lua"
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))

local args = "size=8 width=4 emb=16 steps=4 every=2 warmup=1 seeds=1,2 sample_steps=2"
             .. " probe_step=1 name=smoke"
-- The shell command that runs the script in <dir>/<sub> with more
-- arguments, its output to <dir>/<sub>/<log>. One thread each, so that
-- every process computes alike and shards at once do not crowd the cores.
local function command(sub, more, log)
  return string.format("mkdir -p %s/%s && cd %s/%s && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1"
                       .. " %s %s %s %s > %s 2>&1", dir, sub, dir, sub, cfg.bdrun, script, args,
                       more, log)
end

local ok = os.execute(command("one", "", "out.log"))
local out = check.read(dir .. "/one/out.log") or ""
check.ok(ok, "exit status; output:\n" .. out)

local run = dir .. "/one/runs/smoke/"
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
check.ok(out:find("\n  6 trainings of 4 steps: [%d.]+[ minhs%d]* of training and evaluation;"
                  .. " this process [%d.]+[ minhs%d]* %(scale quick%)\n"), "trainings and timing")

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

-- figures: SVG curves, PNG sample grids (each training's own), each shown
-- in the report
local html = check.read(run .. "report.html") or ""
check.ok(html:find("decision: undetermined", 1, true), "the answer in the report")
check.ok(html:find("<h2>Setup</h2>", 1, true) and html:find("<h2>Numbers</h2>", 1, true),
         "setup and numbers")
local figures = { "accuracy.svg" }
for _, c in ipairs(conditions) do
  figures[#figures + 1] = "curves_" .. c .. ".svg"
  figures[#figures + 1] = "train/" .. c .. "_s1/samples.png"
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

-- each training: its loss and evaluation log, its samples, its done mark
-- with the results the report was made of; the sweep's summary
for _, c in ipairs(conditions) do
  for seed = 1, 2 do
    local name = string.format("%strain/%s_s%d/", run, c, seed)
    local m = check.read(name .. "metrics.jsonl") or ""
    check.ok(m:find('"loss":', 1, true), c .. " seed " .. seed .. " loss log")
    check.eq(select(2, m:gsub('"event":"evaluation"', "")), 2, c .. " seed " .. seed .. " evaluations")
    check.eq((check.read(name .. "samples.png") or ""):sub(1, 4), "\137PNG", c .. " seed " .. seed .. " samples")
    local mark = json.decode(check.read(name .. "done.json") or "null") or {}
    local results = mark.results or {}
    check.eq(mark.seed, seed, c .. " seed " .. seed .. " marked done")
    check.eq(results.curve and table.concat(results.curve.steps, ","), "2,4", "the curve's steps")
    check.ok(results.curve and results.curve.rows[2].acc_x ~= nil, "the curve's rows")
    check.eq(results.samples, "samples.png", "the samples' file")
  end
end
local summary = check.read(run .. "train/summary.csv") or ""
check.eq(select(2, summary:gsub("\n", "")), 7, "summary.csv: a header and 6 runs")
check.ok(summary:find("\n5,y_dense_s2,y_dense,2,1,0.1,-1,", 1, true), "the last run: " .. summary)

-- ---- the same sweep in two shards at once ---------------------------------------------
-- Times aside, the collected answer, report and rows equal the one process's.
local function untimed(text)
  return (text:gsub("[%d.]+ s%f[^%w]", "T"):gsub("%d+ min T", "T")
              :gsub('"[%w_]*time":[%d.e+-]+,?', ""):gsub('"[%w_]*seconds":[%d.e+-]+,?', ""))
end
local function answer(text) return text:match("\n(decision: .*)$") end

check.ok(os.execute(command("two", "shard=0/2", "out0.log") .. " & "
                    .. command("two", "shard=1/2", "out1.log") .. "; wait"), "two shards")
local out0, out1 = check.read(dir .. "/two/out0.log") or "", check.read(dir .. "/two/out1.log") or ""
check.ok(out0:find("share 0/2 (shard=0/2) ran 3 of its 3 runs", 1, true), "shard 0:\n" .. out0)
check.ok(out1:find("share 1/2 (shard=1/2) ran 3 of its 3 runs", 1, true), "shard 1:\n" .. out1)
local collector = out0:find("\ndecision: ") and out0 or out1
check.ok(not (out0:find("\ndecision: ") and out1:find("\ndecision: ")), "one shard collects")
local two = dir .. "/two/runs/smoke/"
check.eq(untimed(answer(collector) or ""), untimed(answer(out) or "-"), "the sharded answer")
for _, f in ipairs{ "report.html", "metrics.jsonl", "accuracy.svg", "curves_x_dense.svg" } do
  check.eq(untimed(check.read(two .. f) or ""), untimed(check.read(run .. f) or "-"), "sharded " .. f)
end

ok = os.execute(command("two", "collect=true", "collect.log"))
local again = check.read(dir .. "/two/collect.log") or ""
check.ok(ok and not again:find("sweep smoke: run ", 1, true), "collect=true trains nothing:\n" .. again)
check.eq(untimed(answer(again) or ""), untimed(answer(out) or "-"), "the answer collected again")
check.eq(untimed(check.read(two .. "report.html") or ""), untimed(html), "the report collected again")

-- the statistic on other settings, without training: level 0 is reached at once
ok = os.execute(command("two", "collect=true threshold=0", "threshold.log"))
again = check.read(dir .. "/two/threshold.log") or ""
check.ok(ok and again:find("\ndecision: coupled (threshold 0% accuracy", 1, true)
         and not again:find("sweep smoke: run ", 1, true), "decided again:\n" .. again)

os.execute("rm -rf " .. dir)
check.done()
