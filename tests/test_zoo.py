"""The weights index (zoo.py): every kind of network found by name, path or id; one hash; one save/load."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from dsslic import enhance, models, segmenters, zoo
from dsslic.errors import DsslicFormatError, DsslicInputError
from dsslic.segmenters import labelspace
from dsslic.segmenters.segnetlite import NetSegmenter, SegNetLite

GOLDEN = Path(__file__).parent / "golden"

# Ids computed by main before zoo.py existed (e648c50); files carry them, so they must never change.
SHIPPED_MODEL_IDS = {"plain": "8c26be4a", "general": "baf43368", "street": "74cd3b15"}
# Segmenter fingerprints name the weights (eval caches key on them): they change when a segmenter is retrained
# (photo: 0f2e0d4); files name only the label space, whose ids above/below must never change.
SHIPPED_SEG_FINGERPRINTS = {"camvid11": "camvid11:393a79333d56", "photo": "photo:ab41e5fc9032"}  # torch's
NUMPY_SEG_FINGERPRINTS = {"camvid11": "camvid11:numpy:c03d02e67c26", "photo": "photo:numpy:47943ab6127c"}  # dsslic.npnet's
LABEL_SPACE_IDS = {"none": "59dcb10a", "camvid11": "23510de1", "photo": "15a4c185"}
GOLDEN_ENHANCE_ID = "ca445125"
# networks with deterministic weights (fill() below: no dependence on torch's initialisation)
FILLED_IDS = {"finenet": "75dda3da", "lean": "b9a4ce7b", "int-buffer": "641f4e4e", "enhance": "798f831c",
              "segmenter": "t:92bc542af508"}


def fill(m: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for i, (_, v) in enumerate(sorted(m.state_dict().items())):
            a = torch.arange(v.numel(), dtype=torch.float64).view(v.shape)
            v.copy_(((a * 0.37 + i) % 1.0 - 0.5) if v.is_floating_point() else (a + i) % 7)
    return m


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """An empty weights folder in place of the package's."""
    d = tmp_path / "weights"
    d.mkdir()
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", d)
    return d


def test_ids_of_shipped_weights_stay():
    for name, mid in SHIPPED_MODEL_IDS.items():
        if name == "plain" or name in zoo.names():
            assert models.load(name).model_id.hex() == mid, name
            assert zoo.name_for_id(bytes.fromhex(mid)) == name
    assert zoo.PLAIN_ID.hex() == SHIPPED_MODEL_IDS["plain"]
    for name, fp in SHIPPED_SEG_FINGERPRINTS.items():
        if name in zoo.names("segmenter"):
            assert NetSegmenter.load(zoo.find(name, "segmenter")).fingerprint == fp
            assert segmenters.get(name).fingerprint == NUMPY_SEG_FINGERPRINTS[name]  # what the CPU runs
    for name, sid in LABEL_SPACE_IDS.items():
        assert labelspace.by_name(name).id.hex() == sid
    assert enhance.EnhanceModel.load(GOLDEN / "enhance-golden.safetensors").model_id.hex() == GOLDEN_ENHANCE_ID
    assert models.DsslicModel.model_id.fget(type("M", (models.DsslicModel,), {"name": "foo"})()).hex() == "2c26b46b"


def test_ids_of_deterministic_weights_stay():
    for arch in ("finenet", "lean"):
        m = fill(models.LearnedModel(models.LearnedConfig(width=8, n_blocks=1, arch=arch)))
        assert m.model_id.hex() == FILLED_IDS[arch]
    m = models.LearnedModel(models.LearnedConfig(width=8, n_blocks=1, arch="lean"))
    m.register_buffer("extra", torch.arange(5))  # integer tensors hash as float32 in model ids
    assert fill(m).model_id.hex() == FILLED_IDS["int-buffer"]
    e = fill(enhance.EnhanceModel(enhance.EnhanceConfig(n=8, m=8, nz=4)))  # ... and as int64 in enhancement ids
    assert e.model_id.hex() == FILLED_IDS["enhance"]
    s = NetSegmenter("t", fill(SegNetLite(3, 8)), ["a", "b", "c"])  # bytes as held, module order
    assert s.fingerprint == FILLED_IDS["segmenter"]


def test_digest_is_the_same_for_numpy_and_torch():
    rng = np.random.default_rng(0)
    arrays = {"h": rng.normal(size=(3, 2)).astype(np.float16), "f": rng.normal(size=5).astype(np.float32),
              "i": np.arange(4, dtype=np.int32), "b": np.array([True, False])}
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    for kw in ({}, {"ints": "int64"}, {"floats": None, "ints": None, "sort": False, "size": 6}):
        assert zoo.digest("x", config={"a": 1}, tensors=arrays, **kw) == zoo.digest("x", config={"a": 1},
                                                                                   tensors=tensors, **kw)
    assert zoo.digest(tensors=arrays) != zoo.digest(tensors=arrays, ints="int64")  # the parameters matter


@pytest.mark.parametrize("kind", sorted(zoo.KINDS))
def test_every_kind_found_by_name_path_and_id(folder, kind):
    k = zoo.KINDS[kind]
    path = folder / f"{k.prefix}net{k.suffix}"
    zoo.save(path, {"w": torch.ones(2)}, {"name": "net"}, model_id="01020304")
    for other, ok in zoo.KINDS.items():  # the other kinds' files in the same folder are not this one
        if other != kind:
            zoo.save(folder / f"{ok.prefix}other-{other}{ok.suffix}", {"w": torch.ones(1)}, {}, model_id="05060708")
    assert zoo.names(kind) == ["net"]
    assert zoo.available(kind) == [*k.builtin, "net"]
    assert zoo.find("net", kind) == path
    assert zoo.find(str(path), kind) == path
    assert zoo.name_for_id(b"\1\2\3\4", kind) == "net"
    assert zoo.name_for_id(b"\5\6\7\x08", kind) is None
    assert zoo.find("missing", kind) is None


def test_adding_a_kind_is_one_entry(folder, monkeypatch):
    monkeypatch.setitem(zoo.KINDS, "restore", zoo.Kind(prefix="restore-"))
    for f in ("restore-a.safetensors", "m.safetensors", "s.seg.safetensors", "enhance-e.safetensors"):
        zoo.save(folder / f, {"w": torch.ones(1)}, {})
    assert {k: zoo.names(k) for k in zoo.KINDS} == {"model": ["m"], "segmenter": ["s"], "enhance": ["e"],
                                                   "restore": ["a"]}


def test_a_name_never_leaves_the_weights_folder(folder, tmp_path):
    zoo.save(tmp_path / "evil.safetensors", {"w": torch.ones(1)}, {})
    zoo.save(tmp_path / "evil.seg.safetensors", {"w": torch.ones(1)}, {})
    for kind in zoo.KINDS:
        for name in ("evil", "../evil", "..", "", "a\0b", "*"):
            assert zoo.find(name, kind) is None, (kind, name)
    assert zoo.find(str(tmp_path / "evil.safetensors")) == tmp_path / "evil.safetensors"  # a path is that path


def test_save_load_round_trip(tmp_path):
    sd = {"f": torch.tensor([0.1, -2.5]), "i": torch.arange(3, dtype=torch.int32), "k.x": torch.ones(2, 2)}
    held = zoo.stored(sd, keep32=("k.",))
    assert {k: v.dtype for k, v in held.items()} == {"f": torch.float16, "i": torch.int32, "k.x": torch.float32}
    zoo.save(tmp_path / "a.safetensors", held, {"name": "a", "n": [1, 2]}, {"steps": 3}, model_id="00ff00ff")
    tensors, config = zoo.load(tmp_path / "a.safetensors", "test")
    assert config == {"name": "a", "n": [1, 2]}
    assert {k: v.dtype for k, v in tensors.items()} == {"f": torch.float32, "i": torch.int32, "k.x": torch.float32}
    assert all(torch.equal(tensors[k], held[k].to(tensors[k].dtype)) for k in sd)
    with safe_open(str(tmp_path / "a.safetensors"), "np") as f:
        assert json.loads(f.metadata()["card"]) == {"steps": 3} and f.metadata()["model_id"] == "00ff00ff"
    save_file(held, str(tmp_path / "b.safetensors"))  # a file without config
    assert zoo.load(tmp_path / "b.safetensors")[1] == {}
    with pytest.raises(ValueError, match="no test config"):
        zoo.load(tmp_path / "b.safetensors", "test")


def test_a_file_that_is_not_weights_is_bad_input(tmp_path, capsys):
    from dsslic.cli import main

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"junk")
    with pytest.raises(DsslicInputError, match="not a safetensors"):
        zoo.load(junk)
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / "a.png")
    assert main(["compress", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.dsslic"), "--model", str(junk)]) == 2
    assert "not a safetensors" in capsys.readouterr().err and not (tmp_path / "a.dsslic").exists()


def test_models_save_their_id_and_load_by_it(folder):
    m = fill(models.LearnedModel(models.LearnedConfig(name="tiny", width=8, n_blocks=1, arch="lean")))
    m.save(folder / "tiny.safetensors")
    assert zoo.name_for_id(m.model_id) == "tiny"
    loaded = models.load("tiny")
    assert loaded.model_id == m.model_id and models.load(str(folder / "tiny.safetensors")).model_id == m.model_id
    with pytest.raises(DsslicInputError):
        models.load("tiny.seg")


def test_enhancement_models_by_name_path_and_id(folder):
    shutil.copy(GOLDEN / "enhance-golden.safetensors", folder / "enhance-old.safetensors")  # no stored id
    e = fill(enhance.EnhanceModel(enhance.EnhanceConfig(n=8, m=8, nz=4)))
    e.save(folder / "enhance-new.safetensors")
    assert enhance.shipped() == ["new", "old"]
    assert zoo.name_for_id(e.model_id, "enhance") == "new"
    assert enhance.load("new").model_id == e.model_id == enhance.for_id(e.model_id).model_id
    assert enhance.for_id(bytes.fromhex(GOLDEN_ENHANCE_ID)).model_id.hex() == GOLDEN_ENHANCE_ID  # loaded to compare
    assert enhance.load(str(folder / "enhance-old.safetensors")).model_id.hex() == GOLDEN_ENHANCE_ID
    with pytest.raises(DsslicFormatError):
        enhance.for_id(b"\0\0\0\0")


def test_segmenters_by_name_and_path(folder):
    net = fill(SegNetLite(3, 8))
    zoo.save(folder / "tiny.seg.safetensors", zoo.stored(net.state_dict()), {"name": "tiny", "width": 8,
                                                                             "class_names": ["a", "b", "c"]})
    assert segmenters.available() == ["none", "tiny"]
    by_name, by_path = segmenters.get("tiny"), segmenters.get(str(folder / "tiny.seg.safetensors"))
    assert by_name.fingerprint == by_path.fingerprint and by_name.class_names == ["a", "b", "c"]
    with pytest.raises(DsslicInputError):
        segmenters.get("../tiny")


def test_lookup_is_torch_free():
    code = ("import sys; from dsslic import zoo; zoo.ids(); zoo.ids('enhance'); zoo.find('general'); "
            "[zoo.names(k) for k in zoo.KINDS]; print('torch' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "False", p.stderr
