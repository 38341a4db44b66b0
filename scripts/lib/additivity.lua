-- Is a code a SUM of an x code and a y code? On a complete grid of labels
-- (G_x values of x, G_y of y, each pair once) a code is a table of cells,
-- one vector per label, and per feature the two-way decomposition
--   code(x_i, y_j) = grand mean + x effect_i + y effect_j + interaction_ij
-- splits its between-label variance into the main effects (what a sum
-- f(x) + g(y) can hold) and the interaction (what it cannot).
--   additive share = (V_x + V_y) / (V_x + V_y + V_xy), summed over features
-- An ideal Clifford torus (cos a, sin a, cos b, sin b) reads 1; a 3D torus
-- ((R + r cos b) cos a, (R + r cos b) sin a, r sin b) with R / r = 2 reads
-- 0.90 (the products cos b cos a and cos b sin a are interaction, variance
-- 2 x r^2 / 4 = 0.5 of 5); a place code g(x) h(y) (a bump image: each
-- pixel a product of an x and a y profile) far less.
--
--   local additivity = require "additivity"
--   local a = additivity.read({ act1, act2 }, labels)  -- R = 2 replicates
--   -- a.share, a.interaction, a.main_x, a.main_y, a.between, a.noise
--
-- Noise: a network's code at t > 0 is read on noisy inputs, and each draw
-- adds its own label-by-label scatter, which a single draw per label puts
-- into the interaction (it has (G_x - 1)(G_y - 1) of the G_x G_y - 1
-- degrees of freedom). So the code is read R >= 2 times with independent
-- noise per label and per draw (bd.represent's shared_noise = 0, R seeds:
-- the replicates), and the estimate is two-way ANOVA with replication:
-- the within-cell mean square MSW (each cell's sample variance over its R
-- replicates, averaged over cells) is unbiased for the mean noise variance
-- s^2 whatever each cell's own variance, and the cell means' sums of
-- squares carry s^2 / R times their degrees of freedom:
--   E[SS_x]  = SS_x(clean)  + (G_x - 1) s^2 / R
--   E[SS_y]  = SS_y(clean)  + (G_y - 1) s^2 / R
--   E[SS_xy] = SS_xy(clean) + (G_x - 1)(G_y - 1) s^2 / R
-- (exact for independent noise of any variance per cell). Subtracting
-- MSW / R times each makes every sum of squares unbiased; the share is
-- their ratio (consistent, and unbiased to first order), not clipped to
-- [0, 1], so a code with little signal left can read outside it.
-- The noise must be independent across labels: noise shared by every label
-- in a draw moves them together, which MSW counts and the effects do not.
local stats = require "stats"

local additivity = {}

-- The values of a nested table (a tensor's to_table) in order.
local function flatten(t, out)
  out = out or {}
  if type(t) ~= "table" then
    out[#out + 1] = t
  else
    for _, v in ipairs(t) do flatten(v, out) end
  end
  return out
end

-- A code (a tensor (n, ...) or a table of n rows, nested or flat) as a
-- table of n flat rows of numbers.
function additivity.rows(code)
  local t = type(code) == "table" and code or code:to_table()
  local rows = {}
  for i, r in ipairs(t) do rows[i] = flatten(r) end
  return rows
end

-- The sorted distinct values of one label column and each label's index
-- among them (values equal to 1e-6 are one value).
local function levels(labels, col)
  local key = function(v) return math.floor(v * 1e6 + 0.5) end
  local seen, values = {}, {}
  for _, l in ipairs(labels) do
    local k = key(l[col])
    if not seen[k] then seen[k], values[#values + 1] = true, l[col] end
  end
  table.sort(values)
  local index = {}
  for i, v in ipairs(values) do index[key(v)] = i end
  local of = {}
  for n, l in ipairs(labels) do of[n] = index[key(l[col])] end
  return of, #values
end

-- Each label's cell (i, j) on the grid, checked complete: every (x, y)
-- pair of the distinct values exactly once.
local function grid_cells(labels)
  local ix, gx = levels(labels, 1)
  local iy, gy = levels(labels, 2)
  local seen = {}
  for n = 1, #labels do
    local c = (iy[n] - 1) * gx + ix[n]
    if seen[c] or gx < 2 or gy < 2 then
      seen = nil
      break
    end
    seen[c] = true
  end
  if not seen or gx * gy ~= #labels then
    error(string.format("additivity: %d labels with %d values of x and %d of y are not a"
                        .. " complete grid; expected each (x, y) pair exactly once, at least"
                        .. " 2 x 2", #labels, gx, gy), 3)
  end
  return ix, iy, gx, gy
end

-- The replicates as lists of rows, checked alike: R lists of n rows of d.
local function replicate_rows(replicates, n)
  if type(replicates) ~= "table" then
    error("additivity: replicates is a " .. type(replicates) .. ", expected a list of codes", 3)
  end
  local out, d = {}, nil
  for r, code in ipairs(replicates) do
    out[r] = additivity.rows(code)
    d = d or #out[r][1]
    if #out[r] ~= n or #out[r][1] ~= d then
      error(string.format("additivity: replicate %d has %d rows of %d values, expected %d"
                          .. " rows (one per label) of %d", r, #out[r], #out[r][1] or 0, n,
                          d), 3)
    end
  end
  if #out == 0 then error("additivity: no replicates, expected a list of codes", 3) end
  return out, d
end

-- The decomposition of one feature k: its sums of squares over the cells
-- of the cell means (x, y, interaction) and within cells.
local function feature_sums(reps, k, ix, iy, gx, gy)
  local R, n = #reps, #ix
  local cell, within = {}, 0
  for c = 1, n do
    local m = 0
    for r = 1, R do m = m + reps[r][c][k] end
    m = m / R
    for r = 1, R do within = within + (reps[r][c][k] - m) ^ 2 end
    cell[c] = m
  end
  local mx, my, grand = {}, {}, 0
  for i = 1, gx do mx[i] = 0 end
  for j = 1, gy do my[j] = 0 end
  for c = 1, n do
    mx[ix[c]], my[iy[c]] = mx[ix[c]] + cell[c] / gy, my[iy[c]] + cell[c] / gx
    grand = grand + cell[c] / n
  end
  local ss_x, ss_y, ss_xy = 0, 0, 0
  for i = 1, gx do ss_x = ss_x + gy * (mx[i] - grand) ^ 2 end
  for j = 1, gy do ss_y = ss_y + gx * (my[j] - grand) ^ 2 end
  for c = 1, n do ss_xy = ss_xy + (cell[c] - mx[ix[c]] - my[iy[c]] + grand) ^ 2 end
  return ss_x, ss_y, ss_xy, within
end

-- The additivity of a code read R times at the same labels.
--   replicates  a list of R codes (tensors (n, ...) or tables of rows); R = 1
--               has no noise estimate (the raw decomposition)
--   labels      (n, 2) tensor or table of { x, y }: a complete grid
--   opts.correct  false: skip the noise correction (for comparison)
-- Returns, in variance per label summed over features: { share (the
-- additive share), interaction (1 - share), main_x, main_y, between (their
-- sum), noise (MSW summed over features: the noise variance of one draw;
-- 0 when R = 1), replicates = R, grid = { gx, gy }, features = d }.
function additivity.read(replicates, labels, opts)
  local rows = type(labels) == "table" and labels or labels:to_table()
  local ix, iy, gx, gy = grid_cells(rows)
  local reps, d = replicate_rows(replicates, #rows)
  local R, n = #reps, #rows
  local x, y, xy, within = 0, 0, 0, 0
  for k = 1, d do
    local a, b, c, w = feature_sums(reps, k, ix, iy, gx, gy)
    x, y, xy, within = x + a, y + b, xy + c, within + w
  end
  local msw = R > 1 and within / (n * (R - 1)) or 0
  if not (opts and opts.correct == false) then
    x, y = x - (gx - 1) * msw / R, y - (gy - 1) * msw / R
    xy = xy - (gx - 1) * (gy - 1) * msw / R
  end
  local between = (x + y + xy) / n
  local share = between > 0 and (x + y) / n / between or 0 / 0
  return { share = share, interaction = 1 - share, main_x = x / n, main_y = y / n,
           between = between, noise = msw, replicates = R, grid = { gx, gy }, features = d }
end

-- `code` (a tensor (n, ...) or a table of rows) as a table of flat rows with
-- independent Gaussian noise of standard deviation sd added to every value,
-- seeded (stats.uniforms): one replicate of a code read in noise.
function additivity.with_noise(code, sd, seed)
  local u = stats.uniforms(seed)
  local out = {}
  for i, row in ipairs(additivity.rows(code)) do
    local v = {}
    for k, value in ipairs(row) do v[k] = value + sd * stats.normal(u) end
    out[i] = v
  end
  return out
end

-- R replicates of `code` at `labels` in isotropic noise whose variance,
-- summed over the code's features, is `ratio` times the code's own
-- between-label variance: a control at a measured code's noise level
-- (ratio = its noise / its between). Seeds seed .. seed + R - 1.
function additivity.noisy_replicates(code, labels, ratio, R, seed)
  local clean = additivity.read({ code }, labels)
  local sd = math.sqrt(ratio * clean.between / clean.features)
  local out = {}
  for r = 1, R do out[r] = additivity.with_noise(code, sd, seed + r - 1) end
  return out
end

return additivity
