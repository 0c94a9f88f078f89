"""What the base layer (the label map) costs, and what making it cheaper does to it.

    python benchmarks/label_cost.py [--labels ../shared/data/camvid/testannot] [--out FILE.md]
    python benchmarks/label_cost.py --images ../shared/data/kodak --segmenter photo [--out FILE.md]

With ``--images`` and ``--segmenter``: the maps a segmenter writes for those images, stored at 1/1 .. 1/16
resolution (dsslic's ``seg_factor``) and coded as dsslic codes them (the smaller of JPEG XL lossless effort 9
and dsslic's own label-map coder, or 2 bytes when uniform): bits per image pixel of the base layer.

On real label maps (CamVid test ground truth: 11 classes + void, 480x360), for each variant:
bits per image pixel of the coded map (JPEG XL lossless effort 9, the codec dsslic uses; PNG and
AVIF lossless for comparison), and the share of pixels whose label survives (vs the original map).
Variants: full resolution; small islands (connected regions under N pixels) merged into their
surroundings; stored at 1/2 and 1/4 resolution (dsslic's seg_factor, nearest-neighbour both ways).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from _report import emit
from PIL import Image
from scipy import ndimage

from dsslic import codecs

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "camvid" / "testannot"


def remove_islands(lab: np.ndarray, min_size: int) -> np.ndarray:
    """Relabel connected regions smaller than min_size with the most common label around them."""
    out = lab.copy()
    for v in np.unique(lab):
        comp, n = ndimage.label(lab == v)
        if n == 0:
            continue
        sizes = ndimage.sum(np.ones_like(lab), comp, index=np.arange(1, n + 1))
        for i in np.nonzero(sizes < min_size)[0]:
            m = comp == i + 1
            ring = ndimage.binary_dilation(m) & ~m
            if ring.any():
                out[m] = np.bincount(out[ring]).argmax()
    return out


def down_up(lab: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    small = lab[f // 2 :: f, f // 2 :: f]
    return small, np.repeat(np.repeat(small, f, 0), f, 1)[: lab.shape[0], : lab.shape[1]]


def nbytes(lab: np.ndarray, how: str) -> int:
    if how == "jxl":
        return len(codecs.get("jxl").encode(np.ascontiguousarray(lab)))
    buf = io.BytesIO()
    if how == "png":
        Image.fromarray(lab).save(buf, "PNG", optimize=True)
    else:
        Image.fromarray(np.repeat(lab[..., None], 3, 2)).save(buf, "AVIF", lossless=True, quality=100)
    return len(buf.getvalue())


def stored(lab: np.ndarray, f: int) -> np.ndarray:
    """The map as a file stores it at 1/f (centre samples of f x f cells: dsslic.codec.stored_samples)."""
    from dsslic.codec import stored_samples

    return lab[np.ix_(stored_samples(lab.shape[0], f), stored_samples(lab.shape[1], f))]


def segmenter_cost(a) -> str:
    from tqdm import tqdm

    from dsslic import segmenters
    from dsslic.codec import AUTO_SEG_FACTORS, LABEL_BUDGET_BPP, seg_layer
    from dsslic.imageio import IMAGE_EXTS

    seg = segmenters.get(a.segmenter)
    files = sorted(p for p in Path(a.images).iterdir() if p.suffix.lower() in IMAGE_EXTS)
    factors = [int(v) for v in a.factors.split(",")]
    rows = {f: {"bpp": [], "jxl": [], "own": [], "won": 0, "kept": []} for f in factors}
    auto = {"bpp": [], "kept": [], "factors": []}  # the default rule (dsslic.codec.Codec._store_labels)
    if not set(AUTO_SEG_FACTORS) <= set(factors):
        raise SystemExit(f"--factors must include {AUTO_SEG_FACTORS} to score the default rule")
    for p in tqdm(files, file=sys.stderr):
        lab = seg.segment(np.asarray(Image.open(p).convert("RGB")))
        n = lab.size
        for f in factors:
            s = stored(lab, f)
            layer = seg_layer(s)
            r = rows[f]
            r["bpp"].append(8 * len(layer.data) / n)
            r["jxl"].append(8 * len(codecs.get("jxl").encode(s)) / n)
            r["own"].append(8 * len(codecs.get("labelmap").encode(s)) / n)
            r["won"] += layer.codec_id == codecs.get("labelmap").id
            back = s[np.arange(lab.shape[0]) // f][:, np.arange(lab.shape[1]) // f]
            r["kept"].append(float((back == lab).mean()))
        for f in AUTO_SEG_FACTORS:
            if rows[f]["bpp"][-1] <= LABEL_BUDGET_BPP or f == AUTO_SEG_FACTORS[-1]:
                break
        auto["bpp"].append(rows[f]["bpp"][-1])
        auto["kept"].append(rows[f]["kept"][-1])
        auto["factors"].append(f)
    lines = [f"Base layer of {len(files)} images of {a.images} segmented by `{a.segmenter}`; bits per image pixel "
             "(means over images); labels kept = share of pixels whose stored label equals the full-resolution one.",
             "", "| stored at | base layer as coded (bpp) | JPEG XL lossless e9 (bpp) | own label-map coder (bpp) | "
             "own coder chosen | labels kept |", "|---|---|---|---|---|---|"]
    for f, r in rows.items():
        lines.append(f"| 1/{f} | **{np.mean(r['bpp']):.4f}** | {np.mean(r['jxl']):.4f} | {np.mean(r['own']):.4f} | "
                     f"{r['won']}/{len(files)} | {100 * np.mean(r['kept']):.2f}% |")
    share = ", ".join(f"1/{f}: {auto['factors'].count(f)}" for f in AUTO_SEG_FACTORS)
    lines.append(f"| **default rule** (finest of {', '.join('1/' + str(f) for f in AUTO_SEG_FACTORS)} within "
                 f"{LABEL_BUDGET_BPP} bpp; {share}) | **{np.mean(auto['bpp']):.4f}** | | | | "
                 f"{100 * np.mean(auto['kept']):.2f}% |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", default=str(DEFAULT))
    ap.add_argument("--images", help="segment these images (with --segmenter) instead of reading label maps")
    ap.add_argument("--segmenter", default="photo")
    ap.add_argument("--factors", default="1,2,4,8,16")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.images:
        text = segmenter_cost(a)
        emit(text, a.out)
        return
    files = sorted(Path(a.labels).glob("*.png"))
    variants = {"full resolution": lambda l: (l, l),
                "islands < 16 px merged": lambda l: (remove_islands(l, 16),) * 2,
                "islands < 64 px merged": lambda l: (remove_islands(l, 64),) * 2,
                "1/2 resolution": lambda l: down_up(l, 2),
                "1/4 resolution": lambda l: down_up(l, 4),
                "islands < 64 px, then 1/2": lambda l: down_up(remove_islands(l, 64), 2)}
    rows = {k: {"jxl": [], "png": [], "avif": [], "kept": []} for k in variants}
    for f in files:
        lab = np.asarray(Image.open(f))
        n = lab.size
        for k, fn in variants.items():
            stored, seen = fn(lab)
            for how in ("jxl", "png", "avif"):
                rows[k][how].append(8 * nbytes(stored, how) / n)
            rows[k]["kept"].append(float((seen == lab).mean()))
    lines = [f"{len(files)} label maps from {a.labels}; bits per image pixel (means); labels kept = share of pixels",
             "whose label equals the original's.", "",
             "| variant | JPEG XL lossless e9 (bpp) | PNG (bpp) | AVIF lossless (bpp) | labels kept |", "|---|---|---|---|---|"]
    for k, r in rows.items():
        lines.append(f"| {k} | {np.mean(r['jxl']):.4f} | {np.mean(r['png']):.4f} | {np.mean(r['avif']):.4f} | "
                     f"{100 * np.mean(r['kept']):.2f}% |")
    emit("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
