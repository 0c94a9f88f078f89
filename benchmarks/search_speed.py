"""How fast `dsslic index` reads a collection and how fast `dsslic search` answers at scale.

    python benchmarks/search_speed.py [--kodak ../shared/data/kodak] [--copies 2400] [--sizes 10000,100000,1000000]

Indexing: the 24 Kodak images are compressed once (``--segmenter camvid11 --residual none``: a real label
map in every file; the residual does not change what indexing reads) at each ``--seg-factors`` (the label
map's stored resolution), then copied to ``--copies`` files and indexed with 1 and 2 processes; the
reference is decoding whole images (model ``general``, HEVC residual at QP 32) in the same run.
Queries: synthetic indexes of 10k / 100k / 1M files (camvid11 label space, random layouts of 2-8 classes)
built straight into SQLite with the index's own schema; each query is timed in-process (best of 3, after
one warm-up), and the CLI's wall time (Python start-up included) at the largest size.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dsslic import bitstream
from dsslic import semantic_search as ss
from dsslic.segmenters.labelspace import CAMVID11

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT / ".." / "shared" / "data" / "kodak"
# how often each class appears in a synthetic file (street scenes: sky/road/building common, people rare)
PRESENCE = np.array([0.9, 0.8, 0.6, 0.9, 0.7, 0.7, 0.3, 0.4, 0.6, 0.3, 0.2])


def compress_kodak(kodak: Path, work: Path, seg_factor: int | None) -> list[Path]:
    """The Kodak images as .dsslic files with the map at 1/seg_factor (None: the encoder's default choice)."""
    from dsslic.codec import Codec

    out = work / f"kodak-f{seg_factor or 'auto'}"
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(kodak.glob("*.png"))
    if not files:
        raise SystemExit(f"no PNG images in {kodak}")
    codec = None
    for f in files:
        dst = out / (f.stem + ".dsslic")
        if not dst.exists():
            codec = codec or Codec(segmenter="camvid11", seg_factor=seg_factor)
            dst.write_bytes(codec.compress(f, residual="none"))
    return sorted(out.glob("*.dsslic"))


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the pool's workers)."""
    ru, rc = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime + rc.ru_utime + rc.ru_stime


def indexing(files: list[Path], copies: int, work: Path, jobs: int) -> tuple[float, float, float]:
    """(files/s for a fresh index, files per CPU second for it, files/s re-indexing the unchanged collection)."""
    coll = work / "coll"
    if not coll.exists() or len(list(coll.iterdir())) != copies + 1 or (coll / ".src").read_text() != str(files[0].parent):
        shutil.rmtree(coll, ignore_errors=True)
        coll.mkdir()
        for i in range(copies):
            shutil.copyfile(files[i % len(files)], coll / f"{i:06d}.dsslic")
        (coll / ".src").write_text(str(files[0].parent))
    db = work / "idx.sqlite"
    db.unlink(missing_ok=True)
    t, c = time.perf_counter(), _cpu()
    st = ss.index([coll], db, jobs=jobs)
    fresh, cpu = time.perf_counter() - t, _cpu() - c
    assert st.indexed == copies and not st.failed, st
    t = time.perf_counter()
    st = ss.index([coll], db, jobs=jobs)
    again = time.perf_counter() - t
    assert st.unchanged == copies
    return copies / fresh, copies / cpu, copies / again


def decode_rate(files: list[Path], kodak: Path, n: int = 3) -> float:
    from dsslic.codec import Codec

    codec = Codec("general")
    data = [codec.compress(kodak / (f.stem + ".png"), quality=32) for f in files[:n]]
    codec.decompress(data[0])
    t = time.perf_counter()
    for d in data:
        codec.decompress(d)
    return n / (time.perf_counter() - t)


def synthetic_index(path: Path, n: int, seed: int = 0) -> None:
    """n files of random street-like layouts, written with the index's schema (and its packs)."""
    rng = np.random.default_rng(seed)
    k = CAMVID11.num_labels
    con = ss.connect(path, create=True)
    space = int.from_bytes(CAMVID11.id, "little")
    con.execute("INSERT OR IGNORE INTO spaces VALUES (?, ?)", (space, __import__("json").dumps(list(CAMVID11.class_names))))
    fid = 0
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        present = rng.random((m, k)) < PRESENCE
        present[np.arange(m), rng.integers(0, k, m)] = True
        w = rng.gamma(0.6, size=(m, k)) * present
        shares = w / w.sum(1, keepdims=True)
        cells = rng.gamma((shares * 4 + 1e-3)[:, None, :].repeat(16, 1)) * present[:, None, :]
        grid = cells / np.maximum(cells.sum(2, keepdims=True), 1e-12)
        shares = grid.mean(1).astype(np.float32)
        g8 = np.rint(grid * 255).astype(np.uint8)
        rows, arows = [], []
        for j in range(m):
            fid += 1
            rows.append((fid, f"/collection/{fid // 1000:04d}/{fid:07d}.dsslic", 40000, 0, 0, 768, 512, "00000000",
                         space, k, shares[j].tobytes(), g8[j].tobytes()))
            arows += [(space, int(c), float(shares[j, c]), fid) for c in np.flatnonzero(shares[j] > 0)]
        con.executemany("INSERT INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        con.executemany("INSERT INTO areas VALUES (?,?,?,?)", arows)
    ss.rebuild_packs(con)
    con.execute("ANALYZE")
    con.commit()
    con.close()


QUERIES = {
    "--has car:0.05 --top 100": dict(has=["car:0.05"], top=100),
    "--has road:0.2 --has car:0.05 --not pedestrian --top 100": dict(has=["road:0.2", "car:0.05"], not_=["pedestrian"], top=100),
    "--has bicyclist:0.3 --has pedestrian:0.2 (all results)": dict(has=["bicyclist:0.3", "pedestrian:0.2"]),
    "--like FILE --top 10": dict(like=None, top=10),
    "--like FILE --has car:0.1 --top 10": dict(like=None, has=["car:0.1"], top=10),
}


def time_query(db: Path, q: dict, like: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, hits): best of 3 after a warm-up (page cache)."""
    kw = {**q, "like": like} if "like" in q else q
    ss.search(db, with_areas=False, **kw)
    best, best_cpu, n = float("inf"), float("inf"), 0
    for _ in range(3):
        t, c = time.perf_counter(), time.process_time()
        n = len(ss.search(db, with_areas=False, **kw))
        best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, time.process_time() - c)
    return best, best_cpu, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kodak", type=Path, default=KODAK)
    ap.add_argument("--copies", type=int, default=2400)
    ap.add_argument("--seg-factors", default="auto,1,4", help="stored map resolutions (auto: the encoder's choice)")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dsslic-search-bench")
    ap.add_argument("--skip-indexing", action="store_true")
    ap.add_argument("--skip-queries", action="store_true")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    print(f"# search speed ({os.cpu_count()} CPUs)\n\n`python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}`\n")
    like = None
    if not a.skip_indexing:
        print(f"Load average before: {' / '.join(f'{v:.1f}' for v in os.getloadavg())} (1/5/15 min; the machine is shared)\n")
        print("| label map stored at | map bytes/file (mean) | index, 1 process | index, 2 processes | "
              "files per CPU second (1 process) | re-index unchanged, 1 process |")
        print("|---|---|---|---|---|---|")
        for f in (None if v == "auto" else int(v) for v in a.seg_factors.split(",")):
            files = compress_kodak(a.kodak, a.work, f)
            like = like or files[0]
            seg_bytes = np.mean([len(bitstream.parse(p.read_bytes()).layers[0].data) for p in files])
            r1, cpu1, again = indexing(files, a.copies, a.work, 1)
            r2, _, _ = indexing(files, a.copies, a.work, 2)
            fs = sorted({bitstream.parse(p.read_bytes()).seg_factor for p in files})
            print(f"| {'default: ' if f is None else ''}{', '.join(f'1/{v}' for v in fs)} | {seg_bytes:.0f} | {r1:.0f} files/s | {r2:.0f} files/s | {cpu1:.0f} | {again:.0f} files/s |",
                  flush=True)
        print(f"\nLoad average after: {' / '.join(f'{v:.1f}' for v in os.getloadavg())}")
        ref = decode_rate(compress_kodak(a.kodak, a.work, 1), a.kodak)
        print(f"\nReference, decoding whole images in one process (model general, HEVC QP 32): {ref:.2f} files/s\n")
    if a.skip_queries:
        return
    if like is None:
        like = compress_kodak(a.kodak, a.work, 1)[0]
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"Queries: wall / CPU time of one query in-process, best of 3. Load average: "
          f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())}\n")
    print("| query | " + " | ".join(f"{n:,} files" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    rows: dict[str, list[str]] = {q: [] for q in QUERIES}
    for n in sizes:
        db = a.work / f"synthetic-{n}.sqlite"
        if not db.exists():
            t = time.perf_counter()
            synthetic_index(db.with_suffix(".part"), n)
            db.with_suffix(".part").rename(db)
            print(f"(built {db.name} in {time.perf_counter() - t:.0f} s, {db.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
        for q, kw in QUERIES.items():
            t, c, k = time_query(db, kw, like)
            rows[q].append(f"{t * 1000:.0f} ms / {c * 1000:.0f} ms CPU ({k:,} hits)")
    for q, cells in rows.items():
        print(f"| `{q}` | " + " | ".join(cells) + " |")
    db = a.work / f"synthetic-{sizes[-1]}.sqlite"
    cmd = [sys.executable, "-m", "dsslic.cli", "search", "--db", str(db), "--has", "car:0.05", "--top", "100"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"\nCLI wall time, `dsslic search --has car:0.05 --top 100` over {sizes[-1]:,} files, start-up included: "
          f"{time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
