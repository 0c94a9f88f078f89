"""Held-out split of the general-photo segmentation sets (Stanford Background + MSRC-v2).

    python tools/make_photo_split.py [--root ../shared/data/seg-general] [--out tools/splits/photo.json]

64 Stanford images are copies of MSRC images; a pair must not straddle the split. Copies are found
by content (32x32 grey thumbnails, normalised correlation >= 0.97 under the same aspect); every image
of a pair goes to training. The test split is a seeded random 20% of the remaining images of each set.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image


def thumbs(files: list[Path]) -> np.ndarray:
    out = []
    for f in files:
        g = np.asarray(Image.open(f).convert("L").resize((32, 32), Image.BILINEAR), np.float64).ravel()
        g = g - g.mean()
        out.append(g / max(np.linalg.norm(g), 1e-9))
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "seg-general"
    ap.add_argument("--root", default=str(root))
    ap.add_argument("--out", default=str(Path(__file__).with_name("splits") / "photo.json"))
    ap.add_argument("--test-share", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    sets = {k: sorted((Path(a.root) / k / "images").glob("*.jpg")) for k in ("stanford", "msrc")}
    t = {k: thumbs(v) for k, v in sets.items()}
    corr = t["stanford"] @ t["msrc"].T
    pairs = [(sets["stanford"][i].stem, sets["msrc"][int(corr[i].argmax())].stem)
             for i in range(len(sets["stanford"])) if corr[i].max() >= 0.97]
    dup = {"stanford": {p[0] for p in pairs}, "msrc": {p[1] for p in pairs}}
    rng = random.Random(a.seed)
    split = {"pairs": pairs}
    for k, files in sets.items():
        free = [f.stem for f in files if f.stem not in dup[k]]
        rng.shuffle(free)
        test = sorted(free[: round(a.test_share * len(files))])
        split[k] = {"test": test, "train": sorted(f.stem for f in files if f.stem not in set(test))}
    Path(a.out).write_text(json.dumps(split, indent=1) + "\n")
    print(f"{len(pairs)} copies; " + ", ".join(f"{k}: {len(split[k]['train'])} train / {len(split[k]['test'])} test"
                                               for k in sets))


if __name__ == "__main__":
    main()
