"""Codecs through Pillow: AVIF (libaom), WebP, JPEG, JPEG 2000 (OpenJPEG), PNG."""

from __future__ import annotations

import io
from typing import ClassVar

import numpy as np

from ..errors import DsslicFormatError
from .base import LayerCodec, Shape, _check_claimed, _expect, register


class _PillowCodec(LayerCodec):
    format: ClassVar[str]
    quality_range = (0, 100)
    default_quality = 75
    #: Pillow's save options besides the quality
    options: ClassVar[dict] = {}

    def save_args(self, q: int) -> dict:
        return {"quality": q, **self.options}

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


@register
class AvifCodec(_PillowCodec):
    name = "avif"
    id = 6
    format = "AVIF"
    default_quality = 60
    description = "AVIF (libaom via Pillow), quality, 4:4:4, speed 4"
    options = {"subsampling": "4:4:4", "speed": 4}


@register
class WebpCodec(_PillowCodec):
    """WebP lossy; its size is read from the RIFF chunks before libwebp is given the stream."""

    name = "webp"
    id = 7
    format = "WEBP"
    description = "WebP lossy (libwebp via Pillow), quality, method 6"
    options = {"method": 6}

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


@register
class JpegCodec(_PillowCodec):
    name = "jpeg"
    id = 8
    format = "JPEG"
    description = "JPEG (libjpeg-turbo via Pillow), quality, 4:2:0, optimised Huffman tables"
    options = {"optimize": True}


@register
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


@register
class PngCodec(_PillowCodec):
    """PNG, lossless: a fallback for label maps with codecs other than JPEG XL unavailable."""

    name = "png"
    id = 10
    format = "PNG"
    lossless = True
    description = "PNG lossless (zlib level 9)"

    def save_args(self, q: int | None) -> dict:
        return {"optimize": True}
