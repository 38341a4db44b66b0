-- scripts/compositional.lua at a tiny scale (a 4-step training per condition
-- and seed): it must write every file of its run directory, with the rows,
-- the figures and the answer in them, and collect=true must rebuild the
-- report from the sweep's marks without training. CTest passes the bdrun:
--   bdrun test_compositional_smoke.lua bdrun=/path/to/bdrun
local check = require "check"
local cfg = bd.config{ bdrun = "bdrun" }

local script = arg[0]:gsub("[^/]*$", "") .. "../../scripts/compositional.lua"
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))

-- 8x8: held-out interval [2, 6], so probe labels 3.5 and 4.5 lie more than
-- 1 px from every training bump; the rim is the outer ring of lattice sites
local args = "size=8 width=4 emb=16 steps=4 every=2 warmup=1 seeds=1,2 sample_steps=2"
             .. " probe_step=1 hold_lo=2 hold_hi=6 rim=1 name=smoke"
local function run_script(extra)
  local p = io.popen(string.format("cd %s && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 %s %s %s"
                                   .. " %s 2>&1", dir, cfg.bdrun, script, args, extra or ""))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end
local out, code = run_script()
check.eq(code, 0, "exit status; output:\n" .. out)

local run = dir .. "/runs/smoke/"
local conditions = { "cross", "square", "band", "stripes", "stripes_rim" }
local stripes = { stripes = true, stripes_rim = true }
-- held-out probe labels (of 64) and far ones (more than 1 px from every 2D
-- training label) per condition; the rim's far labels depend on the sites kept
local held = { cross = 48, square = 16, band = 32, stripes = 64, stripes_rim = 36 }
local far = { cross = 28, square = 4, band = 16, stripes = 64 }

-- the answer: 4 steps learn nothing, and it says so, condition by condition
check.ok(out:find("answer: the model cannot be compared with finding 3", 1, true),
         "no comparison after 4 steps:\n" .. out)
for _, c in ipairs(conditions) do
  local line = out:match("\n  " .. c .. " +([^\n]*)") or ""
  check.ok(line:find("^not learned +%(predicted [%a ]+%): in %d+%% %+%- %d+"), c .. ": " .. line)
  if far[c] then
    check.ok(line:find("far [%d%%+%- ]+ %(" .. far[c] .. " labels; median error "),
             c .. " far labels: " .. line)
  end
end
check.ok(out:find("\n  10 trainings of 4 steps: [%d.]+[ minhs%d]* of training and evaluation;"
                  .. " this process [%d.]+[ minhs%d]* %(scale quick%)\n"), "trainings and timing")
check.ok(out:find("report: runs/smoke/report.html", 1, true), "report path")

-- config.json: the resolved settings and the training sets
local config = check.read(run .. "config.json") or ""
check.ok(config:find('"steps":4', 1, true) and config:find('"scale":"quick"', 1, true),
         "config: " .. config)
check.ok(config:find('"holdout":"cross","name":"cross"', 1, true), "cross in the config")
check.ok(config:find('"holdout":"xband","name":"band"', 1, true), "band in the config")

-- metrics.jsonl: a row per condition with its verdict, then the answer
local verdicts, answers = 0, 0
for line in (check.read(run .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
  if line:find('"event":"condition"', 1, true) then
    verdicts = verdicts + 1
    check.ok(line:find('"verdict":"not learned"', 1, true) and line:find('"acc_in":0', 1, true),
             "condition row: " .. line)
  elseif line:find('"event":"answer"', 1, true) then
    answers = answers + 1
  end
end
check.eq(verdicts, 5, "a row per condition")
check.eq(answers, 1, "one answer row")

-- each training: evaluations at steps 2 and 4, its mark, its sample grids
local csv = check.read(run .. "train/summary.csv") or ""
local _, csv_lines = csv:gsub("\n", "")
check.eq(csv_lines, 1 + 10, "summary.csv: a header and a row per training")
for _, c in ipairs(conditions) do
  for seed = 1, 2 do
    local sub = string.format("%strain/%s_s%d/", run, c, seed)
    local evals = {}
    for line in (check.read(sub .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
      if line:find('"acc_held":', 1, true) then
        evals[#evals + 1] = line
        check.eq(line:find('"acc_stripes":', 1, true) ~= nil, stripes[c] == true,
                 c .. " stripe accuracy in " .. line)
      end
    end
    check.eq(#evals, 2, c .. " seed " .. seed .. ": evaluations")
    local mark = check.read(sub .. "done.json") or ""
    check.ok(mark:find('"n_held":' .. held[c], 1, true), c .. " held-out labels: " .. mark)
    check.ok(mark:find('"correct":[', 1, true), c .. " per-label results")
    local png = check.read(sub .. "samples.png") or ""
    check.eq(png:sub(1, 8), "\137PNG\r\n\26\n", c .. " samples.png")
    check.eq(string.unpack(">I4", png, 17), 8 * (8 * 8 + 2) + 2, c .. " samples: 8 per row")
    check.eq(check.read(sub .. "stripes.png") ~= nil, stripes[c] == true, c .. " stripes.png")
  end
end

-- figures: each in the report, the maps outline the held-out labels
local html = check.read(run .. "report.html") or ""
check.ok(html:find("answer: the model cannot be compared", 1, true), "the answer in the report")
check.ok(html:find("<h2>Setup</h2>", 1, true) and html:find("<h2>Numbers</h2>", 1, true)
         and html:find("(-1, mu_y)", 1, true), "setup, stripe labels and numbers")
local acc = check.read(run .. "accuracy.svg") or ""
check.ok(acc:find("^<svg ") and acc:find("<polyline", 1, true), "accuracy.svg has curves")
check.ok(html:find('<img src="accuracy.svg"', 1, true), "accuracy.svg in the report")
for _, c in ipairs(conditions) do
  local map = check.read(run .. "map_" .. c .. ".svg") or ""
  local _, outlined = map:gsub('stroke="#d62728"', "")
  check.eq(outlined, held[c], "map_" .. c .. ".svg outlines the held-out labels")
  for _, f in ipairs{ "map_" .. c .. ".svg", "train/" .. c .. "_s1/samples.png" } do
    check.ok(html:find('<img src="' .. f .. '"', 1, true), f .. " is in the report")
  end
end

-- again with collect=true: nothing trains, the same answer comes back
local again, code2 = run_script("collect=true")
check.eq(code2, 0, "collect exit status:\n" .. again)
check.ok(not again:find("unet:", 1, true), "collect trains nothing")
check.eq(again:match("answer:[^\n]*"), out:match("answer:[^\n]*"), "the same answer")

-- other settings over the same run directory are refused, not reported as these
local stale, code3 = run_script("lr=0.5")
check.ok(code3 ~= 0 and stale:find("runs/smoke/train/cross_s1/ was trained with lr = 0.002,"
                                   .. " not 0.5", 1, true), "stale runs refused:\n" .. stale)

os.execute("rm -rf " .. dir)
check.done()
