#!/usr/bin/python3
"""Samples bd's weights in PyTorch: a `bdrun ckpt export` file loaded into
tests/bench/unet_torch.py's net, one sample per requested (x, y) with bd's
DDPM sampler (tests/reference/bd_torch.py).

    /usr/bin/python3 tests/reference/sample_torch.py MODEL.safetensors \\
        LABELS.npy OUT.safetensors [--steps 100] [--seed 1] [--threads 1]

LABELS.npy holds the (N, 2) requested positions (from bd: probe.labels:save_npy);
OUT.safetensors gets "images" (N, C, H, W) and "labels", which
bd.tensor.load_safetensors reads back for scoring
(tests/reference/torch_accuracy.lua does both sides).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bd_torch  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("labels")
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    net, meta = bd_torch.load_unet(a.model)
    labels = np.load(a.labels).astype(np.float32)
    t0 = time.process_time()
    images = bd_torch.sample(net, meta, labels, steps=a.steps, seed=a.seed)
    bd_torch.save_safetensors(a.out, {"images": images, "labels": labels},
                              {"steps": a.steps, "seed": a.seed,
                               "torch": torch.__version__})
    print(f"PyTorch {torch.__version__}: {len(labels)} samples of {a.model},"
          f" DDPM {a.steps} steps, {time.process_time() - t0:.1f} s CPU -> {a.out}")


if __name__ == "__main__":
    sys.exit(main())
