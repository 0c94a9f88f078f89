"""JPEG XL through imagecodecs (libjxl): lossless for the base and first enhancement layers, lossy for the
residual; the stream's own headers are parsed (torch- and libjxl-free) so sizes are checked before decoding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DsslicFormatError
from .base import LayerCodec, Shape, _check_claimed, _expect, register


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


@register
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


@register
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
