-- How bdrun fails: runs bdrun on small scripts and checks the message, the
-- traceback and the exit status. CTest passes the bdrun to test:
--   bdrun test_errors.lua bdrun=/path/to/bdrun
local check = require "check"
local cfg = bd.config{ bdrun = "bdrun" }

local dir = check.scratch()

-- Run bdrun with the script text and arguments; returns output, exit code.
local function bdrun(script, args)
  local path = dir .. "/fixture.lua"
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  local p = io.popen(string.format("cd %s && %s fixture.lua %s 2>&1", dir,
                                   cfg.bdrun, args or ""))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

-- a Lua error: file:line, the traceback, exit status 1
local out, code = bdrun("local x = 1\nlocal function f()\n  error('broken here')\nend\nf()\n")
check.eq(code, 1, "exit status of a failing script")
check.ok(out:find("bdrun: fixture.lua:3: broken here", 1, true), "file:line in: " .. out)
check.ok(out:find("stack traceback:", 1, true), "traceback in: " .. out)
check.ok(out:find("fixture.lua:5: in main chunk", 1, true), "caller line in: " .. out)

-- an error raised inside bd (a released tensor) points at the script line
out, code = bdrun("local t = bd.tensor.zeros{2}\nt:release()\nprint(t:numel())\n")
check.eq(code, 1, "exit status on a released tensor")
check.ok(out:find("fixture.lua:3: attempt to use a released tensor", 1, true),
         "released tensor message in: " .. out)

-- a syntax error
out, code = bdrun("local = 3\n")
check.eq(code, 1, "exit status on a syntax error")
check.ok(out:find("fixture.lua:1:", 1, true), "syntax error line in: " .. out)

-- success
out, code = bdrun("print('fine')\n")
check.eq(code, 0, "exit status of a good script")
check.eq(out, "fine\n", "output of a good script")

-- configuration errors: one line, no traceback, exit status 1
local conf = "local cfg = bd.config{ epochs = 40, lr = 3e-4, name = 'a', ema = true }\nprint(cfg.epochs)\n"
local function one_line(args, want)
  local o, c = bdrun(conf, args)
  check.eq(c, 1, "exit status for " .. args)
  check.eq(o, "bdrun: " .. want .. "\n", "message for " .. args)
end
one_line("epocs=3", "fixture.lua:1: config: unknown key 'epocs' (allowed: ema, epochs, lr, name; did you mean 'epochs'?)")
one_line("epochs=3.5", "fixture.lua:1: config: epochs = '3.5', expected an integer (default 40)")
one_line("epochs=many", "fixture.lua:1: config: epochs = 'many', expected an integer (default 40)")
one_line("lr=fast", "fixture.lua:1: config: lr = 'fast', expected a number (default 0.0003)")
one_line("lr=nan", "fixture.lua:1: config: lr = 'nan', expected a number (default 0.0003)")
one_line("ema=yes", "fixture.lua:1: config: ema = 'yes', expected true or false")
one_line("epochs", "argument 'epochs' is not key=value (a key is a name: letters, digits, '_')")
one_line("epochs=1 epochs=2", "argument 'epochs=2': key given twice")
out, code = bdrun(conf, "epochs=3")
check.eq(code, 0, "exit status with a good override")
check.ok(out:find("config: epochs = 3 (default 40)\n", 1, true), "override logged: " .. out)
check.ok(out:find("\n3\n$") ~= nil, "override applied: " .. out)
out, code = bdrun("print(1)\n", "k=1")
check.eq(code, 1, "exit status when no bd.config reads the arguments")
check.ok(out:find("key=value arguments given (k) but the script never called bd.config", 1, true),
         "unread arguments message: " .. out)

-- a missing script, options
local p = io.popen(cfg.bdrun .. " " .. dir .. "/missing.lua 2>&1")
out = p:read("a")
check.ok(out:find("cannot open", 1, true), "missing script message: " .. out)
check.eq(select(3, p:close()), 1, "exit status for a missing script")
p = io.popen(cfg.bdrun .. " --version")
check.ok(p:read("a"):find("^bdrun %d+%.%d+%.%d+ %(Lua 5%.4"), "--version")
check.eq(select(3, p:close()), 0, "exit status of --version")
p = io.popen(cfg.bdrun .. " --help")
check.ok(p:read("a"):find("usage: bdrun script.lua", 1, true), "--help")
check.eq(select(3, p:close()), 0, "exit status of --help")
p = io.popen(cfg.bdrun .. " --nope 2>&1")
check.ok(p:read("a"):find("unknown option '--nope'", 1, true), "unknown option")
check.eq(select(3, p:close()), 2, "exit status of a usage error")

-- subcommands
p = io.popen(cfg.bdrun .. " plugins 2>&1")
out = p:read("a")
p:close()
check.ok(out:find("search path:", 1, true) and out:find("plugins:", 1, true),
         "bdrun plugins lists the search path and the plugins: " .. out)
p = io.popen(cfg.bdrun .. " ckpt 2>&1")
check.ok(p:read("a"):find("inspect", 1, true), "bdrun ckpt prints its usage")
check.eq(select(3, p:close()), 2, "exit status of bdrun ckpt without a command")

os.execute("rm -rf " .. dir)
check.done()
