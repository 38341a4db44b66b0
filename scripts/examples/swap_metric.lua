-- Swap a metric at run time: measure with the build's "bump" metric, load
-- another plugin that provides "bump" from a folder, measure with that one,
-- and keep measuring with the first.
--
--   bdrun scripts/examples/swap_metric.lua [from=FOLDER]
--
-- FOLDER holds a bd_*.so that provides a metric "bump"; the default is the
-- test fixture built with the tree bdrun comes from
-- (<build>/tests/fixtures/metric_swap, from tests/fixtures/metric_swap/bump_v2.c:
-- a second version that reports only count_mean and version = 2), so the
-- script runs from any folder.
local cfg = bd.config{ from = "" }

-- 81 images of one bump each, on a lattice of 2 pixels
local data = bd.data.bumps{ size = 16, sigma = 1.0, dx = 2, dy = 2 }

-- Measure the dataset with a metric and log its numbers.
local function measure(metric)
  local numbers = {}
  for name, value in pairs(metric(data.images, data.labels)) do
    if type(value) == "number" then
      numbers[#numbers + 1] = string.format("%s=%.3g", name, value)
    end
  end
  table.sort(numbers)
  bd.log.info("%s: %s", metric.plugin, table.concat(numbers, " "))
end

local old = bd.metric("bump", { tolerance = 1.0 })   -- the build's plugin
measure(old)
if cfg.from == "" then -- <build>/plugins/bd_bump.so -> <build>/tests/fixtures/metric_swap
  cfg.from = old.plugin:match("^(.*)/plugins/[^/]*$") .. "/tests/fixtures/metric_swap"
end

-- From here on, "bump" is the folder's plugin, for every bd.metric("bump").
local new = bd.metric("bump", {}, { from = cfg.from })
measure(new)

-- A metric keeps the plugin it was made from: `old` still measures with the
-- build's one, which stays loaded as long as `old` lives.
measure(old)

-- The old plugin's folder gives the name back to it.
measure(bd.metric("bump", { tolerance = 1.0 }, { from = old.plugin:match("(.*)/") }))
