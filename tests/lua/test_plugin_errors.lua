-- How scripts see plugin failures (issue 20, items 3, 5, 9, 10): a damaged
-- plugin file cannot kill bdrun, bd.model raises the plugin's own message,
-- a plugin that takes a built-in name is said, unknown names hint at
-- BD_PLUGIN_PATH, {from = folder} works or is refused. CTest passes:
--   bdrun test_plugin_errors.lua bdrun=<bdrun> fixtures=<fixture plugins> plugins=<build plugins>
local check = require "check"
local cfg = bd.config{ bdrun = "bdrun", fixtures = "", plugins = "" }

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir .. "/p"))

-- Run bdrun on a script with BD_PLUGIN_PATH set; returns output, exit code.
local function bdrun(script, path)
  local f = assert(io.open(dir .. "/s.lua", "w"))
  f:write(script)
  f:close()
  local p = io.popen(string.format("cd %s && BD_PLUGIN_PATH=%s %s s.lua 2>&1",
                                   dir, path or "", cfg.bdrun))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

-- item 3: a truncated plugin (the issue's `head -c 3000`) is skipped with a
-- warning naming the file and the reason; the script runs on
local mlp = assert(io.open(cfg.plugins .. "/bd_mlp.so", "rb"))
local part = mlp:read(3000)
mlp:close()
local f = assert(io.open(dir .. "/p/bd_x.so", "wb"))
f:write(part)
f:close()
local out, code = bdrun("print(bd.model('mlp', { size = 4 }).arch)\n", dir .. "/p")
check.eq(code, 0, "exit status with a truncated plugin on the path: " .. out)
check.ok(out:find("plugin '" .. dir .. "/p/bd_x.so': elf: ", 1, true)
         and out:find("past the end of the file (3000 bytes): truncated or damaged",
                      1, true) and out:find("mlp\n", 1, true), out)
-- a plugin that damages a segment's range but keeps its section headers
out, code = bdrun("print(#bd.models())\n", dir .. "/p")
check.eq(code, 0, "bd.models() with a damaged plugin: " .. out)

-- item 5: the plugin's own message, raised at the script's line
out, code = bdrun("local m = bd.model('fx_nosize', {})\nprint(m)\n", cfg.fixtures)
check.eq(code, 1, "exit status of a failing create")
check.ok(out:find("s.lua:1: model: denoiser 'fx_nosize': create returned an"
                  .. " instance with channels = 0 and size = 0; its create must"
                  .. " set inst->channels and inst->size", 1, true), out)
check.ok(not out:find("bd.Model expected", 1, true), "no misreport: " .. out)

-- item 9: a plugin that shadows the build's unet is said during a script run
check.ok(out:find("bd_fx_shadow.so': validate: denoiser 'unet' is already"
                  .. " provided by '", 1, true) and out:find("; skipped", 1, true),
         "shadowing warned: " .. out)
-- ... and an init that hands out no info is reported as such
check.ok(out:find("bd_plugin_init returned ok without its plugin info", 1, true),
         "init without info: " .. out)

-- item 10: an unknown denoiser lists what is known and hints at the path
out, code = bdrun("bd.model('mine', {})\n")
check.eq(code, 1, "exit status of an unknown denoiser")
check.ok(out:find("s.lua:1: unknown denoiser 'mine' (loaded: ", 1, true)
         and out:find("unet", 1, true) and out:find("BD_PLUGIN_PATH", 1, true)
         and out:find("{from = folder}", 1, true), out)

-- {from = folder}: loads from the folder, or refuses
out, code = bdrun(string.format("local m = bd.model('fx_linear', { channels = 2 },"
                                .. " { from = %q })\nprint(m.channels, m.size)\n",
                                cfg.fixtures))
check.eq(code, 0, "bd.model from a folder: " .. out)
check.ok(out:find("2\t8\n", 1, true), out)
out, code = bdrun(string.format("bd.model('unet', {}, { from = %q })\n", cfg.fixtures))
check.eq(code, 1, "a taken name from a folder")
check.ok(out:find("model 'unet': from = '" .. cfg.fixtures .. "', but '", 1, true)
         and out:find("bd_unet.so' provides it", 1, true), out)
out, code = bdrun("bd.model('unet', {}, { form = 'x' })\n")
check.eq(code, 1, "a misspelt option")
check.eq(out, "bdrun: s.lua:1: model 'unet': unknown option 'form' (allowed: from)\n",
         "message")

-- a misspelt model key lists the keys the denoiser reads
out, code = bdrun("bd.model('mlp', { size = 4, hiden = 8 })\n")
check.eq(code, 1, "a misspelt model key")
check.ok(out:find("unknown key 'hiden' for mlp (allowed: ", 1, true)
         and out:find("did you mean 'hidden'?)", 1, true), out)

-- scripts/examples/swap_metric.lua runs from any folder (here: a temporary
-- one), finding its fixture next to the plugins of the build bdrun is from
local root = debug.getinfo(1, "S").source:match("^@(.*)/tests/lua/[^/]*$")
local p = io.popen(string.format("cd %s && %s %s/scripts/examples/swap_metric.lua 2>&1",
                                 dir, cfg.bdrun, root))
out = p:read("a")
code = select(3, p:close())
check.eq(code, 0, "swap_metric.lua from another folder: " .. out)
check.ok(out:find("/tests/fixtures/metric_swap/bd_bump.so: count_mean=1 version=2",
                  1, true), out)

os.execute("rm -rf " .. dir)
check.done()
