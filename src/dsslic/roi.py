"""Object-based adaptive coding (``--roi``): spend the residual's bits on chosen classes of the file's own map.

The decoder has the label map before it decodes the residual, so a spatial weighting costs no side
information beyond naming the classes: the encoder multiplies the residual ``r = x - x'`` by
``g = 2^(DQ/6)`` on the pixels of the region (``DQ`` in HEVC QP steps: 6 halves the quantisation step
there, negative values spend fewer bits), codes ``r * g``, and the decoder divides by the same ``g`` after
decoding. Quantisation error inside the region shrinks by ``g``; the residual's range (and so its step
everywhere) grows at most by ``g``, and the rate control (``--target-bpp``, a fixed QP) does the rest.
The classes and ``DQ`` are stored in the residual layer's parameters (``roi``, ``roi_boost``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import DsslicInputError

MAX_BOOST = 24  #: |DQ| at most: a gain of 16 either way
MAX_CLASSES = 64  #: the classes must fit in the layer's 255 bytes of parameters
DEFAULT_BOOST = 6


@dataclass(frozen=True)
class Roi:
    """A region of interest: label ids of the file's label space and the boost in QP steps."""

    classes: tuple[int, ...]
    boost: int = DEFAULT_BOOST

    @property
    def params(self) -> dict[str, object]:
        """The residual layer's parameters that name this region."""
        return {"roi": self.classes, "roi_boost": self.boost}

    def gain_map(self, labels: np.ndarray) -> np.ndarray:
        """H x W x 1 float32 weights: 2^(DQ/6) on the region's pixels, 1 elsewhere (identical on both sides)."""
        g = np.float32(2.0 ** (self.boost / 6))
        return np.where(np.isin(labels, np.array(self.classes, labels.dtype)), g, np.float32(1))[..., None]


def resolve(classes: str | Sequence[str], boost: int | None, class_names: Sequence[str], space: str) -> Roi:
    """Check ``--roi CLASS[,CLASS...]`` and ``--roi-boost DQ`` against the label space that will be stored."""
    boost = DEFAULT_BOOST if boost is None else boost
    if isinstance(boost, bool) or not isinstance(boost, (int, np.integer)) or not -MAX_BOOST <= boost <= MAX_BOOST:
        raise DsslicInputError(f"--roi-boost must be an integer in -{MAX_BOOST}..{MAX_BOOST} (HEVC QP steps), not {boost}")
    names = [c.strip().lower() for c in (classes.split(",") if isinstance(classes, str) else classes)]
    if not names or not all(names):
        raise DsslicInputError("--roi needs class names, e.g. --roi car,pedestrian")
    if list(class_names) in ([], ["unlabelled"]):
        raise DsslicInputError(f"--roi needs a label map, and the segmenter {space!r} stores none "
                               "(pass --segmenter with a real one)")
    lower = [n.lower() for n in class_names]
    for n in names:
        if n not in lower:
            raise DsslicInputError(f"--roi: unknown class {n!r} in label space {space!r}; known: {', '.join(class_names)}")
    ids = tuple(sorted({lower.index(n) for n in names}))
    if len(ids) > MAX_CLASSES:
        raise DsslicInputError(f"--roi names more than {MAX_CLASSES} classes")
    return Roi(ids, int(boost))


def from_params(params: dict[str, object]) -> Roi | None:
    """The region a residual layer names, if any."""
    if "roi" not in params:
        return None
    classes = params["roi"]
    return Roi(tuple(classes) if isinstance(classes, tuple) else (int(classes),),  # type: ignore[arg-type]
               int(params.get("roi_boost", DEFAULT_BOOST)))  # type: ignore[call-overload]
