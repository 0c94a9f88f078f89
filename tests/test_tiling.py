"""Tiled inference gives the untiled result when the overlap covers the receptive field."""

from __future__ import annotations

import numpy as np
import torch
from conftest import synthetic

from dsslic.codec import Codec, psnr
from dsslic.models import LearnedConfig, LearnedModel, PlainModel
from dsslic.segmenters import FileSegmenter


def _pair(model, seg=None, **kw):
    return Codec(model, segmenter=seg, tile=1 << 20), Codec(model, segmenter=seg, **kw)


def test_plain_tiled_is_exact():
    x = synthetic(200, 264, seed=1)
    whole, tiles = _pair(PlainModel(), tile=64, overlap=64)
    a, b = whole.encode(x, quality=30), tiles.encode(x, quality=30)
    assert a.data == b.data
    assert np.array_equal(whole.decode(a.data), tiles.decode(a.data))


def test_learned_tiled_matches_untiled():
    torch.manual_seed(0)
    m = LearnedModel(LearnedConfig(width=4, n_blocks=1, num_labels=3, norm="none")).eval()
    labels = (np.arange(200 * 264).reshape(200, 264) // 3000 % 3).astype(np.uint8)
    seg = FileSegmenter(labels, ["a", "b", "c"])
    x = synthetic(200, 264, seed=2)
    whole, tiles = _pair(m, seg, tile=64, overlap=128)
    xp = x  # 200x264: already a multiple of alpha
    s = labels
    c_w, c_t = whole.compact(xp, s), tiles.compact(xp, s)
    assert np.abs(c_w.astype(int) - c_t.astype(int)).max() <= 1
    r_w, r_t = whole.recnet(s, c_w), tiles.recnet(s, c_w)
    assert np.abs(r_w.astype(int) - r_t.astype(int)).max() <= 1
    # and a file from one decodes identically with the other (up to rounding of x')
    data = tiles.compress(x, quality=30)
    assert psnr(whole.decode(data), tiles.decode(data)) > 50


def test_instance_norm_tiles_close():
    """With the paper's InstanceNorm, tiles see their own statistics: close, not exact."""
    torch.manual_seed(0)
    m = LearnedModel(LearnedConfig(width=4, n_blocks=1, norm="instance")).eval()
    x = synthetic(256, 256, seed=3)
    whole, tiles = _pair(m, tile=128, overlap=64)
    c = whole.compact(x, np.zeros((256, 256), np.uint8))
    full, tiled_ = whole.recnet(np.zeros((256, 256), np.uint8), c), tiles.recnet(np.zeros((256, 256), np.uint8), c)
    assert psnr(full, tiled_) > 25
