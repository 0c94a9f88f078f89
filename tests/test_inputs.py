"""Awkward images into `dsslic compress`: each works (with a warning where lossy) or exits 2 cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic
from PIL import Image

from dsslic.cli import main


def _roundtrip(tmp_path: Path, src: Path, capsys) -> tuple[int, str, np.ndarray | None]:
    out, png = tmp_path / "o.dsslic", tmp_path / "o.png"
    rc = main(["compress", str(src), "-o", str(out), "--force", "-q"])
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
    cmd = [sys.executable, "-m", "dsslic.cli", "compress", str(src), "-o", str(out), "-q", "--qp", "20", "--model", "plain"]
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
