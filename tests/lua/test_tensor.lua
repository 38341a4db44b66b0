-- bd.Tensor userdata: tables in and out, indexing, release.
local check = require "check"

-- round trip of a 3-dim table
local src = { { {1, 2}, {3, 4}, {5, 6} }, { {7, 8}, {9, 10}, {11, 12.5} } }
local t = bd.tensor.from_table(src)
check.eq(table.concat(t:shape(), "x"), "2x3x2", "shape")
check.eq(t:numel(), 12, "numel")
check.eq(t:get(1, 1, 1), 1, "first element")
check.eq(t:get(2, 3, 2), 12.5, "last element")
check.eq(t:get(1, 2, 2), 4, "row-major order")
t:set(2, 1, 2, -3.25)
local back = t:to_table()
check.eq(back[2][1][2], -3.25, "set then to_table")
check.eq(#back, 2, "outer length")
check.eq(#back[1], 3, "middle length")
check.eq(back[1][3][1], 5, "copied value")
check.eq(tostring(bd.tensor.from_table{1, 2}), "bd.Tensor(2): 1 2", "tostring")
check.eq(tostring(bd.tensor.zeros{64, 1, 16, 16}), "bd.Tensor(64, 1, 16, 16)",
         "tostring of a large tensor")
local z = bd.tensor.zeros{2, 3}
check.eq(z:get(2, 3), 0, "zeros")

-- indexing errors
check.raises("get: 2 indices for a 3-dim tensor, expected 3", t.get, t, 1, 1)
check.raises("get: index 2 is 4, expected 1 to 3", t.get, t, 1, 4, 1)
check.raises("set: index 1 is 0, expected 1 to 2", t.set, t, 0, 1, 1, 5)
check.raises("number expected", t.set, t, 1, 1, 1, "x")

-- from_table errors
check.raises("table[2] has 1 values, expected 2 (rows must have equal lengths)",
             bd.tensor.from_table, { {1, 2}, {3} })
check.raises("table[1][2] is a string, expected a number",
             bd.tensor.from_table, { {1, "a"} })
check.raises("an empty table at level 1", bd.tensor.from_table, {})
check.raises("more than 4 levels of nesting", bd.tensor.from_table,
             { { { { {1} } } } })
check.raises("dim 2 is 0, expected a positive integer", bd.tensor.zeros, {2, 0})

-- release: explicit, by <close>, and use afterwards
local r = bd.tensor.zeros{3}
r:release()
check.raises("attempt to use a released tensor", r.numel, r)
check.raises("attempt to use a released tensor", r.get, r, 1)
check.eq(tostring(r), "bd.Tensor (released)", "tostring after release")
r:release() -- a second release is harmless
local escaped
do
  local c <close> = bd.tensor.zeros{4}
  escaped = c
  check.eq(c:numel(), 4, "inside the scope")
end
check.raises("attempt to use a released tensor", escaped.shape, escaped)
-- <close> releases on error too
local leaked
pcall(function()
  local c <close> = bd.tensor.zeros{2}
  leaked = c
  error("inside")
end)
check.raises("attempt to use a released tensor", leaked.numel, leaked)
check.raises("bd.Tensor expected", t.numel, {})

-- many temporaries are collected (their C memory is accounted for)
for _ = 1, 200 do local _ = bd.tensor.zeros{256, 256} end
collectgarbage()

check.done()
