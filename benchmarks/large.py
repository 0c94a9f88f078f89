"""Peak memory and time to compress and decompress large images on this CPU.

    python benchmarks/large.py [--mp 1 4 8 16] [--model plain] [--qp 32]

Each size runs in a fresh process (so each peak RSS is its own): a synthetic photo-like image
(smooth gradients, edges and noise, 3:2) is compressed to a .dsslic file and decoded back.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
from dsslic.codec import Codec, psnr
mp, model, qp = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
w = int(round((mp * 1e6 * 1.5) ** 0.5)); h = int(round(mp * 1e6 / w))
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
img = np.stack([128 + 90 * np.sin(xx / 97) * np.cos(yy / 71), 255 * xx / w, 120 + 100 * ((xx // 211 + yy // 173) % 2)], -1)
img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
del yy, xx
codec = Codec(model, max_pixels=None)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter(); res = codec.encode(img, quality=qp); te = time.perf_counter() - t
pe = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter(); out = codec.decode(res.data); td = time.perf_counter() - t
pd = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"mp": mp, "w": w, "h": h, "bpp": res.bpp, "psnr": psnr(img, out), "encode_s": te, "decode_s": td,
                  "peak_mb": pd / 1024, "before_mb": base / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mp", type=float, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--model", default="plain")
    ap.add_argument("--qp", type=int, default=32)
    a = ap.parse_args()
    print(f"model {a.model}, residual hevc qp {a.qp}; peak RSS of the whole process (Python, torch and the image included)\n")
    print("| megapixels | size | bpp | PSNR dB | encode s | decode s | peak memory MB |\n|---|---|---|---|---|---|---|")
    for mp in a.mp:
        p = subprocess.run([sys.executable, "-c", CHILD, str(mp), a.model, str(a.qp)], capture_output=True, text=True)
        if p.returncode:
            print(f"| {mp:g} | failed: {p.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        print(f"| {mp:g} | {r['w']}x{r['h']} | {r['bpp']:.3f} | {r['psnr']:.2f} | {r['encode_s']:.1f} | "
              f"{r['decode_s']:.2f} | {r['peak_mb']:.0f} |")


if __name__ == "__main__":
    main()
