"""The Pillow plugin, through Pillow's own calls (Image.open, load, thumbnail, exif_transpose, save)."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageOps, UnidentifiedImageError

import dsslic
import dsslic.pillow  # noqa: F401  (registers the format)
from dsslic.decoding import info


@pytest.fixture()
def path(tmp_path, encoded):
    p = tmp_path / "x.dsslic"
    p.write_bytes(encoded)
    return p


def test_open_reads_header_and_info_then_decodes_on_load(path, encoded, img, codec):
    with Image.open(path) as im:
        assert (im.format, im.mode, im.size) == ("DSSLIC", "RGB", (img.shape[1], img.shape[0]))
        assert im.info["dsslic"] == info(encoded)
        assert im.tile  # nothing decoded yet
        arr = np.asarray(im)
    assert np.array_equal(arr, codec.decompress(encoded))
    assert Image.MIME["DSSLIC"] == "image/x-dsslic"
    assert Image.registered_extensions()[".dsslic"] == "DSSLIC"


def test_open_imports_no_torch(path):
    code = ("import sys, dsslic.pillow; from PIL import Image; im = Image.open(sys.argv[1]); "
            "print(im.size, im.info['dsslic']['label_names_present'], 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False", out.stdout


def test_thumbnail_exif_transpose_and_file_object(encoded, codec):
    with Image.open(io.BytesIO(encoded)) as im:
        t = ImageOps.exif_transpose(im)  # no EXIF block in a .dsslic file: same pixels
        assert np.array_equal(np.asarray(t), codec.decompress(encoded))
        im.thumbnail((32, 32))
        assert max(im.size) == 32 and im.mode == "RGB"


def test_save_to_bytesio_matches_the_codec(img, codec):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="DSSLIC", quality=30, model="plain")
    assert buf.getvalue() == codec.compress(img, quality=30)
    buf2 = io.BytesIO()
    Image.fromarray(img).convert("L").save(buf2, format="DSSLIC", residual="none", model="plain")
    assert dsslic.info(buf2.getvalue())["layers"][-1]["layer"] == "compact"


def test_save_by_extension_and_reopen(tmp_path, img):
    p = tmp_path / "y.dsslic"
    Image.fromarray(img).save(p, quality=40, model="plain")
    with Image.open(p) as im:
        im.load()
        assert im.size == (img.shape[1], img.shape[0])


def test_save_refuses_modes_and_unsupported_roi(tmp_path, img):
    with pytest.raises(OSError, match="cannot write mode RGBA"):
        Image.fromarray(img).convert("RGBA").save(io.BytesIO(), format="DSSLIC", model="plain")
    if "roi" not in __import__("inspect").signature(dsslic.Codec.encode).parameters:
        p = tmp_path / "roi.dsslic"
        with pytest.raises(ValueError, match="roi"):
            Image.fromarray(img).save(p, roi=np.ones(img.shape[:2], bool), model="plain")
        assert not p.exists()  # Pillow removes the file it created


def test_not_ours_and_other_plugins_unaffected(img):
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(b"not an image at all, not even close"))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    with Image.open(buf) as im:
        assert im.format == "PNG" and np.array_equal(np.asarray(im), img)


def test_corrupt_files_raise_oserror(encoded):
    truncated = encoded[: len(encoded) - 5]
    with pytest.raises(OSError, match="dsslic: .*truncated"):
        Image.open(io.BytesIO(truncated))
    flipped = bytearray(encoded)
    flipped[-3] ^= 0xFF  # inside the last layer: its CRC fails at open (parse checks every layer)
    with pytest.raises(OSError, match="checksum"):
        Image.open(io.BytesIO(bytes(flipped)))
    with pytest.raises(OSError, match="over the limit"):  # the header's size against Pillow's bomb limit
        old, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, 100
        try:
            Image.open(io.BytesIO(encoded))
        finally:
            Image.MAX_IMAGE_PIXELS = old


def test_load_failure_is_oserror(encoded, monkeypatch):
    im = Image.open(io.BytesIO(encoded))

    def broken(data, **kw):
        raise dsslic.DsslicFormatError("file was made with a model this installation does not have")

    monkeypatch.setattr(dsslic, "decompress", broken)
    with pytest.raises(OSError, match="model this installation does not have"):
        im.load()
