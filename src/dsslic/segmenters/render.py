"""Renderings of a label map: the colour image (``colorize``) and the same with a legend strip."""

from __future__ import annotations

import numpy as np

from .base import Segmenter
from .labelspace import colorize  # noqa: F401  (re-exported)


def render_legend(rgb: np.ndarray, labels: np.ndarray, seg: Segmenter) -> np.ndarray:
    """The colour rendering with a legend strip below it: one swatch and name per class present."""
    from PIL import Image, ImageDraw

    present = [int(i) for i in np.unique(labels) if i < seg.num_labels]
    h, w = rgb.shape[:2]
    rows = max(1, -(-len(present) // max(1, w // 140)))
    canvas = Image.new("RGB", (w, h + 18 * rows), (255, 255, 255))
    canvas.paste(Image.fromarray(rgb), (0, 0))
    d = ImageDraw.Draw(canvas)
    per_row = max(1, w // 140)
    for k, i in enumerate(present):
        x0, y0 = (k % per_row) * 140 + 4, h + (k // per_row) * 18 + 3
        d.rectangle([x0, y0, x0 + 12, y0 + 12], fill=tuple(int(v) for v in seg.palette[i]), outline=(0, 0, 0))
        d.text((x0 + 16, y0), seg.class_names[i][:18], fill=(0, 0, 0))
    return np.asarray(canvas)
