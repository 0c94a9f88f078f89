"""The interface of an image codec (:class:`LayerCodec`), its registry, and the checks every decoder makes.

A codec module defines a :class:`LayerCodec` subclass with a new, never reused ``id`` and decorates it with
:func:`register`; ``codecs/__init__.py`` imports the module. Which layers may use it is the format's business
(``bitstream.LAYER_CODECS``).
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

import numpy as np

from ..errors import DsslicFormatError, DsslicInputError

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


_REGISTRY: dict[str, LayerCodec] = {}
_BY_ID: dict[int, LayerCodec] = {}


def _add(codec: LayerCodec) -> LayerCodec:
    """Add a codec to the registry (by name and by its numeric id in the file format)."""
    if codec.name in _REGISTRY or codec.id in _BY_ID:
        raise ValueError(f"codec {codec.name!r} / id {codec.id} already registered")
    _REGISTRY[codec.name] = codec
    _BY_ID[codec.id] = codec
    return codec


C = TypeVar("C", type[LayerCodec], LayerCodec)


def register(codec: C) -> C:
    """Class decorator (or call with an instance): add the codec to the registry by name and by its numeric id
    in the file format, once."""
    _add(codec() if isinstance(codec, type) else codec)
    return codec


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
