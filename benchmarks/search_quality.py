"""How well `dsslic search` finds what held-out labelled images show.

    python benchmarks/search_quality.py --segmenter camvid11                      # CamVid test (50 frames)
    python benchmarks/search_quality.py --images ../shared/data/seg-general/stanford/images \\
        --labels ../shared/data/seg-general/stanford/labels --label-map-from-gt stanford \\
        --split tools/splits/photo.json:stanford --segmenter photo                # a general-photo held-out split

The images are compressed with the default settings (and ``--segmenter``), indexed, and queried:
* for every class, ``--has CLASS:0.05`` against the ground truth "the class covers >= 5% of the image"
  (per-class precision, recall, F1; their means over the classes that occur in the ground truth or the results);
* ``--like FILE --top 10`` for every file against the similarity of the ground-truth maps (the same 4x4
  layout similarity, computed on the labelled pixels): nDCG@10, beside that of a random ranking.
``--label-map-from-gt SOURCE`` names how ground-truth ids map into the segmenter's label space (a source of
``dsslic.segmenters.labelspace.SOURCES``: camvid, stanford, msrc); a ground-truth class that is one of several target
classes (Stanford's "foreground") is scored as the union of those classes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import dsslic
from dsslic import semantic_search as ss
from dsslic.segmenters import labelspace

ROOT = Path(__file__).resolve().parents[1]
CAMVID = ROOT / ".." / "shared" / "data" / "camvid"
MIN_AREA = 0.05


def pairs(images: Path, labels: Path, split: str | None, limit: int | None) -> list[tuple[Path, Path]]:
    keep = None
    if split:
        path, _, key = split.partition(":")
        keep = set(json.loads(Path(path).read_text())[key]["test"])
    out = []
    for img in sorted(p for p in images.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp"}):
        lab = labels / (img.stem + ".png")
        if lab.is_file() and (keep is None or img.stem in keep):
            out.append((img, lab))
    return out[:limit] if limit else out


def gt_classes(space: labelspace.LabelSpace, source: str) -> tuple[np.ndarray, list[tuple[str, tuple[int, ...]]]]:
    """(lut from ground-truth ids to evaluation classes, [(name, target class ids)] per evaluation class)."""
    target, lut, sets = labelspace.source_table(source)
    if target.id != space.id:
        raise SystemExit(f"--label-map-from-gt {source} maps into {target.name!r}, the segmenter's space is {space.name!r}")
    n = space.num_labels
    classes = [(space.class_names[i], (i,)) for i in range(n) if (lut == i).any()]
    classes += [("|".join(space.class_names[i] for i in s), s) for s in sets]
    ev = np.full(256, 255, np.uint8)
    for j, (_, ids) in enumerate(classes):
        code = ids[0] if len(ids) == 1 else n + sets.index(ids)
        ev[lut == code] = j
    return ev, classes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=Path, default=CAMVID / "test")
    ap.add_argument("--labels", type=Path, default=CAMVID / "testannot")
    ap.add_argument("--segmenter", default="camvid11")
    ap.add_argument("--label-map-from-gt", dest="source", default="camvid", choices=sorted(labelspace.SOURCES),
                    help="how ground-truth ids map into the segmenter's label space")
    ap.add_argument("--split", metavar="JSON:SET", help="only the 'test' images of SET in this split file")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dsslic-search-quality")
    a = ap.parse_args()

    from dsslic import segmenters
    from dsslic.codec import Codec

    seg = segmenters.get(a.segmenter)
    space = labelspace.by_id(seg.id)
    assert space is not None, "the segmenter's label space is not in dsslic.segmenters.labelspace"
    lut, classes = gt_classes(space, a.source)
    items = pairs(a.images, a.labels, a.split, a.limit)
    work = a.work / f"{a.images.resolve().name}-{seg.fingerprint.replace(':', '-')}"
    work.mkdir(parents=True, exist_ok=True)
    codec = None
    files = []
    for img, _ in items:
        out = work / (img.stem + ".dsslic")
        if not out.exists():
            codec = codec or Codec(segmenter=seg)
            out.write_bytes(codec.compress(img))  # default settings
        files.append(str(out.resolve()))
    db = work / "index.sqlite"
    db.unlink(missing_ok=True)
    st = dsslic.index([work], db)
    assert st.indexed == len(files) and not st.failed, st

    # ground truth: class areas (of the whole image) and the 4x4 layout over the labelled pixels
    k = len(classes)
    gt_area, gt_grid = np.zeros((len(items), k)), np.zeros((len(items), 16, k))
    for i, (_, lab) in enumerate(items):
        g = lut[np.asarray(Image.open(lab).convert("L"))]
        g = np.where(g == 255, k, g)  # unlabelled: one more class, left out below
        shares, grid = ss.layout(g, k + 1)
        gt_area[i] = shares[:k]
        labelled = grid[:, :k]
        gt_grid[i] = labelled / np.maximum(labelled.sum(1, keepdims=True), 1e-12)

    # predictions: the index's areas, evaluation classes as unions of target classes
    rows = {r["path"]: r["areas"] for r in dsslic.search(db)}
    pred_area = np.array([[sum(rows[f].get(space.class_names[c], 0.0) for c in ids) for _, ids in classes] for f in files])
    print(f"# search quality: {a.images} ({len(files)} images), segmenter {seg.fingerprint}\n")
    print(f"`python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}`\n")
    print(f"## --has CLASS:{MIN_AREA} (class covers >= {MIN_AREA:.0%} of the image)\n")
    print("| class | images (truth) | returned | precision | recall | F1 |\n|---|---|---|---|---|---|")
    f1s, f1_true = [], []
    for j, (name, ids) in enumerate(classes):
        truth = gt_area[:, j] >= MIN_AREA
        got = pred_area[:, j] >= MIN_AREA
        if len(ids) == 1:  # the real query, which must agree with the areas read back
            hits = {r["path"] for r in dsslic.search(db, has=[f"{name}:{MIN_AREA}"], with_areas=False)}
            assert hits == {f for f, g in zip(files, got) if g}, name
        if not truth.any() and not got.any():
            print(f"| {name} | 0 | 0 | - | - | - |")
            continue
        tp = int((truth & got).sum())
        p = tp / got.sum() if got.any() else 0.0
        r = tp / truth.sum() if truth.any() else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        f1s.append((p, r, f1))
        if truth.any():
            f1_true.append((p, r, f1))
        print(f"| {name} | {int(truth.sum())} | {int(got.sum())} | {p:.3f} | {r:.3f} | {f1:.3f} |")
    mp, mr, mf = np.mean(f1s, 0)
    tp_, tr_, tf_ = np.mean(f1_true, 0)
    print(f"| **mean**, classes in the truth ({len(f1_true)}) | | | {tp_:.3f} | {tr_:.3f} | **{tf_:.3f}** |")
    print(f"| mean, also classes only in the results ({len(f1s)}; F1 = 0 there) | | | {mp:.3f} | {mr:.3f} | {mf:.3f} |\n")

    # --like: nDCG@10 against ground-truth layout similarity
    idx = {f: i for i, f in enumerate(files)}
    rel = np.array([[1 - np.abs(gt_grid[i] - gt_grid[j]).sum(-1).mean() / 2 for j in range(len(files))]
                    for i in range(len(files))])
    disc = 1 / np.log2(np.arange(2, 12))
    rng = np.random.default_rng(0)
    nd: dict[str, list[float]] = {"similarity": [], "similarity, min-max scaled per query": []}
    nd_rand: dict[str, list[float]] = {k: [] for k in nd}
    for i, f in enumerate(files):
        others = np.array([j for j in range(len(files)) if j != i])
        got = [idx[r["path"]] for r in dsslic.search(db, like=f, top=10, with_areas=False)]
        for key, gain in (("similarity", rel[i]),
                          ("similarity, min-max scaled per query", (rel[i] - rel[i, others].min())
                           / max(np.ptp(rel[i, others]), 1e-12))):
            ideal = np.sort(gain[others])[::-1][:10]
            idcg = (ideal * disc[: len(ideal)]).sum()
            nd[key].append((gain[got] * disc[: len(got)]).sum() / idcg)
            for _ in range(20):
                perm = rng.permutation(others)[:10]
                nd_rand[key].append((gain[perm] * disc[: len(perm)]).sum() / idcg)
    print("## --like FILE --top 10 (relevance: 4x4 layout similarity of the ground-truth maps)\n")
    print("| gain | nDCG@10 | a random ranking |\n|---|---|---|")
    for key in nd:
        print(f"| {key} | **{np.mean(nd[key]):.3f}** | {np.mean(nd_rand[key]):.3f} |")
    print(f"\n({len(files)} queries, each file against the other {len(files) - 1})")


if __name__ == "__main__":
    main()
