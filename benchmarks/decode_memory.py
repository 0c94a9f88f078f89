"""Peak memory and time of `dsslic decompress` on crafted files of growing size: memory per megapixel.

    python benchmarks/decode_memory.py [--mp 1 4 16] [--model plain] [--residual none jpeg hevc]

Each file is tiny (a constant label map, a uniform compact image, a uniform residual: a few hundred
bytes to a few KB) but decodes to the full size, as a hostile file would. Each command runs in its own
process under a small launcher that reads the command's peak resident set from wait4. The last
lines fit peak = a + b * working pixels, working pixels = (W + 64)(H + 64) (``bitstream.working_pixels``),
per residual codec, by least squares over the sizes run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from attacks import uniform_file  # noqa: E402

from dsslic import bitstream  # noqa: E402

_LAUNCH = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); _, st, ru = os.wait4(p.pid, 0); "
           "print(f'\\n@peak {ru.ru_maxrss}', file=sys.stderr); sys.exit(os.waitstatus_to_exitcode(st))")


def run(cmd: list[str]) -> tuple[int, float, float, str]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _LAUNCH, *cmd], capture_output=True, text=True)
    err, _, peak = p.stderr.rpartition("\n@peak ")
    return p.returncode, time.perf_counter() - t, int(peak) / 1024, err.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mp", type=float, nargs="+", default=[1, 4, 16])
    ap.add_argument("--model", default="plain")
    ap.add_argument("--residual", nargs="+", default=["none", "jpeg", "hevc"])
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp())
    print("| model | residual | size | MP | working MP | file bytes | exit | decode s | peak MB |\n"
          "|---|---|---|---|---|---|---|---|---|")
    fits = {}
    for residual in a.residual:
        pts = []
        for mp in a.mp:
            w = int(round((mp * 1e6 * 1.5) ** 0.5))
            h = int(round(mp * 1e6 / w))
            f = d / f"{residual}-{mp}.dsslic"
            f.write_bytes(uniform_file(w, h, residual, a.model))
            code, dt, peak, err = run([sys.executable, "-m", "dsslic.cli", "decompress", str(f), "-o",
                                       str(d / "out.png"), "--force", "--max-pixels", str(10**10)])
            wp = bitstream.working_pixels(w, h) / 1e6
            print(f"| {a.model} | {residual} | {w}x{h} | {w * h / 1e6:.2f} | {wp:.2f} | {f.stat().st_size} | {code} "
                  f"| {dt:.2f} | {peak:.0f} |" + (f" {err}" if code else ""), flush=True)
            pts.append((wp, peak))
        if len(pts) > 1:
            b, c = np.polyfit(*zip(*pts), 1)
            fits[residual] = (b, c)
    for residual, (b, c) in fits.items():
        print(f"{a.model}, residual {residual}: peak MB = {c:.0f} + {b:.1f} * working megapixels (MB: MiB)")


if __name__ == "__main__":
    main()
