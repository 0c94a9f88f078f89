"""Awkward images into `dsslic compress`: each works (with a warning where lossy) or exits 2 cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from conftest import synthetic
from PIL import Image

from dsslic.cli import main


def _roundtrip(tmp_path: Path, src: Path, capsys) -> tuple[int, str, np.ndarray | None]:
    out, png = tmp_path / "o.dsslic", tmp_path / "o.png"
    rc = main(["compress", str(src), "-o", str(out), "--force", "--quiet"])
    err = capsys.readouterr().err
    if rc != 0:
        assert not out.exists()
        return rc, err, None
    assert main(["decompress", str(out), "-o", str(png), "--force"]) == 0
    return rc, err, np.asarray(Image.open(png))


@pytest.mark.parametrize("h,w", [(1, 1), (9, 7), (16, 10000), (2, 3)])
def test_odd_and_extreme_sizes(tmp_path, capsys, h, w):
    p = tmp_path / "a.png"
    Image.fromarray(synthetic(h, w)).save(p)
    rc, err, y = _roundtrip(tmp_path, p, capsys)
    assert rc == 0 and y.shape == (h, w, 3), err


def _save(tmp_path: Path, name: str, make) -> Path:
    p = tmp_path / name
    make(p)
    return p


x = synthetic(40, 56, seed=2)
CASES = {
    "gray.png": (lambda p: Image.fromarray(x[..., 1]).save(p), None),
    "rgba.png": (lambda p: Image.fromarray(np.dstack([x, x[..., :1]])).save(p), "alpha"),
    "palette.png": (lambda p: Image.fromarray(x).convert("P", palette=Image.ADAPTIVE).save(p), None),
    "palette_transparent.png": (
        lambda p: Image.fromarray(x).convert("P", palette=Image.ADAPTIVE).save(p, transparency=0), "alpha"),
    "deep16.png": (lambda p: Image.fromarray(x[..., 0].astype(np.uint16) * 257).save(p), "16-bit"),
    "deep16rgb.png": (lambda p: p.write_bytes(imagecodecs.png_encode(x.astype(np.uint16) * 257)), "16-bit"),
    "cmyk.jpg": (lambda p: Image.fromarray(x).convert("CMYK").save(p, quality=95), "CMYK"),
    "anim.gif": (lambda p: Image.fromarray(x).save(
        p, save_all=True, append_images=[Image.fromarray(255 - x)], duration=100), "frames"),
}


@pytest.mark.parametrize("name", CASES)
def test_image_kinds(tmp_path, capsys, name):
    make, warn = CASES[name]
    rc, err, y = _roundtrip(tmp_path, _save(tmp_path, name, make), capsys)
    assert rc == 0 and y.shape == (40, 56, 3), err
    if warn:
        assert "warning" in err and warn in err, err
        assert len(err.strip().splitlines()) == 1


def test_exif_rotated_jpeg(tmp_path, capsys):
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise to display
    p = _save(tmp_path, "rot.jpg", lambda p: Image.fromarray(x).save(p, exif=exif, quality=95))
    rc, err, y = _roundtrip(tmp_path, p, capsys)
    assert rc == 0 and y.shape == (56, 40, 3)


@pytest.mark.parametrize("name,content", [
    ("corrupt.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x02garbage"),
    ("notes.txt", b"this is not an image\n"),
    ("empty.png", b""),
])
def test_bad_images_exit_2(tmp_path, capsys, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    rc, err, _ = _roundtrip(tmp_path, p, capsys)
    assert rc == 2
    assert err.startswith("dsslic: error:") and len(err.strip().splitlines()) == 1
    assert p.read_bytes() == content


def test_truncated_png_exit_2(tmp_path, capsys):
    p = tmp_path / "t.png"
    Image.fromarray(synthetic(64, 64)).save(p)
    p.write_bytes(p.read_bytes()[:300])
    rc, err, _ = _roundtrip(tmp_path, p, capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_kill_9_mid_batch_then_resume(tmp_path):
    """A batch killed with SIGKILL leaves only whole outputs; a re-run completes the rest."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    for i in range(8):
        Image.fromarray(synthetic(128, 160, seed=i)).save(src / f"im{i}.png")  # 0.3 s each: the kill lands mid-batch
    cmd = [sys.executable, "-m", "dsslic.cli", "compress", str(src), "-o", str(out), "--quiet", "--qp", "20", "--model", "plain"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.dsslic"))) < 2:
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    first = sorted(out.glob("*.dsslic"))
    assert 2 <= len(first) < 8, "the kill came too late to test anything"
    from dsslic import bitstream

    for f in first:
        bitstream.parse(f.read_bytes())  # every output present is complete
    assert main(cmd[3:]) == 0  # the re-run (in-process: the kill above is what needs a real process)
    assert len(list(out.glob("*.dsslic"))) == 8
    assert not list(out.glob(".*.part"))


def test_load_image_never_touches_pillows_bomb_guard(tmp_path):
    """Limits are per call: Pillow's global guard is never switched off, even for a moment (issue 13.6)."""
    import threading

    from dsslic.imageio import load_image

    p = tmp_path / "big.png"
    Image.fromarray(synthetic(600, 800)).save(p, compress_level=1)
    seen, stop = set(), threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.add(Image.MAX_IMAGE_PIXELS)

    t = threading.Thread(target=watch)
    t.start()
    try:
        for _ in range(10):
            load_image(p)
    finally:
        stop.set()
        t.join()
    assert seen == {Image.MAX_IMAGE_PIXELS} and Image.MAX_IMAGE_PIXELS is not None
    # our limit decides, not Pillow's: an image over Pillow's guard but under ours loads, and ours refuses
    from dsslic.errors import DsslicInputError

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 1000
    try:
        assert load_image(p).shape == (600, 800, 3)
        assert Image.MAX_IMAGE_PIXELS == 1000
        with pytest.raises(DsslicInputError, match="over the limit"):
            load_image(p, max_pixels=600 * 800 - 1)
    finally:
        Image.MAX_IMAGE_PIXELS = old


def test_multipage_tiff_does_not_count_its_pages(tmp_path, monkeypatch, capsys):
    """Counting a TIFF's IFDs is quadratic (50k pages: 48 s); is_animated is enough for the warning (13.10)."""
    from PIL import TiffImagePlugin

    p = tmp_path / "pages.tif"
    pages = [Image.fromarray(synthetic(16, 16, i)) for i in range(3)]
    pages[0].save(p, save_all=True, append_images=pages[1:])

    def no_count(self):
        raise AssertionError("n_frames walks every IFD")

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "n_frames", property(no_count))
    rc, err, y = _roundtrip(tmp_path, p, capsys)
    assert rc == 0 and y.shape == (16, 16, 3), err
    assert "frames" in err and "first" in err


def test_stdin_image_and_bytes():
    import io

    from dsslic.imageio import load_image

    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "PNG")
    assert np.array_equal(load_image(buf.getvalue()), x)
    assert np.array_equal(load_image(io.BytesIO(buf.getvalue())), x)
