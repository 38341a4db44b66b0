-- scripts/compositional.lua at a tiny scale (a 4-step training per condition
-- and seed): it must write every file of its run directory, with the
-- controls, the rows, the figures and the answer in them, and collect=true
-- must rebuild the report from the sweep's marks without training. CTest
-- passes the bdrun:
--   bdrun test_compositional_smoke.lua bdrun=/path/to/bdrun
local check = require "check"
local cfg = bd.config{ bdrun = "bdrun" }

-- 8x8 on a 12x12 canvas: bands of 0.5 and 2 px, squares of 2 and 4 px, a rim of 1 px
local args = "size=8 margin=2 width=4 emb=16 steps=4 every=2 warmup=1 seeds=1,2 sample_steps=2"
             .. " bands=0.5,2 squares=2,4 rim=1 name=smoke"
local run_script, dir = check.smoke(cfg.bdrun, "compositional.lua", args)
local out, code = run_script()
check.eq(code, 0, "exit status; output:\n" .. out)

local run = dir .. "/runs/smoke/"
local conditions = { "control", "band_0.5", "band_2", "square_2", "square_4", "edge_2", "edge_4",
                     "stripes_rim" }
-- held probes and the tolerance each condition is judged at: half the
-- smallest distance of its probes to a training label, at most 1 px
local held = { control = 60, ["band_0.5"] = 15, band_2 = 15, square_2 = 9, square_4 = 25,
               edge_2 = 9, edge_4 = 25, stripes_rim = 49 }
local tolerance = { control = "1", ["band_0.5"] = "0.125", band_2 = "0.5", square_2 = "0.375",
                    square_4 = "0.625", edge_2 = "0.375", edge_4 = "0.625",
                    stripes_rim = "0.875" }

-- the answer: 4 steps learn nothing, so the controls fail and no verdict is given
check.ok(out:find("answer: the model cannot decide: a control did not come out as designed", 1,
                  true), "no decision without the controls:\n" .. out)
check.ok(out:find("\n  controls (must read: held fails, mirror generalizes):\n", 1, true),
         "the controls' heading")
for _, which in ipairs{ "held", "mirror" } do
  check.ok(out:find("\n  " .. which .. " +not learned +acc 0%% %[0, 0%] %(x 0%%, y 0%%; 60"
                    .. " probes, d >= 2.00 px%) vs in 0%% %[0, 0%] at 1 px: score %-\n"),
           which .. " control line:\n" .. out)
end
check.ok(out:find("    threshold (midpoint of floor 0.062 and in 0.00): 0.03; the controls did"
                  .. " NOT come out as designed\n", 1, true), "the threshold is printed")
for _, c in ipairs(conditions) do
  if c ~= "control" then
    local line = out:match("\n  " .. c:gsub("%.", "%%.") .. " +([^\n]*)") or ""
    check.ok(line:find("^not learned +acc 0%% %[0, 0%] %(x 0%%, y 0%%; " .. held[c]
                       .. " probes, d >= [%d.]+ px%) vs in 0%% %[0, 0%] at "
                       .. tolerance[c]:gsub("%.", "%%.") .. " px: score %- %(predicted "),
             c .. ": " .. line)
  end
end
check.ok(out:find("\n  band trend: not judged (0 of 2 bands learned at their tolerance)\n", 1,
                  true), "band trend")
check.ok(out:find("\n  16 trainings of 4 steps: [%d.]+[ minhs%d]* of training and evaluation;"
                  .. " this process [%d.]+[ minhs%d]* %(scale quick%)\n"), "trainings and timing")
check.ok(out:find("\n  this scale (8x8, canvas 12, lattice 0.25 px) can say", 1, true),
         "what the scale can say")
check.ok(out:find("report: runs/smoke/report.html", 1, true), "report path")

-- config.json: the resolved settings and the training sets
local config = check.read(run .. "config.json") or ""
check.ok(config:find('"steps":4', 1, true) and config:find('"scale":"quick"', 1, true),
         "config: " .. config)
check.ok(config:find('"holdout":"xband","name":"band_2"', 1, true), "band in the config")
check.ok(config:find('"holdout":"rect","name":"edge_4"', 1, true), "edge in the config")

-- metrics.jsonl: a row per condition with its verdict, then the answer
local verdicts, answers = 0, 0
for line in (check.read(run .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
  if line:find('"event":"condition"', 1, true) then
    verdicts = verdicts + 1
    check.ok(line:find('"verdict":"not learned"', 1, true) and line:find('"acc_in":0', 1, true)
             and line:find('"threshold":', 1, true), "condition row: " .. line)
  elseif line:find('"event":"answer"', 1, true) then
    answers = answers + 1
    check.ok(line:find('"controls":false', 1, true), "answer row: " .. line)
  end
end
check.eq(verdicts, #conditions, "a row per condition")
check.eq(answers, 1, "one answer row")

-- each training: evaluations at steps 2 and 4, its mark; samples for the first seed
local csv = check.read(run .. "train/summary.csv") or ""
local _, csv_lines = csv:gsub("\n", "")
check.eq(csv_lines, 1 + 16, "summary.csv: a header and a row per training")
for _, c in ipairs(conditions) do
  for seed = 1, 2 do
    local sub = string.format("%strain/%s_s%d/", run, c, seed)
    local evals = 0
    for line in (check.read(sub .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
      if line:find('"acc_held":', 1, true) then
        evals = evals + 1
        check.eq(line:find('"acc_gen":', 1, true) ~= nil, c == "control",
                 c .. " mirror probes in " .. line)
      end
    end
    check.eq(evals, 2, c .. " seed " .. seed .. ": evaluations")
    local mark = check.read(sub .. "done.json") or ""
    check.ok(mark:find('"held":{', 1, true) and mark:find('"n":' .. held[c] .. '[,}]'),
             c .. " held-out probes: " .. mark:sub(1, 300))
    local png = check.read(sub .. "samples.png")
    check.eq(png ~= nil, seed == 1, c .. " seed " .. seed .. " samples.png")
    if png then check.eq(png:sub(1, 8), "\137PNG\r\n\26\n", c .. " samples.png") end
  end
end

-- the report: the answer, the controls, the figures
local html = check.read(run .. "report.html") or ""
check.ok(html:find("answer: the model cannot decide", 1, true), "the answer in the report")
check.ok(html:find("controls (must read: held fails, mirror generalizes)", 1, true),
         "the controls in the report")
check.ok(html:find("<h2>Setup</h2>", 1, true) and html:find("<h2>Numbers</h2>", 1, true),
         "setup and numbers")
for _, f in ipairs{ "accuracy.svg", "bands.svg" } do
  local svg = check.read(run .. f) or ""
  check.ok(svg:find("^<svg ") and svg:find("</svg>\n$"), f .. " is an SVG")
  check.ok(html:find('<img src="' .. f .. '"', 1, true), f .. " in the report")
end
for _, c in ipairs(conditions) do
  local f = "train/" .. c .. "_s1/samples.png"
  check.ok(html:find('<img src="' .. f .. '"', 1, true), f .. " is in the report")
end

-- again with collect=true: nothing trains, the same answer comes back
local again, code2 = run_script("collect=true")
check.eq(code2, 0, "collect exit status:\n" .. again)
check.ok(not again:find("unet:", 1, true), "collect trains nothing")
check.eq(again:match("answer:[^\n]*"), out:match("answer:[^\n]*"), "the same answer")

-- other settings over the same run directory are refused, not reported as these
local stale, code3 = run_script("lr=0.5")
check.ok(code3 ~= 0 and stale:find("runs/smoke/train/control_s1/ was trained with lr = 0.004,"
                                   .. " not 0.5", 1, true), "stale runs refused:\n" .. stale)

os.execute("rm -rf " .. dir)
check.done()
