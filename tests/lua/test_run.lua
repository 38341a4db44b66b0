-- bd.run: the run directory, config.json and metrics.jsonl.
local check = require "check"
local cfg = bd.config{ seed = 3, lr = 1e-3, scale = "quick" }
local root = "lua-runs"
os.execute("rm -rf " .. root)

local run = bd.run("test-run", { root = root })
check.eq(run.dir, root .. "/test-run", "run.dir")
check.eq(run.name, "test-run", "run.name")
check.eq(run.step, nil, "no step outside training")
check.eq(run:path("grid.png"), root .. "/test-run/grid.png", "run:path")
-- bd.run wrote the resolved config
check.eq(check.read(run:path("config.json")),
         '{"lr":0.001,"scale":"quick","seed":3}\n', "config.json")

check.eq(run:log{ step = 10, loss = 0.25, acc = {0.5, 1}, note = "a\"b",
                  nan = 0 / 0, per_class = { x = 1, y = 2 },
                  t = bd.tensor.from_table{ {1, 2}, {3, 4} } }, true, "log")
check.eq(run:log{ step = 20, time = 1.5, loss = 0.125 }, true, "second log")
check.eq(run:log{}, true, "an empty event")
local lines = {}
for line in check.read(run:path("metrics.jsonl")):gmatch("[^\n]+") do
  lines[#lines + 1] = line
end
check.eq(#lines, 3, "one line per event")
check.ok(lines[1]:find('^{"time":[%d.e-]+,"acc":%[0.5,1%],"loss":0.25,"nan":null,'
         .. '"note":"a\\"b","per_class":{"x":1,"y":2},"step":10,'
         .. '"t":%[%[1,2%],%[3,4%]%]}$') ~= nil, "first event: " .. lines[1])
check.eq(lines[2], '{"loss":0.125,"step":20,"time":1.5}', "second event")
check.ok(lines[3]:find('^{"time":[%d.e-]+}$') ~= nil, "empty event: " .. lines[3])

-- values that are not JSON
check.raises("expected a table with string keys, got a sequence", run.log, run, {1, 2})
check.raises("json: f is a function, expected a number", run.log, run, { f = print })
check.raises("mixes string keys with other keys", run.log, run, { a = { 1, x = 2 } })
local cyc = {}
cyc.self = cyc
check.raises("nested more than 32 deep", run.log, run, { c = cyc })

-- save_config with a table of our own
check.eq(run:save_config{ extra = true, seed = 3 }, true, "save_config")
check.eq(check.read(run:path("config.json")), '{"extra":true,"seed":3}\n',
         "config.json rewritten")

-- closing, and use after close
run:close()
check.raises("attempt to use a closed run", run.log, run, { a = 1 })
check.eq(tostring(run), "bd.Run(closed)", "tostring of a closed run")

-- opening again continues metrics.jsonl; overwrite = true starts it over
local again <close> = bd.run("test-run", { root = root })
again:log{ loss = 1 }
local n = 0
for _ in check.read(again:path("metrics.jsonl")):gmatch("[^\n]+") do n = n + 1 end
check.eq(n, 4, "opening again appends")
-- one writer per run folder: a second open of it here says so
check.raises("run: '" .. root .. "/test-run' is in use by process", bd.run, "test-run",
             { root = root })
again:close()
local fresh <close> = bd.run("test-run", { root = root, overwrite = true })
check.eq(check.read(fresh:path("metrics.jsonl")), "", "overwrite starts it empty")
check.raises("run: unknown option 'resume' (allowed: root, overwrite)", bd.run, "x",
             { root = root, resume = true })

-- bad names are configuration errors; a directory that cannot be made
-- raises the reason
check.raises("run: name 'a/b' has '/'", bd.run, "a/b", { root = root })
check.raises("run: name '..' starts with '.'", bd.run, "..", { root = root })
check.raises("cannot create directory", bd.run, "x", { root = "/proc/no-such-dir" })
os.execute("mkdir -p " .. root .. " && touch " .. root .. "/a-file")
check.raises("run: cannot create directory '" .. root .. "/a-file'", bd.run, "a-file",
             { root = root })

-- bd.write_atomic: the whole file, replaced at once; no temp file left
local target = root .. "/atomic.txt"
check.eq(bd.write_atomic(target, "first\n"), true, "write_atomic")
check.eq(bd.write_atomic(target, "second\0bytes"), true, "over an old file")
check.eq(check.read(target), "second\0bytes", "the new bytes, binary safe")
local listing = io.popen("ls " .. root):read("a")
check.ok(not listing:find("atomic.txt.tmp", 1, true), "no temp file left: " .. listing)
local bad, why, where = bd.write_atomic(root .. "/no/such/dir/x.txt", "x")
check.ok(bad == nil and why:find("cannot create", 1, true) and where == "io",
         "a folder that does not exist: " .. tostring(why))

os.execute("rm -rf " .. root)
check.done()
