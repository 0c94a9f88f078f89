"""Score a segmenter on labelled images: per-class IoU, mean IoU, pixel accuracy, and speed.

    python benchmarks/segnet_miou.py --segmenter camvid11 [--images ../shared/data/camvid/test]
        [--labels ../shared/data/camvid/testannot] [--flip] [--work-size 480] [--out FILE.md]
    python benchmarks/segnet_miou.py --segmenter photo --source stanford --split tools/splits/photo.json \\
        --images ../shared/data/seg-general/stanford/images --labels ../shared/data/seg-general/stanford/labels
    ... --seg-factor 8     # score the map as a file stores it (1/8 resolution, nearest-neighbour back up)

mIoU is the mean over the classes of the IoU accumulated over all images (void pixels ignored), as the
CamVid literature reports it. With ``--source S`` the ground truth is in dataset S's own classes
(``dsslic.segmenters.labelspace.SOURCES``): when every class of the segmenter maps to exactly one class of S (Stanford:
person/animal/vehicle/other are all "foreground") predictions are scored in S's classes, otherwise the
ground truth is mapped into the segmenter's space and its classes present are scored. ``--split`` keeps only
the images of its "test" list for S. Speed: median time to segment a 768x512 image on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _report import emit
from PIL import Image
from tqdm import tqdm

from dsslic import segmenters, zoo
from dsslic.segmenters import labelspace
from dsslic.segmenters.segnetlite import NetSegmenter
from dsslic.segmenters.segnetlite_np import NumpySegmenter
from dsslic.training.segnet import confusion, scores

ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "camvid"


def to_source(seg_names: list[str], source: str) -> np.ndarray | None:
    """lut from the segmenter's class ids to the source's ids, if each maps to exactly one source class."""
    _, names, mapping = labelspace.SOURCES[source]
    lut = np.zeros(len(seg_names), np.int64)
    for i, c in enumerate(seg_names):
        srcs = [s for s, t in mapping.items() if t == c or (isinstance(t, tuple) and c in t)]
        if len(srcs) != 1:
            return None
        lut[i] = names.index(srcs[0])
    return lut


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segmenter", default="camvid11")
    ap.add_argument("--images", default=str(ROOT / "test"))
    ap.add_argument("--labels", default=str(ROOT / "testannot"))
    ap.add_argument("--source", help="the ground truth's own classes (a labelspace.SOURCES name)")
    ap.add_argument("--split", help="a split JSON: score only its 'test' images of --source")
    ap.add_argument("--seg-factor", type=int, default=1, help="score the map stored at 1/N resolution")
    ap.add_argument("--flip", action="store_true", help="average the logits of the image and its mirror")
    ap.add_argument("--work-size", type=int, help="override the network's working resolution (long side)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runtime", choices=["numpy", "torch"], help="run a SegNetLite in numpy (the CPU default, no "
                                                                   "torch) or torch (the default on other devices)")
    ap.add_argument("--out")
    a = ap.parse_args()
    seg = segmenters.get(a.segmenter, device=a.device)
    path = zoo.find(a.segmenter, "segmenter")
    if a.runtime and path is not None:
        seg = NumpySegmenter.load(path) if a.runtime == "numpy" else NetSegmenter.load(path, device=a.device)
    if isinstance(seg, (NetSegmenter, NumpySegmenter)):
        seg.flip = a.flip
        if a.work_size:
            seg.work_size = a.work_size
    pred_lut, gt_lut, names = np.arange(seg.num_labels), None, list(seg.class_names)
    if a.source:
        src_lut = to_source(list(seg.class_names), a.source)
        if src_lut is not None:
            pred_lut, names = src_lut, labelspace.SOURCES[a.source][1]
        else:
            gt_lut = labelspace.source_table(a.source)[1].astype(np.int64)  # set codes and void are >= n: ignored
    keep = set(json.loads(Path(a.split).read_text())[a.source]["test"]) if a.split else None
    n = len(names)
    conf = np.zeros((n, n), np.int64)
    files = sorted(p for p in Path(a.images).iterdir() if p.suffix.lower() in {".png", ".jpg"}
                   and (keep is None or p.stem in keep))
    f_ = a.seg_factor
    for f in tqdm(files, file=sys.stderr):
        x = np.asarray(Image.open(f).convert("RGB"))
        gt = np.asarray(Image.open(Path(a.labels) / f"{f.stem}.png")).astype(np.int64)
        if gt_lut is not None:
            gt = gt_lut[gt]
        p = seg.segment(x)
        if f_ > 1:  # as dsslic stores it: centre samples, nearest-neighbour back to full size
            h, w = p.shape
            small = np.pad(p, ((0, -h % f_), (0, -w % f_)), mode="symmetric")[f_ // 2 :: f_, f_ // 2 :: f_]
            p = small[np.arange(h) // f_][:, np.arange(w) // f_]
        conf += confusion(pred_lut[p.astype(np.int64)], gt, n)
    sc = scores(conf)
    present = conf.sum(1) > 0
    miou = float(np.mean(np.array(sc["iou"])[present]))
    x = np.asarray(Image.fromarray(np.asarray(Image.open(files[0]).convert("RGB"))).resize((768, 512)))
    seg.segment(x)
    times, cpu = [], []
    for _ in range(5):
        t, c = time.perf_counter(), time.process_time()
        seg.segment(x)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    lines = [f"Segmenter `{a.segmenter}` on {len(files)} images of {a.images} (flip averaging: {a.flip}, "
             f"working size: {getattr(seg, 'work_size', 'full')}, map stored at 1/{f_}"
             + (f", scored in {a.source}'s classes" if a.source else "") + ").", "",
             f"**mIoU {100 * miou:.1f}%** over {int(present.sum())} classes, pixel accuracy "
             f"{100 * sc['pixel_acc']:.1f}%, {statistics.median(times):.3f} s per 768x512 image on {a.device} "
             f"({'numpy' if isinstance(seg, NumpySegmenter) else 'torch'} runtime) "
             f"({statistics.median(cpu):.3f} s of CPU time; {torch.get_num_threads()} thread(s); load average "
             f"{os.getloadavg()[0]:.1f}).", "",
             "| class | IoU |", "|---|---|"]
    lines += [f"| {name} | {100 * v:.1f}% |" for name, v, ok in zip(names, sc["iou"], present) if ok]
    emit("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
