"""The learned enhancement layer's codec id: its payload is coded by dsslic.residual.LearnedCoder (given x' and c)."""

from __future__ import annotations

import numpy as np

from ..errors import DsslicFormatError, DsslicInputError
from .base import LayerCodec, Shape, register


@register
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
