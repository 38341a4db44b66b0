-- scripts/factorization.lua at a tiny scale (4 steps per training), run as
-- two shards one after the other: the first only trains its share, the
-- second trains the rest, collects every training and writes the run
-- directory, with the rows, the figures and the answer in them. CTest
-- passes the bdrun to use:
--   bdrun test_factorization_smoke.lua bdrun=/path/to/bdrun
local check = require "check"
local cfg = bd.config{ bdrun = "bdrun" }

local args = "size=8 width=4 emb=16 f_width=4 hidden=8 steps=4 every=2 warmup=1 seeds=1,2"
             .. " sample_steps=2 name=smoke"
local run_script, dir = check.smoke(cfg.bdrun, "factorization.lua", args)
local function shard(which)
  local out, code = run_script("shard=" .. which)
  check.eq(code, 0, "exit status of shard " .. which .. "; output:\n" .. out)
  return out
end

local run = dir .. "/runs/smoke/"
local conditions = {}
for _, m in ipairs{ "unet", "factorized" } do
  for _, d in ipairs{ "y_dense", "y_sparse", "null", "x_sparse" } do
    conditions[#conditions + 1] = m .. "_" .. d
  end
end

-- the first share: its 4 trainings, no answer yet
local first = shard("0/2")
check.ok(not first:find("answer:", 1, true), "no answer from a share that is not the last")
check.ok(first:find("ran 8 of its 8 runs; 8 of 16 done", 1, true), "first share:\n" .. first)
check.eq(check.read(run .. "report.html"), nil, "no report yet")

-- the second: the rest, then the collection and the answer
local out = shard("1/2")
-- 4 steps learn nothing: the positive control cannot read slower, so no answer
check.ok(out:find("answer: cannot decide: the positive control did not read slower", 1, true),
         "cannot decide after 4 steps:\n" .. out)
check.ok(out:find("\n  rule: Welch t 95% interval of", 1, true), "the rule")
check.ok(out:find("\n  level of acc_x whose step is read: 0.5 x y_dense's final acc_x: unet none"
                  .. " (y_dense reached acc_x ", 1, true), "the level, derived from the run")
for _, m in ipairs{ "unet", "factorized" } do
  check.ok(out:find("\n  " .. m .. " +x: step_x never with y_dense, never with y_sparse %(2"
                    .. " seed%(s%) never reached it: bounds%); relative change %-; final acc_x [%d.]+ / [%d.]+\n"), m .. ": x line\n" .. out)
end
local _, nulls = out:gsub("\n +null %(other y_dense sites%): relative change %-; y_sparse %- null %-:"
                     .. " cannot tell\n", "")
check.eq(nulls, 2, "a null line per model")
local _, positives = out:gsub("\n +positive control %(x spacing 2%): relative change %-;"
                              .. " %- null %-: cannot tell %(NOT as designed%)\n", "")
check.eq(positives, 2, "a positive control line per model, read as not designed")
check.ok(out:find("\n +y: step_y never"), "y lines")
check.ok(out:find("16 trainings of 4 steps", 1, true), "trainings and timing")
check.ok(out:find("it reads no representation (layer 4 is 1x1 here)", 1, true),
         "what the scale can say")
check.ok(out:find("factorized: width 4, depth 2, rank 2, 8x8, ", 1, true),
         "the plugin prints its size")

-- config.json: the resolved settings and the four conditions
local config = check.read(run .. "config.json") or ""
check.ok(config:find('"steps":4', 1, true), "config steps")
check.ok(config:find('"dx":0.1,"dy":1,"lambda":1,"model":"factorized","name":"factorized_y_sparse"', 1,
                     true), "conditions: " .. config)

-- metrics.jsonl: a row per condition, seed and evaluation; crossings; the answer
local rows, crossings, answers = {}, 0, 0
for line in (check.read(run .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
  if line:find('"event":"crossings"', 1, true) then
    crossings = crossings + 1
    check.ok(line:find('"censored":true', 1, true), "crossings row: " .. line)
  elseif line:find('"event":"answer"', 1, true) then
    answers = answers + 1
    check.ok(line:find('"answer":"cannot decide"', 1, true)
             and line:find('"controls":false', 1, true)
             and line:find('"factorized":{', 1, true), "answer row: " .. line)
  else
    local c, seed, step = line:match('"condition":"([%w_]+)".*"seed":(%d+).*"step":(%d+)')
    check.ok(c and line:find('"acc_x":', 1, true) and line:find('"snap_y":', 1, true),
             "evaluation row: " .. line)
    if c then rows[#rows + 1] = c .. seed .. "@" .. step end
  end
end
check.eq(#rows, 8 * 2 * 2, "rows: 8 conditions x 2 seeds x 2 evaluations")
check.eq(rows[1], "unet_y_dense1@2", "first row")
check.eq(rows[32], "factorized_x_sparse2@4", "last row")
check.eq(crossings, 4, "a crossings row per model and seed")
check.eq(answers, 1, "one answer row")

-- figures: SVG curves and PNG sample grids, each shown in the report
local html = check.read(run .. "report.html") or ""
check.ok(html:find("answer: cannot decide", 1, true), "the answer in the report")
check.ok(html:find("<h2>Setup</h2>", 1, true) and html:find("<h2>Numbers</h2>", 1, true),
         "setup and numbers")
local figures = { "acc_x.svg", "acc_y.svg" }
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

-- each training: its loss log and its done mark; the sweep's summary
for _, c in ipairs(conditions) do
  for seed = 1, 2 do
    local t = string.format("%strain/%s_s%d/", run, c, seed)
    check.ok((check.read(t .. "metrics.jsonl") or ""):find('"loss":', 1, true),
             c .. " seed " .. seed .. " loss log")
    check.ok((check.read(t .. "done.json") or ""):find('"params":', 1, true),
             c .. " seed " .. seed .. " done mark")
  end
end
local _, csv_lines = (check.read(run .. "train/summary.csv") or ""):gsub("\n", "")
check.eq(csv_lines, 1 + 16, "summary.csv: a header and a row per training")

os.execute("rm -rf " .. dir)
check.done()
