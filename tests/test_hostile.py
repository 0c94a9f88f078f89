"""Issue 13's attacks: structure-aware hostile files (valid container and CRCs, lying payloads).

Each is refused with a DsslicFormatError *before* the decoder allocates what the payload asks for.
The files are built here (``fuzz/attacks.py``), a few KB each.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsslic import bitstream, codecs
from dsslic.codec import _upscale_labels, decode_layers
from dsslic.decoding import info
from dsslic.errors import DsslicFormatError

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
sys.path.insert(0, str(FUZZ))
import attacks  # noqa: E402


def _refused(data: bytes, match: str, max_pixels: int | None = bitstream.DEFAULT_MAX_PIXELS) -> None:
    with pytest.raises(DsslicFormatError, match=match):
        decode_layers(bitstream.parse(data, max_pixels))


# ---- 1. JPEG XL split into jxlp boxes
def test_jxl_size_joins_jxlp_boxes():
    data = attacks.jxlp_split(2048)
    assert codecs.jxl.jxl_size(data) == (2048, 2048)  # what libjxl reads, not the next box's header bytes
    assert codecs.get("jxl").decode(data, (2048, 2048)).shape == (2048, 2048)


def test_jxlp_label_map_bigger_than_header_refused_before_decoding():
    _refused(attacks.dsslic_file(130, 1, ("jxl", attacks.jxlp_split(2048))), "claims 2048x2048")


# ---- 2. seg_factor amplification
def test_upscale_labels_indexes_straight_to_size():
    s = np.arange(6, dtype=np.uint16).reshape(2, 3)
    out = _upscale_labels(s, 255, 300, 513)
    assert out.shape == (300, 513) and out[299, 512] == 5 and out[0, 254] == 0 and out[255, 255] == 4
    assert np.array_equal(_upscale_labels(s, 2, 3, 5), np.repeat(np.repeat(s, 2, 0), 2, 1)[:3, :5])


def test_seg_factor_on_a_thin_header_is_refused_by_parse():
    data = attacks.dsslic_file(100_000_000, 1, attacks.const(1), seg_factor=255, compact=("jxl", b"\xff\x0a"))
    assert len(data) < 500
    with pytest.raises(DsslicFormatError, match="so thin"):
        info(data)


def test_seg_factor_without_a_limit_allocates_only_the_output():
    """With no pixel limit at all, a 4,000,000 x 1 map at seg_factor 255 is 8 MB, not 255 times that (2 GB)."""
    _run_limited("""
from dsslic.bitstream import Header, Layer, LayerKind
from dsslic.codec import decode_layers
hd = Header(4_000_000, 1, 8, b"\\0" * 4, b"\\0" * 4, 0, 255, layers=[Layer(LayerKind.SEG, 0, b"\\x00\\x01")])
s = decode_layers(hd, "seg").s
assert s.shape == (1, 4_000_000) and s.dtype.itemsize == 2
""", limit_mb=1024)  # torch is not imported: a few hundred MB of address space, 2 GB before the fix


# ---- 3. HEVC with many pictures
def test_hevc_many_pictures_refused_before_decoding(monkeypatch):
    import av

    real, decoded = av.CodecContext, []

    class Spy:  # counts the pictures the decoder hands back
        def __init__(self, ctx):
            self._ctx = ctx

        def __getattr__(self, k):
            return getattr(self._ctx, k)

        def __setattr__(self, k, v):
            object.__setattr__(self, k, v) if k == "_ctx" else setattr(self._ctx, k, v)

        def decode(self, p=None):
            out = self._ctx.decode(p)
            decoded.extend(out)
            return out

    monkeypatch.setattr(av, "CodecContext", type("CC", (), {"create": staticmethod(lambda *a: Spy(real.create(*a)))}))
    with pytest.raises(DsslicFormatError, match="pictures"):
        codecs.get("hevc").decode(attacks.hevc_pictures(40), (64, 64, 3))
    assert len(decoded) <= 1


# ---- 4. animated JPEG XL
def test_animated_jxl_refused_from_its_header():
    data = attacks.animated_jxl(16, 64)
    assert codecs.jxl.jxl_header(data).animated
    _refused(attacks.dsslic_file(64, 64, ("jxl", data)), "animation")


# ---- 7. float / NaN label maps
def test_float_label_map_refused():
    _refused(attacks.dsslic_file(16, 16, ("jxl", attacks.float_jxl()), num_labels=5), "float")


def test_every_layer_dtype_checked(monkeypatch):
    """Whatever a codec returns, a label map is uint8/uint16 and an image layer uint8 of the header's shape."""
    good = attacks.dsslic_file(16, 16, attacks.const(0))
    for bad in (np.full((2, 2), np.nan, np.float32), np.zeros((2, 2), np.int64)):
        monkeypatch.setattr(codecs.labelmap.ConstCodec, "decode", lambda self, d, shape, bad=bad: np.resize(bad, shape))
        _refused(good, "layer decodes to")


# ---- 8. learned layer: the whole stream, nothing more
@pytest.mark.parametrize("cut", ["padded", "truncated", "padded_zero_word"])
def test_learned_layer_must_be_exactly_its_coding(cut):
    import torch

    from dsslic.enhance import EnhanceConfig, EnhanceModel

    torch.manual_seed(0)
    m = EnhanceModel(EnhanceConfig(name="tiny", n=8, m=12, nz=4)).eval()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    xp, c8 = np.clip(x.astype(int) + 9, 0, 255).astype(np.uint8), x[::8, ::8].copy()
    payload, x_hat = m.compress(x, xp, c8)
    assert np.array_equal(m.decompress(payload, xp, c8), x_hat)
    bad = {"padded": payload + b"\x12\x34\x56\x78", "truncated": payload[:-4],
           "padded_zero_word": payload + b"\0" * 4}[cut]
    with pytest.raises(DsslicFormatError):
        m.decompress(bad, xp, c8)


# ---- 11. residuals through Pillow: as strict as the other codecs, with dsslic's limit
@pytest.mark.parametrize("codec,data,shape,match", [
    ("webp", attacks.animated_webp(8, 32, 48), (32, 48, 3), "8 frames"),
    ("jpeg", attacks.grey_jpeg(32, 48), (32, 48, 3), "mode L"),
    ("png", attacks.deep_png(4, 6), (4, 6, 3), "mode I;16"),
])
def test_pillow_layers_refuse_what_dsslic_never_writes(codec, data, shape, match):
    with pytest.raises(DsslicFormatError, match=match):
        codecs.get(codec).decode(data, shape)


@pytest.mark.parametrize("name", ["avif", "webp", "jpeg", "jpeg2000", "png"])
def test_pillow_layers_ignore_pillows_global_bomb_guard(monkeypatch, name):
    """Legal files above Pillow's own 89/179 MP guard decode: the limit is dsslic's, checked per call."""
    import warnings

    from PIL import Image

    c = codecs.get(name)
    x = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    data = c.encode(x, c.default_quality if not c.lossless else None)
    # 40x56 = 2240 is over Image.open's warning level and (except for WebP, which Pillow checks itself when its
    # decoder is made: a window of 179-268 MP WebP layers that only a raised --max-pixels reaches) its error level
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1500 if name == "webp" else 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert c.decode(data, x.shape).shape == x.shape
    assert Image.MAX_IMAGE_PIXELS in (1000, 1500)


def test_webp_size_read_before_the_decoder_is_made():
    big = codecs.get("webp").encode(np.zeros((300, 400, 3), np.uint8), 50)
    assert codecs.get("webp").header_size(big) == (400, 300)
    with pytest.raises(DsslicFormatError, match="claims 400x300"):
        codecs.get("webp").decode(big, (3, 4, 3))


# ---- every attack through the CLI's path, and the memory bound
@pytest.mark.parametrize("name", list(attacks.all_attacks()))
def test_attack_refused(name):
    with pytest.raises(DsslicFormatError):
        decode_layers(bitstream.parse(attacks.all_attacks()[name]))


def _run_limited(code: str, limit_mb: float | None = None) -> str:
    """Run ``code`` in a fresh Python, under an address-space limit (RLIMIT_AS) of ``limit_mb`` if given."""
    pre = f"import resource, sys; sys.path.insert(0, {str(FUZZ)!r})\n"
    if limit_mb is not None:
        pre += f"resource.setrlimit(resource.RLIMIT_AS, ({int(limit_mb * 2**20)},) * 2)\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", pre + code], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


#: docs/ROBUSTNESS.md's bound: decoding a WxH file (model `plain`, any classical residual codec) adds at most
#: BOUND_MB + BYTES_PER_PIXEL * (W + 64)(H + 64) bytes to a process that has decoded a small file
BOUND_MB, BYTES_PER_PIXEL = 64, 24


def test_decoding_fits_the_stated_memory_bound():
    """A legal 3000x2000 file (a few KB, decoding to 6 MP), then every attack, in a Python whose address space
    (RLIMIT_AS) is capped, once it has decoded a small file, at what it has then (VmPeak) plus the bound."""
    w, h = 3000, 2000
    extra_mb = BOUND_MB + BYTES_PER_PIXEL * bitstream.working_pixels(w, h) / 2**20
    out = _run_limited(f"""
import numpy as np, attacks
from dsslic.codec import Codec
from dsslic.errors import DsslicFormatError
big, hostile = attacks.uniform_file({w}, {h}, "jpeg"), attacks.all_attacks()
c = Codec("plain")
c.decode(c.compress(np.zeros((40, 56, 3), np.uint8)))
base = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmPeak")][0] * 1024
resource.setrlimit(resource.RLIMIT_AS, (base + int({extra_mb} * 2**20),) * 2)
assert c.decode(big).shape == ({h}, {w}, 3)
for name, data in hostile.items():
    try:
        c.decode(data)
        print("decoded", name)
    except DsslicFormatError as e:
        print("refused", name)
""")
    assert out.count("refused") == len(attacks.all_attacks()), out


def test_max_pixels_default_from_environment():
    code = "from dsslic.imageio import DEFAULT_MAX_PIXELS as d; from dsslic import bitstream; print(d)"
    env = {**os.environ, "DSSLIC_MAX_PIXELS": "123456"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.stdout.split() == ["123456"], p.stderr
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "DSSLIC_MAX_PIXELS": "lots"})
    assert p.returncode != 0 and "DSSLIC_MAX_PIXELS" in p.stderr


def test_structured_fuzz_a_few_seconds(codec):
    """fuzz/fuzz_decode.py --mode structured, briefly: valid container and CRCs, payload fields that lie."""
    import random

    pool, rnd = attacks.seed_files(), random.Random(0)
    outcomes = {"decoded": 0, "refused": 0}
    for _ in range(150):
        data = attacks.mutate_structured(rnd, pool)
        try:
            out = codec.decode(data)
        except DsslicFormatError:
            outcomes["refused"] += 1
            continue
        hd = bitstream.parse(data)
        assert out.shape == (hd.height, hd.width, 3) and out.dtype == np.uint8
        outcomes["decoded"] += 1
    assert outcomes["decoded"] and outcomes["refused"]  # both paths exercised
