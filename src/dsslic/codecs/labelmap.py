"""The base layer's own codecs: a uniform label map in 2 bytes, and the context-modelled label-map coder."""

from __future__ import annotations

import struct

import numpy as np

from ..errors import DsslicFormatError
from .base import LayerCodec, Shape, register


@register
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


@register
class LabelMapCodec(LayerCodec):
    """Label maps (uint8): context-modelled range coding of the class map (dsslic.labelcoder)."""

    name = "labelmap"
    id = 12
    lossless = True
    description = "label map: 3-symbol context model (above / left / other), adaptive, range coded (constriction)"

    def encode(self, img: np.ndarray, quality: int | None = None) -> bytes:
        from .. import labelcoder

        return labelcoder.encode(img)

    def decode(self, data: bytes, shape: Shape) -> np.ndarray:
        from .. import labelcoder

        if len(shape) != 2:
            raise DsslicFormatError("the label-map codec codes single-channel layers only")
        return labelcoder.decode(data, (int(shape[0]), int(shape[1])))
