-- Swapping a metric at run time: bd.metric("bump") from the build's
-- plugins, then bd.metric("bump", cfg, { from = folder }) from the fixture
-- folder of tests/metric_swap.cmake (a second "bump" that reports only
-- count_mean and version = 2), and back. Runs from the build's tests folder.
local check = require "check"
local v2_dir = "fixtures/metric_swap"

local data = bd.data.bumps{ size = 8, sigma = 1, dx = 2, dy = 2 }
local images, labels = data.images, data.labels

local v1 = bd.metric("bump", { tolerance = 1 })
check.eq(v1.name, "bump", "name")
check.ok(v1.plugin:find("/plugins/bd_bump.so$"), "the build's plugin: " .. v1.plugin)
local first = v1(images, labels)
check.eq(first.accuracy, 1, "v1: every bump found at its place")
check.eq(first.version, nil, "v1 reports no version")

-- swap: the name now resolves to the folder's plugin
local v2 = bd.metric("bump", { threshold = 0 }, { from = v2_dir })
check.ok(v2.plugin:find("metric_swap/bd_bump.so$"), "v2's plugin: " .. v2.plugin)
check.ok(tostring(v2):find("^bd%.Metric%(bump, .*metric_swap/bd_bump%.so%)$"), tostring(v2))
local second = v2(images, labels)
check.eq(second.version, 2, "v2 reports its version")
check.eq(second.count_mean, 1, "one bump per image")
check.eq(second.accuracy, nil, "v2 reports no accuracy")
check.eq(bd.metric("bump").plugin, v2.plugin, "a plain bd.metric gets v2 now")
check.raises("unknown key 'tolerance' for bump", bd.metric, "bump", { tolerance = 1 })

-- the first metric keeps its plugin
local again = v1(images, labels)
check.eq(again.accuracy, 1, "v1 still measures with v1")
check.eq(again.version, nil, "and reports as v1")

-- and its folder swaps back
local back = bd.metric("bump", {}, { from = v1.plugin:match("(.*)/") })
check.eq(back.plugin, v1.plugin, "back to the build's plugin")
check.eq(back(images, labels).accuracy, 1, "v1 again")
check.eq(v2(images, labels).version, 2, "v2 still measures with v2")

-- errors
check.raises("metric 'manifold': no plugin in folder '" .. v2_dir .. "' provides it"
             .. " (its plugins provide: bump, percolation)",
             bd.metric, "manifold", {}, { from = v2_dir })
check.raises("cannot read folder 'nowhere'", bd.metric, "bump", {}, { from = "nowhere" })
check.raises("metric: unknown option 'form' (allowed: from)", bd.metric, "bump", {},
             { form = v2_dir })
check.raises("metric: from is a number, expected a folder", bd.metric, "bump", {},
             { from = 1 })

v1, v2, back = nil, nil, nil
collectgarbage()
check.done()
