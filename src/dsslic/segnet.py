"""SegNet: the segmenters that produce DSSLIC's base layer s = SegNet(x).

A segmenter maps a uint8 HxWx3 image to an HxW integer label map and knows its class names and
palette. Its id (a hash of its name and label set) goes into the file so that a decoder can tell
which label space a map uses.

Built in: ``none`` (one label everywhere: the paper's noSeg) and ``file`` (a label map the user
supplies, e.g. ground truth). A trained ``camvid11`` network is the subject of issue #3.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod

import numpy as np

from .errors import DsslicInputError


def default_palette(n: int) -> np.ndarray:
    """A deterministic, well-spread palette (the PASCAL VOC bit-interleaving scheme)."""
    pal = np.zeros((max(n, 1), 3), np.uint8)
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


class Segmenter(ABC):
    """Interface: ``segment(image) -> labels`` plus the label space's names and colours."""

    name: str
    class_names: list[str]

    @property
    def num_labels(self) -> int:
        return len(self.class_names)

    @property
    def palette(self) -> np.ndarray:
        return default_palette(self.num_labels)

    @property
    def id(self) -> bytes:
        """4 bytes naming the label space, stored in the file."""
        return label_space_id(self.class_names)

    @abstractmethod
    def segment(self, image: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) -> (H, W) uint8 or uint16 label map with values < num_labels."""


def label_space_id(class_names: list[str]) -> bytes:
    return hashlib.sha256("\n".join(class_names).encode()).digest()[:4]


class NoSegmenter(Segmenter):
    """The paper's noSeg: every pixel gets label 0. Costs 2 bytes in the file."""

    name = "none"
    class_names = ["unlabelled"]

    def segment(self, image: np.ndarray) -> np.ndarray:
        return np.zeros(image.shape[:2], np.uint8)


class FileSegmenter(Segmenter):
    """Labels supplied by the user: a label-map PNG (values are class ids) or an array."""

    name = "file"

    def __init__(self, labels: str | os.PathLike | np.ndarray, class_names: list[str] | None = None) -> None:
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
            raise DsslicInputError(f"label map has id {n - 1} but only {len(self.class_names)} classes")

    def segment(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] != self.labels.shape:
            raise DsslicInputError(
                f"label map is {self.labels.shape[1]}x{self.labels.shape[0]}, image is {image.shape[1]}x{image.shape[0]}"
            )
        return self.labels


_SEGMENTERS = {"none": NoSegmenter}


def get(name: str) -> Segmenter:
    """A built-in segmenter by name (``file`` needs a label map: construct FileSegmenter directly)."""
    try:
        return _SEGMENTERS[name]()
    except KeyError:
        raise DsslicInputError(f"unknown segmenter {name!r}; built in: {', '.join(sorted(_SEGMENTERS))}") from None


def colorize(labels: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """Label map -> uint8 RGB rendering (ids beyond the palette wrap around)."""
    n = int(labels.max(initial=0)) + 1
    pal = palette if palette is not None and len(palette) >= n else default_palette(max(n, 1))
    return pal[labels]
