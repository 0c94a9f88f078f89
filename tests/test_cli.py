"""The dsslic command: exit codes, one-line errors, no partial outputs, batch runs."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic
from PIL import Image

from dsslic.cli import main
from dsslic.errors import DsslicInputError


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


# ---------------------------------------------------------------------------------------------------------------
# What a new user hits (issue 12): each test below failed before its fix.

_PROBE = ("import sys; from dsslic.cli import main; rc = main(sys.argv[1:]); "
          "print('TORCH' if 'torch' in sys.modules else 'NOTORCH', file=sys.stderr); sys.exit(rc)")


def probe(*args: str, **kw) -> tuple[int, list[str], bool]:
    """Run the CLI in a fresh interpreter: (exit code, stderr lines, whether torch got imported)."""
    p = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120, **kw)
    lines = p.stderr.strip().splitlines()
    assert lines and lines[-1] in ("TORCH", "NOTORCH"), p.stderr
    return p.returncode, lines[:-1], lines[-1] == "TORCH"


def _one_error_line(lines: list[str], *words: str) -> None:
    assert len(lines) == 1 and lines[0].startswith("dsslic: error:"), lines
    for w in words:
        assert w in lines[0], lines


def test_info_does_not_import_torch(tmp_path, png):
    out = tmp_path / "a.dsslic"
    assert main(["compress", str(png), "-o", str(out), "--model", "plain"]) == 0
    for args in (["info", str(out)], ["info", str(out), "--json"],
                 ["decompress", str(out), "-o", str(tmp_path / "s.png"), "--layers", "seg"]):
        rc, lines, torch_imported = probe(*args)
        assert rc == 0 and not torch_imported, (args, lines)


def test_bad_arguments_refused_before_torch(tmp_path, png):
    for args, word in [(["--qp", "60"], "51"), (["-q", "-1"], "quality"), (["-q", "101", "--residual", "webp"], "100"),
                       (["--target-bpp", "0"], "positive"), (["--target-bpp", "1", "--residual", "none"], "none"),
                       (["--max-pixels", "0"], "max-pixels"), (["--qp", "30", "--residual", "avif"], "--qp")]:
        rc, lines, torch_imported = probe("compress", str(png), "-o", str(tmp_path / "o.dsslic"), *args)
        assert rc == 2 and not torch_imported, (args, lines)
        _one_error_line(lines, word)
    assert not (tmp_path / "o.dsslic").exists()


def test_unwritable_output_refused_before_encoding(tmp_path, png):
    for out in ("/proc/dsslic-test.dsslic", str(tmp_path / "no" / "such" / "dir" / "a.dsslic"),
                str(tmp_path / ("x" * 300 + ".dsslic"))):
        rc, lines, torch_imported = probe("compress", str(png), "-o", out)
        assert rc == 2 and not torch_imported, (out, lines)
        _one_error_line(lines)
        assert "internal" not in lines[0]


def test_full_disk_is_one_line_exit_3(png):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with open("/dev/full", "wb") as full:
        p = subprocess.run([sys.executable, "-m", "dsslic.cli", "compress", str(png), "-o", "-", "--model", "plain"],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 3, p.stderr
    _one_error_line(p.stderr.strip().splitlines(), "No space left")


def test_output_equal_to_input_refused_even_with_force(tmp_path, png):
    before = png.read_bytes()
    (tmp_path / "sym.dsslic").symlink_to(png)
    (tmp_path / "hard.dsslic").hardlink_to(png)
    for out in (png, tmp_path / "sym.dsslic", tmp_path / "hard.dsslic"):
        rc, lines, _ = probe("compress", str(png), "-o", str(out), "--force")
        assert rc == 2, (out, lines)
        _one_error_line(lines, "input")
        assert png.read_bytes() == before
    enc = tmp_path / "a.dsslic"
    assert main(["compress", str(png), "-o", str(enc), "--model", "plain"]) == 0
    disguised = tmp_path / "c.png"  # a .dsslic file under an image's name, decompressed onto itself
    disguised.write_bytes(enc.read_bytes())
    assert main(["decompress", str(disguised), "-o", str(disguised), "--force"]) == 2
    assert disguised.read_bytes() == enc.read_bytes()


def test_batch_name_collisions_refused_before_encoding(tmp_path):
    d = tmp_path / "d"
    (d / "d1").mkdir(parents=True)
    (d / "d2").mkdir()
    Image.fromarray(synthetic(32, 32)).save(d / "d1" / "x.png")
    Image.fromarray(synthetic(32, 32, 1)).save(d / "d2" / "x.png")
    Image.fromarray(synthetic(32, 32, 2)).save(d / "d1" / "x.jpg")
    out = tmp_path / "out"
    rc, lines, torch_imported = probe("compress", str(d / "d1"), "-o", str(out))  # x.png and x.jpg -> x.dsslic
    assert rc == 2 and not torch_imported
    _one_error_line(lines, "x.png", "x.jpg")
    assert not out.exists() or not list(out.rglob("*"))
    (d / "d1" / "x.jpg").unlink()
    # two files of one name from different folders: kept apart by their relative paths
    assert main(["compress", str(d / "d1" / "x.png"), str(d / "d2" / "x.png"), "-o", str(out), "--model", "plain"]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.dsslic")) == ["d1/x.dsslic", "d2/x.dsslic"]
    # two folders whose files map to one name
    rc, lines, _ = probe("compress", str(d / "d1"), str(d / "d2"), "-o", str(tmp_path / "out2"))
    assert rc == 2
    _one_error_line(lines, "d1/x.png", "d2/x.png")


def test_outputs_get_the_permissions_of_a_plain_open(tmp_path, png):
    enc, dec = tmp_path / "a.dsslic", tmp_path / "a.png"
    old = os.umask(0o027)
    try:
        assert main(["compress", str(png), "-o", str(enc), "--model", "plain"]) == 0
        assert main(["decompress", str(enc), "-o", str(dec)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(enc.stat().st_mode) == 0o640
    assert stat.S_IMODE(dec.stat().st_mode) == 0o640
    os.chmod(enc, 0o604)  # --force keeps the mode of the file it replaces, as open("w") would
    assert main(["compress", str(png), "-o", str(enc), "--model", "plain", "--force"]) == 0
    assert stat.S_IMODE(enc.stat().st_mode) == 0o604


def test_target_bpp_reports_the_decoders_psnr(tmp_path, png, capsys):
    from dsslic.codec import Codec, psnr

    x = np.asarray(Image.open(png))
    codec = Codec("plain")
    res = codec.encode(x, target_bpp=3.0)
    assert res.psnr == pytest.approx(psnr(x, codec.decode(res.data)), abs=1e-9)
    out = tmp_path / "t.dsslic"
    assert main(["compress", str(png), "-o", str(out), "--target-bpp", "3.0", "--model", "plain"]) == 0
    printed = float(capsys.readouterr().out.split("PSNR ")[1].split(" dB")[0])
    assert printed == pytest.approx(psnr(x, codec.decode(out.read_bytes())), abs=0.01)
    with pytest.raises(DsslicInputError, match="none"):
        codec.encode(x, target_bpp=1.0, residual="none")


def test_q_is_quality_qp_its_hevc_alias(tmp_path, png, capsys):
    def q_of(out: Path) -> int:
        capsys.readouterr()
        main(["info", str(out), "--json"])
        return json.loads(capsys.readouterr().out)["layers"][-1]["quality"]

    for args, want in [(["-q", "40"], 40), (["--qp", "35"], 35), (["-q", "50", "--residual", "webp"], 50),
                       (["--quality", "20", "--residual", "avif", "--quiet"], 20)]:
        out = tmp_path / f"{'_'.join(args)}.dsslic"
        assert main(["compress", str(png), "-o", str(out), "--model", "plain", *args]) == 0
        assert q_of(out) == want, args
    help_ = subprocess.run([sys.executable, "-m", "dsslic.cli", "compress", "--help"], capture_output=True,
                           text=True).stdout
    for word in ("hevc", "0-51", "avif", "webp", "jpeg2000", "--qp", "--quiet"):
        assert word in help_, word


def test_stdin_and_stdout(tmp_path, png):
    cmd = [sys.executable, "-m", "dsslic.cli"]
    enc = subprocess.run([*cmd, "compress", "-", "-o", "-", "--model", "plain"], input=png.read_bytes(),
                         capture_output=True, timeout=120, cwd=tmp_path)
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout[:4] == b"DSLC"
    dec = subprocess.run([*cmd, "decompress", "-", "-o", str(tmp_path / "b.png")], input=enc.stdout,
                         capture_output=True, timeout=120)
    assert dec.returncode == 0, dec.stderr
    assert np.asarray(Image.open(tmp_path / "b.png")).shape == (48, 64, 3)
    raw = subprocess.run([*cmd, "decompress", "-", "-o", "-"], input=enc.stdout, capture_output=True, timeout=120,
                         cwd=tmp_path)
    assert raw.returncode == 0 and raw.stdout[:8] == b"\x89PNG\r\n\x1a\n", raw.stderr
    assert not (tmp_path / "-").exists()  # not a file named "-"


def test_decompress_writes_lossless_unless_told(tmp_path, png):
    enc = tmp_path / "a.dsslic"
    assert main(["compress", str(png), "-o", str(enc), "--model", "plain"]) == 0
    ref = tmp_path / "ref.png"
    assert main(["decompress", str(enc), "-o", str(ref)]) == 0
    want = np.asarray(Image.open(ref))
    for ext in (".ppm", ".tiff", ".webp", ".bmp"):
        dst = tmp_path / f"a{ext}"
        assert main(["decompress", str(enc), "-o", str(dst)]) == 0
        assert np.array_equal(np.asarray(Image.open(dst).convert("RGB")), want), ext
    rc, lines, _ = probe("decompress", str(enc), "-o", str(tmp_path / "a.jpg"))
    assert rc == 2 and not (tmp_path / "a.jpg").exists()
    _one_error_line(lines, "--lossy-output-quality")
    assert main(["decompress", str(enc), "-o", str(tmp_path / "a.jpg"), "--lossy-output-quality", "90"]) == 0
    assert Image.open(tmp_path / "a.jpg").format == "JPEG"


def test_layers_seg_warns_when_the_file_has_no_label_map(tmp_path, png, capsys):
    enc = tmp_path / "a.dsslic"
    assert main(["compress", str(png), "-o", str(enc), "--model", "plain", "--segmenter", "none"]) == 0
    capsys.readouterr()
    assert main(["decompress", str(enc), "-o", str(tmp_path / "s.png"), "--layers", "seg"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "no label map" in err and "--segmenter" in err, err


def test_every_flag_of_every_subcommand_has_help():
    from dsslic.cli import _LAZY, build_parser

    for name in ["compress", "decompress", "info", "segment", *_LAZY]:
        p = build_parser([name])
        sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        for act in sub._actions:
            if act.option_strings and act.dest != "help" and act.help != argparse.SUPPRESS:  # hidden: internal
                assert act.help, (name, act.option_strings)
    info = next(a for a in build_parser(["info"])._actions if isinstance(a, argparse._SubParsersAction)).choices["info"]
    assert "--device" not in info._option_string_actions  # info runs no network


def test_model_name_never_reaches_outside_the_weights_folder(tmp_path):
    from dsslic import models
    from dsslic.zoo import WEIGHTS_DIR

    shutil.copy(WEIGHTS_DIR / "general.safetensors", tmp_path / "evil.safetensors")
    rel = os.path.relpath(tmp_path / "evil", WEIGHTS_DIR)
    assert os.sep in rel
    for name in (rel, "evil", os.path.relpath(tmp_path / "evil", Path.cwd())):
        with pytest.raises(DsslicInputError):
            models.load(name)
    assert models.load(str(tmp_path / "evil.safetensors")).name == "general"  # a path: read as that path
    help_ = subprocess.run([sys.executable, "-m", "dsslic.cli", "compress", "--help"], capture_output=True,
                           text=True).stdout
    assert ".safetensors" in help_ and "separator" in help_


def test_python_api_seg_layer_is_torch_free(tmp_path, png):
    enc = tmp_path / "a.dsslic"
    assert main(["compress", str(png), "-o", str(enc), "--model", "plain"]) == 0
    code = ("import sys, dsslic; a = dsslic.decompress(open(sys.argv[1], 'rb').read(), layers='seg'); "
            "print(a.shape, 'torch' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code, str(enc)], capture_output=True, text=True, timeout=120)
    assert p.stdout.split() == ["(48,", "64,", "3)", "False"], p.stderr
