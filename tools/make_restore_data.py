"""Pairs for the restoration filter: training photos coded by the default ``Codec``, as its decoder sees them.

    python tools/make_restore_data.py --out /work/runs/restore-data \\
        --data ../shared/data/photos/bsds500-train ../shared/data/photos/sun-hays80 ../shared/data/photos/wallpapers

For every image (a random crop of at most --crop-w x --crop-h, at native resolution, so large wallpapers cost no
more than BSDS photos), one encode per residual QP drawn from each of --strata (the eval's QPs 22..49 split in
groups, one QP from each), then the file is decoded: ``OUT/<stem>.npz`` holds x (the crop), s (the decoded label
map), and per QP the decoder's x' (``xc<q>``) and x~ (``xt<q>``). Images are processed in a seeded random order
and an existing .npz is skipped, so an interrupted run continues and a partial folder is a fair sample. Never
point it at Kodak or bsds500-test: those score the filter.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

STRATA = "22,25,28/31,34/37,40/43,46,49"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True, help="folders of training photos")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="general")
    ap.add_argument("--strata", default=STRATA, help="groups of residual QPs, '/'-separated; one QP per group")
    ap.add_argument("--crop-w", type=int, default=512)
    ap.add_argument("--crop-h", type=int, default=384)
    ap.add_argument("--limit", type=int, default=0, help="at most this many images (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    import torch

    from dsslic.codec import Codec
    from dsslic.imageio import IMAGE_EXTS, load_image
    from dsslic.training.restore import make_pairs

    torch.set_num_threads(1)
    for d in a.data:
        if "kodak" in d or "bsds500-test" in d:
            raise SystemExit(f"{d}: test images are never training data")
    files = sorted(f for d in a.data for f in Path(d).iterdir() if f.suffix.lower() in IMAGE_EXTS)
    rng = random.Random(a.seed)
    rng.shuffle(files)
    files = files[: a.limit or None]
    strata = [[int(q) for q in g.split(",")] for g in a.strata.split("/")]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    codec = Codec(a.model, restore=False)
    t0 = time.time()
    for i, f in enumerate(files):
        dst = out / f"{f.parent.name}-{f.stem}.npz"
        qs = [rng.choice(g) for g in strata]
        cy, cx = rng.random(), rng.random()
        if dst.is_file():
            continue
        x = load_image(f)
        h, w = min(a.crop_h, x.shape[0]) // 8 * 8, min(a.crop_w, x.shape[1]) // 8 * 8
        y0, x0 = int(cy * (x.shape[0] - h)), int(cx * (x.shape[1] - w))
        x = np.ascontiguousarray(x[y0 : y0 + h, x0 : x0 + w])
        arrays = make_pairs(codec, x, qs)
        tmp = dst.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(dst)
        print(f"{i + 1}/{len(files)} {dst.name} {w}x{h} qp {qs} {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
