"""Fuzz the .dsslic parser and decoder for as long as asked; report inputs tried and escapes.

    python fuzz/fuzz_decode.py --seconds 600 [--seed 0] [--mode bytes|structured|both]

Seeds are real files (several sizes, each residual codec, with and without a label map). ``bytes``
inputs are a seed mutated by bit flips, byte sets, cuts, splices of another seed, and header edits with a
recomputed header CRC (so the checks behind the CRC are reached). ``structured`` inputs keep the
container and every CRC valid and lie inside the payloads instead (``attacks.mutate_structured``: stream
header bits, boundary bytes, cuts, a stream twice, JPEG XL re-boxed into ``jxlp`` boxes, another file's
stream, another allowed codec id, header fields); ``both`` alternates. An *escape* is any outcome other
than a decoded image of the declared size or a DsslicFormatError; a *slow* input takes over 2 s; an input
*over the memory bound* raised the process's peak resident set (reset before each input through
/proc/self/clear_refs) by more than docs/ROBUSTNESS.md's bound, BOUND_MB + BYTES_PER_PIXEL x (W+64)(H+64)
of the header that ``parse`` accepted (0 pixels when it refused the file).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
import traceback
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import attacks  # noqa: E402

from dsslic import bitstream  # noqa: E402
from dsslic.codec import Codec  # noqa: E402
from dsslic.errors import DsslicFormatError  # noqa: E402
from dsslic.segmenters import FileSegmenter  # noqa: E402


def seeds(codec: Codec) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for (h, w), residual in [((1, 1), "hevc"), ((9, 7), "hevc"), ((40, 56), "avif"), ((64, 48), "jxl"),
                             ((33, 65), "webp"), ((48, 48), "jpeg2000"), ((40, 40), "none")]:
        x = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out.append(codec.compress(x, residual=residual))
    labels = (np.arange(48 * 64).reshape(48, 64) // 500 % 5).astype(np.uint8)
    c2 = Codec("plain", segmenter=FileSegmenter(labels))
    out.append(c2.compress(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)))
    return out


def recrc(buf: bytearray) -> bytearray:
    """Fix the header CRC of a mutated file when its header still parses far enough to find it."""
    try:
        r = bitstream._Reader(bytes(buf))
        r.take(5, "")
        r.varint(""), r.varint("")
        r.take(2 + 8, "")
        r.varint("")
        r.take(4, "")
        for _ in range(r.u8("")):
            r.take(3, "")
            r.varint("")
            r.take(4, "")
        end = r.pos
        buf[end : end + 4] = zlib.crc32(bytes(buf[:end])).to_bytes(4, "little")
    except Exception:
        pass
    return buf


def mutate(rnd: random.Random, pool: list[bytes]) -> bytes:
    buf = bytearray(rnd.choice(pool))
    for _ in range(rnd.randint(1, 6)):
        op = rnd.random()
        i = rnd.randrange(len(buf)) if buf else 0
        if op < 0.3 and buf:
            buf[i] ^= 1 << rnd.randrange(8)
        elif op < 0.5 and buf:
            buf[i] = rnd.randrange(256)
        elif op < 0.6:
            del buf[i : i + rnd.randint(1, 64)]
        elif op < 0.7:
            other = rnd.choice(pool)
            j = rnd.randrange(len(other))
            buf[i:i] = other[j : j + rnd.randint(1, 64)]
        else:  # a header byte, then a valid header CRC so the deeper checks run
            k = rnd.randrange(min(len(buf), 60)) if buf else 0
            if buf:
                buf[k] = rnd.choice([0, 1, 2, 3, 7, 8, 127, 128, 200, 255, rnd.randrange(256)])
            buf = recrc(buf)
    return bytes(buf)


BOUND_MB, BYTES_PER_PIXEL = 64, 24  # docs/ROBUSTNESS.md; tests/test_hostile.py checks the same under RLIMIT_AS


class _Peak:
    """This process's resident set and peak (VmRSS, VmHWM), and a reset of the peak through Linux's clear_refs "5";
    files kept open so that a measurement costs two reads and a write, not three opens."""

    def __init__(self) -> None:
        try:
            self.status = os.open("/proc/self/status", os.O_RDONLY)
            self.clear = os.open("/proc/self/clear_refs", os.O_WRONLY)
            self.ok = True
        except OSError:
            self.ok = False

    def _mb(self, key: bytes) -> float:
        text = os.pread(self.status, 8192, 0)
        i = text.index(key) + len(key)
        return int(text[i : text.index(b"kB", i)]) / 1024

    def reset(self) -> float:
        """Reset the peak; return the resident set now (MB)."""
        os.write(self.clear, b"5")
        return self._mb(b"VmRSS:")

    def peak(self) -> float:
        return self._mb(b"VmHWM:")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=["bytes", "structured", "both"], default="both")
    a = ap.parse_args()
    codec = Codec("plain", max_pixels=4_000_000)
    pool = seeds(codec)
    spool = attacks.seed_files()
    rnd = random.Random(a.seed)
    mem = _Peak()
    n = decoded = rejected = escapes = slow = over = 0
    worst = 0.0  # the largest peak growth seen, as a fraction of the bound
    t_end = time.time() + a.seconds
    while time.time() < t_end:
        structured = a.mode == "structured" or (a.mode == "both" and n % 2)
        data = attacks.mutate_structured(rnd, spool) if structured else mutate(rnd, pool)
        n += 1
        rss0 = mem.reset() if mem.ok else 0.0
        t = time.time()
        try:
            img = codec.decode(data)
            hd = bitstream.parse(data)
            assert img.shape == (hd.height, hd.width, 3) and img.dtype == np.uint8
            decoded += 1
        except DsslicFormatError:
            rejected += 1
        except Exception:
            escapes += 1
            print(f"ESCAPE on input {n} ({len(data)} bytes): {traceback.format_exc(limit=3)}")
        if time.time() - t > 2:
            slow += 1
            print(f"SLOW input {n}: {time.time() - t:.1f} s")
        if mem.ok:
            try:
                hd = bitstream.parse(data, codec.max_pixels)
                px = bitstream.working_pixels(hd.width, hd.height)
            except DsslicFormatError:
                px = 0
            grew, bound = mem.peak() - rss0, BOUND_MB + BYTES_PER_PIXEL * px / 2**20
            worst = max(worst, grew / bound)
            if grew > bound:
                over += 1
                print(f"OVER THE MEMORY BOUND on input {n}: {grew:.0f} MB for {px} working pixels (bound {bound:.0f})")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"inputs tried: {n}; decoded: {decoded}; rejected with DsslicFormatError: {rejected}; "
          f"escapes: {escapes}; slower than 2 s: {slow}; over the memory bound: {over} (largest growth "
          f"{100 * worst:.0f}% of its bound); peak RSS {peak:.0f} MB; {a.seconds:.0f} s, seed {a.seed}, mode {a.mode}")


if __name__ == "__main__":
    main()
