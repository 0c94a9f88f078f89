"""Tiled inference: run a network over a large image in overlapping tiles to bound memory.

Overlap-tile strategy: each tile is computed with a margin of ``overlap`` pixels of real context
on every side that has a neighbour, and only its core is kept, so that a network whose receptive
field fits inside the margin gives the same output as on the whole image, without seams.
(Networks with instance normalisation see per-tile statistics; the margin keeps that small.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch


def pad_to(a: np.ndarray, m: int) -> np.ndarray:
    """Reflect-pad the first two axes up to multiples of m (symmetric mode works for any size)."""
    h, w = a.shape[:2]
    return _pad_sym(a, -(-h // m) * m - h, -(-w // m) * m - w)


def pad_min(a: np.ndarray, m: int) -> np.ndarray:
    """Reflect-pad the first two axes up to at least m: networks that downsample 8x need a few pixels there."""
    return _pad_sym(a, max(0, m - a.shape[0]), max(0, m - a.shape[1]))


def _pad_sym(a: np.ndarray, ph: int, pw: int) -> np.ndarray:
    if ph == 0 and pw == 0:
        return a
    return np.pad(a, ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2), mode="symmetric")


def tiled(
    fn: Callable[..., torch.Tensor | np.ndarray],
    inputs: Sequence[torch.Tensor | np.ndarray | None],
    factors: Sequence[int],
    out_factor: int,
    size: tuple[int, int],
    tile: int,
    overlap: int,
    align: int,
) -> torch.Tensor | np.ndarray:
    """Apply ``fn(*inputs)`` tile by tile.

    ``size`` is the full-resolution (H, W); input ``i`` is at 1/``factors[i]`` of it (``None`` inputs
    pass through), the output at 1/``out_factor``. Tile origins and extents are multiples of
    ``align`` (full-resolution pixels), which must make every crop an integer at every factor.
    """
    H, W = size
    if H * W <= tile * tile:
        return fn(*inputs)
    tile = max(align, tile // align * align)
    overlap = -(-overlap // align) * align
    out = None
    for y0 in range(0, H, tile):
        for x0 in range(0, W, tile):
            y1, x1 = min(y0 + tile, H), min(x0 + tile, W)
            ey0, ex0 = max(0, y0 - overlap), max(0, x0 - overlap)
            ey1, ex1 = min(H, y1 + overlap), min(W, x1 + overlap)
            crops = [
                None if t is None else (t[..., ey0 // f : ey1 // f, ex0 // f : ex1 // f])
                for t, f in zip(inputs, factors)
            ]
            y = fn(*crops)
            if out is None:  # torch tensors or numpy arrays (dsslic.npnet)
                shape = (*y.shape[:-2], H // out_factor, W // out_factor)
                out = np.empty(shape, y.dtype) if isinstance(y, np.ndarray) else y.new_empty(*shape)
            f = out_factor
            out[..., y0 // f : y1 // f, x0 // f : x1 // f] = y[
                ..., (y0 - ey0) // f : (y1 - ey0) // f, (x0 - ex0) // f : (x1 - ex0) // f
            ]
    assert out is not None
    return out
