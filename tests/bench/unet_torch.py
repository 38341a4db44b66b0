#!/usr/bin/python3
"""The PyTorch peer of bench_unet: the paper's UNet (docs/PAPER.md, "Model") in
PyTorch 1.13 (Debian's python3-torch, CPU), timed on the same steps.

    /usr/bin/python3 tests/bench/unet_torch.py [--threads 2] [--bench BIN]
                                               [--attention all|none|down1,...]
                                               [--size 32] [--emb 256]

For widths 32 and 64 and batches 64 and 128 on 32x32 one-channel images
(--size, and --emb the width of each of the three sinusoidal codes, as
bench_unet's):
  train   q_sample, forward, eps-prediction MSE, backward, grad-norm clip to
          1.0, an AdamW step (lr 3e-4, weight decay 0.01) and an EMA update
          (0.999), as bd's trainer;
  sample  one forward under torch.no_grad() (model.eval()).
Each (mode, width, batch) runs in a fresh child process: WARMUP steps, then
timed steps as bench_unet times them (median_step); the median is reported.
Peak memory is the child's ru_maxrss after the steps minus its ru_maxrss
just before the model was built, so it holds parameters, grads, optimizer
state, activations and allocator slack.
FLOPs come from bench_unet --flops (the one analytic counter, shared with
bd's side) so both sides divide by the same number.

One line per configuration, for run_peer.sh:
    RESULT torch <mode> <width> <batch> <img/s> <GFLOP/s> <peak MiB> <ms/step>
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

WIDTHS = (32, 64)
BLOCKS = ("down1", "down2", "down3", "up1", "up2", "up3")
BATCHES = (64, 128)
MODES = ("train", "sample")
SIZE, CHANNELS, EMB, HEADS, T = 32, 1, 256, 4, 1000   # SIZE, EMB: defaults
EMA = 0.999
WARMUP, MIN_REPS, MAX_REPS, BUDGET_S = 2, 3, 10, 10.0
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_net(nn, torch, emb=EMB):
    """The recipe as torch modules, codes of width emb; returns the UNet class."""
    F = nn.functional

    class DoubleConv(nn.Module):
        def __init__(self, cin, cout, mid=None, residual=False):
            super().__init__()
            mid = mid or cout
            self.residual = residual
            self.net = nn.Sequential(
                nn.Conv2d(cin, mid, 3, padding=1, bias=False), nn.GroupNorm(1, mid),
                nn.GELU(),
                nn.Conv2d(mid, cout, 3, padding=1, bias=False), nn.GroupNorm(1, cout))

        def forward(self, x):
            return F.gelu(x + self.net(x)) if self.residual else self.net(x)

    class SelfAttention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.ln = nn.LayerNorm(c)
            self.mha = nn.MultiheadAttention(c, HEADS, batch_first=True)
            self.ff = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, c), nn.GELU(),
                                    nn.Linear(c, c))

        def forward(self, x):
            n, c, h, w = x.shape
            tok = x.flatten(2).transpose(1, 2)               # (N, T, C)
            a = self.ln(tok)
            a = self.mha(a, a, a, need_weights=False)[0] + tok
            a = self.ff(a) + a
            return a.transpose(1, 2).reshape(n, c, h, w)

    class Block(nn.Module):
        """down: max-pool first; up: bilinear 2x and the skip concat first."""
        def __init__(self, cin, cout, mid, up, attend):
            super().__init__()
            self.up = up
            self.conv = nn.Sequential(DoubleConv(cin, cin, residual=True),
                                      DoubleConv(cin, cout, mid))
            self.emb = nn.Linear(3 * emb, cout)
            self.attn = SelfAttention(cout) if attend else nn.Identity()

        def forward(self, x, semb, skip=None):
            if self.up:
                x = F.interpolate(x, scale_factor=2, mode="bilinear",
                                  align_corners=True)
                x = torch.cat([skip, x], dim=1)
            else:
                x = F.max_pool2d(x, 2)
            x = self.conv(x) + self.emb(semb)[:, :, None, None]
            return self.attn(x)

    class UNet(nn.Module):
        def __init__(self, c, attention):
            super().__init__()
            at = [attention == "all" or b in attention.split(",") for b in BLOCKS]
            self.stem = DoubleConv(CHANNELS, c)
            self.down = nn.ModuleList([Block(c, 2 * c, 2 * c, False, at[0]),
                                       Block(2 * c, 4 * c, 4 * c, False, at[1]),
                                       Block(4 * c, 4 * c, 4 * c, False, at[2])])
            self.mid = nn.Sequential(DoubleConv(4 * c, 8 * c), DoubleConv(8 * c, 8 * c),
                                     DoubleConv(8 * c, 4 * c))
            self.up = nn.ModuleList([Block(8 * c, 2 * c, 4 * c, True, at[3]),
                                     Block(4 * c, c, 2 * c, True, at[4]),
                                     Block(2 * c, c, c, True, at[5])])
            self.head = nn.Conv2d(c, CHANNELS, 1)
            half = emb // 2
            self.register_buffer("freq", torch.pow(10000.0, -torch.arange(half) / half))

        def encode(self, s):                                   # (N) -> (N, E)
            a = s[:, None] * self.freq[None]
            return torch.cat([a.sin(), a.cos()], dim=1)

        def forward(self, x, t, cond):
            semb = F.silu(torch.cat([self.encode(t), self.encode(cond[:, 0]),
                                     self.encode(cond[:, 1])], dim=1))
            x = self.stem(x)
            skips = []
            for blk in self.down:
                skips.append(x)
                x = blk(x, semb)
            x = self.mid(x)
            for blk in self.up:
                x = blk(x, semb, skips.pop())
            return self.head(x)

    return UNet


def recipe_flops(bench, width, attention, size, emb):
    """(forward, training step) FLOPs per image from bench_unet --flops."""
    out = subprocess.run([bench, "--flops", str(width), "--attention", attention,
                          "--size", str(size), "--emb", str(emb)],
                         check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_step(step):
    """Median seconds of step() after WARMUP calls: timed calls until
    BUDGET_S has passed, at least MIN_REPS unless they take 3 BUDGET_S, at
    most MAX_REPS (as bench_unet)."""
    for _ in range(WARMUP):
        step()
    times = []
    while len(times) < MAX_REPS and (sum(times) < BUDGET_S or (
            len(times) < MIN_REPS and sum(times) < 3 * BUDGET_S)):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_one(mode, width, batch, threads, flops, attention, size, emb):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    base = maxrss_mib()
    net = build_net(torch.nn, torch, emb)(width, attention)
    print(f"PARAMS torch {width} {sum(q.numel() for q in net.parameters())}")
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    abar = torch.cumprod(1.0 - betas, 0).float()
    x0 = torch.rand(batch, CHANNELS, size, size) * 2 - 1
    cond = torch.rand(batch, 2) * size
    if mode == "train":
        opt = torch.optim.AdamW(net.parameters(), lr=3e-4, weight_decay=0.01)
        params = list(net.parameters())
        ema = [q.detach().clone() for q in params]

        def step():
            t = torch.randint(0, T, (batch,))
            eps = torch.randn_like(x0)
            a = abar[t][:, None, None, None]
            x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
            loss = torch.nn.functional.mse_loss(net(x_t, t.float(), cond), eps)
            opt.zero_grad(set_to_none=False)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            with torch.no_grad():
                torch._foreach_mul_(ema, EMA)
                torch._foreach_add_(ema, params, alpha=1 - EMA)
    else:
        net.eval()
        x_t = torch.randn(batch, CHANNELS, size, size)
        t = torch.full((batch,), 500.0)

        def step():
            with torch.no_grad():
                net(x_t, t, cond)

    sec = median_step(step)
    per_img = flops[0 if mode == "sample" else 1]
    print(f"RESULT torch {mode} {width} {batch} {batch / sec:.2f}"
          f" {per_img * batch / sec / 1e9:.1f} {maxrss_mib() - base:.0f}"
          f" {sec * 1e3:.1f}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bench", default=os.path.join(ROOT, "build-bench", "bench",
                                                   "bench_unet"),
                   help="bench_unet binary, for the FLOP counts")
    p.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    p.add_argument("--batches", default=",".join(map(str, BATCHES)))
    p.add_argument("--attention", default="all",
                   help="blocks that attend: all, none or a list of " + ",".join(BLOCKS))
    p.add_argument("--size", type=int, default=SIZE, help="image side")
    p.add_argument("--emb", type=int, default=EMB, help="width of each code")
    p.add_argument("--one", nargs=3, metavar=("MODE", "WIDTH", "BATCH"),
                   help=argparse.SUPPRESS)
    a = p.parse_args()
    widths = [int(w) for w in a.widths.split(",")]
    flops = {w: recipe_flops(a.bench, w, a.attention, a.size, a.emb) for w in widths}
    if a.one:
        mode, w, b = a.one[0], int(a.one[1]), int(a.one[2])
        return run_one(mode, w, b, a.threads, flops[w], a.attention, a.size, a.emb)
    import torch
    print(f"torch {torch.__version__}, {a.threads} threads")
    for w in widths:
        print(f"width {w}: {flops[w][0] / 1e9:.3f} GFLOP/img forward,"
              f" {flops[w][1] / 1e9:.3f} GFLOP/img training step", flush=True)
    for mode in MODES:
        for w in widths:
            for b in a.batches.split(","):
                subprocess.run([sys.executable, os.path.abspath(__file__), "--one",
                                mode, str(w), b, "--threads", str(a.threads),
                                "--bench", a.bench, "--widths", str(w),
                                "--attention", a.attention, "--size", str(a.size),
                                "--emb", str(a.emb)], check=True)


if __name__ == "__main__":
    sys.exit(main())
