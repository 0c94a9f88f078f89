"""dsslic index / dsslic search: files built from label maps directly (no network), so these tests are fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dsslic import bitstream, codecs
from dsslic import semantic_search as search
from dsslic.bitstream import Header, Layer, LayerKind
from dsslic.segmenters.labelspace import CAMVID11

SKY, ROAD, CAR, PED = (CAMVID11.class_names.index(n) for n in ("sky", "road", "car", "pedestrian"))


def dsslic_file(labels: np.ndarray, space=CAMVID11, model_id: bytes = b"\0\0\0\0") -> bytes:
    """A valid 2-layer .dsslic file whose base layer is ``labels`` (the compact layer is a flat grey image)."""
    h, w = labels.shape
    jxl = codecs.get("jxl")
    hd = Header(w, h, 8, model_id, space.id, space.num_labels, layers=[
        Layer(LayerKind.SEG, jxl.id, jxl.encode(np.ascontiguousarray(labels.astype(np.uint8)))),
        Layer(LayerKind.COMPACT, jxl.id, jxl.encode(np.full((-(-h // 8), -(-w // 8), 3), 128, np.uint8)))])
    return bitstream.serialize(hd)


def scene(top: int, bottom: int, box: int | None = None, frac: float = 0.0, h: int = 32, w: int = 48) -> np.ndarray:
    """Class ``top`` above class ``bottom``; optionally a ``box`` block covering ``frac`` of the image, bottom left."""
    s = np.full((h, w), bottom, np.uint8)
    s[: h // 2] = top
    if box is not None and frac > 0:
        bw = int(round(frac * h * w / (h // 2)))
        s[h // 2 :, :bw] = box
    return s


@pytest.fixture()
def collection(tmp_path):
    d = tmp_path / "files"
    (d / "sub").mkdir(parents=True)
    files = {
        "street_car.dsslic": scene(SKY, ROAD, CAR, 0.25),
        "street_ped.dsslic": scene(SKY, ROAD, PED, 0.1),
        "street_small_car.dsslic": scene(SKY, ROAD, CAR, 0.02),
        "sub/road_only.dsslic": scene(ROAD, ROAD),
        "sub/upside_down.dsslic": scene(ROAD, SKY),
    }
    for name, labels in files.items():
        (d / name).write_bytes(dsslic_file(labels))
    return d


def names(results: list[dict]) -> list[str]:
    return [os.path.basename(r["path"]) for r in results]


def test_layout_shares_and_grid():
    s = scene(SKY, ROAD, CAR, 0.25)
    shares, grid = search.layout(s, 11)
    assert shares.sum() == pytest.approx(1) and shares[CAR] == pytest.approx(0.25) and shares[SKY] == pytest.approx(0.5)
    assert grid.shape == (16, 11) and np.allclose(grid.sum(1), 1)
    assert grid[0, SKY] == 1 and grid[15, ROAD] == 1 and grid[12, CAR] == 1  # top-left sky, bottom-left car


@pytest.mark.parametrize("h, w, f", [(512, 768, 4), (481, 321, 3), (7, 5, 2), (3, 3, 1)])
def test_layout_of_a_stored_map_equals_the_upscaled_one(h, w, f):
    from dsslic.codec import _upscale_labels

    s = np.random.default_rng(h).integers(0, 11, (-(-h // f), -(-w // f))).astype(np.uint8)
    for a, b in zip(search.layout(_upscale_labels(s, f, h, w), 11), search.layout(s, 11, f, h, w)):
        assert np.array_equal(a, b)


def test_index_folder_with_corrupt_file_then_queries(collection, tmp_path):
    bad = collection / "sub" / "broken.dsslic"
    good = (collection / "street_car.dsslic").read_bytes()
    bad.write_bytes(good[:-10])  # truncated
    errors = []
    st = search.index([collection], tmp_path / "i.sqlite", on_error=lambda p, why: errors.append((p, why)))
    assert (st.indexed, st.unchanged, st.removed, len(st.failed)) == (5, 0, 0, 1) and st.ok
    assert errors[0][0] == str(bad) and "truncated" in errors[0][1]
    db = tmp_path / "i.sqlite"
    assert sorted(names(search.search(db, has=["car"]))) == ["street_car.dsslic", "street_small_car.dsslic"]
    assert names(search.search(db, has=["car:0.05"])) == ["street_car.dsslic"]
    assert names(search.search(db, has=["car:0.3"])) == []
    assert names(search.search(db, has=["sky", "pedestrian"])) == ["street_ped.dsslic"]
    assert sorted(names(search.search(db, has=["road"], not_=["sky"]))) == ["road_only.dsslic"]
    assert sorted(names(search.search(db, has=["sky"], not_=["car:0.05", "pedestrian"]))) == [
        "street_small_car.dsslic", "upside_down.dsslic"]
    # --has ranks by the summed area of its classes; --top keeps the best K
    assert names(search.search(db, has=["car"], top=1)) == ["street_car.dsslic"]
    assert len(search.search(db)) == 5
    res = search.search(db, has=["car:0.05"])
    assert res[0]["score"] == pytest.approx(0.25, abs=1e-6)
    assert res[0]["areas"] == pytest.approx({"sky": 0.5, "road": 0.25, "car": 0.25})


def test_index_order_and_packed_paths_agree(collection, tmp_path):
    db = tmp_path / "i.sqlite"
    search.index(collection, db)
    # one class with --top reads the areas index; without --top (or with other terms) the packed shares
    for has in (["road"], ["sky:0.4"], ["car:0.02"]):
        assert search.search(db, has=has, top=2) == search.search(db, has=has)[:2]


def test_interrupted_index_is_repacked(collection, tmp_path):
    import sqlite3

    db = tmp_path / "i.sqlite"
    search.index(collection, db)
    con = sqlite3.connect(db)  # what a run killed after a commit leaves: new rows, stale packs
    con.execute("DELETE FROM packs")
    con.execute("UPDATE meta SET value='stale' WHERE key='packs'")
    con.commit()
    con.close()
    assert sorted(names(search.search(db, has=["sky"], not_=["car"]))) == ["street_ped.dsslic", "upside_down.dsslic"]


def test_like_ranks_by_layout(collection, tmp_path):
    db = tmp_path / "i.sqlite"
    search.index(collection, db)
    res = search.search(db, like=collection / "street_car.dsslic")
    assert "street_car.dsslic" not in names(res)  # the query itself is left out
    assert names(res)[:2] == ["street_small_car.dsslic", "street_ped.dsslic"]
    assert names(res)[-1] == "upside_down.dsslic" and res[-1]["score"] == pytest.approx(0)
    assert all(a["score"] >= b["score"] for a, b in zip(res, res[1:]))
    assert names(search.search(db, like=collection / "street_car.dsslic", has=["pedestrian"])) == ["street_ped.dsslic"]
    # a query file outside the index, identical in layout to one in it: that one scores 1
    q = tmp_path / "q.dsslic"
    q.write_bytes(dsslic_file(scene(ROAD, SKY)))
    top = search.search(db, like=q, top=1)
    assert names(top) == ["upside_down.dsslic"] and top[0]["score"] == 1


def test_like_reranks_only_a_shortlist(collection, tmp_path, monkeypatch):
    db = tmp_path / "i.sqlite"
    search.index(collection, db)
    monkeypatch.setattr(search, "RERANK", 1)  # histograms pick the shortlist; grids order it
    assert names(search.search(db, like=collection / "street_car.dsslic", top=1)) == ["street_small_car.dsslic"]


def test_incremental_reindex(collection, tmp_path):
    db = tmp_path / "i.sqlite"
    assert search.index(collection, db).indexed == 5
    st = search.index(collection, db)
    assert (st.indexed, st.unchanged, st.removed) == (0, 5, 0)
    # a changed file is read again (its classes change), a removed one is dropped, a new one is added
    changed = collection / "sub" / "road_only.dsslic"
    changed.write_bytes(dsslic_file(scene(ROAD, ROAD, CAR, 0.4)))
    os.utime(changed, ns=(1, 1))
    (collection / "street_ped.dsslic").unlink()
    (collection / "new.dsslic").write_bytes(dsslic_file(scene(SKY, SKY)))
    st = search.index(collection, db)
    assert (st.indexed, st.unchanged, st.removed) == (2, 3, 1)
    assert names(search.search(db, has=["pedestrian"])) == []
    assert "road_only.dsslic" in names(search.search(db, has=["car:0.3"]))
    assert len(search.search(db)) == 5
    # same size and mtime but another header (another model id): the header CRC catches it
    f = collection / "new.dsslic"
    st0 = f.stat()
    f.write_bytes(dsslic_file(scene(SKY, SKY), model_id=b"abcd"))
    os.utime(f, ns=(st0.st_atime_ns, st0.st_mtime_ns))
    assert f.stat().st_size == st0.st_size
    assert search.index(collection, db).indexed == 1


def test_corrupted_after_indexing_is_dropped(collection, tmp_path):
    db = tmp_path / "i.sqlite"
    search.index(collection, db)
    f = collection / "street_car.dsslic"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF  # payload CRC mismatch
    f.write_bytes(bytes(data))
    st = search.index(collection, db)
    assert len(st.failed) == 1 and "checksum" in st.failed[0][1]
    assert names(search.search(db, has=["car:0.05"])) == []


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "dsslic.cli", *args], capture_output=True, text=True, timeout=120,
                          env=env)


def test_cli_index_and_search(collection, tmp_path):
    db = str(tmp_path / "i.sqlite")
    (collection / "junk.dsslic").write_bytes(b"DSLC\x01garbage")
    r = run("index", str(collection), "--db", db)
    assert r.returncode == 0, r.stderr
    assert "junk.dsslic" in r.stderr and "5 indexed" in r.stderr and "1 failed" in r.stderr
    r = run("search", "--db", db, "--has", "car:0.05")
    assert r.returncode == 0 and r.stdout == str(collection / "street_car.dsslic") + "\n"
    r = run("search", "--db", db, "--has", "sky", "--not", "car", "--top", "1", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and len(out) == 1 and set(out[0]) == {"path", "score", "areas"}
    r = run("search", "--db", db, "--like", str(collection / "street_car.dsslic"), "--top", "2")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2


@pytest.mark.parametrize("args, msg", [
    (["--has", "unicorn"], "unknown class 'unicorn'; known: sky, building"),
    (["--not", "unicorn"], "unknown class"),
    (["--has", "car:2"], "fraction of the image"),
    (["--has", "car:lots"], "must be a number"),
    (["--top", "0"], "--top"),
    (["--like", "/nonexistent.dsslic"], "no such file"),
])
def test_cli_search_bad_input_exit_2(collection, tmp_path, args, msg):
    db = str(tmp_path / "i.sqlite")
    search.index(collection, db)
    r = run("search", "--db", db, *args)
    assert r.returncode == 2 and r.stdout == "" and msg in r.stderr and len(r.stderr.splitlines()) == 1


def test_cli_nothing_indexable_exit_2(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.dsslic").write_bytes(b"not a dsslic file")
    r = run("index", str(d), "--db", str(tmp_path / "i.sqlite"), "-q")
    assert r.returncode == 2 and "nothing could be indexed" in r.stderr and "a.dsslic" in r.stderr
    r = run("search", "--db", str(tmp_path / "missing.sqlite"), "--has", "sky")
    assert r.returncode == 2 and "no such index" in r.stderr
    (tmp_path / "notdb.sqlite").write_bytes(b"hello" * 100)
    r = run("search", "--db", str(tmp_path / "notdb.sqlite"))
    assert r.returncode == 2 and "not a dsslic index" in r.stderr


def test_index_and_search_do_not_import_torch(collection, tmp_path):
    code = (f"import sys, dsslic; dsslic.index([{str(collection)!r}], {str(tmp_path / 'i.sqlite')!r}); "
            f"r = dsslic.search({str(tmp_path / 'i.sqlite')!r}, has=['car'], like={str(collection / 'street_car.dsslic')!r}); "
            "print(len(r), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["1", "False"], out.stderr


def test_parallel_and_custom_map_agree(collection, tmp_path):
    for i in range(70):  # above the pool's threshold
        (collection / f"copy{i}.dsslic").write_bytes((collection / "street_car.dsslic").read_bytes())
    a = search.index(collection, tmp_path / "a.sqlite", jobs=2)
    calls = []
    b = search.index(collection, tmp_path / "b.sqlite", map_fn=lambda fn, it: (calls.append(1), map(fn, it))[1])
    assert a.indexed == b.indexed == 75 and calls == [1]
    assert names(search.search(tmp_path / "a.sqlite", has=["car:0.2"])) == names(
        search.search(tmp_path / "b.sqlite", has=["car:0.2"]))


def test_like_with_an_image_segments_it(tmp_path):
    pytest.importorskip("torch")
    from conftest import synthetic

    from dsslic import segmenters
    from dsslic.imageio import save_image

    img = synthetic(48, 64)
    labels = segmenters.get("camvid11").segment(img)
    d = tmp_path / "d"
    d.mkdir()
    (d / "same.dsslic").write_bytes(dsslic_file(labels))
    (d / "other.dsslic").write_bytes(dsslic_file(np.full_like(labels, (int(labels.max()) + 1) % 11)))
    search.index(d, tmp_path / "i.sqlite")
    save_image(tmp_path / "q.png", img)
    res = search.search(tmp_path / "i.sqlite", like=tmp_path / "q.png")  # the segmenter is the index's space's
    assert names(res)[0] == "same.dsslic" and res[0]["score"] == 1
