"""Fit the joint rule (c's HEVC QP = residual QP + K) and compare residual codings, on TRAINING photos.

    python benchmarks/joint_rule.py --data ../shared/data/photos/bsds500-train --limit 16 --model plain \
        --sweep k --out reports/joint_rule.md
    python benchmarks/joint_rule.py ... --sweep residual --k 4 --out reports/residual_coding.md

``--sweep k``: for every offset K (and a lossless JPEG XL c), the whole-file curve over residual QPs, its
BD-rate (PSNR and MS-SSIM) against bpg444 on the same images, and the convex hull over all (residual QP,
c QP) points with the offsets its points use. ``--sweep residual``: the same for the residual codings
(mapping, bit depth, x265 tune, chroma QP offset, preset and other x265 parameters) at one K, with each run's
encode time as a ratio to the first run's in the same process (the speed a parameter buys). Rates from the real
bytes of the whole file, means of per-image values at each setting.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _report import emit
from tqdm import tqdm

from dsslic import codecs
from dsslic.codec import Codec, ResidualCoding
from dsslic.eval import bd_rate, db, list_images, ms_ssim, psnr
from dsslic.imageio import load_image

RESIDUAL_VARIANTS = {
    "minmax8 ssim (paper)": ResidualCoding(bits=8),
    "fixed8 (r/2+128) ssim": ResidualCoding(mapping="fixed", bits=8),
    "minmax10 ssim": ResidualCoding(bits=10),
    "fixed10 (r+512) ssim": ResidualCoding(mapping="fixed", bits=10),
    "minmax10 psnr": ResidualCoding(bits=10, tune="psnr"),
    "minmax10 none": ResidualCoding(bits=10, tune="none"),
    "minmax10 ssim chroma+2": ResidualCoding(bits=10, chroma_offset=2),
    "minmax10 ssim chroma-2": ResidualCoding(bits=10, chroma_offset=-2),
    "minmax10 ssim slow": ResidualCoding(bits=10, preset="slow"),
    "minmax10 ssim tu-intra-depth=2": ResidualCoding(bits=10, x265="tu-intra-depth=2"),
    "minmax10 ssim rd=5": ResidualCoding(bits=10, x265="rd=5"),
    "minmax10 ssim tu-intra-depth=2:rd=5": ResidualCoding(bits=10, x265="tu-intra-depth=2:rd=5"),
}


def hull(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Upper-left convex hull of (rate, quality) points: the best quality per rate with free choice."""
    pts = sorted(points)
    best: list[tuple[float, float, str]] = []
    for p in pts:
        if best and p[1] <= best[-1][1]:
            continue  # dominated: more rate, no more quality
        while len(best) >= 2:
            (r1, d1, _), (r2, d2, _) = best[-2], best[-1]
            if (d2 - d1) * (p[0] - r1) <= (p[1] - d1) * (r2 - r1):
                best.pop()  # not convex
            else:
                break
        best.append(p)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--model", default="plain")
    ap.add_argument("--sweep", choices=["k", "residual"], default="k")
    ap.add_argument("--ks", default="-6,-3,0,3,6,9", help="offsets K for --sweep k")
    ap.add_argument("--k", type=int, default=0, help="the offset for --sweep residual")
    ap.add_argument("--bits", type=int, default=8, help="residual bit depth for --sweep k (min/max mapping)")
    ap.add_argument("--qps", default="22,26,30,34,38,42")
    ap.add_argument("--variants", help="comma-separated subset of the residual variants")
    ap.add_argument("--anchor-run", action="store_true",
                    help="BD-rates against the first run instead of bpg444 (saves the anchor's encodes)")
    ap.add_argument("--out")
    a = ap.parse_args()
    files = list_images(a.data, a.limit)
    qps = [int(q) for q in a.qps.split(",")]
    if a.sweep == "k":
        rc = ResidualCoding(bits=a.bits)
        runs = {f"K={k:+d}": (rc, "hevc", k) for k in (int(v) for v in a.ks.split(","))}
        runs["c lossless (jxl)"] = (rc, "jxl-lossless", None)
    else:
        names = a.variants.split(",") if a.variants else list(RESIDUAL_VARIANTS)
        runs = {n: (RESIDUAL_VARIANTS[n], "hevc", a.k) for n in names}
    hevc = codecs.get("hevc")
    anchor: dict[int, list] = {}
    curves: dict[str, dict[int, list]] = {n: {} for n in runs}
    seconds: dict[str, float] = {}  # encode wall time per run (the machine's load moves it: compare within a run)
    imgs = [load_image(f) for f in files]
    for x in tqdm([] if a.anchor_run else imgs, desc="bpg444", file=sys.stderr):
        for qp in qps + [46]:
            data = hevc.encode(x, qp)
            y = hevc.decode(data, x.shape)
            anchor.setdefault(qp, []).append((8 * (len(data) + 16) / (x.shape[0] * x.shape[1]), psnr(x, y),
                                              db(ms_ssim(x, y))))
    for name, (rc, compact, k) in runs.items():
        cod = Codec(a.model, residual_coding=rc)
        for x in tqdm(imgs, desc=name, file=sys.stderr):
            for qp in qps:
                q_c = None if k is None else int(np.clip(qp + k, 0, 51))
                t0 = time.perf_counter()
                res = cod.encode(x, quality=qp, compact=compact, compact_q=q_c)
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
                y = cod.decode(res.data)
                curves[name].setdefault(qp, []).append((res.bpp, psnr(x, y), db(ms_ssim(x, y))))
        report(a, files, curves, anchor, seconds)


def report(a, files, curves: dict, anchor: dict, seconds: dict) -> None:
    """Print (and write) the table so far: a run killed midway leaves the runs it finished."""

    def mean_curve(c: dict[int, list]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = np.array([np.mean(c[q], axis=0) for q in sorted(c)])
        order = np.argsort(m[:, 0])
        return m[order, 0], m[order, 1], m[order, 2]

    ar, ap_, am = mean_curve(anchor if anchor else next(iter(curves.values())))
    vs = next(iter(curves)) if a.anchor_run else "bpg444"
    lines = [f"`--sweep {a.sweep}` on {len(files)} images from {', '.join(a.data)}, model `{a.model}`, residual QPs "
             f"{a.qps}; whole-file bpp (all channels), means of per-image PSNR / MS-SSIM (dB) per setting.", "",
             f"| run | BD-rate vs {vs}, PSNR | MS-SSIM | encode time vs the first run | points (bpp, dB) |",
             "|---|---|---|---|---|"]
    first = next(iter(seconds.values()), None)
    allpts = []
    for name, c in curves.items():
        if not c:
            continue
        r, p, m = mean_curve(c)
        pts = " ".join(f"({ri:.3f}, {pi:.2f})" for ri, pi in zip(r, p))
        speed = f"{seconds[name] / first:.3f}x" if first and name in seconds else ""
        lines.append(f"| {name} | {bd_rate((ar, ap_), (r, p)):+.2f}% | {bd_rate((ar, am), (r, m)):+.2f}% | {speed} | {pts} |")
        allpts += [(float(np.mean([v[0] for v in c[q]])), float(np.mean([v[1] for v in c[q]])), f"{name}@{q}")
                   for q in c]
    hp = hull(allpts)
    lines += ["", "Convex hull over all points (rate, PSNR, run@residual QP): " + ", ".join(
        f"({r:.3f}, {d:.2f}, {n})" for r, d, n in hp), ""]
    hr, hd = np.array([h[0] for h in hp]), np.array([h[1] for h in hp])
    if len(hp) >= 4:
        lines.append(f"Hull BD-rate vs {vs} (PSNR): {bd_rate((ar, ap_), (hr, hd)):+.1f}%")
    emit("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
