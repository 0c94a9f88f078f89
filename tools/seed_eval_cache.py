"""Seed ``dsslic eval``'s cache with the baseline rows of an earlier committed run, after checking them.

    python tools/seed_eval_cache.py --rows reports/kodak/rows.json --data ../shared/data/kodak \\
        --out reports/kodak [--verify 6] [--codecs bpg444,bpg444rgb,...]

The classical baselines do not change when dsslic does; re-encoding 1,700 of them costs an hour on this
CPU. This writes their rows into OUT/cache.jsonl under the keys ``dsslic eval`` uses, but first re-runs
``--verify`` rows drawn at random (seeded) and refuses to seed anything unless each re-run gives the same
bytes and the same PSNR within 0.001 dB (libjxl's decoder is not bit-exact across builds: 9e-6 dB seen). DSSLIC
rows are never seeded.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from dsslic.evaluation.sweep import BASELINES, _file_digest, _key, run_one


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--verify", type=int, default=6)
    ap.add_argument("--codecs", help="comma-separated; default: every non-DSSLIC codec in the rows")
    a = ap.parse_args()
    rows = [r for r in json.loads(Path(a.rows).read_text()) if not r["codec"].startswith("dsslic")]
    if a.codecs:
        rows = [r for r in rows if r["codec"] in a.codecs.split(",")]
    rows = [r for r in rows if r["codec"] in BASELINES and r["setting"] in BASELINES[r["codec"]].settings]
    for r in random.Random(0).sample(rows, min(a.verify, len(rows))):
        new = run_one(str(Path(a.data) / r["image"]), r["codec"], r["setting"], None, "cpu")
        same = new["bytes"] == r["bytes"] and abs(new["psnr"] - r["psnr"]) < 1e-3
        print(f"verify {r['image']} {r['codec']} {r['setting']}: {'same' if same else 'DIFFERS'} "
              f"({new['bytes']} vs {r['bytes']} bytes, {new['psnr']:.4f} vs {r['psnr']:.4f} dB)")
        if not same:
            print("not seeding: the baselines changed since those rows were measured")
            return 1
    digests: dict[str, str] = {}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "cache.jsonl", "a") as f:
        for r in rows:
            d = digests.setdefault(r["image"], _file_digest(Path(a.data) / r["image"]))
            f.write(json.dumps({"key": _key(d, r["codec"], r["setting"], "1"), "row": r}) + "\n")
    print(f"seeded {len(rows)} baseline rows into {out / 'cache.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
