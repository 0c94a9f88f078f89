"""Table 1 of the paper: the coarse reconstruction x' alone (no residual layer), per model.

    python benchmarks/table1.py --data ../shared/data/kodak --models plain [general ...] [--out FILE.md]

A model is a registry name, a ``.safetensors`` path, or ``LABEL=NAME_OR_PATH`` to name its row
(e.g. ``noSeg=runs/street-noseg/street-noseg.safetensors`` for an ablation).

For each model: bits per pixel over all channels and per channel (= bpp / 3, the paper's unit) of
the whole .dsslic file written with ``--residual none`` (header, label map and compact image),
PSNR over RGB and MS-SSIM of x'. Means of per-image values. The paper's Kodak rows (bpp per channel,
PSNR, MS-SSIM): upComp 0.087 / 17.77 / 0.738, synth 0.088 / 20.97 / 0.858, noSeg 0.080 / 21.46 / 0.887,
withSeg 0.087 / 21.91 / 0.891.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _report import emit
from tqdm import tqdm

from dsslic.codec import Codec
from dsslic.eval import list_images, ms_ssim, psnr
from dsslic.imageio import load_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--models", nargs="+", default=["plain"])
    ap.add_argument("--limit", type=int)
    ap.add_argument("--compact-codec", help="codec of c (default: the codec's default, HEVC at the coarse QP)")
    ap.add_argument("--compact-quality", type=int, help="c's quality (default: the joint rule's coarse setting)")
    ap.add_argument("--out")
    a = ap.parse_args()
    files = list_images(a.data, a.limit)
    from dsslic.codec import COARSE_QP, DEFAULT_COMPACT

    c_desc = f"{a.compact_codec or DEFAULT_COMPACT}" + (f" q {a.compact_quality}" if a.compact_quality is not None else
                                                         f" (default quality; HEVC: QP {COARSE_QP})")
    lines = [f"Coarse layer only (`--residual none`), {len(files)} images from {', '.join(a.data)}; c coded with "
             f"{c_desc}; means of per-image values; rate = whole file.", "",
             "| model | bpp | bpp per channel | PSNR (dB) | MS-SSIM |", "|---|---|---|---|---|"]
    for spec in a.models:
        name, _, model = spec.rpartition("=")
        name = name or model
        codec = Codec(model)
        rows = []
        for f in tqdm(files, desc=name, file=sys.stderr):
            x = load_image(f)
            res = codec.encode(x, residual="none", compact=a.compact_codec, compact_q=a.compact_quality)
            y = codec.decode(res.data)
            rows.append((res.bpp, psnr(x, y), ms_ssim(x, y)))
        bpp, p, m = (float(np.nanmean(c)) for c in zip(*rows))
        lines.append(f"| {name} | {bpp:.4f} | {bpp / 3:.4f} | {p:.2f} | {m:.4f} |")
    emit("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
