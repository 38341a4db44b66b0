-- Assertions for the Lua tests: each prints a failure with the caller's
-- line, and check.done() raises (so bdrun exits non-zero) if any failed.
local check = { passed = 0, failed = 0 }

local function report(ok, msg)
  if ok then
    check.passed = check.passed + 1
  else
    check.failed = check.failed + 1
    local info = debug.getinfo(3, "Sl")
    print(string.format("FAIL %s:%d: %s", info.short_src, info.currentline, msg))
  end
end

function check.ok(cond, msg) report(cond, msg or "expected a true value") end

function check.eq(got, want, what)
  report(got == want, string.format("%s: got %s, expected %s", what or "value",
                                    tostring(got), tostring(want)))
end

-- fn(...) must raise an error whose message contains `needle` (plain text).
function check.raises(needle, fn, ...)
  local ok, err = pcall(fn, ...)
  report(not ok and string.find(tostring(err), needle, 1, true) ~= nil,
         string.format("expected an error containing %q, got %s", needle,
                       ok and "no error" or tostring(err)))
  return err
end

-- The whole of a small file, or nil.
function check.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- A fresh empty folder under the system's temp folder.
function check.scratch()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  return dir
end

-- The path of scripts/<name> from a test in tests/lua.
function check.script(name)
  return arg[0]:gsub("[^/]*$", "") .. "../../scripts/" .. name
end

-- Runs `script` with `bdrun` in folder `dir` on one thread (so that every
-- run computes alike) with the words of `args`: its output and exit code.
function check.run_script(dir, bdrun, script, args)
  local p = io.popen(string.format("cd %s && OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 %s %s %s"
                                   .. " 2>&1", dir, bdrun, script, args))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

-- A smoke test's runner: a fresh folder, and run(extra, base) that runs
-- scripts/<name> there with the words of `base` (default `args`) and `extra`
-- (as check.run_script: output and exit code).
function check.smoke(bdrun, name, args)
  local script, dir = check.script(name), check.scratch()
  local function run(extra, base)
    return check.run_script(dir, bdrun, script, (base or args) .. " " .. (extra or ""))
  end
  return run, dir
end

function check.done()
  print(string.format("%d passed, %d failed", check.passed, check.failed))
  if check.failed > 0 then error("some checks failed", 0) end
end

-- The number of elements that differ between two models' parameters.
function check.count_differences(m1, m2)
  local function flat(t, out)
    for _, v in ipairs(t) do
      if type(v) == "table" then flat(v, out) else out[#out + 1] = v end
    end
    return out
  end
  local p2, n = m2:parameters(), 0
  for name, t in pairs(m1:parameters()) do
    local x, y = flat(t:to_table(), {}), flat(p2[name]:to_table(), {})
    for i = 1, #x do if x[i] ~= y[i] then n = n + 1 end end
  end
  return n
end

return check
