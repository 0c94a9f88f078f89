"""The dsslic command: exit codes, one-line errors, no partial outputs, batch runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic
from PIL import Image

from dsslic.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    """The real console entry point in a fresh interpreter (exit code, stderr as users see them)."""
    return subprocess.run([sys.executable, "-m", "dsslic.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture()
def png(tmp_path) -> Path:
    p = tmp_path / "in.png"
    Image.fromarray(synthetic(48, 64)).save(p)
    return p


def test_compress_decompress_info(tmp_path, png, capsys):
    out = tmp_path / "a.dsslic"
    assert main(["compress", str(png), "-o", str(out), "--qp", "30"]) == 0
    assert out.is_file()
    for layers in ("full", "coarse", "seg"):
        dst = tmp_path / f"{layers}.png"
        assert main(["decompress", str(out), "-o", str(dst), "--layers", layers]) == 0
        assert np.asarray(Image.open(dst)).shape == (48, 64, 3)
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["bytes"] == out.stat().st_size and d["width"] == 64
    assert main(["info", str(out)]) == 0
    assert "bpp per channel" in capsys.readouterr().out


def test_subprocess_bad_inputs_exit_2_one_line(tmp_path, png, capsys):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    good = tmp_path / "g.dsslic"
    assert main(["compress", str(png), "-o", str(good)]) == 0
    data = good.read_bytes()
    trunc, wrong, crc = tmp_path / "t.dsslic", tmp_path / "w.dsslic", tmp_path / "c.dsslic"
    trunc.write_bytes(data[: len(data) // 2])
    wrong.write_bytes(b"XXXX" + data[4:])
    crc.write_bytes(data[:-5] + bytes([data[-5] ^ 1]) + data[-4:])
    cases = [
        ("compress", str(txt), "-o", str(tmp_path / "o1.dsslic")),
        ("compress", str(empty), "-o", str(tmp_path / "o2.dsslic")),
        ("compress", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o3.dsslic")),
        ("decompress", str(trunc), "-o", str(tmp_path / "o4.png")),
        ("decompress", str(wrong), "-o", str(tmp_path / "o5.png")),
        ("decompress", str(crc), "-o", str(tmp_path / "o6.png")),
        ("decompress", str(png), "-o", str(tmp_path / "o7.png")),
        ("info", str(trunc)),
        ("compress", str(png), "-o", str(tmp_path / "o8.dsslic"), "--qp", "99"),
    ]
    # every case in-process; in a fresh interpreter too (what users see, imports and their warnings included)
    # one that fails before torch is imported and one after (2-5 s each)
    fresh = {cases[0], cases[3]}
    for args in cases:
        assert main(list(args)) == 2, args
        errs = [capsys.readouterr().err]
        if args in fresh:
            p = run(*args)
            assert p.returncode == 2, (args, p.stderr)
            errs.append(p.stderr)
        for err in errs:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("dsslic: error:"), (args, err)
            assert "Traceback" not in err
    assert sorted(f.name for f in tmp_path.iterdir() if f.name.startswith("o")) == []


def test_no_overwrite_without_force(tmp_path, png, capsys):
    out = tmp_path / "a.dsslic"
    out.write_bytes(b"precious")
    assert main(["compress", str(png), "-o", str(out)]) == 2
    assert out.read_bytes() == b"precious"
    assert "--force" in capsys.readouterr().err
    assert main(["compress", str(png), "-o", str(out), "--force"]) == 0
    assert out.read_bytes()[:4] == b"DSLC"


def test_batch_directory_skips_done_and_continues_past_bad(tmp_path, capsys):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i, name in enumerate(["a.png", "b.png", "sub/c.png"]):
        Image.fromarray(synthetic(40, 40, seed=i)).save(src / name)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    assert main(["compress", str(src), "-o", str(out), "--verify"]) == 2  # broken.png fails, others land
    done = sorted(str(p.relative_to(out)) for p in out.rglob("*.dsslic"))
    assert done == ["a.dsslic", "b.dsslic", "sub/c.dsslic"]
    assert not list(out.rglob("*.part"))
    (src / "broken.png").unlink()
    stamp = (out / "a.dsslic").stat().st_mtime_ns
    assert main(["compress", str(src), "-o", str(out)]) == 0
    assert (out / "a.dsslic").stat().st_mtime_ns == stamp  # already done: skipped
    assert "skipping 3" in capsys.readouterr().err
    for p, b in before.items():
        if p.exists():
            assert p.read_bytes() == b  # inputs untouched


def test_target_bpp_cli(tmp_path, png, capsys):
    out = tmp_path / "t.dsslic"
    assert main(["compress", str(png), "-o", str(out), "--target-bpp", "2.0"]) == 0
    assert 8 * out.stat().st_size / (48 * 64) <= 2.0


def test_residual_none_and_other_codecs(tmp_path, png):
    for r in ("none", "avif", "webp"):
        out = tmp_path / f"{r}.dsslic"
        assert main(["compress", str(png), "-o", str(out), "--residual", r]) == 0
        assert main(["decompress", str(out), "-o", str(tmp_path / f"{r}.png")]) == 0


def test_file_labels_base_layer(tmp_path, png, capsys):
    labels = (np.arange(48 * 64).reshape(48, 64) // 600 % 4).astype(np.uint8)
    lp = tmp_path / "labels.png"
    Image.fromarray(labels).save(lp)
    out = tmp_path / "l.dsslic"
    assert main(["compress", str(png), "-o", str(out), "--labels", str(lp)]) == 0
    capsys.readouterr()
    main(["info", str(out), "--json"])
    assert json.loads(capsys.readouterr().out)["labels_present"] == [0, 1, 2, 3]
