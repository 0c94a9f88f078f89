"""Encode/decode time of the learned enhancement layer alone on a 768x512 image (issue #7 target: decode <= 2 s).

    python benchmarks/enhance_speed.py [--enhance WEIGHTS.safetensors] [--repeat 3]

Without --enhance it times the default architecture with random weights (the cost of the transforms and the
range coder; a trained model codes a different number of bits, so entropy-coding time differs somewhat).
The prediction x' is the plain model's (8x8 area mean, upsampled) so that no base network is timed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from dsslic.enhance import EnhanceModel
from dsslic.imageio import load_image

KODIM01 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kodak" / "kodim01.png"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enhance")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    torch.manual_seed(0)
    m = EnhanceModel.load(a.enhance) if a.enhance else EnhanceModel().eval()
    if KODIM01.is_file():
        x = load_image(KODIM01)
    else:
        x = np.random.default_rng(0).integers(0, 256, (512, 768, 3), dtype=np.uint8)
    h, w = x.shape[0] // 8 * 8, x.shape[1] // 8 * 8
    x = np.ascontiguousarray(x[:h, :w])
    c8 = x.reshape(h // 8, 8, w // 8, 8, 3).mean((1, 3)).round().astype(np.uint8)
    xp = np.repeat(np.repeat(c8, 8, 0), 8, 1)
    te, td = [], []
    for _ in range(a.repeat):
        t = time.perf_counter()
        payload, x_hat = m.compress(x, xp, c8)
        te.append(time.perf_counter() - t)
        t = time.perf_counter()
        out = m.decompress(payload, xp, c8)
        td.append(time.perf_counter() - t)
    assert np.array_equal(out, x_hat)
    cfg = m.config
    print(f"{w}x{h}, enhancement model {cfg.name!r} (n {cfg.n}, m {cfg.m}, nz {cfg.nz}"
          f"{', random weights' if not a.enhance else ''}), {torch.get_num_threads()} threads, median of {a.repeat}: "
          f"encode {statistics.median(te):.2f} s, decode {statistics.median(td):.2f} s, "
          f"{len(payload)} bytes ({8 * len(payload) / (w * h):.3f} bpp)")


if __name__ == "__main__":
    main()
