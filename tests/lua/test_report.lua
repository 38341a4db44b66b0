-- scripts/lib/report.lua: escaping, number formats, ticks, colours, the
-- SVG plots and the HTML page.
local check = require "check"
local report = require "report"

local function count(text, pattern)
  local n = 0
  for _ in text:gmatch(pattern) do n = n + 1 end
  return n
end

-- Every opened element is closed (self-closing ones count as both), in a
-- properly nested order.
local function well_formed(text)
  local stack = {}
  for slash, name, tail in text:gmatch("<(/?)([%a][%w]*)[^>]-(/?)>") do
    if slash == "/" then
      if stack[#stack] ~= name then return false end
      stack[#stack] = nil
    elseif tail ~= "/" then
      stack[#stack + 1] = name
    end
  end
  return #stack == 0
end

-- ---- text ------------------------------------------------------------------------
check.eq(report.escape([[<a href="x">&'</a>]]), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;", "escape")
check.eq(report.escape(12), "12", "escape a number")
check.eq(report.format(1500), "1500", "integer")
check.eq(report.format(3.0), "3", "integral float")
check.eq(report.format(0.123456), "0.1235", "4 significant digits")
check.eq(report.format(-2.5e-7), "-2.5e-07", "small")
check.eq(report.format(0 / 0), "-", "NaN")
check.eq(report.format(nil), "-", "missing")
check.eq(report.format("x_dense"), "x_dense", "text as is")

-- ---- ticks and colours -------------------------------------------------------------
local function ticks(...)
  local t = {}
  for i, v in ipairs(report.ticks(...)) do t[i] = string.format("%g", v) end
  return table.concat(t, ",")
end
check.eq(ticks(0, 1, 5), "0,0.2,0.4,0.6,0.8,1", "ticks 0..1")
check.eq(ticks(0, 900, 6), "0,200,400,600,800", "ticks 0..900")
check.eq(ticks(-3, 7, 5), "-2,0,2,4,6", "ticks across 0")
check.eq(ticks(0.013, 0.05, 4), "0.02,0.03,0.04,0.05", "ticks of small numbers")
check.eq(ticks(5, 5), "5", "a flat range")
check.eq(report.viridis(0), "#440154", "viridis start")
check.eq(report.viridis(1), "#fde725", "viridis end")
check.eq(report.viridis(2), "#fde725", "clamped above")
check.eq(report.viridis(-1), "#440154", "clamped below")
check.eq(report.viridis(0.5), "#21908d", "viridis middle")

-- ---- line plots ------------------------------------------------------------------------
local svg = report.lines{
  title = "acc <x> & y", xlabel = "step", ylabel = "accuracy", ylim = { 0, 1 },
  series = {
    { name = "acc_x", x = { 0, 100, 200, 300 }, y = { 0, 0.2, 0.7, 0.9 } },
    { name = "acc_y", x = { 0, 100, 200, 300 }, y = { 0, 0 / 0, 0.5, 0.8 }, dash = true },
    { x = { 0, 300 }, y = { 0.3, 0.3 } },
  },
  hlines = { { y = 0.6, label = "threshold" } },
}
check.ok(svg:find("^<svg xmlns=\"http://www.w3.org/2000/svg\""), "starts with the svg element")
check.ok(svg:find("</svg>\n$"), "ends with it")
check.ok(well_formed(svg), "well-formed")
check.ok(svg:find("acc &lt;x&gt; &amp; y", 1, true), "title escaped")
check.ok(not svg:find("<x>", 1, true), "no raw markup from the title")
-- acc_x: one line; acc_y: NaN breaks it into a dot and a line; the unnamed one
check.eq(count(svg, "<polyline"), 3, "polylines")
check.eq(count(svg, "<circle"), 1, "the lone point before the NaN")
check.eq(count(svg, "stroke%-dasharray=\"6,3\""), 2, "dashed curve and its legend entry")
check.ok(svg:find(">acc_x</text>", 1, true) and svg:find(">acc_y</text>", 1, true), "legend")
check.ok(svg:find(">threshold</text>", 1, true), "reference line label")
check.ok(svg:find(">0.6</text>", 1, true), "y tick")
check.ok(svg:find(">300</text>", 1, true), "x tick")
local empty = report.lines{ series = { { name = "none", x = {}, y = {} } } }
check.ok(well_formed(empty) and count(empty, "<polyline") == 0, "an empty curve draws nothing")

-- ---- scatter -----------------------------------------------------------------------------
local sc = report.scatter{ title = "UMAP", x = { 0, 1, 2, 0 / 0 }, y = { 0, 1, 4, 1 },
                           value = { 0, 5, 10, 3 }, value_label = "x" }
check.ok(well_formed(sc), "scatter well-formed")
check.eq(count(sc, "<circle"), 3, "a NaN point is not drawn")
check.ok(sc:find('fill="#440154"', 1, true) and sc:find('fill="#fde725"', 1, true),
         "the extremes of the value get the ends of viridis")
check.eq(count(sc, "<rect x="), 1 + 32, "the axes box and the colour bar")
check.ok(sc:find(">x</text>", 1, true), "colour bar label")
local plain = report.scatter{ x = { 1, 2 }, y = { 1, 2 } }
check.eq(count(plain, "<circle"), 2, "without values")
check.eq(count(plain, "<rect x="), 1, "no colour bar")

-- ---- the page ------------------------------------------------------------------------------
local dir = "lua-runs-report"
os.execute("rm -rf " .. dir .. " && mkdir -p " .. dir)
check.ok(report.save(dir .. "/plot.svg", svg), "save")
check.eq(check.read(dir .. "/plot.svg"), svg, "saved whole")
local ok, err = report.save(dir .. "/missing/plot.svg", svg)
check.eq(ok, nil, "a missing folder fails")
check.ok(err and err:find("missing", 1, true), "naming the path: " .. tostring(err))

local doc = report.new("Imbalance <test>")
doc:question("Is x & y coupled?")
doc:heading("Setup")
doc:table({ { "steps", 1500 }, { "lr", 0.001 }, { "note", "<b>" } },
          { header = { "setting", "value" }, caption = "a & b" })
doc:figure("plot.svg", "curves \"quoted\"")
doc:answer("decision: coupled\n  x_dense: lag 12 +- 3")
doc:paragraph("done")
doc:pre("a < b")
local html = doc:html()
check.ok(html:find("^<!DOCTYPE html>"), "doctype")
check.ok(well_formed((html:gsub("^<!DOCTYPE html>", ""):gsub('<meta charset="utf%-8">', ""))),
         "page well-formed")
check.ok(html:find("<title>Imbalance &lt;test&gt;</title>", 1, true), "title escaped")
check.ok(html:find("<h1>Imbalance &lt;test&gt;</h1>", 1, true), "heading")
check.ok(html:find('<p class="question">Is x &amp; y coupled?</p>', 1, true), "question")
check.ok(html:find('<td class="num">1500</td>', 1, true), "a number cell")
check.ok(html:find("<td>&lt;b&gt;</td>", 1, true), "a text cell escaped")
check.ok(html:find("<th>setting</th><th>value</th>", 1, true), "header")
check.ok(html:find("<caption>a &amp; b</caption>", 1, true), "caption")
check.ok(html:find('<img src="plot.svg" alt="curves &quot;quoted&quot;"/>', 1, true), "figure")
check.ok(html:find("<p>decision: coupled</p><p>  x_dense: lag 12 +- 3</p>", 1, true),
         "answer, a paragraph per line")
check.ok(html:find("<pre>a &lt; b</pre>", 1, true), "pre")
check.ok(doc:write(dir .. "/report.html"), "write")
check.eq(check.read(dir .. "/report.html"), html, "written whole")

os.execute("rm -rf " .. dir)
check.done()
