"""What `--roi` buys inside the region and what it costs outside, at equal file size.

    python benchmarks/roi.py [--images ../shared/data/camvid/test] [--segmenter camvid11] \\
        [--roi car,pedestrian,bicyclist] [--boost 6] [--qp 32]

Every image is compressed without ROI at ``--qp`` (default settings otherwise), then with ``--roi`` under
``--target-bpp`` equal to that file's rate (so each ROI file is at most as large); images are then moved one
QP finer, in order, while the ROI set's total stays under 1.02x the plain set's, until it is within 2% of it.
The region is the one the decoder sees (the file's own label map). PSNR is pooled over the set: one MSE over
all pixels inside the region (and one outside), from the decoded files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from dsslic import bitstream
from dsslic.codec import Codec, decode_layers
from dsslic.imageio import load_image

ROOT = Path(__file__).resolve().parents[1]
CAMVID = ROOT / ".." / "shared" / "data" / "camvid" / "test"


def db(se: float, n: int) -> float:
    return float("inf") if se == 0 else 10 * np.log10(255.0**2 * n / se)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=CAMVID)
    ap.add_argument("--segmenter", default="camvid11")
    ap.add_argument("--model", default=None)
    ap.add_argument("--roi", default="car,pedestrian,bicyclist")
    ap.add_argument("--boost", default="6", help="comma-separated DQ values to measure")
    ap.add_argument("--qp", type=int, default=32, help="QP of the files without ROI")
    ap.add_argument("--limit", type=int)
    a = ap.parse_args()
    files = sorted(p for p in a.images.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})[: a.limit]
    if not files:
        raise SystemExit(f"no images in {a.images}")
    codec = Codec(model=a.model, segmenter=a.segmenter)
    images = [load_image(f) for f in files]

    def measure(datas: list[bytes], masks: list[np.ndarray]) -> tuple[float, float, float]:
        se_in = se_out = 0.0
        n_in = n_out = 0
        for x, d, m in zip(images, datas, masks):
            err = ((codec.decode(d).astype(np.float64) - x) ** 2).sum(-1)
            se_in, se_out = se_in + err[m].sum(), se_out + err[~m].sum()
            n_in, n_out = n_in + 3 * int(m.sum()), n_out + 3 * int((~m).sum())
        return db(se_in, n_in), db(se_out, n_out), db(se_in + se_out, n_in + n_out)

    plain = [codec.encode(x, quality=a.qp) for x in images]
    region0 = codec.roi(a.roi)
    masks = [np.isin(decode_layers(bitstream.parse(r.data), "seg").s, region0.classes) for r in plain]
    base_total = sum(len(r.data) for r in plain)
    pixels = sum(x.shape[0] * x.shape[1] for x in images)
    share = sum(int(m.sum()) for m in masks) / pixels
    p_in, p_out, p_all = measure([r.data for r in plain], masks)
    print(f"# --roi {a.roi} on {a.images} ({len(files)} images, segmenter {a.segmenter})\n")
    print(f"`python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}`\n")
    print(f"Region: {share:.1%} of the pixels (the files' own maps), in {sum(bool(m.any()) for m in masks)} images.\n")
    print("| coding | total bytes | bpp | PSNR inside | PSNR outside | PSNR all |\n|---|---|---|---|---|---|")
    print(f"| no ROI, QP {a.qp} | {base_total} | {8 * base_total / pixels:.4f} | {p_in:.2f} | {p_out:.2f} | {p_all:.2f} |")
    for boost in map(int, a.boost.split(",")):
        region = codec.roi(a.roi, boost)
        res = [codec.encode(x, roi=region, target_bpp=r.bpp) for x, r in zip(images, plain)]
        total = sum(len(r.data) for r in res)
        for i, x in enumerate(images):  # spend what the per-image fit left over, one QP at a time
            if total >= 0.98 * base_total:
                break
            if res[i].quality is None or res[i].quality <= 0:
                continue
            finer = codec.encode(x, roi=region, quality=res[i].quality - 1)
            if total - len(res[i].data) + len(finer.data) <= 1.02 * base_total:
                total += len(finer.data) - len(res[i].data)
                res[i] = finer
        r_in, r_out, r_all = measure([r.data for r in res], masks)
        print(f"| --roi-boost {boost} | {total} ({total / base_total - 1:+.1%}) | {8 * total / pixels:.4f} | "
              f"{r_in:.2f} ({r_in - p_in:+.2f}) | {r_out:.2f} ({r_out - p_out:+.2f}) | {r_all:.2f} ({r_all - p_all:+.2f}) |",
              flush=True)


if __name__ == "__main__":
    main()
