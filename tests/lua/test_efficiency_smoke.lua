-- scripts/efficiency.lua at a tiny scale (a 4-step training per arm, size,
-- spacing and seed): it must write every file of its run directory, with
-- the controls, the rows, the figures and the answer in them; collect=true
-- must rebuild the answer without training; bad settings are refused. CTest
-- passes the bdrun:
--   bdrun test_efficiency_smoke.lua bdrun=/path/to/bdrun
local check = require "check"
local json = require "json"
local cfg = bd.config{ bdrun = "bdrun" }

local args = "sizes=8,16 steps=4,4 bumps_sites=3,4:4,6 stripes_sites=9,17"
             .. " stripes_examples=4,8:8,16 width=4 emb=16"
             .. " warmup=1 seeds=1,2,3 sample_steps=2 probes=9 name=smoke"
local run_script, dir = check.smoke(cfg.bdrun, "efficiency.lua", args)
local out, code = run_script()
check.eq(code, 0, "exit status; output:\n" .. out)
local run = dir .. "/runs/smoke/"

-- 4 steps teach nothing: no data needed is located, so no slope and no verdict
check.ok(out:find("\nanswer: cannot decide (bumps cannot tell; 2D examples beside the stripes"
                  .. " cannot tell; saving at N 16 cannot tell)\n", 1, true), "no verdict:\n" .. out)
check.ok(out:find("\n  bumps %([^\n]*%): slope of log images needed on log N n = 0, located in 0"
                  .. " of 3 seeds: cannot tell\n"), "bumps slope line")
for _, arm in ipairs{ "stripes", "alone" } do
  check.ok(out:find("\n  " .. arm .. " %([^\n]*%): slope of log 2D examples needed on log N n = 0,"
                    .. " located in 0 of 3 seeds: cannot tell\n"), arm .. " slope line")
end
check.ok(out:find("\n    seed 2: images to reach 60%: N 8: more than 16 (no data set reaches it);"
                  .. " N 16: more than 36 (no data set reaches it)\n", 1, true)
         or out:find("(the smallest data set reaches it)", 1, true), "per-seed line")
check.ok(out:find("\n  saving at N 16 (2D examples alone minus beside the stripes, paired by seed):"
                  .. " n = 0: cannot tell\n", 1, true), "saving line")
check.ok(out:find("\n  not read: the stripes arm's images (2 s stripes + 2D examples; the fixed 2 s"
                  .. " is linear in N) slope n = 0\n", 1, true), "the stripes' images, not read")
-- the controls read as built: the snapping oracles' images needed on these
-- 9 probes, from every lattice of 2 to 2N + 1 values per axis (the cut is
-- the midpoint of their slopes, (1.776 + 0.885) / 2); the composer needs no
-- 2D example; the memorizer of each seed's example sites (the cut of the
-- 2D examples' slopes is half its slope); the saving's two controls
check.ok(out:find("\ncontrols (ideal codes through the same location, fit and rule; the cut of the"
                  .. " image slopes, 1.33, is the midpoint of the first two, that of the 2D"
                  .. " examples' slopes, 0.84, of the next two):\n", 1, true), "the cuts")
for _, line in ipairs{
    "\n  bumps (the nearest training site in 2D): images needed N 8: 19, N 16: 66; slope 1.78 reads"
    .. " near quadratic (must read near quadratic)\n",
    "\n  stripes (the nearest stripe on each axis): images needed N 8: 9, N 16: 16; slope 0.89 reads"
    .. " near linear (must read near linear)\n",
    "\n  composer (the nearest stripe on each axis, beside the stripes): 2D examples needed N 8: 0,"
    .. " N 16: 0; slope 0.00 reads near flat (must read near flat)\n",
    "\n  memorizer (the nearest of the seed's 2D examples): 2D examples needed N 8: 19.1, N 16: 59.3"
    .. " (mean over seeds); slope 1.68 reads near the memorizer (must read near the memorizer)\n",
    "\n  saving at N 16: the memorizer beside the stripes (ignores them) +0.0 [+0.0, +0.0] (t 95%,"
    .. " n = 3) reads cannot tell (must read cannot tell); the memorizer alone minus the composer"
    .. " +59.3 [+16.6, +102.1] (t 95%, n = 3) reads fewer beside the stripes (must read fewer"
    .. " beside the stripes)\n" } do
  check.ok(out:find(line, 1, true), "control line: " .. line .. "\n" .. out)
end
for _, line in ipairs{ "\n  N 8 bumps d 4 (9 images): ", "\n  N 16 bumps d 3.2 (36 images): ",
                       "\n  N 8 stripes d 1, 4 2D examples (22 images): ",
                       "\n  N 16 stripes d 1, 16 2D examples (50 images): ",
                       "\n  N 8 alone d 1, 4 2D examples (4 images): ",
                       "\n  N 16 alone d 1, 16 2D examples (16 images): " } do
  check.ok(out:find(line, 1, true), "accuracy line: " .. line)
end
check.ok(out:find("PAPER.md finding 3 (data needed grows as N^2 for bumps, as N for stripes plus"
                  .. " a few 2D examples): this run can neither confirm nor refute it", 1, true),
         "agreement stated")
check.ok(out:find("\n36 trainings: "), "trainings counted")

-- metrics.jsonl: a row per training (its data set of the known size; beside
-- the stripes and alone, the same seed's 2D examples), a data-needed row
-- per arm, size and seed, the decision
local trainings, needed, decisions, sites = 0, 0, 0, {}
for line in (check.read(run .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
  local row = json.decode(line) or {}
  if row.event == "training" then
    trainings = trainings + 1
    local s = row.sites
    check.eq(row.d, row.size / (s - 1), "spacing of " .. line)
    local want = row.arm == "bumps" and s * s or row.arm == "stripes" and 2 * s + row.examples
                 or row.examples
    check.eq(row.images, want, "images of " .. line)
    if row.examples then
      local key = string.format("%d %d %d", row.size, row.examples, row.seed)
      sites[key] = sites[key] or {}
      sites[key][row.arm] = row.example_sites
      local count = select(2, (row.example_sites or ""):gsub(";", ";")) + 1
      check.eq(count, row.examples, "2D example sites of " .. line)
    end
    check.ok(row.probes == 9 and row.correct >= 0 and row.correct <= 9, "training row: " .. line)
  elseif row.event == "needed" then
    needed = needed + 1
  elseif row.event == "decision" then
    decisions = decisions + 1
    check.eq(row.decision, "cannot decide", "decision row")
  end
end
check.eq(trainings, 36, "training rows: 3 arms x 2 sizes x 2 rungs x 3 seeds")
check.eq(needed, 18, "data-needed rows: 3 arms x 2 sizes x 3 seeds")
local pairs_seen = 0
for key, by_arm in pairs(sites) do
  check.ok(by_arm.stripes and by_arm.stripes == by_arm.alone, "the same 2D examples: " .. key)
  pairs_seen = pairs_seen + 1
end
check.eq(pairs_seen, 12, "2D example sets: 2 sizes x 2 rungs x 3 seeds")
check.eq(decisions, 1, "a decision row")

local html = check.read(run .. "report.html") or ""
for _, h in ipairs{ "Answer", "Controls", "What this scale can and cannot say", "Setup", "Figures",
                    "Numbers" } do
  check.ok(html:find("<h2>" .. h .. "</h2>", 1, true), "section " .. h)
end
check.ok(html:find("snapping oracle: the nearest stripe on each axis", 1, true), "the controls' table")
check.ok(html:find("memorizer: the nearest of the seed&#39;s examples", 1, true),
         "the memorizer's row")
for _, f in ipairs{ "scaling.svg", "examples.svg", "accuracy_n8.svg", "accuracy_n16.svg" } do
  local data = check.read(run .. f) or ""
  check.ok(data:find("^<svg ") and data:find("</svg>\n$"), f .. " is an SVG")
  check.ok(html:find('<img src="' .. f .. '"', 1, true), f .. " is in the report")
end
check.ok((check.read(run .. "accuracy_n16.svg") or ""):find("<polyline", 1, true),
         "accuracy curves drawn")
check.eq((check.read(run .. "train/bumps_n8_s3_s1/samples.png") or ""):sub(1, 4), "\137PNG",
         "samples of the first seed")

-- collect=true rebuilds the same answer without training
local again, code2 = run_script("collect=true")
check.eq(code2, 0, "collect=true exit status")
check.ok(not again:find("sweep smoke: run ", 1, true), "collect=true trains nothing")
local function answer(text) return (text:match("\n(answer: .-)\n%d+ trainings") or "") end
check.eq(answer(again), answer(out), "the answer collected again")

-- with two of the seeds the memorizer's saving at N = 8 spans 0 (+15.9
-- [-44.4, +76.3]): a control that does not read as built withholds the verdict
local two = run_script("collect=true", (args:gsub("seeds=1,2,3", "seeds=1,2")))
check.ok(two:find("\nanswer: cannot decide (a control does not read as built (or fewer than two"
                  .. " sizes))\n", 1, true), "a failed control withholds the verdict:\n" .. two)
check.ok(two:find("the memorizer alone minus the composer +15.9 [-44.4, +76.3] (t 95%, n = 2)"
                  .. " reads cannot tell (must read fewer beside the stripes)", 1, true),
         "the failed control")

-- bad settings are refused, naming what was wrong
local bad = run_script("collect=true", (args:gsub("steps=4,4", "steps=4")))
check.ok(bad:find("has 1 budgets for 2 sizes", 1, true), "budgets per size:\n" .. bad)
bad = run_script("arms=bumps,dots collect=true")
check.ok(bad:find("'dots' is not an arm", 1, true), "unknown arm:\n" .. bad)
bad = run_script("collect=true", (args:gsub("bumps_sites=3,4:4,6", "bumps_sites=3,4")))
check.ok(bad:find("has 1 ladders for 2 sizes", 1, true), "a ladder per size:\n" .. bad)
bad = run_script("collect=true", (args:gsub("stripes_sites=9,17", "stripes_sites=9,2.5")))
check.ok(bad:find("'2.5' is not a count of lattice values", 1, true), "whole sites:\n" .. bad)
bad = run_script("collect=true", (args:gsub("stripes_sites=9,17", "stripes_sites=9")))
check.ok(bad:find("has 1 lattices for 2 sizes", 1, true), "a stripes lattice per size:\n" .. bad)
bad = run_script("collect=true", (args:gsub("stripes_examples=4,8", "stripes_examples=4,82")))
check.ok(bad:find("at N = 8 the stripes' lattice of 9 values per axis has 81 sites, fewer than"
                  .. " 82 2D examples", 1, true), "examples the lattice can hold:\n" .. bad)
bad = run_script("collect=true", (args:gsub("stripes_examples=4,8", "stripes_examples=0,8")))
check.ok(bad:find("'0' is not a positive number", 1, true), "no 2D example:\n" .. bad)

os.execute("rm -rf " .. dir)
check.done()
