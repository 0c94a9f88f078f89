"""Tiled versus untiled reconstruction of a real 1024x1024 photo with a trained model (issue #6).

    python benchmarks/tiling.py --image ../shared/data/photos/wallpapers/<file> --model general [--tile 256 512]

The central 1024x1024 crop is compressed once (untiled); the file is then decoded by a Codec that runs
its networks whole and by Codecs that run them in overlapping tiles of the given sizes (overlap 128).
Prints PSNR of each decode against the original and the largest pixel difference between decodes.
"""

from __future__ import annotations

import argparse

import numpy as np

from dsslic.codec import Codec, psnr
from dsslic.imageio import load_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", required=True)
    ap.add_argument("--model", default="general")
    ap.add_argument("--qp", type=int, default=32)
    ap.add_argument("--tile", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--overlap", type=int, default=128)
    a = ap.parse_args()
    x = load_image(a.image)
    h, w = x.shape[:2]
    if min(h, w) < 1024:
        raise SystemExit(f"{a.image}: needs at least 1024x1024")
    x = np.ascontiguousarray(x[(h - 1024) // 2 : (h - 1024) // 2 + 1024, (w - 1024) // 2 : (w - 1024) // 2 + 1024])
    whole = Codec(a.model, tile=4096)
    res = whole.encode(x, quality=a.qp)
    ref_full, ref_coarse = whole.decode(res.data), whole.decode(res.data, "coarse")
    print(f"model {a.model}, {a.image} centre 1024x1024, residual QP {a.qp}: {res.bpp:.4f} bpp\n")
    print("| run | PSNR x' (dB) | PSNR decoded (dB) | max diff of x' vs untiled | max diff decoded |")
    print("|---|---|---|---|---|")
    print(f"| untiled | {psnr(x, ref_coarse):.3f} | {psnr(x, ref_full):.3f} | 0 | 0 |")
    for t in a.tile:
        c = Codec(a.model, tile=t, overlap=a.overlap)
        full, coarse = c.decode(res.data), c.decode(res.data, "coarse")
        dc = int(np.abs(coarse.astype(int) - ref_coarse.astype(int)).max())
        df = int(np.abs(full.astype(int) - ref_full.astype(int)).max())
        print(f"| tiles {t}, overlap {a.overlap} | {psnr(x, coarse):.3f} | {psnr(x, full):.3f} | {dc} | {df} |")


if __name__ == "__main__":
    main()
