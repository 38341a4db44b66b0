-- An experiment's report: one HTML page that states the question, the
-- setup, the figures and the answer in numbers; and the SVG plots it shows
-- (line plots of curves over training, scatter plots coloured by a value).
--
--   local report = require "report"
--   local doc = report.new("Imbalance")
--   doc:question("Is x learned before y when x is sampled ten times more densely?")
--   doc:table({ { "steps", 1500 }, { "lr", 1e-3 } }, { header = { "setting", "value" } })
--   report.save(run:path("acc.svg"), report.lines{ title = "accuracy", series = {
--     { name = "acc_x", x = { 100, 200 }, y = { 0.1, 0.7 } } } })
--   doc:figure("acc.svg", "accuracy over training")   -- a path relative to the page
--   doc:answer("x first: lag 420 +- 80 steps")
--   assert(doc:write(run:path("report.html")))
--
-- All text is escaped; figures are referenced by relative path, so the
-- page and its figures move together.
local report = {}

-- ---- text -------------------------------------------------------------------

local ENTITIES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                   ['"'] = "&quot;", ["'"] = "&#39;" }

-- Text made safe for HTML and SVG, as content or as an attribute value.
function report.escape(text)
  return (tostring(text):gsub("[&<>\"']", ENTITIES))
end

-- A number for people: 4 significant digits, integers as they are,
-- NaN and missing values as a dash.
function report.format(v)
  if v == nil then return "-" end
  if type(v) ~= "number" then return tostring(v) end
  if v ~= v then return "-" end
  if math.type(v) == "integer" or (v == math.floor(v) and math.abs(v) < 1e9) then
    return string.format("%d", math.tointeger(v) or v)
  end
  return string.format("%.4g", v)
end

-- ---- the page ---------------------------------------------------------------

local STYLE = [[
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.6em; }
.question { font-size: 1.1em; font-style: italic; }
.answer { font-size: 1.1em; border-left: 4px solid #2ca02c; padding: 0.4em 0.8em; background: #f3faf3; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { font-size: 0.9em; color: #555; max-width: 40em; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
]]

local Doc = {}
Doc.__index = Doc

-- A new page with its title (the first heading too).
function report.new(title)
  local doc = setmetatable({ title = title, parts = {} }, Doc)
  doc:add("<h1>" .. report.escape(title) .. "</h1>")
  return doc
end

-- Raw HTML, for what the helpers below do not cover; the caller escapes.
function Doc:add(html)
  self.parts[#self.parts + 1] = html
  return self
end

function Doc:heading(text)
  return self:add("<h2>" .. report.escape(text) .. "</h2>")
end

function Doc:paragraph(text)
  return self:add("<p>" .. report.escape(text) .. "</p>")
end

function Doc:question(text)
  return self:add('<p class="question">' .. report.escape(text) .. "</p>")
end

-- The answer, in numbers: one block, one paragraph per line of text.
function Doc:answer(text)
  local lines = {}
  for line in tostring(text):gmatch("[^\n]+") do
    lines[#lines + 1] = "<p>" .. report.escape(line) .. "</p>"
  end
  return self:add('<div class="answer">' .. table.concat(lines) .. "</div>")
end

-- Preformatted text (a log excerpt, a command line).
function Doc:pre(text)
  return self:add("<pre>" .. report.escape(text) .. "</pre>")
end

-- A table of rows (lists of cells; numbers are formatted with
-- report.format and right-aligned). opts: header (a list), caption.
function Doc:table(rows, opts)
  opts = opts or {}
  local out = { "<table>" }
  if opts.caption then
    out[#out + 1] = "<caption>" .. report.escape(opts.caption) .. "</caption>"
  end
  if opts.header then
    local cells = {}
    for _, h in ipairs(opts.header) do cells[#cells + 1] = "<th>" .. report.escape(h) .. "</th>" end
    out[#out + 1] = "<tr>" .. table.concat(cells) .. "</tr>"
  end
  for _, row in ipairs(rows) do
    local cells = {}
    for _, v in ipairs(row) do
      local class = type(v) == "number" and ' class="num"' or ""
      cells[#cells + 1] = "<td" .. class .. ">" .. report.escape(report.format(v)) .. "</td>"
    end
    out[#out + 1] = "<tr>" .. table.concat(cells) .. "</tr>"
  end
  out[#out + 1] = "</table>"
  return self:add(table.concat(out, "\n"))
end

-- A figure: an image (SVG or PNG) at a path relative to the page.
function Doc:figure(src, caption, width)
  local w = width and string.format(' width="%d"', width) or ""
  return self:add(string.format('<figure><img src="%s" alt="%s"%s/><figcaption>%s</figcaption></figure>',
                                report.escape(src), report.escape(caption or src), w,
                                report.escape(caption or "")))
end

function Doc:html()
  return table.concat({
    "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
    "<title>" .. report.escape(self.title) .. "</title>",
    "<style>" .. STYLE .. "</style></head><body>",
    table.concat(self.parts, "\n"), "</body></html>", "" }, "\n")
end

-- Write text to path whole and atomically (bd.write_atomic: a temp file
-- unique to the process and the write); true, or nil and a message.
function report.save(path, text)
  return bd.write_atomic(path, text)
end

function Doc:write(path)
  return report.save(path, self:html())
end

-- ---- plots --------------------------------------------------------------------

-- The tab10 colours, in order.
report.colors = { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" }

-- Viridis at nine even stops, interpolated linearly between them.
local VIRIDIS = { { 68, 1, 84 }, { 71, 44, 122 }, { 59, 81, 139 }, { 44, 113, 142 },
                  { 33, 144, 141 }, { 39, 173, 129 }, { 92, 200, 99 },
                  { 170, 220, 50 }, { 253, 231, 37 } }

-- The viridis colour of t in [0, 1] (clamped), as "#rrggbb".
function report.viridis(t)
  t = math.max(0, math.min(1, t)) * (#VIRIDIS - 1)
  local i = math.min(math.floor(t), #VIRIDIS - 2)
  local f, a, b = t - i, VIRIDIS[i + 1], VIRIDIS[i + 2]
  local c = {}
  for k = 1, 3 do c[k] = math.floor(a[k] + f * (b[k] - a[k]) + 0.5) end
  return string.format("#%02x%02x%02x", c[1], c[2], c[3])
end

local function finite(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end

-- "Nice" ticks over [lo, hi]: multiples of 1, 2 or 5 times a power of ten,
-- about `count` of them.
function report.ticks(lo, hi, count)
  count = count or 5
  if not (hi > lo) then return { lo } end
  local raw = (hi - lo) / count
  local p = 10 ^ math.floor(math.log(raw, 10))
  local step = p * 10
  for _, m in ipairs{ 1, 2, 5 } do
    if m * p >= raw then step = m * p; break end
  end
  local ticks = {}
  for k = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) do
    ticks[#ticks + 1] = k * step
  end
  return ticks
end

local function tick_label(v)
  if math.abs(v) < 1e-12 then return "0" end
  return string.format("%g", tonumber(string.format("%.6g", v)))
end

-- The range of the finite values of lists (each a list of numbers), widened
-- when empty or flat; fixed = { lo, hi } wins.
local function range(lists, fixed)
  if fixed then return fixed[1], fixed[2] end
  local lo, hi = math.huge, -math.huge
  for _, list in ipairs(lists) do
    for _, v in ipairs(list) do
      if finite(v) then lo, hi = math.min(lo, v), math.max(hi, v) end
    end
  end
  if lo > hi then return 0, 1 end
  if lo == hi then return lo - 0.5, hi + 0.5 end
  return lo, hi
end

-- The frame of a plot: axes box, ticks, labels, title. Returns the parts
-- list and functions that map data to pixels.
local function frame(opts, xlo, xhi, ylo, yhi, right_margin)
  local W, H = opts.width or 560, opts.height or 320
  local left, top, bottom = 56, opts.title and 30 or 12, 44
  local right = right_margin or 16
  local pw, ph = W - left - right, H - top - bottom
  local function px(x) return left + (x - xlo) / (xhi - xlo) * pw end
  local function py(y) return top + ph - (y - ylo) / (yhi - ylo) * ph end
  local out = {
    string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">',
                  W, H, W, H),
    string.format('<rect width="%d" height="%d" fill="white"/>', W, H),
  }
  local function text(x, y, s, anchor, extra)
    out[#out + 1] = string.format('<text x="%.1f" y="%.1f" text-anchor="%s"%s>%s</text>',
                                  x, y, anchor, extra or "", report.escape(s))
  end
  for _, t in ipairs(report.ticks(xlo, xhi, opts.xticks or 6)) do
    local x = px(t)
    out[#out + 1] = string.format('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>', x, top, x, top + ph)
    text(x, top + ph + 14, tick_label(t), "middle")
  end
  for _, t in ipairs(report.ticks(ylo, yhi, opts.yticks or 5)) do
    local y = py(t)
    out[#out + 1] = string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>', left, y, left + pw, y)
    text(left - 4, y + 4, tick_label(t), "end")
  end
  out[#out + 1] = string.format('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>',
                                left, top, pw, ph)
  if opts.title then text(W / 2, 18, opts.title, "middle", ' font-size="13"') end
  if opts.xlabel then text(left + pw / 2, H - 8, opts.xlabel, "middle") end
  if opts.ylabel then
    text(14, top + ph / 2, opts.ylabel, "middle",
         string.format(' transform="rotate(-90 14 %.1f)"', top + ph / 2))
  end
  return out, px, py, { left = left, top = top, width = pw, height = ph, W = W, H = H }
end

-- A line plot as SVG text. opts:
--   series  list of { name =, x = {..}, y = {..}, color =, dash = true }
--           (a non-finite y breaks the line; colours default to tab10)
--   hlines  list of { y =, label = }: dotted reference lines
--   title, xlabel, ylabel, width (560), height (320), xlim, ylim ({lo, hi})
function report.lines(opts)
  local xs, ys = {}, {}
  for _, s in ipairs(opts.series) do xs[#xs + 1] = s.x; ys[#ys + 1] = s.y end
  for _, h in ipairs(opts.hlines or {}) do ys[#ys + 1] = { h.y } end
  local xlo, xhi = range(xs, opts.xlim)
  local ylo, yhi = range(ys, opts.ylim)
  local widest = 0 -- the legend sits right of the axes
  for _, s in ipairs(opts.series) do
    if s.name then widest = math.max(widest, utf8.len(s.name) or #s.name) end
  end
  local out, px, py, box = frame(opts, xlo, xhi, ylo, yhi,
                                 widest > 0 and 44 + math.ceil(6.5 * widest) or nil)
  for _, h in ipairs(opts.hlines or {}) do
    out[#out + 1] = string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#888" stroke-dasharray="2,3"/>',
                                  box.left, py(h.y), box.left + box.width, py(h.y))
    if h.label then
      out[#out + 1] = string.format('<text x="%d" y="%.1f" fill="#666">%s</text>',
                                    box.left + 4, py(h.y) - 3, report.escape(h.label))
    end
  end
  local legend = {}
  for i, s in ipairs(opts.series) do
    local color = s.color or report.colors[(i - 1) % #report.colors + 1]
    local dash = s.dash and ' stroke-dasharray="6,3"' or ""
    local run = {}
    local function flush()
      if #run > 1 then
        out[#out + 1] = string.format('<polyline fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>',
                                      color, dash, table.concat(run, " "))
      elseif #run == 1 then
        local x, y = run[1]:match("([^,]+),([^,]+)")
        out[#out + 1] = string.format('<circle cx="%s" cy="%s" r="2" fill="%s"/>', x, y, color)
      end
      run = {}
    end
    for k = 1, #s.x do
      if finite(s.x[k]) and finite(s.y[k]) then
        run[#run + 1] = string.format("%.1f,%.1f", px(s.x[k]), py(s.y[k]))
      else
        flush()
      end
    end
    flush()
    if s.name then legend[#legend + 1] = { name = s.name, color = color, dash = dash } end
  end
  for i, l in ipairs(legend) do
    local y = box.top + 14 * i
    local x = box.left + box.width + 10
    out[#out + 1] = string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>',
                                  x, y - 4, x + 18, y - 4, l.color, l.dash)
    out[#out + 1] = string.format('<text x="%d" y="%d">%s</text>', x + 22, y, report.escape(l.name))
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n") .. "\n"
end

-- A scatter plot as SVG text, points coloured by a value on viridis with a
-- colour bar. opts: x, y, value (lists; value optional), value_label,
-- title, xlabel, ylabel, width (480), height (400), radius (3).
function report.scatter(opts)
  opts = setmetatable({ width = opts.width or 480, height = opts.height or 400 },
                      { __index = opts })
  local xlo, xhi = range({ opts.x }, opts.xlim)
  local ylo, yhi = range({ opts.y }, opts.ylim)
  local out, px, py, box = frame(opts, xlo, xhi, ylo, yhi, opts.value and 80 or 16)
  local vlo, vhi = range({ opts.value or {} })
  for k = 1, #opts.x do
    if finite(opts.x[k]) and finite(opts.y[k]) then
      local v = opts.value and opts.value[k]
      local color = v and finite(v) and report.viridis((v - vlo) / (vhi - vlo)) or "#1f77b4"
      out[#out + 1] = string.format('<circle cx="%.1f" cy="%.1f" r="%g" fill="%s"/>',
                                    px(opts.x[k]), py(opts.y[k]), opts.radius or 3, color)
    end
  end
  if opts.value then
    local x0, n = box.left + box.width + 16, 32
    local h = box.height / n
    for i = 0, n - 1 do
      out[#out + 1] = string.format('<rect x="%d" y="%.1f" width="12" height="%.1f" fill="%s"/>',
                                    x0, box.top + box.height - (i + 1) * h, h + 0.5,
                                    report.viridis((i + 0.5) / n))
    end
    for _, t in ipairs(report.ticks(vlo, vhi, 4)) do
      local y = box.top + box.height - (t - vlo) / (vhi - vlo) * box.height
      out[#out + 1] = string.format('<text x="%d" y="%.1f">%s</text>', x0 + 16, y + 4, tick_label(t))
    end
    if opts.value_label then
      out[#out + 1] = string.format('<text x="%d" y="%d" text-anchor="middle">%s</text>',
                                    x0 + 6, box.top - 4, report.escape(opts.value_label))
    end
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n") .. "\n"
end

return report
