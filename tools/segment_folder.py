"""Label maps for a folder of images with a segmenter, for training a model on the labels the codec will see.

    python tools/segment_folder.py --segmenter camvid11 --out runs/labels IMG_DIR [IMG_DIR ...]

Writes OUT/<stem>.png (8-bit label ids), the pairing ``dsslic train --labels`` expects.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from dsslic import segmenters
from dsslic.imageio import IMAGE_EXTS, load_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--segmenter", default="camvid11")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    seg = segmenters.get(a.segmenter)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(f for d in a.dirs for f in Path(d).rglob("*") if f.suffix.lower() in IMAGE_EXTS)
    for f in tqdm(files, unit="img"):
        Image.fromarray(seg.segment(load_image(f)).astype(np.uint8)).save(out / f"{f.stem}.png")


if __name__ == "__main__":
    main()
