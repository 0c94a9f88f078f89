"""Shared fixtures: synthetic images only (tests never read ../shared)."""

from __future__ import annotations

import numpy as np
import pytest


def synthetic(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth image with edges and a little noise: something codecs can chew on."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    g = 255 * (xx + yy) / max(h + w - 2, 1)
    b = np.where((xx // 16 + yy // 16) % 2 == 0, 200.0, 40.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 4, (h, w, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def codec():
    from dsslic.codec import Codec

    return Codec("plain")


@pytest.fixture(scope="session")
def img() -> np.ndarray:
    return synthetic(72, 96)


@pytest.fixture(scope="session")
def encoded(codec, img) -> bytes:
    return codec.compress(img, quality=30)
