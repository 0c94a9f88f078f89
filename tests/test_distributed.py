"""Batch jobs on Dask: a LocalCluster of 2 worker processes on loopback, against the serial path."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic
from PIL import Image

from dsslic.distributed import Job, local_cluster, map_files, run_batch, run_job, write_output

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler():
    with local_cluster(2) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("in")
    for i in range(6):
        Image.fromarray(synthetic(40, 56, seed=i)).save(d / f"img{i}.png")
    (d / "bad.png").write_bytes(b"not an image")
    return d


def _jobs(folder: Path, out: Path) -> list[Job]:
    return [Job.make(p, out / f"{p.stem}.dsslic", codec={"model": "plain"}, quality=30)
            for p in sorted(folder.glob("*.png"))]


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def serial(folder, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("serial")
    res = run_batch(_jobs(folder, out), progress=False)
    assert [Path(o.job.src).name for o in res.failed] == ["bad.png"]
    return _files(out)


def test_two_workers_byte_identical_to_serial_and_bad_file_collected(folder, serial, scheduler, tmp_path, codec):
    lines: list[str] = []
    res = run_batch(_jobs(folder, tmp_path), scheduler=scheduler, progress=False, log=lines.append)
    assert _files(tmp_path) == serial and len(serial) == 6
    assert serial["img3.dsslic"] == codec.compress(folder / "img3.png", quality=30)
    assert len(res.outcomes) == 7 and [Path(o.job.src).name for o in res.failed] == ["bad.png"]
    assert "1 failed" in res.summary() and sum("error" in ln for ln in lines) == 1


def _dies_once(job: Job):
    """Kills its own worker process in the middle of one job, the first time it is given that job."""
    flag = Path(job.dst).parent.parent / "killed"
    if Path(job.src).name == "img2.png" and not flag.exists():
        flag.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return run_job(job)


def test_killed_worker_mid_job_is_rescheduled_nothing_half_written(folder, serial, scheduler, tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    out = tmp_path / "out"
    res = run_batch(_jobs(folder, out), scheduler=scheduler, progress=False, fn=_dies_once)
    assert (tmp_path / "killed").exists()  # a worker did die holding img2
    assert _files(out) == serial
    assert [Path(o.job.src).name for o in res.failed] == ["bad.png"]


def test_rerun_after_stopped_client_finishes_only_what_is_missing(folder, serial, scheduler, tmp_path):
    out = tmp_path / "out"
    written: list[str] = []

    def stop_after_two(line: str) -> None:
        written.extend([] if line.startswith("dsslic: error") else [line])
        if len(written) == 2:
            raise KeyboardInterrupt  # the client stops mid-batch
    with pytest.raises(KeyboardInterrupt):
        run_batch(_jobs(folder, out), progress=False, log=stop_after_two)
    assert len(_files(out)) == 2
    (out / ".img5.dsslic.x1y2.part").write_bytes(b"half")  # what a writer killed mid-write leaves
    res = run_batch(_jobs(folder, out), scheduler=scheduler, progress=False)
    assert res.skipped == 2 and len(res.outcomes) == 5  # 4 missing images + the bad one
    assert _files(out) == serial  # no .part file survives


def test_decompress_jobs_on_workers_match_the_codec(folder, serial, scheduler, tmp_path, codec):
    src = tmp_path / "in"
    for name, data in serial.items():
        write_output(src / name, data)
    jobs = [Job.make(p, tmp_path / "out" / f"{p.stem}.png", "decompress") for p in sorted(src.glob("*.dsslic"))]
    jobs.append(Job.make(src / "missing.dsslic", tmp_path / "out" / "missing.png", "decompress"))
    res = run_batch(jobs, scheduler=scheduler, progress=False)
    assert [o.error for o in res.failed] == [f"{src / 'missing.dsslic'}: no such file"]
    got = np.asarray(Image.open(tmp_path / "out" / "img1.png"))
    assert np.array_equal(got, codec.decompress(serial["img1.dsslic"]))


def test_map_files_generic_collects_exceptions(scheduler):
    items = ["1", "2", "x", "4"]
    for kw in ({}, {"scheduler": scheduler}):
        seen: dict = {}
        failed = map_files(int, items, progress=False, on_result=lambda i, r, e, seen=seen: seen.__setitem__(i, r), **kw)
        assert seen == {"1": 1, "2": 2, "x": None, "4": 4}
        assert [(i, e.split(":")[0]) for i, e in failed] == [("x", "ValueError")]


def test_cli_compress_and_decompress_through_the_engine(folder, serial, scheduler, tmp_path, capsys, codec):
    from dsslic.cli import main

    out = tmp_path / "out"
    assert main(["compress", str(folder), "-o", str(out), "--model", "plain", "--qp", "30", "--scheduler", scheduler]) == 2
    err = capsys.readouterr().err
    assert "6 of 7 files done; 1 failed" in err and "bad.png" in err
    assert _files(out) == serial
    png = tmp_path / "one.png"
    assert main(["decompress", str(out / "img0.dsslic"), "-o", str(png), "--scheduler", scheduler]) == 0
    assert np.array_equal(np.asarray(Image.open(png)), codec.decompress(serial["img0.dsslic"]))


def test_cli_refuses_bad_engine_options(folder, tmp_path, capsys):
    from dsslic.cli import main

    assert main(["compress", str(folder / "img0.png"), "-o", str(tmp_path / "x.dsslic"), "--workers", "-1"]) == 2
    assert main(["compress", str(folder / "img0.png"), "-o", str(tmp_path / "x.dsslic"), "--workers", "2",
                 "--labels", str(folder / "img0.png")]) == 2
    assert not (tmp_path / "x.dsslic").exists()
    assert capsys.readouterr().err.count("dsslic: error:") == 2


def test_index_on_workers_equals_serial(scheduler, tmp_path):
    """dsslic index --scheduler: the reads run on Dask workers, the index (and its answers) equal a serial run's."""
    from dsslic import bitstream, codecs
    from dsslic import semantic_search as search
    from dsslic.bitstream import Header, Layer, LayerKind
    from dsslic.cli import main
    from dsslic.distributed import ordered_map
    from dsslic.segmenters import labelspace

    d = tmp_path / "files"
    d.mkdir()
    for i in range(5):
        lab = np.zeros((32, 48), np.uint8)
        lab[: 4 + 5 * i] = 3
        jxl = codecs.get("jxl")
        hd = Header(48, 32, 8, b"\0\0\0\0", labelspace.CAMVID11.id, 11, layers=[
            Layer(LayerKind.SEG, jxl.id, jxl.encode(lab)),
            Layer(LayerKind.COMPACT, jxl.id, jxl.encode(np.full((4, 6, 3), 128, np.uint8)))])
        (d / f"f{i}.dsslic").write_bytes(bitstream.serialize(hd))
    (d / "broken.dsslic").write_bytes(b"DSLC not really")
    a = search.index(d, tmp_path / "a.sqlite")
    with ordered_map(scheduler=scheduler) as m:
        b = search.index(d, tmp_path / "b.sqlite", map_fn=m)
    assert (a.indexed, len(a.failed)) == (b.indexed, len(b.failed)) == (5, 1)
    q = {"has": ["road:0.3"]}
    assert search.search(tmp_path / "a.sqlite", **q) == search.search(tmp_path / "b.sqlite", **q)
    assert main(["index", str(d), "--db", str(tmp_path / "c.sqlite"), "--scheduler", scheduler, "--quiet"]) == 0
    assert search.search(tmp_path / "c.sqlite", **q) == search.search(tmp_path / "a.sqlite", **q)
