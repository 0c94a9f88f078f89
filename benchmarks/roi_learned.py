"""What `--roi` does to the learned residual layer (`--residual learned`), inside and outside the region.

    python benchmarks/roi_learned.py --enhance WEIGHTS.safetensors [--images ../shared/data/kodak] [--limit 4] \\
        [--size 128x192] [--boost 6,-6] [--out reports/roi_learned.md]

Each image (a centre crop) gets a label map whose class 1 is the centre box (half the height and width, a
quarter of the pixels); the region is that class. Every image is coded with the learned layer without ROI and
with ``--roi class1 --roi-boost DQ``. The learned coder takes an 8-bit image, so the region's amplified residual
is coded as x' + 2^(DQ/6) * (x - x') clipped to 0..255: the table counts the region's samples that clip. The
learned layer has one rate point per model (no setting), so the files are *not* of equal size: the table gives
their sizes beside the PSNRs (pooled: one MSE over the region's pixels of all images, one over the rest).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _report import emit

from dsslic.codec import Codec
from dsslic.enhance import EnhanceModel
from dsslic.imageio import load_image
from dsslic.segmenters import FileSegmenter

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT / ".." / "shared" / "data" / "kodak"


def db(se: float, n: int) -> float:
    return float("inf") if se == 0 else 10 * np.log10(255.0**2 * n / se)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enhance", required=True, help="learned enhancement model (.safetensors)")
    ap.add_argument("--images", type=Path, default=KODAK)
    ap.add_argument("--limit", type=int, default=4)
    ap.add_argument("--size", default="128x192", help="HxW of the centre crops")
    ap.add_argument("--boost", default="6,-6", help="comma-separated DQ values")
    ap.add_argument("--model", default="plain")
    ap.add_argument("--out")
    a = ap.parse_args()
    h, w = map(int, a.size.split("x"))
    files = sorted(p for p in a.images.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})[: a.limit]
    enh = EnhanceModel.load(a.enhance)
    labels = np.zeros((h, w), np.uint8)
    labels[h // 4 : h - h // 4, w // 4 : w - w // 4] = 1
    m = labels == 1
    images = []
    for f in files:
        x = load_image(f)
        y0, x0 = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
        images.append(np.ascontiguousarray(x[y0 : y0 + h, x0 : x0 + w]))
    codec = Codec(a.model, segmenter=FileSegmenter(labels), enhance=enh)

    rows, base = [], None
    for boost in [None, *map(int, a.boost.split(","))]:
        se_in = se_out = 0.0
        total = clipped = 0
        for x in images:
            res = codec.encode(x, residual="learned", verify=True,
                               **({} if boost is None else {"roi": "class1", "roi_boost": boost}))
            out = codec.decode(res.data).astype(np.float64)
            err = ((out - x) ** 2).sum(-1)
            se_in, se_out, total = se_in + err[m].sum(), se_out + err[~m].sum(), total + len(res.data)
            if boost is not None:
                xc = codec.decode(res.data, "coarse").astype(np.float64)
                target = xc + 2.0 ** (boost / 6) * (x - xc)
                clipped += int(((target < 0) | (target > 255))[m].sum())
        n_in, n_out = 3 * int(m.sum()) * len(images), 3 * int((~m).sum()) * len(images)
        p = (db(se_in, n_in), db(se_out, n_out), db(se_in + se_out, n_in + n_out))
        base = base or (total, *p)
        name = "no ROI" if boost is None else f"--roi class1 --roi-boost {boost}"
        d = "" if boost is None else [f" ({v - b:+.2f})" for v, b in zip(p, base[1:])]
        rows.append(f"| {name} | {total}{'' if boost is None else f' ({total / base[0] - 1:+.1%})'} | "
                    f"{8 * total / (h * w * len(images)):.4f} | "
                    + " | ".join(f"{v:.2f}{d[i] if d else ''}" for i, v in enumerate(p))
                    + f" | {'' if boost is None else f'{clipped / n_in:.2%}'} |")
    text = (f"# --roi with --residual learned ({len(images)} centre crops {h}x{w} of {a.images.name}, model "
            f"{a.model}, enhancement model {enh.config.name} {enh.model_id.hex()})\n\n"
            "Region: the centre box, 25% of the pixels. Sizes are whole files; PSNR pooled over the set.\n\n"
            "| coding | total bytes | bpp | PSNR inside | PSNR outside | PSNR all | region samples clipped |\n"
            "|---|---|---|---|---|---|---|\n" + "\n".join(rows))
    emit(text, a.out)


if __name__ == "__main__":
    main()
