"""The base layer's own label-map coder: exact round trips, compactness on region maps, hostile payloads."""

import numpy as np
import pytest

from dsslic import codecs, labelcoder
from dsslic.errors import DsslicFormatError
from dsslic.segmenters.base import Segmenter


def region_map(h: int, w: int, seed: int = 0, n: int = 6) -> np.ndarray:
    """A map of a few smooth regions, like a segmenter's output."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    centres = rng.uniform(0, [h, w], (n, 2))
    d = (yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2
    return rng.permutation(n)[d.argmin(-1)].astype(np.uint8)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (17, 23), (64, 96)])
def test_round_trip_shapes(shape):
    for seed in range(3):
        lab = region_map(*shape, seed=seed)
        assert (labelcoder.decode(labelcoder.encode(lab), shape) == lab).all()


def test_round_trip_noise_and_all_256_labels():
    rng = np.random.default_rng(1)
    lab = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    lab[0, 0], lab[1, 1] = 0, 255
    assert (labelcoder.decode(labelcoder.encode(lab), lab.shape) == lab).all()


def test_deterministic_and_smaller_than_raw_on_regions():
    lab = region_map(64, 96, seed=3)
    a, b = labelcoder.encode(lab), labelcoder.encode(lab.copy())
    assert a == b
    assert len(a) < lab.size / 16  # far below one bit per label on a region map


def test_through_the_layer_codec_registry():
    c = codecs.get("labelmap")
    lab = region_map(30, 40)
    assert (codecs.by_id(c.id).decode(c.encode(lab), lab.shape) == lab).all()


def test_hostile_payloads_fail_cleanly():
    good = labelcoder.encode(region_map(30, 40))
    head = good[:10]
    bad = [b"", b"\x00", b"\x00\x00", b"\x01\x01" + good[2:], head + b"\xff" * 3, good + b"\0\0\0\1",
           good[:-4], head + bytes(range(200, 240)), good[:2] + good[6:10] + good[2:6] + good[10:]]
    rng = np.random.default_rng(0)
    bad += [head + bytes(rng.integers(0, 256, rng.integers(0, 80), dtype=np.uint8)) for _ in range(300)]
    bad += [bytes(rng.integers(0, 256, rng.integers(2, 80), dtype=np.uint8)) for _ in range(100)]
    for data in bad:
        try:
            out = labelcoder.decode(data, (30, 40))
        except DsslicFormatError:
            continue
        assert out.shape == (30, 40) and out.dtype == np.uint8  # a wrong but well-formed map (the CRC guards content)
        assert int(out.max()) < int.from_bytes(data[:2], "little")
    with pytest.raises(ValueError):
        labelcoder.encode(np.zeros((3, 3), np.uint16))


class _RegionSegmenter(Segmenter):
    """A stand-in network segmenter (the documented interface: a Segmenter subclass): a region map in the photo
    label space."""

    name, exact = "regions", False
    class_names = ["sky", "tree", "road", "grass", "water", "building", "mountain", "person", "animal", "vehicle",
                   "other"]
    num_labels = len(class_names)

    @property
    def id(self):
        from dsslic.segmenters import labelspace

        return labelspace.PHOTO.id

    def segment(self, image):
        return region_map(*image.shape[:2], seed=5, n=6)


@pytest.mark.parametrize("budget, factor", [(1.0, 4), (1e-9, 16)])
def test_label_free_model_stores_the_map_at_the_finest_resolution_in_budget(budget, factor):
    from dsslic import Codec, bitstream, codec, info

    img = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    cd = Codec("plain", segmenter=_RegionSegmenter(), label_budget_bpp=budget)
    data = cd.compress(img, residual="none")
    hd = bitstream.parse(data)
    assert hd.seg_factor == factor
    s = codec.decode_layers(hd, "seg").s
    full = region_map(64, 96, seed=5, n=6)
    assert s.shape == full.shape and (s == full).mean() > 0.8
    assert set(info(data)["label_areas"]) <= set(_RegionSegmenter.class_names)
