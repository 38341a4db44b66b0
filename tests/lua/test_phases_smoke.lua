-- scripts/phases.lua at a tiny scale (a 4-step training per seed,
-- checkpoints at steps 2 and 4): it must write every file of its run
-- directory, with the rows, the figures and the phase labels in them, and
-- each label must follow from its row by the stated rule. CTest passes the
-- bdrun to use:
--   bdrun test_phases_smoke.lua bdrun=/path/to/bdrun
local check = require "check"
local json = require "json"
local cfg = bd.config{ bdrun = "bdrun" }

local script = arg[0]:gsub("[^/]*$", "") .. "../../scripts/phases.lua"
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
local steps = { 2, 4 }

-- the answer is printed: a verdict, each seed's sequence, the phases' medians
check.ok(out:find("sequence A %-> B %-> C: [%a ]+ in %d of 2 seed%(s%), %d of them without a fall"
                  .. " back to an earlier phase %(rule: A one%-bump fraction"
                  .. " < 0%.50; C accuracy >= 0%.50 and min%(r2_x, r2_y%) >= 0%.80; else B%)"),
         "the verdict and the rule:\n" .. out)
for seed = 1, 2 do
  check.ok(out:find("  seed " .. seed .. ": [ABC][ABC] %(every 2 steps%); first A at %w+, B at %w+,"
                    .. " C at %w+; %d checkpoint%(s%) back to an earlier phase; %d B checkpoint%(s%) with mostly"
                    .. " correct bumps"),
           "seed " .. seed .. "'s sequence")
end
check.ok(out:find("  phase A[ :(]"), "phase A's line")
check.ok(out:find("  A as the paper describes it: %d+ of %d+ A checkpoints have more samples with"
                  .. " several bumps than with none, %d+ have a disordered layer 4"), "the check of A")
check.ok(out:find("  B as the paper describes it: %d+ of %d+ B checkpoints have more wrong%-place than"
                  .. " correct bumps, %d+ have a disordered layer 4 %(min%(r2_x, r2_y%) < 0%.80%)"),
         "the check of B")
check.ok(out:find("2 training%(s%) of 4 steps, 2 checkpoints each: [%d.]+ s of training and evaluation;"
                  .. " this process [%d.]+ s %(scale quick%)"), "trainings and timing")

-- config.json: the resolved settings and the training set
local config = check.read(run .. "config.json") or ""
check.ok(config:find('"steps":4', 1, true), "config steps")
check.ok(config:find('"scale":"quick"', 1, true), "config scale")
check.ok(config:find('"condition":{"dx":0.316,"dy":0.316,"name":"bumps"}', 1, true),
         "config condition: " .. config)

-- metrics.jsonl: a row per seed and checkpoint, a sequence per seed, the answer
local function phase(r) -- the rule, as the report states it
  if r.single < 0.5 then return "A" end
  if r.accuracy >= 0.5 and math.min(r.r2_x, r.r2_y) >= 0.8 then return "C" end
  return "B"
end
local rows, sequences, answers = {}, {}, 0
for line in (check.read(run .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
  local row = json.decode(line) or {}
  if row.event == "checkpoint" then
    rows[#rows + 1] = row
    local sum = row.frac_none + row.frac_multi + row.frac_wrong + row.frac_correct
    check.ok(math.abs(sum - 1) < 1e-6, "class fractions add up to 1: " .. line)
    check.ok(math.abs(row.single - row.frac_wrong - row.frac_correct) < 1e-6, "single: " .. line)
    check.ok(row.r2_x and row.knn and row.trust and row.eff_dim, "manifold quality: " .. line)
    check.eq(row.phase, phase(row), "the phase follows from the rule: " .. line)
  elseif row.event == "sequence" then
    sequences[row.seed] = row
  elseif row.event == "answer" then
    answers = answers + 1
  end
end
check.eq(#rows, 2 * 2, "rows: 2 seeds x 2 checkpoints")
check.eq(rows[1] and rows[1].seed * 10 + rows[1].ckpt_step, 12, "first row: seed 1, step 2")
check.eq(rows[4] and rows[4].seed * 10 + rows[4].ckpt_step, 24, "last row: seed 2, step 4")
for seed = 1, 2 do
  local s = sequences[seed] or {}
  check.eq(s.phases, rows[2 * seed - 1] and rows[2 * seed - 1].phase .. rows[2 * seed].phase,
           "seed " .. seed .. "'s sequence is its rows' phases")
end
check.eq(answers, 1, "one answer row")

-- figures: curves per seed, and per checkpoint the UMAP by x and by y and
-- the samples, each shown in the report with its phase
local html = check.read(run .. "report.html") or ""
check.ok(html:find("sequence A -&gt; B -&gt; C:", 1, true), "the answer in the report")
check.ok(html:find("<h2>Setup</h2>", 1, true) and html:find("<h2>Numbers</h2>", 1, true),
         "setup and numbers")
check.ok(html:find("A: one-bump fraction &lt; 0.5; C: accuracy &gt;= 0.5 and order = min(r2_x, r2_y) &gt;= 0.8", 1, true),
         "the rule in the report")
check.ok(html:find("PAPER.md, finding 1). This run shows it in", 1, true), "agreement stated")
local function is_svg(data, mark)
  return data:find("^<svg ") and data:find("</svg>\n$") and data:find(mark, 1, true)
end
for seed = 1, 2 do
  for _, f in ipairs{ "fractions_s" .. seed .. ".svg", "manifold_s" .. seed .. ".svg" } do
    check.ok(is_svg(check.read(run .. f) or "", "<polyline"), f .. " is an SVG with curves")
    check.ok(html:find('<img src="' .. f .. '"', 1, true), f .. " is in the report")
  end
  local sub = string.format("train/bumps_s%d/", seed)
  for i, step in ipairs(steps) do
    local label = rows[2 * (seed - 1) + i] and rows[2 * (seed - 1) + i].phase or "?"
    for _, axis in ipairs{ "x", "y" } do
      local f = string.format("%sumap_%s_%d.svg", sub, axis, step)
      check.ok(is_svg(check.read(run .. f) or "", "<circle"), f .. " is a scatter plot")
      check.ok(html:find(string.format('<img src="%s" alt="step %d" width="200"/><figcaption>step'
                                       .. ' %d: phase %s (2D UMAP by %s)', f, step, step, label, axis),
                         1, true), f .. " is in the report with its phase " .. label)
    end
    local png = string.format("%ssamples_%d.png", sub, step)
    check.eq((check.read(run .. png) or ""):sub(1, 8), "\137PNG\r\n\26\n", png .. " is a PNG")
    check.ok(html:find('<img src="' .. png .. '"', 1, true), png .. " is in the report")
    local kept = check.read(string.format("%s%sckpt/step_%d.bdc", run, sub, step)) ~= nil
    check.eq(kept, step == 4, sub .. " keeps the last checkpoint only (step " .. step .. ")")
  end
  local m = check.read(run .. sub .. "metrics.jsonl") or ""
  check.ok(m:find('"loss":', 1, true), "seed " .. seed .. " loss log")
  check.ok(check.read(run .. sub .. "done.json"), "seed " .. seed .. " is marked done")
end
check.ok((check.read(run .. "train/summary.csv") or ""):find("bumps_s2", 1, true), "sweep summary")

os.execute("rm -rf " .. dir)
check.done()
