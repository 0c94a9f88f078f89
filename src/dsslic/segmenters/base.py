"""The segmenter interface, and the two segmenters without a network: ``none`` and ``file``.

A segmenter maps a uint8 HxWx3 image to an HxW integer label map and knows its class names; its label
space (:mod:`.labelspace`) gives the colours and the 4-byte id a file stores. Torch-free.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from .. import zoo
from ..errors import DsslicInputError
from . import labelspace
from .labelspace import default_palette, label_space_id


class Segmenter(ABC):
    """Interface: ``segment(image) -> labels`` plus the label space's names and colours."""

    name: str
    class_names: list[str]
    exact: bool = False  # a map given by the user: stored at full resolution, never subsampled

    @property
    def num_labels(self) -> int:
        return len(self.class_names)

    @property
    def palette(self) -> np.ndarray:
        ls = labelspace.by_id(self.id)
        return ls.palette if ls is not None else default_palette(self.num_labels)

    @property
    def id(self) -> bytes:
        """4 bytes naming the label space, stored in the file."""
        return label_space_id(self.class_names)

    @property
    def fingerprint(self) -> str:
        """What decides its label maps: the name, and a hash of the network's weights when it has one.

        ``id`` names only the label space (files stay decodable when weights are retrained); caches of
        results that depend on the maps (``dsslic eval``) key on this instead."""
        net = getattr(self, "net", None) or getattr(self, "model", None)
        if net is None or not hasattr(net, "state_dict"):
            return self.name
        h = zoo.digest(tensors=net.state_dict(), floats=None, ints=None, sort=False, size=6)  # bytes as held
        return f"{self.name}:{h.hex()}"

    @abstractmethod
    def segment(self, image: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) -> (H, W) uint8 or uint16 label map with values < num_labels."""

    def sampler(self, image: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """A function (rows, columns) -> the map ``segment(image)`` gives at those rows and columns: the codec
        stores the map at 1/4 to 1/16 of the size, and a segmenter that can compute only those samples (the numpy
        SegNetLite) saves the rest. This one segments the whole image once."""
        s = self.segment(image)
        if s.shape != image.shape[:2]:
            raise DsslicInputError(f"segmenter gave a {s.shape} map for a {image.shape[1]}x{image.shape[0]} image")
        return lambda rows, cols: s[np.ix_(rows, cols)]


class NoSegmenter(Segmenter):
    """The paper's noSeg: every pixel gets label 0. Costs 2 bytes in the file."""

    name = "none"
    class_names = ["unlabelled"]

    def segment(self, image: np.ndarray) -> np.ndarray:
        return np.zeros(image.shape[:2], np.uint8)


class FileSegmenter(Segmenter):
    """Labels supplied by the user: a label-map PNG (values are class ids) or an array."""

    name = "file"
    exact = True

    def __init__(self, labels: str | os.PathLike | np.ndarray, class_names: list[str] | None = None,
                 label_space: str | None = None) -> None:
        if label_space is not None:
            ls = labelspace.by_name(label_space)
            if ls is None:
                raise DsslicInputError(f"unknown label space {label_space!r}; known: {', '.join(labelspace.names())}")
            class_names = list(ls.class_names)
        if isinstance(labels, np.ndarray):
            arr = labels
        else:
            from PIL import Image

            try:
                with Image.open(labels) as im:
                    if im.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                        raise DsslicInputError(f"{labels}: label map must be a single-channel PNG, not {im.mode}")
                    arr = np.asarray(im)
            except DsslicInputError:
                raise
            except Exception as e:
                raise DsslicInputError(f"{labels}: cannot read label map ({e})") from None
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer) or arr.min(initial=0) < 0:
            raise DsslicInputError("label map must be a 2-D array of non-negative integers")
        if arr.max(initial=0) > 65535:
            raise DsslicInputError("label map has ids above 65535")
        self.labels = arr.astype(np.uint16 if arr.max(initial=0) > 255 else np.uint8)
        n = int(self.labels.max(initial=0)) + 1
        self.class_names = class_names or [f"class{i}" for i in range(n)]
        if n > len(self.class_names):
            raise DsslicInputError(f"label map has id {n - 1} but its label space has only {len(self.class_names)} "
                                   "classes")

    def segment(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] != self.labels.shape:
            raise DsslicInputError(
                f"label map is {self.labels.shape[1]}x{self.labels.shape[0]}, image is {image.shape[1]}x{image.shape[0]}"
            )
        return self.labels
