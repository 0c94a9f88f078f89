"""Make one hostile .dsslic file of each kind and time `dsslic decompress` on it.

    python fuzz/hostile_files.py [--keep DIR]

Prints, per file, the exit code, the wall time of the whole command (Python start-up included) and
its one line of stderr. Every row should read exit 2.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dsslic import bitstream, codecs
from dsslic.codec import Codec


def variants(good: bytes) -> dict[str, bytes]:
    def edit(fn) -> bytes:
        hd = bitstream.parse(good)
        fn(hd)
        return bitstream.serialize(hd)

    def setattr_(**kw):
        return lambda hd: [setattr(hd, k, v) for k, v in kw.items()]

    def layer(i, **kw):
        return lambda hd: [setattr(hd.layers[i], k, v) for k, v in kw.items()]

    big_hevc = codecs.get("hevc").encode(np.zeros((512, 512, 3), np.uint8), 40)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    return {
        "empty": b"",
        "truncated at half": good[: len(good) // 2],
        "truncated by one byte": good[:-1],
        "wrong magic": b"RIFF" + good[4:],
        "version 2": good[:4] + b"\x02" + good[5:],
        "header bit flip (CRC)": good[:6] + bytes([good[6] ^ 1]) + good[7:],
        "payload bit flip (CRC)": bytes(flipped),
        "100000x100000 pixels": edit(setattr_(width=100_000, height=100_000)),
        "layer length past the end": good[:-200] if len(good) > 200 else good[:-1],
        "trailing garbage": good + b"\0" * 16,
        "unknown codec id": edit(layer(1, codec_id=99)),
        "residual stream of another size": edit(layer(2, data=big_hevc)),
        "compact layer as HEVC": edit(layer(1, codec_id=codecs.get("hevc").id)),
        "unknown model id": edit(setattr_(model_id=b"\xde\xad\xbe\xef")),
        "zero alpha": edit(setattr_(alpha=0)),
        "layers out of order": edit(lambda hd: hd.layers.reverse()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", help="write the hostile files into this folder")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    good = Codec("plain").compress(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), quality=30)
    d = Path(a.keep or tempfile.mkdtemp())
    d.mkdir(parents=True, exist_ok=True)
    print("| file | exit | seconds | message |\n|---|---|---|---|")
    for name, data in variants(good).items():
        f = d / (name.replace(" ", "_") + ".dsslic")
        f.write_bytes(data)
        out = d / "out.png"
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "dsslic.cli", "decompress", str(f), "-o", str(out), "--force"],
                           capture_output=True, text=True)
        dt = time.perf_counter() - t
        msg = p.stderr.strip().replace("|", "/")
        print(f"| {name} | {p.returncode} | {dt:.2f} | {msg} |")
        assert not out.exists() or p.returncode == 0
        if out.exists():
            os.unlink(out)


if __name__ == "__main__":
    main()
