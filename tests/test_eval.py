"""The evaluation harness: baselines, metrics, BD-rate and the report files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import synthetic
from PIL import Image

from dsslic import codecs
from dsslic.eval import BASELINES, average, bd_rate, evaluate, ms_ssim, psnr, run_one


@pytest.mark.parametrize("name", [n for n in BASELINES if not n.startswith("dsslic")])
def test_baseline_round_trips_at_two_settings(tmp_path, name):
    x = synthetic(40, 56, seed=5)
    p = tmp_path / "x.png"
    Image.fromarray(x).save(p)
    b = BASELINES[name]
    lo_q, hi_q = b.settings[1], b.settings[-2]
    rows = [run_one(str(p), name, s, None, "cpu") for s in (lo_q, hi_q)]
    lc = codecs.get(b.codec)
    for r, s in zip(rows, (lo_q, hi_q)):
        data = lc.encode(x, s)
        assert r["bytes"] == len(data) + lc.container_overhead  # rate is the real stream's bytes
        assert r["bpp"] == pytest.approx(8 * r["bytes"] / (40 * 56))
        assert np.isfinite(r["psnr"]) and r["psnr"] > 10  # tiny noisy image, coarsest settings
    by_setting = sorted(rows, key=lambda r: r["setting"], reverse=not lc.higher_is_better)
    worse, better = by_setting
    assert better["bytes"] > worse["bytes"] and better["psnr"] > worse["psnr"]


def test_dsslic_row_counts_whole_file(tmp_path):
    x = synthetic(40, 56, seed=6)
    p = tmp_path / "x.png"
    Image.fromarray(x).save(p)
    r = run_one(str(p), "dsslic", 30, "plain", "cpu")
    from dsslic.codec import Codec

    assert r["bytes"] == len(Codec("plain").compress(x, quality=30))


def test_dsslic_learned_rows_one_per_model(tmp_path):
    import torch

    from dsslic.enhance import EnhanceConfig, EnhanceModel

    data = tmp_path / "imgs"
    data.mkdir()
    Image.fromarray(synthetic(40, 56, seed=7)).save(data / "x.png")
    paths = []
    for i in range(2):
        torch.manual_seed(i)
        paths.append(str(tmp_path / f"e{i}.safetensors"))
        EnhanceModel(EnhanceConfig(n=8, m=12, nz=4)).save(paths[-1])
    evaluate([str(data)], ["dsslic-learned"], tmp_path / "rep", model="plain", enhance=tuple(paths), progress=False)
    text = (tmp_path / "rep" / "rows.csv").read_text()
    assert text.count("dsslic-learned") == 2  # one row per enhancement model
    from dsslic.codec import Codec

    x = np.asarray(Image.open(data / "x.png"))
    assert f",{len(Codec('plain', enhance=paths[1]).compress(x, residual='learned'))}," in text


def test_bd_rate_self_zero_and_known_shift():
    r = np.array([0.2, 0.4, 0.8, 1.6, 3.2])
    d = np.array([27.0, 30.5, 33.8, 36.9, 39.7])
    assert bd_rate((r, d), (r, d)) == pytest.approx(0, abs=1e-9)
    assert bd_rate((r, d), (r * 0.8, d)) == pytest.approx(-20, abs=1e-6)
    assert bd_rate((r, d), (r * 1.25, d)) == pytest.approx(25, abs=1e-6)
    assert np.isnan(bd_rate((r, d), (r, d + 50)))  # no overlap


def test_metrics():
    x = synthetic(200, 200, seed=7)
    assert psnr(x, x) == float("inf")
    assert ms_ssim(x, x) == pytest.approx(1.0)
    y = np.clip(x.astype(int) + 3, 0, 255).astype(np.uint8)
    assert 35 < psnr(x, y) < 40.5
    assert np.isnan(ms_ssim(x[:100], y[:100]))  # too small for 5 scales


def test_average_is_mean_of_per_image_values():
    rows = [{"codec": "c", "setting": 1, "bpp": b, "bpp_per_channel": b / 3, "psnr": p, "psnr_y": p, "ms_ssim": 0.9,
             "ms_ssim_db": 10.0, "encode_s": 0.1, "decode_s": 0.1} for b, p in [(1.0, 30.0), (3.0, 40.0)]]
    (a,) = average(rows)
    assert a["bpp"] == 2.0 and a["psnr"] == 35.0


def test_report_written_and_cache_reused(tmp_path):
    data = tmp_path / "imgs"
    data.mkdir()
    for i in range(2):
        Image.fromarray(synthetic(168, 176, seed=10 + i)).save(data / f"im{i}.png")
    out = tmp_path / "report"
    settings = {"bpg444": (27, 32, 37, 42), "jpeg": (30, 50, 70, 90), "dsslic": (27, 32, 37, 42)}
    s1 = evaluate([str(data)], ["bpg444", "jpeg", "dsslic"], out, jobs=1, model="plain", settings=settings,
                  command="test", progress=False)
    for f in ["rows.csv", "rows.json", "averages.csv", "bd_rate.csv", "rd_psnr.png", "rd_msssim.png", "report.md"]:
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    report = (out / "report.md").read_text()
    assert "BD-rate" in report and "bpg444" in report and "test" in report
    assert len(s1["averages"]) == 12
    n_cached = len((out / "cache.jsonl").read_text().splitlines())
    assert n_cached == 24
    s2 = evaluate([str(data)], ["bpg444", "jpeg", "dsslic"], out, jobs=1, model="plain", settings=settings,
                  command="test", progress=False)
    assert len((out / "cache.jsonl").read_text().splitlines()) == n_cached  # nothing recomputed
    assert s2["averages"] == s1["averages"]


def test_psnr_per_class_by_hand():
    from dsslic.eval import psnr_per_class

    x = np.zeros((4, 6, 3), np.uint8) + 100
    y = x.copy()
    labels = np.zeros((4, 6), np.uint8)
    labels[:, 4:] = 2
    y[:, 4:] += 3  # class 2: every sample off by 3; class 0 exact
    pc = psnr_per_class(x, y, labels, ["a", "b", "c"])
    assert pc == {"0": ["a", 16, float("inf")], "2": ["c", 8, pytest.approx(10 * np.log10(255**2 / 9))]}


def test_per_class_uses_the_dsslic_files_map_for_every_codec(tmp_path, monkeypatch):
    from dsslic.codec import Codec
    from dsslic.evaluation import sweep
    from dsslic.segmenters import FileSegmenter

    data = tmp_path / "imgs"
    data.mkdir()
    x = synthetic(40, 56, seed=8)
    Image.fromarray(x).save(data / "x.png")
    lab = np.zeros((40, 56), np.uint8)
    lab[:, 20:] = 1
    lab[30:, :10] = 3
    monkeypatch.setitem(sweep._WORKER, ("plain", "cpu", None), Codec("plain", segmenter=FileSegmenter(lab)))
    settings = {"dsslic": (30, 40), "jpeg": (40, 80)}
    s = evaluate([str(data)], ["dsslic", "jpeg"], tmp_path / "rep", model="plain", settings=settings,
                 progress=False, per_class=True)
    rows = json.loads((tmp_path / "rep" / "rows.json").read_text())
    counts = {str(k): int((lab == k).sum()) for k in (0, 1, 3)}
    for r in rows:
        assert {k: v[1] for k, v in r["per_class"].items()} == counts, r["codec"]  # the file's map, all codecs
    lc = codecs.get("jpeg")
    y = lc.decode(lc.encode(x, 80), x.shape)
    jpeg80 = next(r for r in rows if r["codec"] == "jpeg" and r["setting"] == 80)
    assert jpeg80["per_class"]["1"][2] == pytest.approx(psnr(x[lab == 1][None], y[lab == 1][None]))
    assert {(a["codec"], a["class"]) for a in s["per_class"]} == {(c, k) for c in ("dsslic", "jpeg") for k in (0, 1, 3)}
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "## PSNR per class" in report and "class3" in report
    assert "per_class" not in (tmp_path / "rep" / "rows.csv").read_text().splitlines()[0]
    assert (tmp_path / "rep" / "per_class.csv").read_text().count("\n") == 1 + 4 * 3


def test_eval_workers_get_one_blas_thread(monkeypatch):
    """Spawned eval workers inherit one BLAS thread each (numpy's networks slow down 5-10x when oversubscribed);
    the parent's environment is restored afterwards."""
    import os

    from dsslic.evaluation.sweep import _one_blas_thread

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with _one_blas_thread():
        assert os.environ["OPENBLAS_NUM_THREADS"] == os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4" and "OMP_NUM_THREADS" not in os.environ
