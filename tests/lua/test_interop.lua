-- A trained unet through `bdrun ckpt export` (PyTorch's names) and `bdrun
-- ckpt import` loads bit-exactly and samples the same images; the export
-- reads back with bd.tensor.load_safetensors; taps saved with x:save_npy
-- have NumPy's header and data (and numpy.load reads them, where numpy is).
local check = require "check"
local cfg = bd.config{ bdrun = "bdrun" }
local root = "lua-runs-interop"
os.execute("rm -rf " .. root)

local spec = { width = 4, size = 8, emb = 8, attention_blocks = "down2,up1" }
local function unet(seed)
  return bd.model("unet", { width = spec.width, size = spec.size, emb = spec.emb,
                            attention_blocks = spec.attention_blocks, seed = seed })
end
local data = bd.data.bumps{ size = 8, sigma = 1, dx = 2, dy = 2 }
local run = bd.run("interop", { root = root })
local model = unet(3)
bd.train(model, data, { steps = 2, batch = 4, lr = 1e-2, ema = 0.9, seed = 5,
                        every = 100, progress = false, ckpt_every = 2, run = run })

local ckpt, st, back = run:path("ckpt/step_2.bdc"), run:path("unet.safetensors"),
                       run:path("back.bdc")
local function bdrun(...)
  return os.execute(string.format('"%s" ckpt %s > /dev/null', cfg.bdrun,
                                  table.concat({ ... }, " ")))
end
check.ok(bdrun("export", ckpt, st), "bdrun ckpt export")
check.ok(bdrun("import", st, back), "bdrun ckpt import")

-- the import rebuilds the model with the checkpoint's EMA weights, and
-- samples alike
local ema = unet(7)
assert(bd.ckpt.load(ckpt, ema, { ema = true }))
local imported, info = assert(bd.ckpt.load_model(back))
check.eq(info.step, 2, "step carried through the export")
check.eq(check.count_differences(ema, imported), 0, "weights differing after the round trip")
local probe = { { 2, 3 }, { 5.5, 1 } }
local a = bd.sample(ema, probe, { steps = 3, seed = 4 })
local b = bd.sample(imported, probe, { steps = 3, seed = 4 })
local same = true
for i, v in ipairs(a.images:to_table()[2][1]) do
  for j, x in ipairs(v) do same = same and x == b.images:to_table()[2][1][i][j] end
end
check.ok(same, "the same samples from the imported weights")

-- the export in Lua: the recipe's names and the metadata
local tensors, meta = assert(bd.tensor.load_safetensors(st))
check.ok(tensors["down.1.attn.mha.in_proj_weight"] ~= nil
         and tensors["down1.conv_a.conv1.weight"] == nil, "recipe names")
check.eq(table.concat(tensors["stem.net.0.weight"]:shape(), "x"), "4x1x3x3", "stem shape")
check.eq(meta["bd.weights"], "ema", "EMA weights by default")
check.eq(meta["bd.diffusion.timesteps"], "1000", "diffusion keys as strings")
local t, msg, stage = bd.tensor.load_safetensors(ckpt)
check.ok(t == nil and msg:find("header length") and stage == "format",
         "a .bdc is no safetensors file: " .. tostring(msg))
t, msg, stage = bd.tensor.load_safetensors(run:path("none.safetensors"))
check.ok(t == nil and stage == "io", "missing file: " .. tostring(msg))

-- taps as .npy
local s = bd.sample(imported, probe, { steps = 2, seed = 1, taps = { "layer4" } })
local tap = s.taps.layer4
local npy = run:path("layer4.npy")
assert(tap:save_npy(npy))
local bytes = check.read(npy)
local header = string.unpack("<I2", bytes, 9)
local dims = table.concat(tap:shape(), ", ")
check.eq(bytes:sub(1, 8), "\x93NUMPY\x01\x00", "magic and version")
check.eq((10 + header) % 64, 0, "data on a 64-byte boundary")
check.ok(bytes:find("{'descr': '<f4', 'fortran_order': False, 'shape': (" .. dims
                    .. "), }", 1, true), "header dict with shape (" .. dims .. ")")
check.eq(#bytes, 10 + header + 4 * tap:numel(), "file size")
check.eq(string.unpack("<f", bytes, 11 + header), tap:get(1, 1, 1, 1), "first value")
check.eq(select(3, tap:save_npy(root .. "/no/such/dir/x.npy")), "io", "unwritable path")

if os.execute("/usr/bin/python3 -c 'import numpy' 2> /dev/null") then
  local sum = 0
  for i = 1, tap:shape()[1] do
    for c = 1, tap:shape()[2] do sum = sum + tap:get(i, c, 1, 1) end
  end
  local p = io.popen(string.format("/usr/bin/python3 -c \"import numpy; a ="
                                   .. " numpy.load('%s'); print(a.shape, repr(float(a.sum())))\"",
                                   npy))
  local out = p:read("a")
  p:close()
  local shape, total = out:match("^(%b())%s+(%S+)")
  check.eq(shape, "(" .. dims .. ")", "numpy.load's shape")
  check.ok(total and math.abs(tonumber(total) - sum) < 1e-5 * (1 + math.abs(sum)),
           string.format("numpy's sum %s, bd's %.9g", tostring(total), sum))
else
  print("numpy not installed: numpy.load not tried")
end

-- safetensors of the dtypes bd reads: a 0-dim tensor comes back as a
-- number, U8 bytes as their values; a tensor a bd tensor cannot hold fails,
-- named, with stage "format"
local function write_safetensors(path, entries)  -- { { name, dtype, shape, bytes }, ... }
  local fields, data, at = {}, {}, 0
  for _, e in ipairs(entries) do
    fields[#fields + 1] = string.format('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}',
                                        e[1], e[2], table.concat(e[3], ","), at, at + #e[4])
    data[#data + 1], at = e[4], at + #e[4]
  end
  local header = "{" .. table.concat(fields, ",") .. "}"
  header = header .. string.rep(" ", -#header % 8)
  local f = assert(io.open(path, "wb"))
  f:write(string.pack("<I8", #header), header, table.concat(data))
  f:close()
  return path
end
local kinds = assert(bd.tensor.load_safetensors(write_safetensors(run:path("kinds.safetensors"), {
  { "scalar", "F32", {}, string.pack("<f", 3.5) }, { "byte", "U8", {}, "\7" },
  { "bytes", "U8", { 2, 3 }, "\0\1\2\250\254\255" },
  { "matrix", "F32", { 1, 2 }, string.pack("<ff", -1.25, 2) } })))
check.eq(kinds.scalar, 3.5, "a 0-dim F32 tensor is a number")
check.eq(kinds.byte, 7, "a 0-dim U8 tensor is a number")
check.eq(table.concat(kinds.bytes:shape(), "x"), "2x3", "U8 shape")
check.ok(kinds.bytes:get(1, 1) == 0 and kinds.bytes:get(2, 1) == 250 and kinds.bytes:get(2, 3) == 255,
         "U8 values")
check.eq(kinds.matrix:get(1, 2), 2.0, "F32 beside them")
local five = write_safetensors(run:path("five.safetensors"),
                               { { "deep", "F32", { 1, 1, 1, 1, 2 }, string.pack("<ff", 1, 2) } })
t, msg, stage = bd.tensor.load_safetensors(five)
check.ok(t == nil and stage == "format" and msg:find("tensor 'deep' of 5 dims: a bd tensor holds 1"
                                                     .. " to 4 dims", 1, true), "5 dims: " .. tostring(msg))
local empty = write_safetensors(run:path("empty.safetensors"), { { "none", "U8", { 0, 3 }, "" } })
t, msg, stage = bd.tensor.load_safetensors(empty)
check.ok(t == nil and stage == "format" and msg:find("tensor 'none' of 2 dims: tensor: dim 0 is 0,"
                                                     .. " expected >= 1", 1, true),
         "an empty dim: " .. tostring(msg))

-- tests/reference/bd_torch.py writes 0-dim and U8 arrays as they are
if os.execute("/usr/bin/python3 -c 'import numpy' 2> /dev/null") then
  local reference = arg[0]:gsub("[^/]*$", "") .. "../reference"
  local written = run:path("numpy.safetensors")
  check.ok(os.execute(string.format("/usr/bin/python3 -c \"import sys; sys.path.insert(0, '%s');"
                                    .. " import bd_torch, numpy as np; bd_torch.save_safetensors("
                                    .. "'%s', {'s': np.array(3.5, np.float32), 'u': np.arange(6,"
                                    .. " dtype=np.uint8).reshape(3, 2)})\"", reference, written)),
           "bd_torch.save_safetensors")
  local back = assert(bd.tensor.load_safetensors(written))
  check.eq(back.s, 3.5, "numpy's 0-dim array")
  check.eq(back.u:get(3, 2), 5, "numpy's uint8 array")
end

os.execute("rm -rf " .. root)
check.done()
