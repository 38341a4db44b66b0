"""bd's unet in PyTorch: safetensors files without the safetensors package,
the recipe's net (tests/bench/unet_torch.py) built from a file written by
`bdrun ckpt export`, and bd's DDPM sampler.

    import sys; sys.path.insert(0, "tests/reference")
    import bd_torch
    net, meta = bd_torch.load_unet("quickstart.safetensors")
    images = bd_torch.sample(net, meta, labels, steps=100, seed=1)  # (N, 1, H, W)

Needs python3-torch and python3-numpy (Debian 12: PyTorch 1.13).
`safetensors.torch.load_file` reads the same files where that package is
installed; this module does not need it.
"""
import importlib.util
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.join(os.path.dirname(HERE), "bench", "unet_torch.py")
DTYPES = {"F32": np.dtype("<f4"), "U8": np.dtype("u1")}


def load_safetensors(path):
    """(name -> numpy array, metadata dict) of a .safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    arrays = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        a = np.frombuffer(raw[8 + n + begin:8 + n + end], DTYPES[e["dtype"]])
        arrays[name] = a.reshape(e["shape"])
    return arrays, meta


def save_safetensors(path, arrays, metadata=None):
    """name -> numpy array (float32 or uint8), in name order; metadata
    values are written as strings."""
    header, at, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name in sorted(arrays):
        a = np.asarray(arrays[name])  # (ascontiguousarray makes a 0-dim array 1-dim)
        dtype = {np.dtype("float32"): "F32", np.dtype("uint8"): "U8"}[a.dtype]
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [at, at + a.nbytes]}
        at += a.nbytes
        blobs.append(a.astype(DTYPES[dtype]).tobytes())
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def recipe(emb, channels=1):
    """tests/bench/unet_torch.py with its embedding size and channels set:
    returns (torch, the UNet class)."""
    import torch
    spec = importlib.util.spec_from_file_location("unet_torch", RECIPE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.CHANNELS = channels
    return torch, mod.build_net(torch.nn, torch, emb)


def load_unet(path):
    """The recipe's net holding the weights of a `bdrun ckpt export` file,
    with self-attention in the blocks that have <block>.attn.* tensors.
    Returns (net in eval mode, metadata)."""
    arrays, meta = load_safetensors(path)
    width = arrays["stem.net.0.weight"].shape[0]
    channels = arrays["stem.net.0.weight"].shape[1]
    emb = arrays["down.0.emb.weight"].shape[1] // 3
    attend = [f"{side}{i + 1}" for side in ("down", "up") for i in range(3)
              if f"{side}.{i}.attn.ln.weight" in arrays]
    torch, UNet = recipe(emb, channels)
    net = UNet(width, ",".join(attend))
    state = {k: torch.from_numpy(a.copy()) for k, a in arrays.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing != ["freq"] or unexpected:
        raise ValueError(f"{path}: missing {missing}, unexpected {unexpected}")
    return net.eval(), meta


def schedule(meta):
    """abar (T) as float64, from the export's bd.diffusion.* keys."""
    import torch
    T = int(meta.get("bd.diffusion.timesteps", 1000))
    if meta.get("bd.diffusion.schedule", "linear") != "linear":
        raise ValueError("only the linear schedule is written here")
    b0 = float(meta.get("bd.diffusion.beta_start", 1e-4))
    b1 = float(meta.get("bd.diffusion.beta_end", 0.02))
    betas = b0 + torch.arange(T, dtype=torch.float64) / max(T - 1, 1) * (b1 - b0)
    return torch.cumprod(1.0 - betas, 0)


def sample(net, meta, labels, steps=100, seed=0, size=None):
    """DDPM ancestral sampling as bd.sample does it: `steps` timesteps
    round(k (T - 1) / (steps - 1)), x0 clipped to [-1, 1] and the noise
    estimate recomputed from it. labels: (N, 2) -> images (N, C, size,
    size) as float32 numpy; size defaults to the model's config
    (bd.arch.config.size)."""
    import torch
    abar = schedule(meta)
    T = len(abar)
    size = size or int(float(meta["bd.arch.config.size"]))
    ts = [T - 1] if steps == 1 else [round(k * (T - 1) / (steps - 1))
                                    for k in range(steps)]
    cond = torch.as_tensor(np.asarray(labels, np.float32))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(cond), net.head.out_channels, size, size, generator=g,
                    dtype=torch.float64)
    with torch.no_grad():
        for k in reversed(range(len(ts))):
            ab, ab_prev = abar[ts[k]], abar[ts[k - 1]] if k > 0 else torch.tensor(1.0)
            t = torch.full((len(cond),), float(ts[k]))
            eps = net(x.float(), t, cond).double()
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            beta = 1 - ab / ab_prev
            c0 = ab_prev.sqrt() * beta / (1 - ab)
            ct = (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)
            x = (c0 + ct * ab.sqrt()) * x0 + ct * (1 - ab).sqrt() * eps
            if k > 0:
                sigma = (beta * (1 - ab_prev) / (1 - ab)).sqrt()
                x = x + sigma * torch.randn(x.shape, generator=g, dtype=torch.float64)
    return x.float().numpy()
