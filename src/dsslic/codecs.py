"""Layer codecs: every image codec dsslic uses, behind one small interface.

A :class:`LayerCodec` turns a uint8 (or uint16, for label maps) image into bytes and back.
The same objects code DSSLIC's layers (label map, compact image, residual) and serve as the
classical baselines of ``dsslic eval`` (``bpg444`` is :class:`HevcCodec` coding the image itself),
so that every curve is measured through exactly the same encoder settings.

Decoders are written for strangers' files: each checks the size a stream claims *before*
decoding it and raises :class:`~dsslic.errors.DsslicFormatError` for anything that does not
match what the container promised.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .errors import DsslicFormatError, DsslicInputError

Shape = tuple[int, ...]


class LayerCodec:
    """Interface of one image codec.

    ``quality`` is the codec's native setting (QP for HEVC, 0–100 for AVIF/WebP/JPEG/JPEG XL,
    compression ratio for JPEG 2000); ``higher_is_better`` says which way it goes, so rate
    control and sweeps can treat all codecs alike.
    """

    name: ClassVar[str]
    id: ClassVar[int]
    lossless: ClassVar[bool] = False
    quality_range: ClassVar[tuple[int, int]] = (0, 0)
    higher_is_better: ClassVar[bool] = True
    default_quality: ClassVar[int | None] = None
    #: bytes a stand-alone file of this codec would add to the raw stream (counted by ``eval``)
    container_overhead: ClassVar[int] = 0
    description: ClassVar[str] = ""

    def encode(self, img: np.ndarray, quality: int | None = None) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes, shape: Shape) -> np.ndarray:
        """Decode ``data`` into an array of exactly ``shape`` or raise DsslicFormatError."""
        raise NotImplementedError

    def check_quality(self, quality: int | None) -> int | None:
        if self.lossless:
            return None
        q = self.default_quality if quality is None else int(quality)
        lo, hi = self.quality_range
        if not lo <= q <= hi:
            raise DsslicInputError(f"{self.name}: quality {q} outside [{lo}, {hi}]")
        return q


def _expect(arr: np.ndarray, shape: Shape, name: str) -> np.ndarray:
    if arr.shape != tuple(shape):
        raise DsslicFormatError(f"{name} layer decodes to shape {arr.shape}, the header says {tuple(shape)}")
    return np.ascontiguousarray(arr)


def _check_claimed(w: int, h: int, shape: Shape, name: str) -> None:
    if (h, w) != tuple(shape[:2]):
        raise DsslicFormatError(f"{name} stream claims {w}x{h} pixels, the header says {shape[1]}x{shape[0]}")


# --------------------------------------------------------------------------------------------
# Colour transforms (full-range BT.601, as JPEG, JFIF and libbpg's default use)
# --------------------------------------------------------------------------------------------

def rgb_to_ycbcr(rgb: np.ndarray, bits: int = 8) -> np.ndarray:
    """HxWx3 RGB -> 3xHxW full-range BT.601 YCbCr planes of ``bits`` bits (uint8, or uint16 above 8)."""
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mid = float(1 << (bits - 1))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = mid - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = mid + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.clip(np.rint(np.stack([y, cb, cr])), 0, (1 << bits) - 1).astype(np.uint8 if bits == 8 else np.uint16)


def ycbcr_to_rgb(ycc: np.ndarray, bits: int = 8) -> np.ndarray:
    """3xHxW full-range YCbCr planes of ``bits`` bits -> HxWx3 RGB (uint8, or uint16 above 8; in bands of rows:
    float only for a band)."""
    top, mid = (1 << bits) - 1, float(1 << (bits - 1))
    out = np.empty((*ycc.shape[1:], 3), np.uint8 if bits == 8 else np.uint16)
    for i in range(0, ycc.shape[1], 256):
        y, cb, cr = (p.astype(np.float32) for p in ycc[:, i : i + 256])
        cb -= mid
        cr -= mid
        r = y + 1.402 * cr
        g = y - 0.344136 * cb - 0.714136 * cr
        b = y + 1.772 * cb
        out[i : i + 256] = np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, top)
    return out


# --------------------------------------------------------------------------------------------
# Lossless
# --------------------------------------------------------------------------------------------

class ConstCodec(LayerCodec):
    """A single-valued plane (e.g. the label map of the ``none`` segmenter): 2 bytes."""

    name = "const"
    id = 0
    lossless = True
    description = "constant plane, 16-bit value"

    def encode(self, img: np.ndarray, quality: int | None = None) -> bytes:
        v = int(img.flat[0])
        if not (img == v).all():
            raise ValueError("const codec needs a uniform image")
        return struct.pack("<H", v)

    def decode(self, data: bytes, shape: Shape) -> np.ndarray:
        if len(data) != 2:
            raise DsslicFormatError(f"const layer has {len(data)} bytes, expected 2")
        (v,) = struct.unpack("<H", data)
        return np.full(shape, v, dtype=np.uint8 if v < 256 else np.uint16)


class _BitReader:
    """LSB-first bit reader, as JPEG XL's headers are written."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        v = 0
        for i in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise DsslicFormatError("JPEG XL stream ends inside its headers")
            v |= ((self.data[byte] >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return v


_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
_JXL_HEAD_BYTES = 128  # enough for the SizeHeader and ImageMetadata up to the number of extra channels


def _jxl_codestream_start(data: bytes, n: int = _JXL_HEAD_BYTES) -> bytes:
    """The first ``n`` bytes of the codestream: the data itself, or the payloads of the ISO container's
    ``jxlc`` box or ``jxlp`` boxes joined (box headers and each ``jxlp``'s 4-byte index left out), as
    libjxl reads them."""
    if data[:2] == b"\xff\x0a":
        return data[:n]
    if not data.startswith(_JXL_CONTAINER):
        raise DsslicFormatError("layer is not a JPEG XL stream")
    pos, out = len(_JXL_CONTAINER), b""
    while pos + 8 <= len(data) and len(out) < n:
        size, box = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        head = 8
        if size == 1:  # 64-bit size
            size, head = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:  # the box runs to the end of the file
            size = len(data) - pos
        if size < head:
            break
        body = data[pos + head : pos + size]
        if box == b"jxlc":
            return (out + body)[:n]
        if box == b"jxlp":
            if len(body) < 4:
                break
            out += body[4:]
        pos += size
    if not out:
        raise DsslicFormatError("JPEG XL container holds no codestream")
    return out[:n]


@dataclass
class JxlHeader:
    """What a JPEG XL codestream's headers declare, read without decoding it."""

    width: int
    height: int
    animated: bool = False
    float_samples: bool = False
    bits: int = 8
    extra_channels: int = 0


def jxl_header(data: bytes) -> JxlHeader:
    """Parse the SizeHeader and ImageMetadata (up to the extra channel count) of a JPEG XL stream."""
    cs = _jxl_codestream_start(data)
    if cs[:2] != b"\xff\x0a":
        raise DsslicFormatError("layer is not a JPEG XL codestream")
    br = _BitReader(cs[2:])

    def u32(*dist: tuple[int, int]) -> int:  # U32(): a 2-bit selector, then (bits, offset)
        bits, offset = dist[br.u(2)]
        return br.u(bits) + offset

    def size(div8_read, read) -> tuple[int, int]:  # SizeHeader / PreviewHeader: (width, height)
        div8 = br.u(1)
        get = (lambda: div8_read() * 8) if div8 else read
        h = get()
        ratio = br.u(3)
        if ratio:
            num, den = ((1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1))[ratio - 1]
            return h * num // den, h
        return get(), h

    def image_size() -> tuple[int, int]:
        return size(lambda: br.u(5) + 1, lambda: u32((9, 1), (13, 1), (18, 1), (30, 1)))

    w, h = image_size()
    hd = JxlHeader(w, h)
    if br.u(1):  # ImageMetadata all_default: 8-bit, no extra channels, no animation
        return hd
    if br.u(1):  # extra_fields
        br.u(3)  # orientation
        if br.u(1):  # intrinsic size
            image_size()
        if br.u(1):  # preview
            size(lambda: u32((0, 16), (0, 32), (5, 1), (9, 33)), lambda: u32((6, 1), (8, 65), (10, 321), (12, 1345)))
        hd.animated = bool(br.u(1))
        if hd.animated:
            return hd
    hd.float_samples = bool(br.u(1))
    if hd.float_samples:
        hd.bits = u32((0, 32), (0, 16), (0, 24), (6, 1))
        br.u(4)
    else:
        hd.bits = u32((0, 8), (0, 10), (0, 12), (6, 1))
    br.u(1)  # modular_16_bit_buffer_sufficient
    hd.extra_channels = u32((0, 0), (0, 1), (4, 2), (12, 1))
    return hd


def jxl_size(data: bytes) -> tuple[int, int]:
    """Width and height a JPEG XL stream declares (its SizeHeader), without decoding it."""
    hd = jxl_header(data)
    return hd.width, hd.height


class JxlCodec(LayerCodec):
    """JPEG XL via imagecodecs (libjxl): lossless at effort 9 for the base and first enhancement layers."""

    name = "jxl"
    id = 1
    lossless = True
    description = "JPEG XL lossless, effort 9 (libjxl via imagecodecs)"

    def __init__(self, effort: int = 9) -> None:
        self.effort = effort

    def encode(self, img: np.ndarray, quality: int | None = None) -> bytes:
        import imagecodecs

        return bytes(imagecodecs.jpegxl_encode(np.ascontiguousarray(img), lossless=True, effort=self.effort))

    def decode(self, data: bytes, shape: Shape) -> np.ndarray:
        import imagecodecs

        hd = jxl_header(data)
        _check_claimed(hd.width, hd.height, shape, self.name)
        if hd.animated or hd.float_samples or hd.bits > 16 or hd.extra_channels:
            what = "an animation" if hd.animated else (
                f"{hd.bits}-bit {'float' if hd.float_samples else 'integer'} samples" if hd.extra_channels == 0
                else f"{hd.extra_channels} extra channels")
            raise DsslicFormatError(f"{self.name} layer holds {what}; dsslic layers are one still image of "
                                    "8- or 16-bit integers")
        try:  # index=0: one frame is decoded and allocated, whatever the stream holds after it
            arr = imagecodecs.jpegxl_decode(data, index=0)
        except Exception as e:
            raise DsslicFormatError(f"{self.name} layer does not decode ({e})") from None
        return _expect(np.asarray(arr), shape, self.name)


class JxlLossyCodec(JxlCodec):
    """JPEG XL lossy (VarDCT), quality 0-100."""

    name = "jxl-lossy"
    id = 2
    lossless = False
    quality_range = (0, 100)
    default_quality = 80
    description = "JPEG XL lossy, effort 7, quality setting (libjxl via imagecodecs)"

    def __init__(self, effort: int = 7) -> None:
        self.effort = effort

    def encode(self, img: np.ndarray, quality: int | None = None) -> bytes:
        import imagecodecs

        q = self.check_quality(quality)
        return bytes(imagecodecs.jpegxl_encode(np.ascontiguousarray(img), level=q, effort=self.effort))


# --------------------------------------------------------------------------------------------
# HEVC intra through x265 (BPG's engine)
# --------------------------------------------------------------------------------------------

@dataclass
class HevcCodec(LayerCodec):
    """HEVC all-intra with libbpg's choices: x265, fixed QP, YCbCr full range, 8 bit, no info SEI.

    ``colorspace`` is ``"ycbcr"`` (how BPG is used), or ``"rgb"`` (``bpgenc -c rgb``, coding G, B, R
    as the three planes: the paper's anchor). ``chroma`` is ``"444"`` or ``"420"``. The stream is a raw
    Annex-B HEVC stream; a BPG file would add a header of about 16 bytes (``container_overhead``).
    x265 needs each side >= 32 pixels, so smaller images are edge-padded and cropped back.
    A uint16 image is coded at ``bits`` (10 or 12) bits per sample, 4:4:4 only (the residual layer's
    deep mode); ``tune`` (``"none"``: x265's default) and the chroma QP offsets are encoder choices.
    """

    colorspace: str = "ycbcr"
    chroma: str = "444"
    preset: str = "veryslow"
    tune: str = "ssim"
    bits: int = 8
    cbqpoffs: int = 0
    crqpoffs: int = 0

    name: ClassVar[str] = "hevc"
    id: ClassVar[int] = 3
    quality_range = (0, 51)
    higher_is_better = False
    default_quality = 29
    container_overhead = 16
    description = "HEVC intra (x265 via PyAV), QP, veryslow, tune ssim, YCbCr 4:4:4 full range"

    MIN_SIDE: ClassVar[int] = 32

    def _padded(self, h: int, w: int) -> tuple[int, int]:
        m = 2 if self.chroma == "420" else 1
        return max(self.MIN_SIDE, -(-h // m) * m), max(self.MIN_SIDE, -(-w // m) * m)

    def _planes(self, img: np.ndarray, bits: int = 8) -> np.ndarray:
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if self.colorspace == "rgb":
            return np.ascontiguousarray(img[..., [1, 2, 0]].transpose(2, 0, 1))  # G, B, R like bpgenc
        return rgb_to_ycbcr(img, bits)

    def _rgb(self, planes: np.ndarray, bits: int = 8) -> np.ndarray:
        if self.colorspace == "rgb":
            return np.ascontiguousarray(planes.transpose(1, 2, 0)[..., [2, 0, 1]])
        return ycbcr_to_rgb(planes, bits)

    def encode(self, img: np.ndarray, quality: int | None = None) -> bytes:
        import av

        qp = self.check_quality(quality)
        h, w = img.shape[:2]
        ph, pw = self._padded(h, w)
        bits = self.bits if img.dtype == np.uint16 else 8
        if bits not in (8, 10, 12) or (bits > 8 and self.chroma != "444"):
            raise DsslicInputError(f"{self.name}: {bits}-bit samples need 4:4:4 and 10 or 12 bits")
        planes = self._planes(img, bits)
        if (ph, pw) != (h, w):
            planes = np.pad(planes, ((0, 0), (0, ph - h), (0, pw - w)), mode="edge")
        if bits > 8:
            pix = f"yuv444p{bits}le"
            frame = av.VideoFrame(pw, ph, pix)
            for plane, src in zip(frame.planes, planes):
                buf = np.zeros((ph, plane.line_size // 2), np.uint16)
                buf[:, :pw] = src
                plane.update(buf.tobytes())
        elif self.chroma == "420":
            y = planes[0]
            c = planes[1:].astype(np.float32).reshape(2, ph // 2, 2, pw // 2, 2).mean(axis=(2, 4))
            c = np.clip(np.rint(c), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, c.reshape(-1, pw)], axis=0), format="yuv420p")
            pix = "yuv420p"
        else:
            frame = av.VideoFrame.from_ndarray(planes, format="yuv444p")
            pix = "yuv444p"
        ctx = av.CodecContext.create("libx265", "w")
        ctx.width, ctx.height, ctx.pix_fmt = pw, ph, pix
        ctx.options = {"preset": self.preset, **({"tune": self.tune} if self.tune != "none" else {}),
                       "x265-params": f"keyint=1:qp={qp}:info=0:repeat-headers=0:log-level=error"
                       + (f":cbqpoffs={self.cbqpoffs}:crqpoffs={self.crqpoffs}" if self.cbqpoffs or self.crqpoffs else "")}
        packets = list(ctx.encode(frame)) + list(ctx.encode(None))
        return b"".join(bytes(p) for p in packets)

    def decode(self, data: bytes, shape: Shape) -> np.ndarray:
        import av

        h, w = shape[:2]
        ph, pw = self._padded(h, w)
        try:
            ctx = av.CodecContext.create("hevc", "r")
            # FFmpeg refuses a stream claiming more pixels than this before allocating frames
            # (with room for its alignment of the coded size to 64-pixel coding tree blocks)
            ctx.options = {"max_pixels": str((ph + 64) * (pw + 64)), "threads": "1"}
            packets = ctx.parse(data) + ctx.parse(None)  # one per picture (access unit): no pixels yet
            if len(packets) != 1:
                raise DsslicFormatError(f"{self.name} layer holds {len(packets)} pictures, expected 1")
            frames = []
            for p in [*packets, None]:  # None flushes the decoder
                frames += ctx.decode(p)
                if len(frames) > 1:  # stop at the second picture, before any more are decoded
                    raise DsslicFormatError(f"{self.name} layer holds more than one picture")
        except DsslicFormatError:
            raise
        except Exception as e:
            if "max_pixels" in str(e):
                raise DsslicFormatError(
                    f"{self.name} stream claims more pixels than the header's {w}x{h}") from None
            raise DsslicFormatError(f"{self.name} layer does not decode ({str(e)[:120]})") from None
        if len(frames) != 1:
            raise DsslicFormatError(f"{self.name} layer holds {len(frames)} pictures, expected 1")
        fr = frames[0]
        _check_claimed(fr.width, fr.height, (ph, pw), self.name)
        deep = {"yuv444p10le": 10, "yuv444p12le": 12} if self.chroma == "444" else {}
        if fr.format.name != ("yuv420p" if self.chroma == "420" else "yuv444p") and fr.format.name not in deep:
            raise DsslicFormatError(f"{self.name} layer has pixel format {fr.format.name}")
        if fr.format.name in deep:  # a deep residual: uint16 samples (the caller checks the depth it expects)
            bits = deep[fr.format.name]
            planes = np.stack([np.frombuffer(p, np.uint16).reshape(ph, p.line_size // 2)[:, :pw] for p in fr.planes])
            return _expect(self._rgb(planes[:, :h, :w], bits), (h, w, 3), self.name)
        arr = fr.to_ndarray()
        if self.chroma == "420":
            planes = np.empty((3, ph, pw), np.uint8)
            planes[0] = arr[:ph]
            c = arr[ph:].reshape(2, ph // 2, pw // 2)
            for i in range(2):
                planes[1 + i] = _upsample2(c[i], ph, pw)
        else:
            planes = arr.reshape(3, ph, pw)
        rgb = self._rgb(planes[:, :h, :w])
        return _expect(rgb, (h, w, 3), self.name)


def _upsample2(plane: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    up = Image.fromarray(plane.astype(np.float32), "F").resize((w, h), Image.BILINEAR)
    return np.clip(np.rint(np.asarray(up)), 0, 255).astype(np.uint8)


class HevcRgbCodec(HevcCodec):
    name = "hevc-rgb"
    id = 4
    description = "HEVC intra (x265), QP, coding the R, G, B planes directly (bpgenc -c rgb)"

    def __init__(self) -> None:
        super().__init__(colorspace="rgb")


class Hevc420Codec(HevcCodec):
    name = "hevc420"
    id = 5
    description = "HEVC intra (x265), QP, YCbCr 4:2:0 full range (bpgenc's default)"

    def __init__(self) -> None:
        super().__init__(chroma="420")


# --------------------------------------------------------------------------------------------
# Pillow codecs
# --------------------------------------------------------------------------------------------

class _PillowCodec(LayerCodec):
    format: ClassVar[str]
    quality_range = (0, 100)
    default_quality = 75

    def save_args(self, q: int) -> dict:
        raise NotImplementedError

    def encode(self, img: np.ndarray, quality: int | None = None) -> bytes:
        from PIL import Image

        q = self.check_quality(quality)
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img)).save(buf, format=self.format, **self.save_args(q))
        return buf.getvalue()

    def _open(self, data: bytes):
        """Open lazily (header only) with this format's Pillow plugin: not through ``Image.open``, whose
        bomb guard is a process-wide setting; the size is checked against the header (and so against
        dsslic's own pixel limit) by :meth:`decode`, per call."""
        from PIL import Image

        Image.init()
        factory, accept = Image.OPEN[self.format]
        ok = accept(data[:16]) if accept else True
        if not ok or isinstance(ok, str):
            raise DsslicFormatError(f"{self.name} layer is not a {self.format} stream")
        return factory(io.BytesIO(data), None)

    def header_size(self, data: bytes) -> tuple[int, int] | None:
        """(width, height) from the stream's header, for formats whose decoder allocates when it is opened."""
        return None

    def decode(self, data: bytes, shape: Shape) -> np.ndarray:
        modes = ("RGB",) if len(shape) == 3 else ("L", "I;16")
        size = self.header_size(data)
        if size is not None:
            _check_claimed(*size, shape, self.name)
        try:
            with self._open(data) as im:
                _check_claimed(im.width, im.height, shape, self.name)
                if getattr(im, "n_frames", 1) != 1:
                    raise DsslicFormatError(f"{self.name} layer holds {im.n_frames} frames, expected 1")
                if im.mode not in modes:
                    raise DsslicFormatError(f"{self.name} layer has mode {im.mode}, expected {' or '.join(modes)}")
                im.load()
                arr = np.asarray(im)
        except DsslicFormatError:
            raise
        except Exception as e:
            raise DsslicFormatError(f"{self.name} layer does not decode ({str(e)[:120]})") from None
        return _expect(arr, shape, self.name)


class AvifCodec(_PillowCodec):
    name = "avif"
    id = 6
    format = "AVIF"
    default_quality = 60
    description = "AVIF (libaom via Pillow), quality, 4:4:4, speed 4"

    def save_args(self, q: int) -> dict:
        return {"quality": q, "subsampling": "4:4:4", "speed": 4}


class WebpCodec(_PillowCodec):
    name = "webp"
    id = 7
    format = "WEBP"
    description = "WebP lossy (libwebp via Pillow), quality, method 6"

    def save_args(self, q: int) -> dict:
        return {"quality": q, "method": 6}

    def header_size(self, data: bytes) -> tuple[int, int]:
        """libwebp allocates the canvas when the decoder is made: read the size from the first chunk first."""
        if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
            raise DsslicFormatError("webp layer is not a WebP stream")
        chunk = data[12:16]
        if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy: 14-bit sizes after the start code
            return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
        if chunk == b"VP8L" and data[20] == 0x2F:  # lossless: 14-bit (size - 1) fields
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":  # extended: 24-bit (canvas size - 1) fields
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
        raise DsslicFormatError("webp layer has no size header")


class JpegCodec(_PillowCodec):
    name = "jpeg"
    id = 8
    format = "JPEG"
    description = "JPEG (libjpeg-turbo via Pillow), quality, 4:2:0, optimised Huffman tables"

    def save_args(self, q: int) -> dict:
        return {"quality": q, "optimize": True}


class Jpeg2000Codec(_PillowCodec):
    name = "jpeg2000"
    id = 9
    format = "JPEG2000"
    quality_range = (2, 1000)
    higher_is_better = False
    default_quality = 40
    description = "JPEG 2000 (OpenJPEG via Pillow), compression ratio, colour transform on (mct=1)"

    def save_args(self, q: int) -> dict:
        return {"quality_mode": "rates", "quality_layers": [q], "mct": 1, "irreversible": True}


class PngCodec(_PillowCodec):
    """PNG, lossless: a fallback for label maps with codecs other than JPEG XL unavailable."""

    name = "png"
    id = 10
    format = "PNG"
    lossless = True
    description = "PNG lossless (zlib level 9)"

    def save_args(self, q: int | None) -> dict:
        return {"optimize": True}


class LearnedCodec(LayerCodec):
    """The learned enhancement layer's id and name in the layer table (what files, ``info`` and the format's
    whitelist name): its payload is coded by ``residual.LearnedCoder``, given x' and c, not as an image."""

    name = "learned"
    id = 11
    quality_range = (0, 0)
    default_quality = 0
    description = "learned conditional transform coder with hyperprior (dsslic.enhance), range coded"

    def encode(self, img: np.ndarray, quality: int | None = None) -> bytes:
        raise DsslicInputError("the learned layer is coded by dsslic.residual.LearnedCoder, given the base layers")

    def decode(self, data: bytes, shape: Shape) -> np.ndarray:
        raise DsslicFormatError("the learned layer is decoded by dsslic.residual.LearnedCoder, given the base layers")


class LabelMapCodec(LayerCodec):
    """Label maps (uint8): context-modelled range coding of the class map (dsslic.labelcoder)."""

    name = "labelmap"
    id = 12
    lossless = True
    description = "label map: 3-symbol context model (above / left / other), adaptive, range coded (constriction)"

    def encode(self, img: np.ndarray, quality: int | None = None) -> bytes:
        from . import labelcoder

        return labelcoder.encode(img)

    def decode(self, data: bytes, shape: Shape) -> np.ndarray:
        from . import labelcoder

        if len(shape) != 2:
            raise DsslicFormatError("the label-map codec codes single-channel layers only")
        return labelcoder.decode(data, (int(shape[0]), int(shape[1])))


_REGISTRY: dict[str, LayerCodec] = {}
_BY_ID: dict[int, LayerCodec] = {}


def register(codec: LayerCodec) -> LayerCodec:
    """Add a codec to the registry (by name and by its numeric id in the file format)."""
    if codec.name in _REGISTRY or codec.id in _BY_ID:
        raise ValueError(f"codec {codec.name!r} / id {codec.id} already registered")
    _REGISTRY[codec.name] = codec
    _BY_ID[codec.id] = codec
    return codec


for _c in (ConstCodec(), JxlCodec(), JxlLossyCodec(), HevcCodec(), HevcRgbCodec(), Hevc420Codec(),
           AvifCodec(), WebpCodec(), JpegCodec(), Jpeg2000Codec(), PngCodec(), LearnedCodec(), LabelMapCodec()):
    register(_c)

# the residual coders, and which of these codecs the ``--residual`` choices code through: dsslic.residual


def get(name: str) -> LayerCodec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def by_id(codec_id: int) -> LayerCodec:
    try:
        return _BY_ID[codec_id]
    except KeyError:
        raise DsslicFormatError(f"unknown codec id {codec_id} (file from a newer dsslic?)") from None


def names() -> list[str]:
    return sorted(_REGISTRY)
