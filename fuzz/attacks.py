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
                model_id: bytes = PLAIN_ID, alpha: int = 8) -> bytes:
    """A file with valid header and CRCs around the given (codec name, payload) layers."""
    if compact is None:
        compact = ("jxl", codecs.get("jxl").encode(np.zeros((-(-h // alpha), -(-w // alpha), 3), np.uint8)))
    layers = [Layer(LayerKind.SEG, codecs.get(seg[0]).id, seg[1]),
              Layer(LayerKind.COMPACT, codecs.get(compact[0]).id, compact[1])]
    if residual is not None:
        layers.append(Layer(LayerKind.RESIDUAL, codecs.get(residual[0]).id, residual[1], None, {"range": (-8, 8)}))
    return bitstream.serialize(Header(w, h, alpha, model_id, b"\0" * 4, num_labels, seg_factor, layers))


def uniform_file(w: int, h: int, residual: str = "none", model: str = "plain") -> bytes:
    """A valid file that decodes to a full WxH image from a few hundred bytes (constant label map, uniform compact
    image and residual): the cheapest way to make a decoder do the most work, and a memory benchmark's input."""
    from dsslic import models

    m = models.load(model)
    c8 = np.full((-(-h // m.alpha), -(-w // m.alpha), 3), 128, np.uint8)
    res = None
    if residual != "none":
        rc = codecs.get(bitstream.RESIDUAL_CODECS.get(residual, residual))
        q = rc.quality_range[0] if rc.higher_is_better else rc.quality_range[1]  # the coarsest: smallest file
        res = (rc.name, rc.encode(np.full((h, w, 3), 128, np.uint8), q))
    return dsslic_file(w, h, const(0), ("jxl", codecs.jxl.JxlCodec(effort=1).encode(c8)), res,
                       num_labels=m.num_labels, model_id=m.model_id, alpha=m.alpha)


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
        "seg_factor 255 on a 10^8 x 1 header": dsslic_file(100_000_000, 1, const(1), seg_factor=255,
                                                                 compact=("jxl", b"\xff\x0a")),
        "HEVC residual with 40 pictures": dsslic_file(64, 64, const(0), residual=("hevc", hevc_pictures())),
        "animated JPEG XL label map (16 frames)": dsslic_file(64, 64, ("jxl", animated_jxl())),
        "float JPEG XL label map with NaN": dsslic_file(16, 16, ("jxl", float_jxl()), num_labels=5),
        "animated WebP residual (8 frames)": dsslic_file(48, 32, const(0), residual=("webp", animated_webp())),
        "grey JPEG residual": dsslic_file(48, 32, const(0), residual=("jpeg", grey_jpeg())),
        "16-bit PNG compact layer": dsslic_file(48, 32, const(0), compact=("png", deep_png())),
    }


# --------------------------------------------------------------------------------------------
# Structure-aware mutation: the container and its CRCs stay valid, the payloads' fields lie
# --------------------------------------------------------------------------------------------

def seed_files() -> list[bytes]:
    """Real files, small: each residual codec, a label map coded as JPEG XL, a 16-bit one, a seg_factor."""
    from dsslic.codec import Codec
    from dsslic.segmenters import FileSegmenter

    rng = np.random.default_rng(0)
    codec = Codec("plain")
    out = [codec.compress(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), residual=r)
           for (h, w), r in [((9, 7), "hevc"), ((40, 56), "avif"), ((48, 40), "jxl"), ((33, 65), "webp"),
                             ((48, 48), "jpeg2000"), ((24, 40), "none")]]
    labels = (np.arange(48 * 64).reshape(48, 64) // 500 % 5).astype(np.uint8)
    out.append(Codec("plain", segmenter=FileSegmenter(labels)).compress(rng.integers(0, 256, (48, 64, 3), np.uint8)))
    deep = (np.arange(32 * 40).reshape(32, 40) % 300).astype(np.uint16)
    out.append(Codec("plain", segmenter=FileSegmenter(deep), seg_factor=3).compress(
        rng.integers(0, 256, (32, 40, 3), np.uint8), residual="jpeg2000"))
    return out


def _rebox_jxl(rnd, p: bytes) -> bytes:
    """A JPEG XL codestream (bare or in a jxlc box) re-wrapped into 2-4 jxlp boxes cut at random places."""
    from dsslic.codecs.jxl import _jxl_codestream_start

    try:
        cs = _jxl_codestream_start(p, len(p))
    except Exception:
        return p
    cuts = sorted(rnd.randrange(len(cs) + 1) for _ in range(rnd.randint(1, 3)))
    parts = [cs[a:b] for a, b in zip([0, *cuts], [*cuts, len(cs)])]
    boxes = [_box(b"jxlp", struct.pack(">I", i | (0x80000000 if i == len(parts) - 1 else 0)) + part)
             for i, part in enumerate(parts)]
    return b"\x00\x00\x00\x0cJXL \r\n\x87\n" + _box(b"ftyp", b"jxl \0\0\0\0jxl ") + b"".join(boxes)


def _payload_op(rnd, p: bytes, donors: list[bytes]) -> bytes:
    b = bytearray(p)
    op = rnd.randrange(7)
    if op == 0 and b:  # a bit of the stream's own header (sizes, flags, chunk lengths live there)
        i = rnd.randrange(min(len(b), 48))
        b[i] ^= 1 << rnd.randrange(8)
    elif op == 1 and b:  # a byte anywhere to a boundary value
        b[rnd.randrange(len(b))] = rnd.choice([0, 1, 0x7F, 0x80, 0xFF])
    elif op == 2:  # cut short
        del b[rnd.randrange(len(b) + 1):]
    elif op == 3:  # the stream twice: a second picture, frame or trailing data
        b += p
    elif op == 4:
        return _rebox_jxl(rnd, p)
    elif op == 5 and donors:  # another file's payload for this layer: a stream of another size or codec
        return rnd.choice(donors)
    else:  # a slice of the stream spliced in
        i, j = rnd.randrange(len(b) + 1), rnd.randrange(len(b) + 1)
        b[i:i] = p[min(i, j) : max(i, j)][:256]
    return bytes(b)


def mutate_structured(rnd, pool: list[bytes]) -> bytes:
    """One seed with 1-3 edits of its payloads, codec ids or header fields, re-serialized (CRCs valid)."""
    hd = bitstream.parse(rnd.choice(pool), None)
    kinds = {k: [la.data for s in pool for la in bitstream.parse(s, None).layers if la.kind == k]
             for k in LayerKind}
    for _ in range(rnd.randint(1, 3)):
        what = rnd.random()
        layer = rnd.choice(hd.layers)
        if what < 0.6:
            layer.data = _payload_op(rnd, layer.data, kinds[layer.kind])
        elif what < 0.75:  # another codec allowed for this layer reads the same bytes
            layer.codec_id = codecs.get(rnd.choice(sorted(bitstream.LAYER_CODECS[layer.kind]))).id
        else:
            res = ["res_min", "res_max"] if hd.layer(LayerKind.RESIDUAL) is not None else []  # the residual's params
            field = rnd.choice(["width", "height", "seg_factor", "num_labels", *res])
            v = getattr(hd, field)
            new = rnd.choice([0, 1, v - 1, v + 1, v * 2, v // 2, 255, rnd.randrange(1, 1 << 12)])
            lim = 255 if field == "seg_factor" else (2**15 - 1 if field.startswith("res") else 2**20)
            setattr(hd, field, max(0, min(lim, new)) if not field.startswith("res") else max(-(2**15), min(lim, new)))
    return bitstream.serialize(hd)
