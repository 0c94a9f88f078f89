"""Golden files: ``.dsslic`` files written by earlier versions keep decoding to the same pixels, forever.

tests/golden/ holds small files written by tools/make_golden.py, with the md5 of their decodes and of their
parsed headers in expected.json. A reader never drops a version it wrote, so these tests never change for an
old file; a format change bumps ``bitstream.VERSION`` and adds golden files of the new version (see the tool).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dsslic import bitstream
from dsslic.codec import decode_layers, psnr

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())
FILES = sorted(EXPECTED["files"])

_spec = importlib.util.spec_from_file_location("make_golden", ROOT / "tools" / "make_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)


def _png(name: str) -> np.ndarray:
    with Image.open(GOLDEN / name) as im:
        return np.asarray(im)


def test_inputs_intact() -> None:
    assert make_golden.md5(_png("input.png")) == EXPECTED["input_md5"]
    assert make_golden.md5(_png("labels.png")) == EXPECTED["labels_md5"]


def test_every_codec_the_encoder_writes_has_a_golden_file() -> None:
    from dsslic import codecs
    from dsslic.bitstream import RESIDUAL_CODECS

    pinned = {e["settings"]["residual"] for e in EXPECTED["files"].values()}
    assert set(RESIDUAL_CODECS) <= pinned and "none" in pinned
    seen = {(la["kind"], codecs.by_id(la["codec_id"]).name) for e in EXPECTED["files"].values()
            for la in e["header"]["layers"]}
    assert {(0, "const"), (0, "jxl"), (0, "labelmap"), (1, "jxl")} <= seen  # what seg_layer and the Codec choose


def test_current_version_has_golden_files() -> None:
    """Bumping VERSION means adding golden files of the new version (tools/make_golden.py --prefix v2-)."""
    assert bitstream.VERSION in {e["format_version"] for e in EXPECTED["files"].values()}


@pytest.mark.parametrize("name", FILES)
def test_golden_decodes(name: str) -> None:
    e = EXPECTED["files"][name]
    data = (GOLDEN / name).read_bytes()
    assert make_golden.md5(data) == e["md5"], "a golden file was modified; they are written once"
    hd = bitstream.parse(data)
    assert make_golden.header_fields(hd) == e["header"]
    assert make_golden.fields_md5(make_golden.header_fields(hd)) == e["header_md5"]
    assert make_golden.md5(decode_layers(hd, "seg").s) == e["label_map"]
    for layers in ("full", "coarse", "seg"):
        img = make_golden.decode(data, layers, e["settings"])
        assert (img.shape, img.dtype) == ((48, 64, 3), np.uint8)
        if layers == "full" and e.get("float_env", make_golden.float_env()) != make_golden.float_env():
            # float transforms on another torch or CPU: within a level or two of what was decoded when written
            ref = _png(make_golden.reference_name(name)).astype(int)
            assert np.abs(img.astype(int) - ref).max() <= 2 and psnr(img, ref.astype(np.uint8)) > 45, name
            continue
        assert make_golden.md5(img) == e[f"decode_{layers}"], f"{name}: --layers {layers} decodes differently"


@pytest.mark.parametrize("name", [n for n in FILES if EXPECTED["files"][n]["deterministic"]])
def test_golden_reencodes_to_same_bytes(name: str) -> None:
    """Today's encoder, same input and settings, writes the golden file byte for byte (current version only;
    the image codecs' encoders are deterministic for a given library version, so others are skipped)."""
    e = EXPECTED["files"][name]
    if e["format_version"] != bitstream.VERSION:
        pytest.skip(f"written in format version {e['format_version']}; decoding is what stays")
    if e["libraries"] != make_golden.library_versions():
        pytest.skip(f"encoder libraries differ from {e['libraries']}: bytes may differ, decoding must not")
    if e.get("float_env", make_golden.float_env()) != make_golden.float_env():
        pytest.skip(f"float transforms computed with {e['float_env']}: bytes may differ, decoding must not (much)")
    data = make_golden.encode(e["settings"], _png("input.png"), _png("labels.png"))
    assert data == (GOLDEN / name).read_bytes(), f"{name}: today's encoder writes different bytes"
