"""Make one hostile .dsslic file of each kind and time `dsslic decompress` on it.

    python fuzz/hostile_files.py [--keep DIR]

Prints, per file, the command, the exit code, the wall time of the whole command (Python start-up
included; the small launcher that measures it adds about 0.05 s), its peak memory (the command's maximum
resident set, from wait4) and its one line of stderr.
Every row should read exit 2. The first rows are damaged real files; the rest are the structure-aware
attacks of issue 13 (``fuzz/attacks.py``: valid container and CRCs, payloads that lie).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import attacks  # noqa: E402

from dsslic import bitstream, codecs  # noqa: E402
from dsslic.codec import Codec  # noqa: E402


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


def learned_variants(d: Path) -> tuple[dict[str, bytes], list[str]]:
    """A file with a learned enhancement layer (a small untrained model, saved in ``d``), padded and truncated."""
    import torch

    from dsslic.enhance import EnhanceConfig, EnhanceModel

    torch.manual_seed(0)
    m = EnhanceModel(EnhanceConfig(name="tiny", n=8, m=12, nz=4)).eval()
    path = d / "enhance-tiny.safetensors"
    m.save(path)
    good = Codec("plain", enhance=m).compress(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8),
                                             residual="learned")

    def with_payload(fn) -> bytes:
        hd = bitstream.parse(good)
        hd.layers[2].data = fn(hd.layers[2].data)
        return bitstream.serialize(hd)

    return ({"learned layer padded by one word": with_payload(lambda p: p + b"\x12\x34\x56\x78"),
             "learned layer truncated by one word": with_payload(lambda p: p[:-4])}, ["--enhance", str(path)])


# The command runs under a small launcher that reports its rusage: a child forked straight from this process
# (which holds PyTorch) would report this process's resident set as its own peak.
_LAUNCH = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); _, st, ru = os.wait4(p.pid, 0); "
           "print(f'\\n@peak {ru.ru_maxrss}', file=sys.stderr); sys.exit(os.waitstatus_to_exitcode(st))")


def run(cmd: list[str]) -> tuple[int, float, float, str]:
    """Exit code, wall seconds, peak RSS in MB (of the command alone, from wait4) and stderr of a command."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _LAUNCH, *cmd], capture_output=True, text=True)
    dt = time.perf_counter() - t
    err, _, peak = p.stderr.rpartition("\n@peak ")
    return p.returncode, dt, int(peak) / 1024, err.strip().replace("|", "/")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", help="write the hostile files into this folder")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    good = Codec("plain").compress(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), quality=30)
    d = Path(a.keep or tempfile.mkdtemp())
    d.mkdir(parents=True, exist_ok=True)
    learned, learned_args = learned_variants(d)
    rows = [(name, data, "decompress", []) for name, data in variants(good).items()]
    rows += [(name, data, "decompress", []) for name, data in attacks.all_attacks().items()]
    rows += [(name, data, "decompress", learned_args) for name, data in learned.items()]
    rows += [("seg_factor 255 on a 10^8 x 1 header", attacks.all_attacks()[
        "seg_factor 255 on a 10^8 x 1 header"], "info", [])]
    print("| file | bytes | command | exit | seconds | peak MB | message |\n|---|---|---|---|---|---|---|")
    for name, data, cmd, extra in rows:
        f = d / (name.replace(" ", "_").replace("/", "_") + ".dsslic")
        f.write_bytes(data)
        out = d / "out.png"
        args = [sys.executable, "-m", "dsslic.cli", cmd, str(f), *extra]
        if cmd == "decompress":
            args += ["-o", str(out), "--force"]
        code, dt, peak, msg = run(args)
        print(f"| {name} | {len(data)} | {cmd} | {code} | {dt:.2f} | {peak:.0f} | {msg} |")
        assert not out.exists() or code == 0
        if out.exists():
            os.unlink(out)


if __name__ == "__main__":
    main()
