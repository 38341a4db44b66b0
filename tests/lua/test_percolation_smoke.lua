-- scripts/percolation.lua at a tiny scale (a 4-step training per condition
-- and seed): it must write every file of its run directory, with the
-- percolation curves, the controls, the rows, the figures and the answer in
-- them; collect=true must rebuild the report without training; bad settings
-- are refused. CTest passes the bdrun:
--   bdrun test_percolation_smoke.lua bdrun=/path/to/bdrun
local check = require "check"
local json = require "json"
local cfg = bd.config{ bdrun = "bdrun" }

-- the quick lattice (8x8, d = 2), three lambdas; sigma 0.75, whose cutoff
-- at 0.05 links nearest neighbours only, and 1.3
local args = "width=4 emb=16 steps=4 warmup=1 seeds=1,2 sample_steps=2 draws=20 curve_step=0.1"
             .. " samples=2 lambdas=0.3,0.6,1 sigmas=0.75,1.3 name=smoke"
local run_script, dir = check.smoke(cfg.bdrun, "percolation.lua", args)
local out, code = run_script()
check.eq(code, 0, "exit status; output:\n" .. out)
local run = dir .. "/runs/smoke/"

-- the answer: 4 steps teach nothing, so the positive control fails and no
-- verdict is given, at both overlap thresholds
for _, t in ipairs{ "0.005", "0.05" } do
  check.ok(out:find("\noverlap threshold " .. t .. ": cannot decide (sigma 0.75: the full lattice is"
                    .. " not learned (accuracy ", 1, true), t .. ":\n" .. out)
end
-- the link cutoffs: 4.60 sigma at 0.005, 3.46 sigma at 0.05
for _, line in ipairs{ "\n  sigma 0.75 (link cutoff 3.45 px = 1.73 d): lambda_p ",
                       "\n  sigma 1.3 (link cutoff 5.98 px = 2.99 d): lambda_p ",
                       "\n  sigma 0.75 (link cutoff 2.60 px = 1.30 d): lambda_p ",
                       "\n  sigma 1.3 (link cutoff 4.50 px = 2.25 d): lambda_p ",
                       "\n  shift with sigma 0.75 -> 1.3: lambda_on " } do
  check.ok(out:find(line, 1, true), "printed: " .. line)
end
-- the controls, whatever the decision: the full lattice spans, the
-- sparsest lattice does not
check.ok(out:find("\ncontrols (accuracy on between probes, Wilson 95%, pooled over 2 seeds):\n",
                  1, true), "controls heading")
check.ok(out:find("\n  sigma 0.75: untrained floor [%d.]+ %[[%d.]+, [%d.]+%] %(Wilson 95%%, %d+/48%),"
                  .. " full lattice %(ceiling%) [^\n]*NOT learned %(must be above the floor and reach 0%.5%)"), "floor and ceiling")
local _, spans_ok = out:gsub("spanning fraction at lambda 1: 1%.00 %(must be 1%), at lambda 0%.1:"
                             .. " 0%.00 %(must be under 0%.5%)", "")
check.eq(spans_ok, 4, "percolation controls per sigma and threshold")
check.ok(out:find("\n  sigma 0.75 lambda 0.6: between ", 1, true), "a cell's accuracy")
check.ok(out:find("PAPER.md finding 3 (learning switches on at percolation): threshold 0.005: can"
                  .. " neither confirm nor refute it; threshold 0.05: can neither confirm nor"
                  .. " refute it", 1, true), "agreement stated")
check.ok(out:find("\n12 trainings of 4 steps: "), "trainings counted")

-- the percolation point of a lattice is known: on the 5 x 5 lattice with
-- links to nearest neighbours only (sigma 0.75 at 0.05) it lies above the
-- one with diagonal links (sigma 0.75 at 0.005)
local near, diag = tonumber(out:match("sigma 0%.75 %(link cutoff 2%.60 px = 1%.30 d%): lambda_p ([%d.]+)")),
                   tonumber(out:match("sigma 0%.75 %(link cutoff 3%.45 px = 1%.73 d%): lambda_p ([%d.]+)"))
check.ok(near and diag and near > diag and near > 0.5 and diag < 0.6,
         string.format("lambda_p nearest neighbours %s > with diagonals %s", near, diag))

-- metrics.jsonl: a row per training, the percolation curves, a decision per threshold
local trainings, curve_rows, decisions = 0, 0, 0
for line in (check.read(run .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
  local row = json.decode(line) or {}
  if row.event == "training" then
    trainings = trainings + 1
    check.ok(row.between_n == 8 and row.floor_n == 8 and row.kept_n + row.unkept_n == 9
             and row["largest_0.05"] ~= nil and row["spans_0.005"] ~= nil, "training row: " .. line)
  elseif row.event == "percolation" then
    curve_rows = curve_rows + 1
    check.ok(row.span >= row.span_lo and row.span <= row.span_hi and row.largest > 0,
             "percolation row: " .. line)
  elseif row.event == "decision" then
    decisions = decisions + 1
    check.eq(row.decision, "cannot decide", "decision row")
  end
end
check.eq(trainings, 2 * 3 * 2, "training rows")
check.eq(curve_rows, 2 * 2 * 10, "percolation rows: 2 sigmas x 2 thresholds x 10 lambdas")
check.eq(decisions, 2, "a decision per threshold")

-- the report: its sections, the controls' table, the figures
local html = check.read(run .. "report.html") or ""
for _, h in ipairs{ "Answer", "Controls", "What this scale can and cannot say", "Setup", "Figures",
                    "Numbers" } do
  check.ok(html:find("<h2>" .. h .. "</h2>", 1, true), "section " .. h)
end
check.ok(html:find("positive control: full lattice", 1, true), "the controls' table")
check.ok(html:find("overlap threshold 0.05: cannot decide", 1, true), "the answer in the report")
for _, f in ipairs{ "accuracy_s0.75.svg", "accuracy_s1.3.svg", "train/s0.75_l0.3_s1/samples.png" } do
  local data = check.read(run .. f) or ""
  if f:find("%.svg$") then
    check.ok(data:find("^<svg ") and data:find("<polyline", 1, true), f .. " is an SVG with lines")
  else
    check.eq(data:sub(1, 8), "\137PNG\r\n\26\n", f .. " is a PNG")
  end
  check.ok(html:find('<img src="' .. f .. '"', 1, true), f .. " is in the report")
end
local summary = check.read(run .. "train/summary.csv") or ""
check.eq(select(2, summary:gsub("\n", "")), 13, "summary.csv: a header and 12 runs")

-- collect=true rebuilds the same answer without training
local again, code2 = run_script("collect=true")
check.eq(code2, 0, "collect=true exit status")
check.ok(not again:find("sweep smoke: run ", 1, true), "collect=true trains nothing")
local function answer(text) return (text:match("\n(overlap threshold .-)\n%d+ trainings") or "") end
check.eq(answer(again), answer(out), "the answer collected again")

-- bad settings are refused, naming what was wrong
local bad = run_script("tolerance=1 collect=true")
check.ok(bad:find("tolerance = 1 px cannot tell a snapped bump", 1, true), "tolerance:\n" .. bad)
bad = run_script("margin=0.75 collect=true")
check.ok(bad:find("between probe (1, 1) cannot tell a copied training image: the exact image of"
                  .. " site (0, 0) at sigma 0.75 reads as correct there", 1, true),
         "probes beside the border sites:\n" .. bad)
bad = run_script("collect=true", (args:gsub("lambdas=[^ ]*", "lambdas=0.3,0.6")))
check.ok(bad:find("the last must be 1", 1, true), "lambdas without the full lattice:\n" .. bad)

os.execute("rm -rf " .. dir)
check.done()
