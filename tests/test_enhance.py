"""The learned enhancement layer: exact integer entropy parameters, real bitstreams, clean failures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import synthetic

from dsslic import bitstream
from dsslic.cli import main
from dsslic.codec import Codec, psnr
from dsslic.enhance import EnhanceConfig, EnhanceModel
from dsslic.errors import DsslicFormatError

TINY = EnhanceConfig(name="tiny", n=8, m=12, nz=4)


@pytest.fixture(scope="module")
def model() -> EnhanceModel:
    torch.manual_seed(0)
    m = EnhanceModel(TINY).eval()
    with torch.no_grad():  # make the final layer count: x~ should move away from x'
        m.g_s[-1].bias.fill_(0.01)
    return m


@pytest.fixture(scope="module")
def weights(model, tmp_path_factory):
    p = tmp_path_factory.mktemp("enh") / "enhance-tiny.safetensors"
    model.save(p)
    return p


def _inputs(h=70, w=90, seed=0):
    x = synthetic(h, w, seed)
    x_pred = np.clip(x.astype(int) + np.random.default_rng(seed).integers(-12, 13, x.shape), 0, 255).astype(np.uint8)
    c8 = x[::8, ::8].copy()
    return x, x_pred, c8


def test_round_trip_is_exact_and_deterministic(model):
    x, xp, c8 = _inputs()
    payload, x_hat = model.compress(x, xp, c8)
    assert model.compress(x, xp, c8)[0] == payload  # same bytes twice
    out = model.decompress(payload, xp, c8)
    assert out.shape == x.shape and out.dtype == np.uint8
    assert np.array_equal(out, x_hat)  # the decoder rebuilds exactly what the encoder saw


def test_integer_hyper_synthesis_is_exact_and_close_to_float(model):
    rng = np.random.default_rng(1)
    zq = rng.integers(-3, 4, (TINY.nz, 2, 3))
    c8 = rng.integers(0, 256, (3, 16, 24), dtype=np.uint8)
    threads = torch.get_num_threads()
    a = model.h_s.forward_int(zq, c8)
    torch.set_num_threads(1)
    try:
        b = model.h_s.forward_int(zq, c8)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(a, b) and np.array_equal(a, np.round(a))  # integers, independent of threading
    with torch.no_grad():
        f = model.h_s(torch.from_numpy(zq).float()[None], model.h_s.c_input(torch.from_numpy(c8)[None]))[0]
    assert np.abs(a / 256 - f.double().numpy()).max() < 0.05


def test_tables_are_valid_integer_distributions(model):
    for t in (model.y_table, model.z_table):
        assert t.dtype == torch.int32 and bool((t > 0).all())
        assert bool((t.sum(-1) == 2**16).all())
    assert bool((model.thresholds[1:] > model.thresholds[:-1]).all())


def test_save_load_keeps_identity(model, weights):
    m2 = EnhanceModel.load(weights)
    x, xp, c8 = _inputs(64, 64, 3)
    payload, _ = m2.compress(x, xp, c8)
    assert payload[:4] == m2.model_id
    assert np.array_equal(m2.decompress(payload, xp, c8), m2.compress(x, xp, c8)[1])


@pytest.mark.parametrize("cut", ["truncate", "wrong_id", "ones", "odd_length"])
def test_corrupted_learned_layer_fails_cleanly(model, cut):
    x, xp, c8 = _inputs()
    payload, _ = model.compress(x, xp, c8)
    bad = {"truncate": payload[:6], "wrong_id": b"\0\0\0\0" + payload[4:],
           "ones": payload[:4] + b"\xff" * (len(payload) - 4), "odd_length": payload + b"\x01"}[cut]
    must_fail = {"truncate": "32-bit words", "wrong_id": "enhancement model id", "odd_length": "32-bit words"}
    if cut in must_fail:  # detectable damage is detected, with the reason
        with pytest.raises(DsslicFormatError, match=must_fail[cut]):
            model.decompress(bad, xp, c8)
        return
    try:
        out = model.decompress(bad, xp, c8)
    except DsslicFormatError:
        return
    assert out.shape == x.shape and out.dtype == np.uint8  # undetectable damage still gives a right-sized image


def test_codec_learned_residual_bits_are_bytes(model, weights, tmp_path):
    x = synthetic(72, 100, 5)
    codec = Codec("plain", segmenter="none", enhance=model)
    res = codec.encode(x, residual="learned", verify=True)
    hd = bitstream.parse(res.data)
    assert res.bpp == 8 * len(res.data) / (100 * 72)
    assert hd.layer(bitstream.LayerKind.RESIDUAL).codec_id == 11
    assert abs(psnr(x, Codec("plain", enhance=str(weights)).decode(res.data)) - res.psnr) < 1e-9
    f = tmp_path / "a.dsslic"
    f.write_bytes(res.data)
    # the file names an enhancement model this installation lacks: exit 2, one line
    assert main(["decompress", str(f), "-o", str(tmp_path / "a.png")]) == 2
    assert not (tmp_path / "a.png").exists()
    assert main(["decompress", str(f), "-o", str(tmp_path / "a.png"), "--enhance", str(weights)]) == 0


def test_training_lowers_the_loss(tmp_path):
    from PIL import Image

    from dsslic.training.enhance import EnhanceTrainConfig, EnhanceTrainer

    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(synthetic(64, 64, 9)).save(d / "a.png")
    cfg = EnhanceTrainConfig(data=[str(d)], out=str(tmp_path / "run"), n=8, m=12, nz=4, crop=64, batch=2,
                             steps=30, lr=3e-3, device="cpu", lmbda=0.05)
    t = EnhanceTrainer(cfg)
    x = torch.from_numpy(synthetic(64, 64, 9)).permute(2, 0, 1)[None].float().repeat(2, 1, 1, 1) / 255
    torch.manual_seed(0)
    first = t.train_step(x)["loss"]
    for _ in range(25):
        last = t.train_step(x)["loss"]
    assert last < first
    t.save()
    t2 = EnhanceTrainer(cfg, resume=True)
    assert t2.step == t.step
    path = t2.export()
    assert EnhanceModel.load(path).model_id == t2.model.model_id
