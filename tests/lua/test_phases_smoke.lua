-- scripts/phases.lua at a tiny scale (a 4-step training per seed and its
-- shuffled-label control, checkpoints at steps 2 and 4): it must write every
-- file of its run directory; the report must show, for every order measure,
-- the floor (untrained, permuted labels, shuffled-label training), the
-- ceiling and the derived
-- threshold, and each seed's sequence under each measure; each phase label
-- must follow from its row by the stated rule and the logged threshold.
-- Each training's checkpoints are kept in one analysis archive, from which
-- collect=true measures every row again, without training.
-- CTest passes the bdrun to use:
--   bdrun test_phases_smoke.lua bdrun=/path/to/bdrun
local check = require "check"
local json = require "json"
local cfg = bd.config{ bdrun = "bdrun" }

local args = "size=8 width=4 emb=16 steps=4 every=2 warmup=1 seeds=1,2 sample_steps=2"
             .. " probe_step=1 rep_step=1 shuffled=true name=smoke"
local run_script, dir = check.smoke(cfg.bdrun, "phases.lua", args)
local out, code = run_script()
check.eq(code, 0, "exit status; output:\n" .. out)

local run = dir .. "/runs/smoke/"
local steps = { 2, 4 }
local MEASURES = { { "umap", "UMAP R%^2 %(paper%)" }, { "pca", "PCA R%^2" },
                   { "knn", "kNN R%^2" }, { "rho", "distance rank corr%." } }

-- the answer: the verdict, the rule, the controls, every sequence
-- a measure without room between floor and ceiling says so instead of
-- giving sequences (which case a 4-step training gives depends on its nulls)
local NO_ROOM = "no room between floor and ceiling: this measure cannot show the phases at this"
                .. " scale %(the floor's interval reaches " .. "%-?[%d.]+" .. ", the ceiling is"
                .. " %-?[%d.]+%)"
check.ok(out:find("sequence A %-> B %-> C under kNN R%^2 of layer4: [%a ]+ in %d of 2 seed%(s%)")
         or out:find("sequence A %-> B %-> C under kNN R%^2 of layer4: " .. NO_ROOM),
         "the verdict:\n" .. out)
check.ok(out:find("  rule: A one%-bump fraction < 0%.50; C accuracy >= 0%.50 and order >= the"
                  .. " measure's threshold; else B %(64 probes per checkpoint; layer4 read by"
                  .. " bd%.represent at t = 500, input bump, 64 labels, 16 values each%)"),
         "the rule")
local N = "%-?[%d.]+"
for _, m in ipairs(MEASURES) do
  check.ok(out:find("    " .. m[2] .. " +floor: untrained " .. N .. " %[" .. N .. ", " .. N
                    .. "%] %(t 95%%, n = 2%), permuted labels " .. N .. " %[" .. N .. ", " .. N
                    .. "%] %(t 95%%, n = 2%), shuffled%-label training " .. N .. " %[" .. N
                    .. ", " .. N .. "%] %(t 95%%, n = 2%); ceiling: ideal code " .. N .. " %(sinusoidal"
                    .. " features " .. N .. "%); threshold " .. N .. " = %(" .. N .. " %+ " .. N
                    .. "%) / 2"), m[1] .. "'s floor, ceiling and threshold")
  for seed = 1, 2 do
    check.ok(out:find("  " .. m[2] .. " +seed " .. seed .. ": [ABC][ABC] %(every 2 steps%); first"
                      .. " A at %w+, B at %w+, C at %w+; %d back to an earlier phase")
             or out:find("  " .. m[2] .. " +every seed: " .. NO_ROOM),
             m[1] .. " seed " .. seed .. "'s sequence")
  end
end
check.ok(out:find("  phase C %(most samples correct, ordered layer4%): [%w ]+; final accuracy"
                  .. " [%d.]+ %[[%d.]+, [%d.]+%] %(Wilson 95%%, %d+/128%)"), "phase C reached or not")
check.ok(out:find("  A as the paper describes it: %d+ of %d+ A checkpoints"), "the check of A")
check.ok(out:find("  B as the paper describes it: %d+ of %d+ B checkpoints"), "the check of B")
check.ok(out:find("  at the last step, layer4 before its label embedding: PCA R%^2"), "layer4_pre")
check.ok(out:find("  this scale can say"), "what the scale can say")
check.ok(out:find("  4 training%(s%) of 4 steps %(2 on shuffled labels%), 2 checkpoints each"),
         "trainings and timing")
for seed = 1, 2 do
  check.ok(out:find("  samples alone, seed " .. seed .. ": most hold one bump from step %w+, most are"
                    .. " correct from step %w+"), "seed " .. seed .. "'s samples alone")
end
-- seeds showing the sequence, or (no room) that the headline measure cannot tell
local agreement = out:match("  PAPER.md finding 1 %(A %-> B %-> C%): this run [%a ,():]+ under kNN"
                            .. " R%^2 %(([^;]+); by measure: umap [%w/ ]+, pca [%w/ ]+, knn"
                            .. " [%w/ ]+, rho [%w/ ]+%)")
check.ok(agreement and (agreement:find("^%d of 2 seeds$")
                        or agreement == "knn cannot tell, with no room"
                           and out:find("sequence A %-> B %-> C under kNN R%^2 of layer4: no room")),
         "agreement in numbers: " .. tostring(agreement))

-- config.json: the resolved settings and the training set
local config = check.read(run .. "config.json") or ""
check.ok(config:find('"steps":4', 1, true), "config steps")
check.ok(config:find('"scale":"quick"', 1, true), "config scale")
check.ok(config:find('"condition":{"dx":0.316,"dy":0.316,"name":"bumps"}', 1, true),
         "config condition: " .. config)

-- metrics.jsonl: checkpoint rows of both trainings, a control per measure,
-- sequences per measure and seed, the answer
local rows, shuffled, controls, sequences, answers = {}, 0, {}, 0, 0
for line in (check.read(run .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
  local row = json.decode(line) or {}
  if row.event == "checkpoint" and row.condition == "bumps" then
    rows[#rows + 1] = row
    local sum = row.frac_none + row.frac_multi + row.frac_wrong + row.frac_correct
    check.ok(math.abs(sum - 1) < 1e-6, "class fractions add up to 1: " .. line)
    check.ok(row.umap and row.pca and row.knn and row.rho and row.pre_knn, "order: " .. line)
  elseif row.event == "checkpoint" then
    shuffled = shuffled + 1
  elseif row.event == "control" then
    controls[row.measure] = row
    check.ok(row.untrained and row.permuted and row.shuffled and row.ceiling and row.threshold,
             "control: " .. line)
    check.ok(math.abs(row.threshold - (row.floor + row.ceiling) / 2) < 1e-9, "midpoint: " .. line)
    check.ok(row.floor >= row.untrained - 1e-12 and row.floor >= row.shuffled - 1e-12
             and row.floor >= row.permuted - 1e-12, "the floor is the highest null: " .. line)
  elseif row.event == "sequence" then
    sequences = sequences + 1
  elseif row.event == "answer" then
    answers = answers + 1
  end
end
for _, m in ipairs(MEASURES) do check.ok(controls[m[1]], m[1] .. " has a control row") end
local knn = controls.knn or { threshold = 0 / 0 }
local function phase(r)  -- the rule, as the report states it, under knn
  if r.frac_wrong + r.frac_correct < 0.5 then return "A" end
  if r.accuracy >= 0.5 and knn.separates and r.knn >= knn.threshold then return "C" end
  return "B"
end
for _, r in ipairs(rows) do check.eq(r.phase, phase(r), "the phase follows from the rule") end
check.eq(#rows, 2 * 2, "rows: 2 seeds x 2 checkpoints")
check.eq(shuffled, 2, "the shuffled-label trainings: their last checkpoint each")
check.eq(sequences, 4 * 2, "a sequence per measure and seed")
check.eq(answers, 1, "one answer row")

-- figures: curves per seed, and per checkpoint the UMAP by x and by y and
-- the samples, each shown in the report with its phase
local html = check.read(run .. "report.html") or ""
check.ok(html:find("sequence A -&gt; B -&gt; C under", 1, true), "the answer in the report")
check.ok(html:find("controls per order measure", 1, true), "the controls in the report")
check.ok(html:find("<h2>Setup</h2>", 1, true) and html:find("<h2>Numbers</h2>", 1, true),
         "setup and numbers")
local function is_svg(data, mark)
  return data:find("^<svg ") and data:find("</svg>\n$") and data:find(mark, 1, true)
end
for seed = 1, 2 do
  for _, f in ipairs{ "fractions_s" .. seed .. ".svg", "order_s" .. seed .. ".svg" } do
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
    local kept = check.read(string.format("%s%sckpt/step_%d.bdc", run, sub, step)) ~= nil
    check.eq(kept, step == 4, sub .. " keeps the last checkpoint only (step " .. step .. ")")
  end
  check.ok(check.read(run .. sub .. "done.json"), "seed " .. seed .. " is marked done")
  check.ok(check.read(run .. string.format("train/shuffled_s%d/done.json", seed)),
           "shuffled seed " .. seed .. " is marked done")
end
check.ok((check.read(run .. "train/summary.csv") or ""):find("shuffled_s2", 1, true), "sweep summary")

-- the history: each training's checkpoints in one analysis archive, which
-- verifies (each step rebuilt against its checksum) before the files go
for _, name in ipairs{ "bumps_s1", "bumps_s2", "shuffled_s1", "shuffled_s2" } do
  local bda = run .. "train/" .. name .. "/history.bda"
  local list = bd.ckpt.archive_list(bda) or {}
  check.eq(#list, 2, name .. "'s archive holds both checkpoints")
  check.ok(list[1] and list[1].step == 2 and list[1].key and list[2].step == 4
           and not list[2].key and list[2].analysis, name .. ": steps 2 (key) and 4 (analysis)")
  check.eq(bd.ckpt.archive_verify(bda), 2, name .. "'s archive verifies")
end

-- collect=true measures again from the archives: the marks' measurements
-- (here overwritten with nonsense) are not used, and every row comes back
local function rows_of(path)
  local out = {}
  for line in (check.read(path) or ""):gmatch("[^\n]+") do
    local row = json.decode(line) or {}
    if row.event == "checkpoint" or row.event == "control" or row.event == "sequence"
       or row.event == "answer" then
      row.time, row.seconds = nil, nil  -- when the row was logged, the run's duration
      out[#out + 1] = json.encode(row)
    end
  end
  return out
end
local before = rows_of(run .. "metrics.jsonl")
for _, name in ipairs{ "bumps_s1", "shuffled_s2" } do
  local mark_path = run .. "train/" .. name .. "/done.json"
  local mark = json.decode(check.read(mark_path) or "null") or { results = {} }
  for _, r in ipairs(mark.results.checkpoints or {}) do
    for k, v in pairs(r) do
      if k ~= "step" and type(v) == "number" then r[k] = 0.123 end
    end
  end
  if mark.results.untrained then mark.results.untrained.knn = 0.123 end
  local f = assert(io.open(mark_path, "wb"))
  f:write(json.encode(mark), "\n")
  f:close()
end
local again
again, code = run_script("collect=true")
check.eq(code, 0, "collect=true exit status; output:\n" .. again)
check.ok(out:find("sweep smoke: run 1 of 4", 1, true)
         and out:find("history.bda: 2 checkpoints of [%d.]+ MB archived in [%d.]+ MB %([%d.]+%),"
                      .. " verified; the files but the last removed"), "the first run trains")
check.ok(not again:find("sweep smoke: run ", 1, true) and not again:find("archived", 1, true),
         "collect=true trains nothing:\n" .. again)
local after = rows_of(run .. "metrics.jsonl")
check.eq(#after, #before, "rows measured again")
for i = 1, math.max(#before, #after) do
  check.eq(after[i], before[i], "row " .. i .. " measured again from the archives")
end

os.execute("rm -rf " .. dir)
check.done()
