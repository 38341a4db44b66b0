-- JSON text from Lua values and back, for the files scripts read again
-- (a sweep's done markers and summary).
--
--   json.encode(value) -> text      json.decode(text) -> value | nil, message
--   json.array(t) -> t, marked to encode as an array even when empty
--
-- encode: numbers (integers as integers, floats in the fewest of 15 to 17
-- significant digits that read back equal; NaN and infinities as null),
-- strings, booleans, sequences and marked arrays as arrays, other tables
-- (an unmarked empty one too) as objects with their keys sorted, so equal
-- tables give equal text. Fails on a function, a userdata, a table
-- that mixes string keys with others, or a cycle.
-- decode: any JSON document; null becomes nil (inside an array, a hole);
-- arrays come back marked, so they encode as they were.
local json = {}

local array_mt = { __name = "json.array" }

function json.array(t) return setmetatable(t or {}, array_mt) end

local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function number(x)
  if math.type(x) == "integer" then return tostring(x) end
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  for digits = 15, 16 do
    local text = string.format("%." .. digits .. "g", x)
    if tonumber(text) == x then return text end
  end
  return string.format("%.17g", x)
end

-- The keys of t sorted, and whether t is a non-empty sequence.
local function shape(t)
  local keys, count = {}, 0
  for k in pairs(t) do
    count = count + 1
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  if count == #t and (count > 0 or getmetatable(t) == array_mt) then return nil, true end
  if #keys ~= count then
    error("json: a table mixes string keys with other keys, expected a"
          .. " sequence or string keys only", 0)
  end
  table.sort(keys)
  return keys, false
end

local function encode(v, out, seen)
  local kind = type(v)
  if kind == "number" then out[#out + 1] = number(v)
  elseif kind == "string" then out[#out + 1] = quote(v)
  elseif kind == "boolean" then out[#out + 1] = tostring(v)
  elseif kind == "nil" then out[#out + 1] = "null"
  elseif kind == "table" then
    if seen[v] then error("json: a table contains itself", 0) end
    seen[v] = true
    local keys, is_array = shape(v)
    out[#out + 1] = is_array and "[" or "{"
    for i = 1, is_array and #v or #keys do
      if i > 1 then out[#out + 1] = "," end
      if is_array then
        encode(v[i], out, seen)
      else
        out[#out + 1] = quote(keys[i]) .. ":"
        encode(v[keys[i]], out, seen)
      end
    end
    out[#out + 1] = is_array and "]" or "}"
    seen[v] = nil
  else
    error("json: cannot encode a " .. kind, 0)
  end
end

function json.encode(value)
  local out = {}
  encode(value, out, {})
  return table.concat(out)
end

-- ---- decoding: a recursive descent over the text ------------------------------

local function fail(text, pos, what)
  local line = select(2, text:sub(1, pos):gsub("\n", "")) + 1
  error(string.format("json: %s at line %d (byte %d)", what, line, pos), 0)
end

local function skip(text, pos)
  return text:find("[^ \t\r\n]", pos) or #text + 1
end

local value -- forward: value(text, pos) -> v, next position

local function decode_string(text, pos)
  local out, i = {}, pos + 1
  while true do
    local j = text:find('["\\]', i)
    if not j then fail(text, pos, "unterminated string") end
    out[#out + 1] = text:sub(i, j - 1)
    if text:sub(j, j) == '"' then return table.concat(out), j + 1 end
    local c = text:sub(j + 1, j + 1)
    if c == "u" then
      local hex = text:match("^%x%x%x%x", j + 2)
      if not hex then fail(text, j, "bad \\u escape") end
      out[#out + 1] = utf8.char(tonumber(hex, 16))
      i = j + 6
    else
      local plain = ({ b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
                       ['"'] = '"', ["\\"] = "\\", ["/"] = "/" })[c]
      if not plain then fail(text, j, "bad escape \\" .. c) end
      out[#out + 1] = plain
      i = j + 2
    end
  end
end

-- Elements of an array or members of an object up to `close`.
local function decode_list(text, pos, close, member)
  local at = skip(text, pos + 1)
  if text:sub(at, at) == close then return at + 1 end
  while true do
    at = skip(text, member(at))
    local c = text:sub(at, at)
    if c == close then return at + 1 end
    if c ~= "," then fail(text, at, "expected ',' or '" .. close .. "'") end
    at = skip(text, at + 1)
  end
end

local literals = { ["true"] = true, ["false"] = false }

value = function(text, pos)
  local c = text:sub(pos, pos)
  if c == "{" then
    local t = {}
    local after = decode_list(text, pos, "}", function(p)
      if text:sub(p, p) ~= '"' then fail(text, p, "expected a member name") end
      local k, q = decode_string(text, p)
      q = skip(text, q)
      if text:sub(q, q) ~= ":" then fail(text, q, "expected ':'") end
      local v, r = value(text, skip(text, q + 1))
      t[k] = v
      return r
    end)
    return t, after
  elseif c == "[" then
    local t, n = json.array(), 0
    local after = decode_list(text, pos, "]", function(p)
      local v, r = value(text, p)
      n = n + 1
      t[n] = v
      return r
    end)
    return t, after
  elseif c == '"' then
    return decode_string(text, pos)
  end
  local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if num then
    local x = tonumber(num)
    if not x then fail(text, pos, "bad number '" .. num .. "'") end
    return math.tointeger(x) or x, pos + #num
  end
  local word = text:match("^%a+", pos)
  if word == "null" then return nil, pos + 4 end
  if literals[word] ~= nil then return literals[word], pos + #word end
  fail(text, pos, "unexpected " .. (c == "" and "end of text" or "'" .. c .. "'"))
end

function json.decode(text)
  local ok, v = pcall(function()
    local v, pos = value(text, skip(text, 1))
    pos = skip(text, pos)
    if pos <= #text then fail(text, pos, "text after the value") end
    return v
  end)
  if ok then return v end
  return nil, v
end

return json
