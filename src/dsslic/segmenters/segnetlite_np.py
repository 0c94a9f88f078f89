"""SegNetLite segmenters on the numpy runtime (:mod:`dsslic.npnet`): what ``segmenters.get`` gives on the CPU, so that
``dsslic compress`` segments without importing torch. Torch's :class:`~.segnetlite.NetSegmenter` (training, CUDA) gives
the same maps on >= 99.9% of pixels (``benchmarks/runtime.py``); a map is the encoder's alone (it is stored), so the
two may differ without breaking any file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import npnet, zoo
from . import labelspace
from .base import Segmenter


class NumpySegmenter(Segmenter):
    """A shipped (or trained) SegNetLite run in numpy at its working resolution (long side ``work_size``)."""

    def __init__(self, name: str, net: npnet.SegNetLite, class_names: list[str], palette: np.ndarray | None = None,
                 work_size: int = 480, flip: bool = False, weights_digest: str = "") -> None:
        self.name, self.net, self.class_names = name, net, class_names
        self._palette, self.work_size, self.flip, self._digest = palette, work_size, flip, weights_digest

    @property
    def palette(self) -> np.ndarray:
        return self._palette if self._palette is not None else super().palette

    @property
    def fingerprint(self) -> str:
        """The name, the runtime and the weights' hash: maps from torch and numpy may differ in a few pixels, so
        results cached from one (``dsslic eval``) are not reused for the other."""
        return f"{self.name}:numpy:{self._digest}"

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu", **kw) -> NumpySegmenter:
        """From a ``.seg.safetensors`` file (``device`` is accepted for ``get``'s sake: this runs on the CPU)."""
        tensors, meta = npnet.read_safetensors(path)
        cfg = json.loads(meta.get("config", "{}"))
        names = cfg.get("class_names") or list(labelspace.CAMVID11.class_names)
        pal = np.array(cfg["palette"], np.uint8) if "palette" in cfg else None
        digest = zoo.digest(tensors=tensors, floats=None, ints=None, size=6).hex()
        return cls(cfg.get("name", Path(path).stem), npnet.SegNetLite(tensors), names, pal, cfg.get("work_size", 480),
                   weights_digest=digest, **kw)

    def segment(self, image: np.ndarray) -> np.ndarray:
        return npnet.segment(self.net, image, self.work_size, self.flip)

    def sampler(self, image: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """As :meth:`Segmenter.sampler`, running the network once and resizing its scores only where asked."""
        h, w = image.shape[:2]
        y = npnet.logits(self.net, image, self.work_size, self.flip)
        return lambda rows, cols: npnet.labels_at(y, h, w, rows, cols)
