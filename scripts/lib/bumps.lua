-- A plain bump counter for generated images, in Lua: threshold, 4-connected
-- components, intensity-weighted centroids. Its results carry the names of
-- the bump metric plugin's (plugins/metrics/bump), so a script can switch
-- between the two without renaming.
--
-- Pixels are in [-1, 1] (bd.data's convention, v = (p + 1) / 2 in [0, 1]);
-- a pixel belongs to a bump when p > threshold (default 0: v > 0.5, which a
-- sigma-1 bump exceeds within about 1.2 pixels of its centre). Positions are
-- in pixel units where pixel j spans [j, j + 1), like the labels.
local bumps = {}

-- The bump metric plugin's per-image classes (its result `class`,
-- plugins/metrics/bump/bump.c), by name; tests/lua/test_bumps.lua checks
-- them against the plugin.
bumps.CLASS = { none = 0, several = 1, wrong = 2, correct = 3 }

-- The bumps of one image (an H x W table of rows): a list of
-- { x =, y =, pixels = }, centroid weighted by v.
function bumps.find(rows, threshold)
  threshold = threshold or 0
  local H, W = #rows, #rows[1]
  local seen, found = {}, {}
  for y0 = 1, H do
    for x0 = 1, W do
      local k0 = (y0 - 1) * W + x0
      if rows[y0][x0] > threshold and not seen[k0] then
        -- flood fill one component
        local stack, sx, sy, sw, count = { {x0, y0} }, 0, 0, 0, 0
        seen[k0] = true
        while #stack > 0 do
          local p = table.remove(stack)
          local x, y = p[1], p[2]
          local v = (rows[y][x] + 1) / 2
          sx, sy, sw, count = sx + v * (x - 0.5), sy + v * (y - 0.5), sw + v, count + 1
          for _, d in ipairs{ {1, 0}, {-1, 0}, {0, 1}, {0, -1} } do
            local nx, ny = x + d[1], y + d[2]
            local k = (ny - 1) * W + nx
            if nx >= 1 and nx <= W and ny >= 1 and ny <= H and not seen[k]
               and rows[ny][nx] > threshold then
              seen[k] = true
              stack[#stack + 1] = { nx, ny }
            end
          end
        end
        found[#found + 1] = { x = sx / sw, y = sy / sw, pixels = count }
      end
    end
  end
  return found
end

-- Score images (N, 1, H, W) against the labels (N, 2) they were asked for,
-- under the bump metric's names:
--   accuracy      one bump, within `tolerance` pixels of (x, y) in both coordinates
--   acc_x, acc_y  one bump, within tolerance in that coordinate
--   frac_single, frac_multi, frac_none   fractions with one, several, no bumps
--   mean_error    mean distance of the bump to its label, over single-bump images
--   n             images scored
function bumps.score(images, labels, opts)
  opts = opts or {}
  local tol = opts.tolerance or 1.0
  local imgs, labs = images:to_table(), labels:to_table()
  local r = { accuracy = 0, acc_x = 0, acc_y = 0, frac_single = 0, frac_multi = 0,
              frac_none = 0, mean_error = 0, n = #imgs }
  for i = 1, #imgs do
    local found = bumps.find(imgs[i][1], opts.threshold)
    if #found == 0 then
      r.frac_none = r.frac_none + 1
    elseif #found > 1 then
      r.frac_multi = r.frac_multi + 1
    else
      local dx = math.abs(found[1].x - labs[i][1])
      local dy = math.abs(found[1].y - labs[i][2])
      r.frac_single = r.frac_single + 1
      r.mean_error = r.mean_error + math.sqrt(dx * dx + dy * dy)
      if dx <= tol then r.acc_x = r.acc_x + 1 end
      if dy <= tol then r.acc_y = r.acc_y + 1 end
      if dx <= tol and dy <= tol then r.accuracy = r.accuracy + 1 end
    end
  end
  r.mean_error = r.frac_single > 0 and r.mean_error / r.frac_single or 0 / 0
  for _, k in ipairs{ "accuracy", "acc_x", "acc_y", "frac_single", "frac_multi",
                      "frac_none" } do
    r[k] = r[k] / r.n
  end
  return r
end

return bumps
