-- scripts/lib/json.lua: values round-trip, keys are sorted, arrays stay
-- arrays, and malformed text fails naming where.
local check = require "check"
local json = require "json"

local value = { n = 3, x = 0.1, tiny = -3e-20, s = 'say "hi"\n\1', yes = true, no = false,
                list = { 1, 2.5, "three" }, nested = { empty = json.array(), object = {} } }
local text = json.encode(value)
check.eq(text, '{"list":[1,2.5,"three"],"n":3,"nested":{"empty":[],"object":{}},"no":false,'
         .. '"s":"say \\"hi\\"\\n\\u0001","tiny":-3e-20,"x":0.1,"yes":true}', "encoded")
local back = assert(json.decode(text))
check.eq(json.encode(back), text, "decoded and encoded again")
check.eq(back.x, 0.1, "a float reads back equal")
check.eq(math.type(back.n), "integer", "an integer stays an integer")
check.eq(json.encode(0.1 + 0.2), "0.30000000000000004", "17 digits when 15 and 16 do not read back")
check.eq(json.encode{ 0 / 0, math.huge }, "[null,null]", "NaN and infinity")
check.eq(json.decode('[1, null, 3]')[3], 3, "null is a hole")
check.eq(json.decode(' "\\u00e9\\t" '), "\u{e9}\t", "escapes")
check.eq(json.decode("-12.5e1"), -125.0, "exponent")

local function fails(text, needle)
  local v, err = json.decode(text)
  check.ok(v == nil and err and err:find(needle, 1, true), string.format("%q: %s", text, tostring(err)))
end
fails("[1, 2", "expected ',' or ']' at line 1")
fails('{"a" 1}', "expected ':'")
fails("{} x", "text after the value")
fails('"open', "unterminated string")
fails("3e", "bad number '3e'")
fails("[1,\n nope]", "unexpected 'n' at line 2")
check.raises("json: a table mixes string keys", json.encode, { 1, x = 2 })
check.raises("json: cannot encode a function", json.encode, { f = print })
local loop = {}
loop.self = loop
check.raises("json: a table contains itself", json.encode, loop)
check.done()
