"""The numpy runtime (dsslic.npnet) against the torch networks it replaces at inference, and its determinism."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import synthetic

from dsslic import finenet, npnet, zoo
from dsslic.models import LearnedConfig, LearnedModel


def _np(t: torch.Tensor) -> np.ndarray:
    return t[0].numpy()


def test_interpolation_matches_torch() -> None:
    x = torch.rand(1, 4, 13, 21, generator=torch.Generator().manual_seed(0))
    xn = _np(x)
    for mode in ("bilinear", "bicubic"):
        ref = F.interpolate(x, scale_factor=8, mode=mode, align_corners=False)
        assert np.abs(npnet.resize(xn, (104, 168), mode, scale=8) - _np(ref)).max() < 1e-5, mode
    for size in ((7, 9), (13, 21), (30, 50), (5, 40)):  # down, same, up, mixed
        ref = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        assert np.abs(npnet.resize(xn, size) - _np(ref)).max() < 1e-5, size
        ref = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        assert np.abs(npnet.resize(xn, size, "antialias") - _np(ref)).max() < 1e-5, size


def test_convolution_matches_torch_and_bands_do_not_change_it(monkeypatch) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 5, 19, 23, generator=g)
    w, b = torch.randn(7, 5, 3, 3, generator=g), torch.randn(7, generator=g)
    xn = _np(x)
    for stride, dil, mode in ((1, 1, "edge"), (2, 1, "constant"), (1, 2, "constant"), (2, 4, "constant")):
        tm = "replicate" if mode == "edge" else "constant"
        ref = F.conv2d(F.pad(x, (dil,) * 4, mode=tm), w, b, stride=stride, dilation=dil)
        conv = npnet.Conv.from_torch(w.numpy(), b.numpy(), stride=stride, dilation=dil, pad=dil, mode=mode)
        whole = conv(xn)
        assert np.abs(whole - _np(ref)).max() < 1e-4, (stride, dil, mode)
        monkeypatch.setattr(npnet, "BAND_BYTES", 1)  # one output row per band: the same numbers within rounding
        np.testing.assert_allclose(conv(xn), whole, rtol=0, atol=1e-5)
        monkeypatch.undo()
    ps = torch.nn.PixelShuffle(2)(x[:, :4])
    np.testing.assert_array_equal(npnet.pixel_shuffle(xn[:4], 2), _np(ps))


def _lean(tmp_path: Path, up_mode: str, seed: int = 0, num_labels: int = 0) -> Path:
    """A tiny random-weight lean model saved as the trainer saves one (float16 weights, config, model id)."""
    torch.manual_seed(seed)
    m = LearnedModel(LearnedConfig(name="tiny-lean", arch="lean", compact="area", width=10, n_blocks=2,
                                   up_mode=up_mode, num_labels=num_labels,
                                   segmenter="photo" if num_labels else "none"))
    for p in m.parameters():
        p.data.normal_(0, 0.15)
    path = tmp_path / f"lean-{up_mode}-{num_labels}.safetensors"
    m.save(path)
    return path


@pytest.mark.parametrize("up_mode,num_labels", [("bicubic", 0), ("bilinear", 0), ("bicubic", 5)])
def test_lean_recnet_matches_torch(tmp_path, up_mode, num_labels) -> None:
    """noSeg and withSeg (class shares per 8x8 block beside c; label 6 is void for 5 labels)."""
    path = _lean(tmp_path, up_mode, num_labels=num_labels)
    tm, nm = LearnedModel.load(path), npnet.LeanRecNet.load(path)
    assert nm.model_id == tm.model_id and nm.alpha == tm.alpha and nm.min_size == tm.min_size
    assert (nm.num_labels, nm.segmenter, nm.full_map) == (tm.num_labels, tm.segmenter, tm.full_map)
    x = synthetic(96, 136)
    c8 = nm.compact(x)
    s = np.random.default_rng(1).integers(0, 7, (96, 136)).astype(np.uint8) if num_labels else None
    st = None if s is None else torch.from_numpy(s.astype(np.int64))[None]
    with torch.inference_mode():
        xt = torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255
        ct = (tm.compact(xt, None).clamp(0, 1) * 255).round()
        assert np.abs(_np(ct).transpose(1, 2, 0).astype(int) - c8).max() <= 1  # ties of the block mean may round either way
        cf = torch.from_numpy(c8).permute(2, 0, 1)[None].float() / 255
        fine = _np(tm.recnet.finenet(st, cf * 2 - 1))
        ref = (_np(tm.reconstruct(st, cf)) * 255).round().astype(int).transpose(1, 2, 0)
    inputs = _np(cf) * 2 - 1
    if num_labels:
        shares = nm.label_shares(s)
        np.testing.assert_array_equal(shares, _np(finenet.label_shares(st, num_labels, 8)))
        inputs = np.concatenate([inputs, shares])
        with pytest.raises(ValueError, match="label map"):
            nm.reconstruct(c8)
    assert np.abs(nm.fine(inputs) - fine).max() < 1e-4
    d = np.abs(nm.reconstruct(c8, s).astype(int) - ref)
    assert d.max() <= 1 and (d > 0).mean() < 1e-3


def test_lean_refuses_what_it_does_not_run(tmp_path) -> None:
    assert not npnet.supports({"arch": "finenet", "compact": "area"})
    assert not npnet.supports({"arch": "lean", "compact": "compnet"})
    assert npnet.supports({"arch": "lean", "compact": "area"})
    with pytest.raises(ValueError, match="lean"):
        npnet.LeanRecNet({}, {"arch": "finenet"}, b"\0" * 4)


@pytest.mark.parametrize("name", ["photo", "camvid11"])
def test_shipped_segmenters_agree_with_torch(name) -> None:
    from dsslic.segmenters.segnetlite import NetSegmenter

    path = zoo.find(name, "segmenter")
    if path is None:
        pytest.skip(f"{name} not shipped")
    ref = NetSegmenter.load(path)
    net = npnet.SegNetLite(npnet.read_safetensors(path)[0])
    x = synthetic(180, 250, seed=3)
    with torch.inference_mode():  # the network alone, then the whole segment() with resizing to the work size
        xt = torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255
        assert np.abs(net(_np(xt)) - _np(ref.net(xt))).max() < 1e-3
    for work, flip in ((ref.work_size, False), (120, True)):
        ref.work_size, ref.flip = work, flip
        labels = npnet.segment(net, x, work, flip, rows=7)
        assert labels.dtype == np.uint8 and labels.shape == x.shape[:2]
        assert (labels == ref.segment(x)).mean() >= 0.999, (work, flip)



def test_sampled_map_is_the_full_map_at_the_stored_samples() -> None:
    """The codec asks the segmenter only for the samples it stores: they must be what the full map holds there,
    taken where ``np.pad(mode="symmetric")`` then ``[f//2::f]`` took them before (so files do not change)."""
    from dsslic.codec import stored_samples
    from dsslic.segmenters.segnetlite_np import NumpySegmenter
    from dsslic.tiling import pad_to

    for n in range(1, 70):
        for f in (1, 2, 3, 4, 8, 16, 32, 64, 128):
            ref = pad_to(np.arange(n)[:, None], f)[f // 2:: f, 0]
            assert (stored_samples(n, f) == ref).all(), (n, f)
    path = zoo.find("photo", "segmenter")
    if path is None:
        pytest.skip("photo not shipped")
    seg = NumpySegmenter.load(path)
    x = synthetic(150, 203, seed=5)
    full = seg.segment(x)
    sample = seg.sampler(x)
    for f in (1, 4, 16):
        rows, cols = stored_samples(150, f), stored_samples(203, f)
        assert (sample(rows, cols) == full[np.ix_(rows, cols)]).all(), f


_HASH = """
import hashlib, sys
import numpy as np
from dsslic import npnet
nm = npnet.LeanRecNet.load(sys.argv[1])
rng = np.random.default_rng(0)
h = hashlib.sha256()
for shape in ((48, 64, 3), (40, 33, 3)):
    c8 = rng.integers(0, 256, shape, dtype=np.uint8)
    h.update(nm.reconstruct(c8).tobytes())
    h.update(nm.fine(c8.transpose(2, 0, 1).astype(np.float32) / 255).tobytes())
# at a size where OpenBLAS splits products between threads (it does not below about 64x64): a random filter
from dsslic.restoration import RestoreConfig, RestoreFilter
cfg = RestoreConfig(width=16, depth=1)
t = {"embed.weight": rng.normal(0, 1, (12, 4))}
for key, o, c in (("head", 16, 29), ("body.0", 16, 16), ("tail", 12, 16)):
    t[f"{key}.weight"], t[f"{key}.bias"] = rng.normal(0, 0.1, (o, c, 3, 3)), rng.normal(0, 0.1, o)
xt = rng.integers(0, 256, (256, 384, 3), dtype=np.uint8)
f = RestoreFilter({k: v.astype(np.float32) for k, v in t.items()}, cfg, b"0000")
h.update(f(xt, xt[::-1], rng.integers(0, 11, (256, 384)), 30.0).tobytes())
print(h.hexdigest(), "torch" in sys.modules)
"""


def test_same_numbers_whatever_the_thread_count_and_no_torch(tmp_path) -> None:
    """x' is computed by both sides of a file: BLAS threads must not change a single float (nor torch be needed)."""
    path = _lean(tmp_path, "bicubic")
    outs = set()
    for n in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}
        p = subprocess.run([sys.executable, "-c", _HASH, str(path)], capture_output=True, text=True, env=env,
                           timeout=120, check=True)
        outs.add(p.stdout.strip())
    assert len(outs) == 1 and outs.pop().endswith("False")


# ---------------------------------------------------------------------------------------------------------------
# The codec runs a lean model in numpy, on both sides of a file.

def test_codec_runs_lean_models_in_numpy(tmp_path) -> None:
    from dsslic.codec import Codec

    path = _lean(tmp_path, "bicubic")
    x = synthetic(200, 264, seed=5)  # larger than a 64-px tile and its 128-px overlap: real tiles
    by_path = Codec(str(path), segmenter="none")
    by_object = Codec(LearnedModel.load(path), segmenter="none", tile=64, overlap=128)  # converted; in tiles
    assert isinstance(by_path.model, npnet.LeanRecNet) and by_path.device is None
    assert isinstance(by_object.model, npnet.LeanRecNet)
    res = by_path.encode(x, quality=30, verify=True)  # the decoder's x~ is the encoder's
    assert by_object.encode(x, quality=30).data == res.data
    assert np.array_equal(Codec(str(path)).decode(res.data), by_object.decode(res.data))



def test_codec_runs_withseg_lean_models_in_numpy(tmp_path) -> None:
    """A lean model that reads the map: numpy on both sides, the map stored at a reduced factor (class shares per
    8x8 block need no more), the same x' in tiles as whole."""
    from dsslic import bitstream
    from dsslic.codec import Codec

    if zoo.find("photo", "segmenter") is None:
        pytest.skip("photo not shipped")
    path = _lean(tmp_path, "bicubic", num_labels=11)
    x = synthetic(200, 264, seed=6)  # larger than a tile and its overlap: the tiles differ from the whole
    x[:100] = x[:100] // 4 + np.array([82, 120, 161], np.uint8)  # a sky over grass: a map of several classes
    x[100:] = x[100:] // 4 + np.array([37, 90, 30], np.uint8)
    whole = Codec(str(path))
    assert isinstance(whole.model, npnet.LeanRecNet) and whole.model.num_labels == 11
    assert whole.segmenter.name == "photo"  # the model's own segmenter by default
    assert len(np.unique(whole.segmenter.segment(x))) > 1
    res = whole.encode(x, quality=30, verify=True)  # the decoder's x~ is the encoder's
    assert bitstream.parse(res.data).seg_factor in (4, 8, 16)  # not the full map a FineNet reading pixels needs
    tiles = Codec(LearnedModel.load(path), tile=64, overlap=128)  # crops of 192 rows or columns, not all
    assert tiles.encode(x, quality=30).data == res.data
    assert np.array_equal(tiles.decode(res.data, "coarse"), whole.decode(res.data, "coarse"))


_CLI = ("import sys; from dsslic.cli import main; rc = main(sys.argv[1:]); "
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH', file=sys.stderr); sys.exit(rc)")


def _cli(*args: str, threads: str = "1") -> bool:
    """Run the CLI in a fresh interpreter with that many BLAS threads; whether it imported torch."""
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    p = subprocess.run([sys.executable, "-c", _CLI, *args], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stderr.strip().splitlines()[-1] == "TORCH"


def test_lean_cli_round_trip_is_torch_free_and_thread_independent(tmp_path) -> None:
    from PIL import Image

    from dsslic.codec import Codec

    path = _lean(tmp_path, "bicubic")
    Image.fromarray(synthetic(64, 96, seed=6)).save(tmp_path / "x.png")
    f = tmp_path / "x.dsslic"
    assert not _cli("compress", str(tmp_path / "x.png"), "-o", str(f), "--model", str(path), "--quiet")
    outs = []
    for n in ("1", "2"):
        out = tmp_path / f"y{n}.png"
        assert not _cli("decompress", str(f), "-o", str(out), "--model", str(path), threads=n)
        outs.append(np.asarray(Image.open(out)))
    assert np.array_equal(outs[0], outs[1])
    assert np.array_equal(outs[0], Codec(str(path)).decode(f.read_bytes()))


def test_default_model_round_trip_is_torch_free(tmp_path) -> None:
    """The shipped default (lean RecNet, its restoration filter, the photo segmenter) runs without torch: a
    one-image round trip pays no torch import, and the decoder's image is the one the encoder measured."""
    from PIL import Image

    from dsslic import zoo
    from dsslic.codec import Codec, psnr

    if zoo.default_model() != "lean":
        pytest.skip("the default model is not the lean one in this installation")
    x = synthetic(96, 128, seed=8)
    Image.fromarray(x).save(tmp_path / "x.png")
    f, out = tmp_path / "x.dsslic", tmp_path / "y.png"
    assert not _cli("compress", str(tmp_path / "x.png"), "-o", str(f), "--quiet")
    assert not _cli("decompress", str(f), "-o", str(out))
    y = np.asarray(Image.open(out))
    res = Codec().encode(x, quality=Codec().residual_coder("hevc").check_quality(None))
    assert res.data == f.read_bytes() and abs(psnr(x, y) - res.psnr) < 1e-9
