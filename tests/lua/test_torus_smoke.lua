-- scripts/torus.lua at a tiny scale (a 20-step training per seed, two
-- seeds): it must write every file of its run directory, with the controls
-- (the ideal tori's own reading, the implanted tori, the training images),
-- the persistent homology at the start, middle and end with its controls,
-- the evaluation rows, the figures and the answer in them; collect=true
-- must rebuild the answer without training; bad settings are refused.
-- CTest passes the bdrun:
--   bdrun test_torus_smoke.lua bdrun=/path/to/bdrun
local check = require "check"
local json = require "json"
local cfg = bd.config{ bdrun = "bdrun" }

local args = "width=4 emb=16 steps=20 every=10 warmup=1 seeds=1,2 sample_steps=2 name=smoke"
             .. " replicates=2 procs=1"
local run_script, dir = check.smoke(cfg.bdrun, "torus.lua", args)
local out, code = run_script()
check.eq(code, 0, "exit status; output:\n" .. out)
local run = dir .. "/runs/smoke/"

-- the answer: 20 steps teach nothing, so no finding is stated
check.ok(out:find("\nrepresentation (pca4 space): ", 1, true), "the verdict line:\n" .. out)
for _, space in ipairs{ "pca4", "raw" } do
  check.ok(out:find("\n  " .. space .. ": position at step 20 [%d.]+ %[[-%d.]+, [-%d.]+%] %(t 95%%,"
                    .. " n = 2%) %(seeds: [%d.]+, [%d.]+; 0 Clifford, 1 3D torus%); at step 0 "),
            space .. ": position with its interval and the seeds")
  check.ok(out:find("\n  " .. space .. ", each model's top 4 components made a Clifford torus: ",
                    1, true), space .. ": the implanted controls")
  check.ok(out:find("\n  layer4 before the label embedding is added (layer4_pre), " .. space
                    .. ": position ", 1, true), space .. ": the tap before the embedding")
  check.ok(out:find("\n  the training images (a 2D place code) in " .. space .. ": position ", 1,
                    true), space .. ": the training images' reading")
end
check.ok(out:find("\n  the ideal tori themselves: Clifford position 0.00 (factorized), 3D torus"
                  .. " 1.00 (coupled)\n", 1, true), "the references read as built")
check.ok(out:find("\naccuracy at step 20: [%d.]+ %[[%d.]+, [%d.]+%] %(t 95%%, n = 2%) over seeds"
                  .. " %(pooled [%d.]+ %[[%d.]+, [%d.]+%] %(Wilson 95%%, %d+/128%)%)"), "accuracy")
check.ok(out:find("NOT learned (under 0.5)", 1, true), "20 steps learn nothing")
check.ok(out:find("\nPCA of layer4: top 4 components hold ", 1, true), "the spectrum's summary")
check.ok(out:find("\npersistent homology (H1 of layer4, Vietoris-Rips, rms units) at step 20: ", 1,
                  true), "the persistence reading")
check.ok(out:find("\n  long = longer than [%d.]+, midway between [%d.]+ %(the longest bar of Gaussian"
                  .. " clouds"), "the threshold and where it comes from")
check.ok(out:find("\n  long H1 bars per seed: start %d+, %d+; middle %(step 10%) %d+, %d+; end %d+, %d+\n"),
         "long bars per seed at the three checkpoints")
check.ok(out:find("\n  controls: the ideal Clifford torus 2 long %(bars [%d.]+, [%d.]+, [%d.]+%), the 3D"
                  .. " torus 2 "), "the ideal tori have two long bars")
-- additivity: the verdict, the share with its interval, the threshold from the training
-- images and the Clifford torus (clean: 1.00), the 3D torus 0.90, the controls in noise
check.ok(out:find("\nadditivity (is layer4 a sum of an x code and a y code?): ", 1, true),
         "the additivity verdict")
check.ok(out:find("\n  additive share at step 20 [-%d.]+ %[[-%d.]+, [-%d.]+%] %(t 95%%, n = 2%)"
                  .. " %(seeds: [-%d.]+, [-%d.]+%); at step 0 "), "the additive share per seed")
check.ok(out:find("\n  threshold 0%.%d%d: midway between the training images' 0%.%d%d %(a place"
                  .. " code: conjunctive by construction%) and the ideal Clifford torus's 1%.00 %(a"
                  .. " sum%); the ideal 3D torus %(R/r = 2%) reads 0%.90\n"), "the threshold")
check.ok(out:find("\n  noise: 2 draws per label, independent", 1, true), "the replicates")
check.ok(out:find("\n  controls at each seed's noise ratio, 2 draws: Clifford torus ", 1, true),
         "the additivity controls")
check.ok(out:find("\nPAPER.md finding 3 (factorized representations; the follow-up's torus): can"
                  .. " neither confirm nor refute it", 1, true), "agreement stated")

-- metrics.jsonl: an evaluation per seed at steps 0, 10, 20; one decision
local evaluations, decisions = 0, 0
for line in (check.read(run .. "metrics.jsonl") or ""):gmatch("[^\n]+") do
  local row = json.decode(line) or {}
  if row.event == "evaluation" then
    evaluations = evaluations + 1
    check.ok(row.n == 64 and #row.spectrum == 15 and row.top4 > 0 and row.top4 <= 1 + 1e-6
             and row.pca4_position >= 0 and row.raw_d_clifford_xy ~= nil
             and row.pre_pca4_position >= 0 and row.pre_top4 > 0
             and row.h1_1 >= row.h1_2 and row.h1_2 >= row.h1_3 and row.h0_max > 0
             and row.null_h1 > 0 and row.heldout_h1 > 0 and row.additive == row.additive
             and row.pre_additive == row.pre_additive and row.add_noise > 0
             and row.add_between ~= nil, "evaluation: " .. line)
  elseif row.event == "decision" then
    decisions = decisions + 1
    check.ok(row.ph_threshold > 0 and #row.ph_long_end == 2 and row.ph_reading ~= nil,
             "decision: the persistence threshold and counts")
    check.ok(row.additivity ~= nil and row.additive_threshold > row.additive_place
             and math.abs(row.additive_clifford - 1) < 1e-5
             and math.abs(row.additive_torus3d - 0.9) < 1e-5
             and #row.additive_control_clifford == 2 and #row.additive_control_place == 2,
             "decision: the additivity reading, its references and controls")
  end
end
check.eq(evaluations, 2 * 3, "evaluation rows")
check.eq(decisions, 1, "a decision row")

-- the report: its sections, the controls' table, the figures
local html = check.read(run .. "report.html") or ""
for _, h in ipairs{ "Answer", "Controls", "What this scale can and cannot say", "Setup", "Figures",
                    "Numbers" } do
  check.ok(html:find("<h2>" .. h .. "</h2>", 1, true), "section " .. h)
end
for _, case in ipairs{ "ideal Clifford torus", "ideal 3D torus", "implanted Clifford torus",
                       "implanted 3D torus", "the training images", "the untrained model" } do
  check.ok(html:find(case, 1, true), "controls' table: " .. case)
end
local figures = { "accuracy.svg", "geometry.svg", "additivity.svg", "spectrum.svg", "hist_xy.svg", "hist_xx.svg",
                  "hist_yy.svg", "barcode.svg", "h1_lengths.svg", "train/torus_s1/samples.png" }
for _, when in ipairs{ "start", "middle", "end" } do
  for p = 1, 2 do figures[#figures + 1] = string.format("pcs_%s_%d.svg", when, p) end
end
for _, f in ipairs(figures) do
  local data = check.read(run .. f) or ""
  if f:find("%.svg$") then
    check.ok(data:find("^<svg ") and (data:find("<polyline", 1, true) or data:find("<circle", 1,
             true)), f .. " is an SVG with lines or points")
  else
    check.eq(data:sub(1, 8), "\137PNG\r\n\26\n", f .. " is a PNG")
  end
  check.ok(html:find('<img src="' .. f .. '"', 1, true), f .. " is in the report")
end

-- collect=true rebuilds the same answer without training
local again, code2 = run_script("collect=true")
check.eq(code2, 0, "collect=true exit status")
check.ok(not again:find("sweep smoke: run ", 1, true), "collect=true trains nothing")
local function answer(text) return (text:match("\n(representation .-)\n%d+ trainings") or "") end
check.ok(answer(out) ~= "" and answer(again) == answer(out), "the answer collected again")

-- bad settings are refused, naming what was wrong
local bad = run_script("collect=true", (args:gsub("every=10", "every=7")))
check.ok(bad:find("steps = 20 is not a multiple of every = 7", 1, true), "every:\n" .. bad)
bad = run_script("space=umap collect=true")
check.ok(bad:find("space = 'umap', expected pca4 or raw", 1, true), "space:\n" .. bad)
bad = run_script("collect=true", (args:gsub("replicates=2", "replicates=1")))
check.ok(bad:find("replicates = 1, expected an integer >= 2", 1, true), "replicates:\n" .. bad)

os.execute("rm -rf " .. dir)
check.done()
