"""--roi: the residual weighted by the file's own label map, stored in the residual layer's params."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import synthetic

from dsslic import DsslicFormatError, DsslicInputError, bitstream
from dsslic.bitstream import LayerKind
from dsslic.codec import Codec, psnr
from dsslic.segmenters import FileSegmenter, NoSegmenter
from dsslic.segmenters.labelspace import CAMVID11

CAR = CAMVID11.class_names.index("car")


@pytest.fixture(scope="module")
def scene():
    img = synthetic(64, 96, seed=3)
    labels = np.zeros((64, 96), np.uint8)
    labels[16:48, 24:64] = CAR
    return img, labels


@pytest.fixture(scope="module")
def codec(scene):
    return Codec("plain", segmenter=FileSegmenter(scene[1], list(CAMVID11.class_names)))


def inside_outside(codec, img, labels, data) -> tuple[float, float]:
    out = codec.decode(data)
    m = labels == CAR
    return psnr(img[m], out[m]), psnr(img[~m], out[~m])


@pytest.mark.parametrize("residual, q", [("hevc", 34), ("webp", 40)])
def test_roi_round_trip_spends_bits_inside(codec, scene, residual, q):
    img, labels = scene
    plain = codec.encode(img, residual=residual, quality=q)
    boosted = codec.encode(img, residual=residual, quality=q, roi="car", verify=True)  # decoder == encoder
    layer = bitstream.parse(boosted.data).layer(LayerKind.RESIDUAL)
    assert layer.params["roi"] == (CAR,) and layer.params["roi_boost"] == 6
    assert "roi" not in bitstream.parse(plain.data).layer(LayerKind.RESIDUAL).params
    assert psnr(img, codec.decode(boosted.data)) == pytest.approx(boosted.psnr)
    p_in, p_out = inside_outside(codec, img, labels, plain.data)
    b_in, b_out = inside_outside(codec, img, labels, boosted.data)
    assert b_in - b_out > p_in - p_out + 1  # the quality moves inside (equal-size gains: benchmarks/roi.py)


def test_negative_boost_spends_fewer_bits_inside(codec, scene):
    img, labels = scene
    p_in, p_out = inside_outside(codec, img, labels, codec.compress(img, quality=30))
    r = codec.encode(img, quality=30, roi=["car"], roi_boost=-12, verify=True)
    assert bitstream.parse(r.data).layer(LayerKind.RESIDUAL).params["roi_boost"] == -12
    b_in, b_out = inside_outside(codec, img, labels, r.data)
    assert b_in - b_out < p_in - p_out - 2


def test_roi_with_target_bpp_fits(codec, scene):
    img, _ = scene
    r = codec.encode(img, target_bpp=1.5, roi="car", roi_boost=12)
    assert r.bpp <= 1.5 and 8 * len(r.data) / (64 * 96) == r.bpp
    assert codec.encode(img, quality=r.quality, roi="car", roi_boost=12).data == r.data


@pytest.mark.parametrize("kw, msg", [
    (dict(roi="unicorn"), "unknown class 'unicorn' in label space"),
    (dict(roi="car,"), "needs class names"),
    (dict(roi="car", roi_boost=25), "-24..24"),
    (dict(roi="car", roi_boost=-25), "-24..24"),
    (dict(roi="car", roi_boost=2.5), "integer"),
    (dict(roi_boost=6), "--roi-boost needs --roi"),
    (dict(roi="car", residual="none"), "--residual none"),
])
def test_roi_bad_input(codec, scene, kw, msg):
    with pytest.raises(DsslicInputError, match=msg):
        codec.encode(scene[0], **kw)


def test_roi_needs_a_map(scene):
    with pytest.raises(DsslicInputError, match="stores none"):
        Codec("plain", segmenter=NoSegmenter()).encode(scene[0], roi="unlabelled")


def test_hostile_roi_params_are_refused(codec, scene):
    hd = bitstream.parse(codec.compress(scene[0], quality=40, roi="car"))
    hd.layer(LayerKind.RESIDUAL).params["roi_boost"] = 100
    with pytest.raises(DsslicFormatError, match="boost outside"):
        bitstream.parse(bitstream.serialize(hd))
    hd.layer(LayerKind.RESIDUAL).params.update(roi=(), roi_boost=6)
    with pytest.raises(DsslicFormatError, match="no classes"):
        bitstream.parse(bitstream.serialize(hd))


def test_cli_roi(tmp_path, scene):
    from PIL import Image

    img, labels = scene
    Image.fromarray(img).save(tmp_path / "x.png")
    Image.fromarray(labels).save(tmp_path / "map.png")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "dsslic.cli", "compress", str(tmp_path / "x.png"), "--model", "plain",
                               "--labels", str(tmp_path / "map.png"), *args], capture_output=True, text=True, env=env,
                              timeout=120)

    r = run("-o", str(tmp_path / "bad.dsslic"), "--roi", "nothere")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "unknown class 'nothere'" in r.stderr
    r = run("-o", str(tmp_path / "bad.dsslic"), "--roi", "class8", "--roi-boost", "99")
    assert r.returncode == 2 and "-24..24" in r.stderr and not (tmp_path / "bad.dsslic").exists()
    r = run("-o", str(tmp_path / "ok.dsslic"), "--roi", "class8", "--roi-boost", "12", "--qp", "36")
    assert r.returncode == 0, r.stderr
    assert bitstream.parse((tmp_path / "ok.dsslic").read_bytes()).layer(LayerKind.RESIDUAL).params["roi"] == (CAR,)
