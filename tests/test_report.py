"""``dsslic report``: the HTML holds the decoder's pictures and figures, and a real browser renders it."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dsslic.cli import main
from dsslic.codec import psnr
from dsslic.report import analyse, eval_page, residual_view

CHROMIUM = "/usr/bin/chromium"


def _pictures(page: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB"))
            for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


@pytest.fixture()
def two_class(tmp_path, img):
    """An image file and a two-class label map for it (left / right half)."""
    labels = np.zeros(img.shape[:2], np.uint8)
    labels[:, img.shape[1] // 2:] = 1
    Image.fromarray(img).save(tmp_path / "x.png")
    Image.fromarray(labels).save(tmp_path / "map.png")
    return tmp_path / "x.png", tmp_path / "map.png", labels


def test_image_report_shows_decoded_layers_and_per_class_psnr(tmp_path, two_class, img, capsys):
    png, labels_png, labels = two_class
    out = tmp_path / "r.html"
    assert main(["report", str(png), "-o", str(out), "--model", "plain", "--qp", "30",
                 "--segmenter", f"file:{labels_png}"]) == 0
    page = out.read_text()
    pics = _pictures(page)
    assert len(pics) == 6  # original, label map, c, x', residual, x~
    assert np.array_equal(pics[0], img)
    from dsslic.codec import Codec
    from dsslic.segmenters import FileSegmenter

    codec = Codec("plain", segmenter=FileSegmenter(str(labels_png)))
    data = codec.compress(img, quality=30)
    final = codec.decompress(data)
    assert np.array_equal(pics[5], final) and np.array_equal(pics[3], codec.decompress(data, "coarse"))
    assert f"<b>{len(data)}</b>" in page  # the whole file's bytes
    for half in (labels == 0, labels == 1):  # per-class PSNR of the decoded image, both classes
        assert f"{psnr(img[half], final[half]):.2f}" in page
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")  # self-contained


def test_dsslic_file_report_has_no_distortion_figures(tmp_path, encoded, codec):
    p = tmp_path / "x.dsslic"
    p.write_bytes(encoded)
    rep = analyse("x", encoded, codec)
    assert rep.metrics == {} and np.array_equal(rep.final, codec.decompress(encoded))
    assert main(["report", str(p), "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "No original given" in page and len(_pictures(page)) == 5


def test_residual_view_centres_and_scales():
    coarse = np.full((4, 4, 3), 100, np.uint8)
    final = coarse.copy()
    final[0, 0, 0] = 110
    view, gain = residual_view(final, coarse)
    assert view[1, 1, 1] == 128 and view[0, 0, 0] == 255 and gain > 0


def test_bad_inputs_exit_2_without_output(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "missing.png"), "-o", str(out)]) == 2
    assert main(["report", "--eval", str(tmp_path), "-o", str(out)]) == 2
    assert main(["report", "-o", str(out)]) == 2
    assert not out.exists()
    assert capsys.readouterr().err.count("\n") == 3


def _eval_dir(tmp_path: Path) -> Path:
    from dsslic.eval import write_report

    rows = []
    for im in ("a.png", "b.png"):
        for codec, base in (("bpg444", 0.0), ("dsslic", 1.5), ("bpg444rgb", 3.0)):
            for k, bpp in enumerate((0.2, 0.4, 0.8, 1.6, 3.2)):
                p = 26 + 3 * k - base + (im == "b.png")
                rows.append({"image": im, "codec": codec, "setting": 40 - 3 * k, "bytes": bpp * 1000, "bpp": bpp,
                             "bpp_per_channel": bpp / 3, "psnr": p, "psnr_y": p + 0.5, "ms_ssim": 1 - 10 ** (-p / 30),
                             "ms_ssim_db": p / 3, "width": 200, "height": 200, "encode_s": 0.1, "decode_s": 0.1})
    out = tmp_path / "ev"
    write_report(rows, out, "dsslic eval --data X --out ev", ["X"], None)
    return out


def test_eval_report_tables_and_plot(tmp_path):
    import csv

    ev = _eval_dir(tmp_path)
    page = eval_page(ev)
    with open(ev / "bd_rate.csv") as f:
        bd = [r for r in csv.DictReader(f) if r["anchor"] == "bpg444" and r["codec"] == "dsslic"][0]
    assert f"{float(bd['bd_rate_psnr']):+.1f}%" in page and float(bd["bd_rate_psnr"]) > 0
    assert page.count("<details>") == 2 and "dsslic eval --data X --out ev" in page
    assert len(_pictures(page)) == 1  # the RD plot
    assert "Per class" not in page
    (ev / "per_class_averages.csv").write_text("codec,setting,class,psnr\ndsslic,40,sky,31.25\n")
    assert "<td>sky</td><td>31.25</td>" in eval_page(ev)


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Chromium is absent (apt-get install chromium)")
def test_renders_in_headless_chromium(tmp_path, two_class):
    png, labels_png, _ = two_class
    out = tmp_path / "r.html"
    assert main(["report", str(png), "-o", str(out), "--model", "plain", "--segmenter", f"file:{labels_png}"]) == 0
    shot = tmp_path / "shot.png"
    profile = tempfile.mkdtemp()
    try:
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                        f"--screenshot={shot}", "--window-size=1200,1400", out.resolve().as_uri()],
                       capture_output=True, timeout=120, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    s = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # text and tables are grey; only the embedded pictures are saturated: they must cover part of the page
    colourful = (s.max(axis=2) - s.min(axis=2)) > 60
    assert colourful.mean() > 0.01, colourful.mean()
