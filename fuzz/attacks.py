"""Structure-aware hostile files: a valid container and valid CRCs around payloads that lie.

Each builder returns the bytes of a ``.dsslic`` file (small: a few KB at most) whose header and
checksums are right, so that what is tested is the decoder's handling of the payload itself. They
are the attacks of issue 13, used by ``tests/test_hostile.py`` and ``fuzz/hostile_files.py``.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from dsslic import bitstream, codecs
from dsslic.bitstream import Header, Layer, LayerKind

PLAIN_ID = bytes.fromhex("8c26be4a")  # the `plain` model: no network, so a decode that gets through is quick


def dsslic_file(w: int, h: int, seg: tuple[str, bytes], compact: tuple[str, bytes] | None = None,
                residual: tuple[str, bytes] | None = None, seg_factor: int = 1, num_labels: int = 0,
                model_id: bytes = PLAIN_ID) -> bytes:
    """A file with valid header and CRCs around the given (codec name, payload) layers."""
    if compact is None:
        compact = ("jxl", codecs.get("jxl").encode(np.zeros((-(-h // 8), -(-w // 8), 3), np.uint8)))
    layers = [Layer(LayerKind.SEG, codecs.get(seg[0]).id, seg[1]),
              Layer(LayerKind.COMPACT, codecs.get(compact[0]).id, compact[1])]
    if residual is not None:
        layers.append(Layer(LayerKind.RESIDUAL, codecs.get(residual[0]).id, residual[1]))
    return bitstream.serialize(Header(w, h, 8, model_id, b"\0" * 4, num_labels, seg_factor, -8, 8, layers))


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def jxlp_split(side: int = 2048, cut: int = 2) -> bytes:
    """A JPEG XL label map of side x side in the ISO container, its codestream split into two ``jxlp`` boxes
    after ``cut`` bytes: read from the first box to the end of the file (box headers included), its size
    header is the next box's header bytes, not the real size."""
    import imagecodecs

    cs = bytes(imagecodecs.jpegxl_encode(np.full((side, side), 3, np.uint8), lossless=True, effort=1))
    return (b"\x00\x00\x00\x0cJXL \r\n\x87\n" + _box(b"ftyp", b"jxl \0\0\0\0jxl ")
            + _box(b"jxlp", struct.pack(">I", 0) + cs[:cut])
            + _box(b"jxlp", struct.pack(">I", 0x80000001) + cs[cut:]))


def animated_jxl(frames: int = 16, side: int = 64) -> bytes:
    """An animated JPEG XL label map: ``frames`` frames of side x side."""
    import imagecodecs

    stack = (np.arange(frames, dtype=np.uint8)[:, None, None] % 4 + np.zeros((1, side, side), np.uint8))
    return bytes(imagecodecs.jpegxl_encode(stack, lossless=True, effort=1, photometric="gray"))


def float_jxl(side: int = 16) -> bytes:
    """A JPEG XL label map of float32 samples, NaN among them."""
    import imagecodecs

    a = np.ones((side, side), np.float32)
    a[0, 0] = np.nan
    return bytes(imagecodecs.jpegxl_encode(a, lossless=True, effort=1))


def hevc_pictures(n: int = 40, side: int = 64) -> bytes:
    """A raw HEVC stream of ``n`` pictures of side x side (identical, so each after the first costs a few bytes)."""
    import av

    ctx = av.CodecContext.create("libx265", "w")
    ctx.width = ctx.height = side
    ctx.pix_fmt = "yuv444p"
    ctx.options = {"preset": "ultrafast", "x265-params": "qp=40:log-level=error"}
    frame = av.VideoFrame.from_ndarray(np.full((3, side, side), 128, np.uint8), format="yuv444p")
    packets = [p for _ in range(n) for p in ctx.encode(frame)] + list(ctx.encode(None))
    return b"".join(bytes(p) for p in packets)


def _pillow(arr: np.ndarray, fmt: str, **kw) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def animated_webp(frames: int = 8, h: int = 32, w: int = 48) -> bytes:
    """A WebP residual of ``frames`` frames."""
    from PIL import Image

    ims = [Image.fromarray(np.full((h, w, 3), 20 * i, np.uint8)) for i in range(frames)]
    buf = io.BytesIO()
    ims[0].save(buf, format="WEBP", save_all=True, append_images=ims[1:], quality=50)
    return buf.getvalue()


def grey_jpeg(h: int = 32, w: int = 48) -> bytes:
    return _pillow(np.full((h, w), 100, np.uint8), "JPEG", quality=50)


def deep_png(h: int = 4, w: int = 6) -> bytes:
    """A 16-bit grey PNG: a compact image must be 8-bit RGB."""
    return _pillow(np.full((h, w), 1000, np.uint16), "PNG")


def const(value: int) -> tuple[str, bytes]:
    return "const", struct.pack("<H", value)


def all_attacks() -> dict[str, bytes]:
    """One file per attack of issue 13 (the learned-layer ones need a model: see tests/test_hostile.py)."""
    return {  # 130x1: what a parse running through the second box's header reads as the size
        "jxlp boxes: label map 2048x2048 behind a 130x1 header": dsslic_file(130, 1, ("jxl", jxlp_split())),
        "seg_factor 255, 10^8 x 1 header (470 bytes)": dsslic_file(100_000_000, 1, const(1), seg_factor=255,
                                                                 compact=("jxl", b"\xff\x0a")),
        "HEVC residual with 40 pictures": dsslic_file(64, 64, const(0), residual=("hevc", hevc_pictures())),
        "animated JPEG XL label map (16 frames)": dsslic_file(64, 64, ("jxl", animated_jxl())),
        "float JPEG XL label map with NaN": dsslic_file(16, 16, ("jxl", float_jxl()), num_labels=5),
        "animated WebP residual (8 frames)": dsslic_file(48, 32, const(0), residual=("webp", animated_webp())),
        "grey JPEG residual": dsslic_file(48, 32, const(0), residual=("jpeg", grey_jpeg())),
        "16-bit PNG compact layer": dsslic_file(48, 32, const(0), compact=("png", deep_png())),
    }
