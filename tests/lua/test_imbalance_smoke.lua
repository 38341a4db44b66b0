-- scripts/imbalance.lua at a tiny scale (a 4-step training per condition and
-- seed): it must write every file of its run directory, with the rows, the
-- figures and the verdict in them; run as a sweep in two shards at once, it
-- must collect the same decision, report and rows, and collect=true must
-- write them again. CTest passes the bdrun to use:
--   bdrun test_imbalance_smoke.lua bdrun=/path/to/bdrun
local check = require "check"
local json = require "json"
local cfg = bd.config{ bdrun = "bdrun" }

local script = check.script("imbalance.lua")
local dir = check.scratch()

-- (control_max 1.5: the controls may train on to step 6)
local args = "size=8 width=4 emb=16 steps=4 every=2 warmup=1 seeds=1,2 sample_steps=2"
             .. " probes=3 control_max=1.5 name=smoke"
-- The shell command that runs the script in <dir>/<sub> with more
-- arguments, its output to <dir>/<sub>/<log>. One thread each, so that
-- every process computes alike and shards at once do not crowd the cores.
local function command(sub, more, log)
  return string.format("mkdir -p %s/%s && cd %s/%s && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1"
                       .. " %s %s %s %s > %s 2>&1", dir, sub, dir, sub, cfg.bdrun, script, args,
                       more, log)
end

local ok = os.execute(command("one", "procs=1", "out.log"))
local out = check.read(dir .. "/one/out.log") or ""
check.ok(ok, "exit status; output:\n" .. out)

local run = dir .. "/one/runs/smoke/"
local conditions = { "balanced", "x_dense", "y_dense", "control_x", "control_y" }
local SETS = { "lattice", "off25", "off50" }

-- the verdict is printed: 4 steps learn nothing, and it says so; every
-- condition, the controls included, has its line
check.ok(out:find("decision on lattice probes %(placement at values the training set holds%):"
                  .. " cannot decide %(%d training%(s%) of balanced did not reach the threshold"
                  .. " on both axes%)"), "cannot decide after 4 steps:\n" .. out)
check.ok(out:find("\ninterpolation on off50 probes (interpolation: probes half a spacing off the"
                  .. " training lattice): cannot decide (", 1, true), "the interpolation question")
-- the controls, whatever the decision
for _, line in ipairs{ "\n  question: contrast of relative lags lag(x_dense) - lag(y_dense) ",
                       "\n  null (balanced): relative lag " } do
  check.ok(out:find(line, 1, true), "printed: " .. line)
end
-- the positive control: 4 steps place nothing, so the sparse labels never
-- come back and each control trains on to control_max * steps (6)
check.ok(out:find("\n  positive control (sparse labels withheld until the dense axis reached 0.60"
                  .. " on the lattice probes, then 0 steps more: back at steps never, never, never,"
                  .. " never; trained 6, 6, 6, 6 steps): ", 1, true), "the positive control")
for _, c in ipairs(conditions) do
  check.ok(out:find("\n  " .. c .. " +%(dx [%d.]+, dy [%d.]+%): final one bump "), c .. " in the answer")
end
check.ok(out:find("\n    lattice step_x n = 0, step_y n = 0, relative lag n = 0; final place_x ", 1,
                  true), "a condition's lattice line")
check.ok(out:find("PAPER.md finding 2 (coupled): this run can neither confirm nor refute it", 1,
                  true), "agreement stated")
check.ok(out:find("\n10 trainings of 4 steps: [%d.]+[ minhs%d]* of training and evaluation;"
                  .. " this process [%d.]+[ minhs%d]* %(scale quick%)\n"), "trainings and timing")

-- config.json: the resolved settings and the five training sets
local config = check.read(run .. "config.json") or ""
check.ok(config:find('"steps":4', 1, true), "config steps")
check.ok(config:find('"scale":"quick"', 1, true), "config scale")
check.ok(config:find('"dx":0.2,"dy":2,"name":"x_dense"', 1, true), "x dense: " .. config)
check.ok(config:find('"dx":2,"dy":0.2,"name":"y_dense"', 1, true), "the swap")
check.ok(config:find('"dx":0.2,"dy":2,"name":"control_x","withhold":2', 1, true), "control x")
check.ok(config:find('"dx":2,"dy":0.2,"name":"control_y","withhold":1', 1, true), "control y")

-- metrics.jsonl: a row per condition, seed and evaluation; crossings; the decision
local rows, crossings, decisions = {}, 0, 0
for line in (check.read(run .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
  if line:find('"event":"crossings"', 1, true) then
    crossings = crossings + 1
  elseif line:find('"event":"decision"', 1, true) then
    decisions = decisions + 1
    check.ok(line:find('"decision":"cannot decide"', 1, true) and line:find('"probes":', 1, true),
             "decision row: " .. line)
  else
    local c, seed, step = line:match('"condition":"([%w_]+)".*"seed":(%d+).*"step":(%d+)')
    local keys = c ~= nil
    for _, set in ipairs(SETS) do
      for _, k in ipairs{ "_place_x", "_place_y", "_err_x", "_snap_y", "_single" } do
        keys = keys and line:find('"' .. set .. k .. '":', 1, true) ~= nil
      end
    end
    check.ok(keys, "evaluation row: " .. line)
    if c then rows[#rows + 1] = c .. seed .. "@" .. step end
  end
end
check.eq(#rows, 3 * 2 * 2 + 2 * 2 * 3, "rows: 3 conditions x 2 seeds x 2 evaluations, and the"
         .. " 2 controls x 2 seeds x 3 (they train on to step 6)")
check.eq(rows[1], "balanced1@2", "first row")
check.eq(rows[24], "control_y2@6", "last row")
check.eq(crossings, 30, "a crossings row per training and probe set")
check.eq(decisions, 2, "a decision row per question")

-- figures: SVG curves, PNG sample grids (each training's own), each shown
-- in the report, and the controls' table
local html = check.read(run .. "report.html") or ""
check.ok(html:find("decision on lattice probes", 1, true), "the answer in the report")
for _, h in ipairs{ "Controls", "What this scale can and cannot say", "Setup", "Numbers" } do
  check.ok(html:find("<h2>" .. h .. "</h2>", 1, true), "section " .. h)
end
for _, row in ipairs{ "null: balanced data", "positive control: sparse labels withheld",
                      "question: x_dense vs y_dense" } do
  check.ok(html:find(row, 1, true), "the controls' table: " .. row)
end
local figures = {}
for _, c in ipairs(conditions) do
  figures[#figures + 1] = "curves_" .. c .. ".svg"
  figures[#figures + 1] = "errors_" .. c .. ".svg"
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
    local control = c:find("^control") ~= nil  -- trained on to step 6
    local steps = control and "2,4,6" or "2,4"
    local m = check.read(name .. "metrics.jsonl") or ""
    check.ok(m:find('"loss":', 1, true), c .. " seed " .. seed .. " loss log")
    check.eq(select(2, m:gsub('"event":"evaluation"', "")), control and 3 or 2,
             c .. " seed " .. seed .. " evaluations")
    check.eq((check.read(name .. "samples.png") or ""):sub(1, 4), "\137PNG", c .. " seed " .. seed .. " samples")
    local mark = json.decode(check.read(name .. "done.json") or "null") or {}
    local results = mark.results or {}
    check.eq(mark.seed, seed, c .. " seed " .. seed .. " marked done")
    check.eq(results.curve and table.concat(results.curve.steps, ","), steps, "the curve's steps")
    check.eq(results.steps, control and 6 or 4, "the training's steps")
    check.eq(#bd.ckpt.list(name .. "ckpt"), 0, "no checkpoint left behind")
    check.ok(results.curve and results.curve.rows[2].off50_single ~= nil, "the curve's rows")
    check.ok(results.probes and results.probes.off50 >= 6, "3 x 2 or 3 x 3 off50 probes")
    check.eq(results.samples, "samples.png", "the samples' file")
  end
end
local summary = check.read(run .. "train/summary.csv") or ""
check.eq(select(2, summary:gsub("\n", "")), 11, "summary.csv: a header and 10 runs")

-- ---- the same sweep in two shards at once ---------------------------------------------
-- Times aside, the collected answer, report and rows equal the one process's.
local function untimed(text)
  return (text:gsub("[%d.]+ s%f[^%w]", "T"):gsub("%d+ min T", "T")
              :gsub('"[%w_]*time":[%d.e+-]+,?', ""):gsub('"[%w_]*seconds":[%d.e+-]+,?', ""))
end
local function answer(text) return text:match("\n(decision on .*)$") end

check.ok(os.execute(command("two", "shard=0/2", "out0.log") .. " & "
                    .. command("two", "shard=1/2", "out1.log") .. "; wait"), "two shards")
local out0, out1 = check.read(dir .. "/two/out0.log") or "", check.read(dir .. "/two/out1.log") or ""
check.ok(out0:find("share 0/2 (shard=0/2) ran 5 of its 5 runs", 1, true), "shard 0:\n" .. out0)
check.ok(out1:find("share 1/2 (shard=1/2) ran 5 of its 5 runs", 1, true), "shard 1:\n" .. out1)
local collector = out0:find("\ndecision on ") and out0 or out1
check.ok(not (out0:find("\ndecision on ") and out1:find("\ndecision on ")), "one shard collects")
local two = dir .. "/two/runs/smoke/"
check.eq(untimed(answer(collector) or ""), untimed(answer(out) or "-"), "the sharded answer")
for _, f in ipairs{ "report.html", "metrics.jsonl", "errors_balanced.svg", "curves_x_dense.svg" } do
  check.eq(untimed(check.read(two .. f) or ""), untimed(check.read(run .. f) or "-"), "sharded " .. f)
end

-- procs=2 (the quick scale's default): one command starts both shards
ok = os.execute(command("procs", "procs=2", "out.log"))
local both = check.read(dir .. "/procs/out.log") or ""
check.ok(ok and both:find("sweep smoke: 2 processes of one thread each, shard=0/2 ... 1/2", 1, true)
         and both:find("share 0/2 (shard=0/2) ran 5 of its 5 runs", 1, true)
         and both:find("share 1/2 (shard=1/2) ran 5 of its 5 runs", 1, true), "procs=2:\n" .. both)
check.eq(untimed(answer(both) or ""), untimed(answer(out) or "-"), "the answer of procs=2")

ok = os.execute(command("two", "collect=true", "collect.log"))
local again = check.read(dir .. "/two/collect.log") or ""
check.ok(ok and not again:find("sweep smoke: run ", 1, true), "collect=true trains nothing:\n" .. again)
check.eq(untimed(answer(again) or ""), untimed(answer(out) or "-"), "the answer collected again")
check.eq(untimed(check.read(two .. "report.html") or ""), untimed(html), "the report collected again")

-- the statistic on other settings, without training: level 0 is reached at
-- once on both axes, so the positive control shows no lag and the rule
-- refuses to decide
ok = os.execute(command("two", "collect=true threshold=0", "threshold.log"))
again = check.read(dir .. "/two/threshold.log") or ""
check.ok(ok and again:find("\ndecision on lattice probes (placement at values the training set"
                           .. " holds): cannot decide (", 1, true)
         and again:find("\nper condition (0% of one-bump samples within", 1, true)
         and not again:find("sweep smoke: run ", 1, true), "decided again:\n" .. again)

os.execute("rm -rf " .. dir)
check.done()
