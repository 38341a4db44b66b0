-- bd.config: run by CTest as
--   bdrun test_config.lua epochs=7 lr=1e-3 name=12 ema=false size=2e1 step=2
local check = require "check"

local cfg = bd.config{ epochs = 40, lr = 3e-4, name = "quick", ema = true,
                       size = 16, seed = 1, list = {1, 2}, step = 0.5 }
check.eq(cfg.epochs, 7, "integer override")
check.eq(math.type(cfg.epochs), "integer", "epochs stays an integer")
check.eq(cfg.lr, 1e-3, "number override")
check.eq(cfg.name, "12", "a string default keeps the text")
check.eq(cfg.ema, false, "boolean override")
check.eq(cfg.size, 20, "2e1 is an integer")
check.eq(math.type(cfg.size), "integer", "2e1 becomes an integer")
check.eq(cfg.seed, 1, "default kept")
check.eq(math.type(cfg.step), "float", "a float default stays a float")
check.eq(cfg.step, 2.0, "float override")
check.eq(cfg.list[2], 2, "a table default is kept")
check.raises("bd.config: called a second time", bd.config, { epochs = 1 })
check.raises("table expected", bd.config, 3)
check.done()
