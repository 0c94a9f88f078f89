"""Score a segmenter on labelled images: per-class IoU, mean IoU, pixel accuracy, and speed.

    python benchmarks/segnet_miou.py --segmenter camvid11 [--images ../shared/data/camvid/test]
        [--labels ../shared/data/camvid/testannot] [--flip] [--work-size 480] [--out FILE.md]

mIoU is the mean over the segmenter's classes of the IoU accumulated over all images (void pixels,
id >= number of classes, are ignored), as the CamVid literature reports it. Speed: median time to
segment a 768x512 image on this machine (CPU, or --device cuda).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from dsslic import segnet
from dsslic.segtrain import confusion, scores

ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "camvid"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segmenter", default="camvid11")
    ap.add_argument("--images", default=str(ROOT / "test"))
    ap.add_argument("--labels", default=str(ROOT / "testannot"))
    ap.add_argument("--flip", action="store_true", help="average the logits of the image and its mirror")
    ap.add_argument("--work-size", type=int, help="override the network's working resolution (long side)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out")
    a = ap.parse_args()
    seg = segnet.get(a.segmenter, device=a.device)
    if isinstance(seg, segnet.NetSegmenter):
        seg.flip = a.flip
        if a.work_size:
            seg.work_size = a.work_size
    n = seg.num_labels
    conf = np.zeros((n, n), np.int64)
    files = sorted(p for p in Path(a.images).iterdir() if p.suffix.lower() in {".png", ".jpg"})
    for f in tqdm(files, file=sys.stderr):
        x = np.asarray(Image.open(f).convert("RGB"))
        gt = np.asarray(Image.open(Path(a.labels) / f"{f.stem}.png")).astype(np.int64)
        conf += confusion(seg.segment(x).astype(np.int64), gt, n)
    sc = scores(conf)
    x = np.asarray(Image.fromarray(np.asarray(Image.open(files[0]).convert("RGB"))).resize((768, 512)))
    seg.segment(x)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        seg.segment(x)
        times.append(time.perf_counter() - t)
    lines = [f"Segmenter `{a.segmenter}` on {len(files)} images of {a.images} (flip averaging: {a.flip}, "
             f"working size: {getattr(seg, 'work_size', 'full')}).", "",
             f"**mIoU {100 * sc['miou']:.1f}%**, pixel accuracy {100 * sc['pixel_acc']:.1f}%, "
             f"{statistics.median(times):.3f} s per 768x512 image on {a.device}.", "",
             "| class | IoU |", "|---|---|"]
    lines += [f"| {name} | {100 * v:.1f}% |" for name, v in zip(seg.class_names, sc["iou"])]
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n\nCommand: `python benchmarks/segnet_miou.py " + " ".join(sys.argv[1:]) + "`\n")


if __name__ == "__main__":
    main()
