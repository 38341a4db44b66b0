#!/usr/bin/python3
"""Writes tests/reference/unet_w4.safetensors, the cross-framework reference
that tests/test_reference.c checks bd's unet against (CI needs no PyTorch).

    /usr/bin/python3 tests/reference/make_unet_reference.py    # regenerate

It builds the PyTorch recipe (tests/bench/unet_torch.py, imported as it is)
at width 4 with a 16-wide embedding, gives every parameter a random value
(PyTorch's initialisation leaves norms at 1/0 and attention biases at 0,
which would hide a swapped or ignored tensor), draws two 16x16 inputs with
fixed timesteps and labels, and computes in float64 (the sinusoid
frequencies too: the recipe rounds them to float32 first)
  out  = net(x_t, t, cond)                 (2, 1, 16, 16)
  loss = mean((out - eps)^2)
  grad = d loss / d parameter, for every parameter.
The file holds, all as float32:
  <recipe name>        the weights (float32 values, exact in float64)
  input.x_t input.t input.cond input.eps
  output.out output.loss
  grad.<recipe name>   every parameter gradient
and metadata: width, emb, size, the torch version and this script.
Deterministic: the same PyTorch gives the same file.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bd_torch  # noqa: E402

WIDTH, EMB, SIZE = 4, 16, 16
T = [37.0, 811.0]
COND = [[3.25, 11.5], [12.0, 0.75]]
OUT = os.path.join(bd_torch.HERE, f"unet_w{WIDTH}.safetensors")


def randomise(torch, net, g):
    """Weights around PyTorch's scale; norm gains around 1, every bias and
    shift non-zero."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 1 and ("net.1" in name or "net.4" in name or "ln" in name
                                 or "ff.0" in name) and name.endswith("weight"):
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def main():
    torch, UNet = bd_torch.recipe(EMB)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(20261207)
    net = UNet(WIDTH, "all")
    randomise(torch, net, g)
    weights = {k: p.detach().float().numpy().copy() for k, p in net.named_parameters()}
    x_t = torch.randn(len(T), 1, SIZE, SIZE, generator=g)
    eps = torch.randn(len(T), 1, SIZE, SIZE, generator=g)
    t, cond = torch.tensor(T), torch.tensor(COND)

    net = net.double()
    half = EMB // 2  # the recipe's frequencies, recomputed in float64
    net.freq.copy_(10000.0 ** (-torch.arange(half, dtype=torch.float64) / half))
    out = net(x_t.double(), t.double(), cond.double())
    loss = ((out - eps.double()) ** 2).mean()
    loss.backward()

    arrays = dict(weights)
    arrays.update({"input.x_t": x_t.numpy(), "input.t": t.numpy(),
                   "input.cond": cond.numpy(), "input.eps": eps.numpy(),
                   "output.out": out.detach().float().numpy(),
                   "output.loss": np.float32(loss.item()).reshape(())})
    for k, p in net.named_parameters():
        arrays["grad." + k] = p.grad.float().numpy()
    bd_torch.save_safetensors(OUT, arrays, {
        "width": WIDTH, "emb": EMB, "size": SIZE, "precision": "float64",
        "torch": torch.__version__,
        "generator": "tests/reference/make_unet_reference.py"})
    n = sum(a.size for k, a in weights.items())
    print(f"{OUT}: width {WIDTH}, {n} parameters, loss {loss.item():.6f},"
          f" {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
