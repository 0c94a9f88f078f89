"""Label maps a user gives (--labels), label spaces named in files, and rendering them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import synthetic
from PIL import Image

from dsslic import Codec, bitstream, segmenters
from dsslic.cli import main
from dsslic.segmenters import labelspace


@pytest.fixture()
def png(tmp_path):
    p = tmp_path / "in.png"
    Image.fromarray(synthetic(48, 64)).save(p)
    return p


def _map(tmp_path, arr, mode=None):
    p = tmp_path / "map.png"
    Image.fromarray(arr, mode).save(p) if mode else Image.fromarray(arr).save(p)
    return p


@pytest.mark.parametrize("case", ["wrong size", "id beyond space", "rgb", "unknown space"])
def test_bad_label_maps_are_refused_with_one_line(tmp_path, png, capsys, case):
    lab = (np.arange(48 * 64).reshape(48, 64) // 300 % 4).astype(np.uint8)
    extra = ["--label-space", "photo"]
    if case == "wrong size":
        m = _map(tmp_path, lab[:40])
    elif case == "id beyond space":
        lab[0, 0] = 11  # photo has 11 classes: ids 0..10
        m = _map(tmp_path, lab)
    elif case == "rgb":
        m = _map(tmp_path, np.repeat(lab[..., None], 3, 2))
    else:
        m, extra = _map(tmp_path, lab), ["--label-space", "nosuchspace"]
    out = tmp_path / "o.dsslic"
    assert main(["compress", str(png), "-o", str(out), "--labels", str(m), "--residual", "none", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err and err
    assert not out.exists()


def test_label_map_in_a_label_space_round_trips_and_renders_in_its_palette(tmp_path, png, capsys):
    lab = (np.arange(48 * 64).reshape(48, 64) // 300 % 4).astype(np.uint8)
    out, seg_png = tmp_path / "o.dsslic", tmp_path / "seg.png"
    assert main(["compress", str(png), "-o", str(out), "--labels", str(_map(tmp_path, lab)), "--label-space", "photo",
                 "--model", "plain", "--residual", "none"]) == 0
    hd = bitstream.parse(out.read_bytes())
    assert hd.segmenter_id == labelspace.PHOTO.id and hd.seg_factor == 1  # a map the user gives is kept exact
    assert main(["decompress", str(out), "-o", str(seg_png), "--layers", "seg"]) == 0
    assert np.array_equal(np.asarray(Image.open(seg_png)), labelspace.PHOTO.palette[lab])
    assert main(["info", str(out)]) == 0
    assert "sky" in capsys.readouterr().out


def test_unknown_label_space_still_decodes_and_warns():
    lab = (np.arange(40 * 48).reshape(40, 48) // 200 % 5).astype(np.uint8)
    seg = segmenters.FileSegmenter(lab, class_names=[f"mine{i}" for i in range(5)])  # a space this install lacks
    assert labelspace.by_id(seg.id) is None
    cd = Codec("plain", segmenter=seg)
    data = cd.compress(synthetic(40, 48), residual="none")
    assert Codec("plain").decompress(data).shape == (40, 48, 3)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rendered = Codec("plain").decompress(data, "seg")
    assert any("generic palette" in str(x.message) for x in w)
    assert np.array_equal(rendered, labelspace.default_palette(5)[lab])
