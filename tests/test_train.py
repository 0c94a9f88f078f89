"""Training: every loss configuration steps and learns; resume is exact; --init starts from weights; exports load
into the codec."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import synthetic
from PIL import Image

from dsslic.training.data import batch_at, load_images
from dsslic.training.recnet import TrainConfig, Trainer, lr_at


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    lab = tmp_path_factory.mktemp("labels")
    for i in range(3):
        x = synthetic(48, 64, seed=20 + i)
        Image.fromarray(x).save(d / f"im{i}.png")
        Image.fromarray((x[..., 2] > 128).astype(np.uint8) + (x[..., 0] > 200).astype(np.uint8)).save(lab / f"im{i}.png")
    return d, lab


def cfg_for(data_dir, tmp_path, **kw) -> TrainConfig:
    d, lab = data_dir
    base = dict(data=[str(d)], out=str(tmp_path / "run"), preset="small", width=4, n_blocks=1, steps=100,
                batch=2, crop=32, device="cpu", lr=1e-3, gan=False, log_every=1, ckpt_every=1000)
    if kw.pop("seg", False):
        base |= dict(labels=[str(lab)], num_labels=3)
    return TrainConfig(**(base | kw))


def recon_loss(t: Trainer, x, s) -> float:
    from dsslic.losses import l1_loss

    with torch.no_grad():
        _, x_hat = t.G(x, s, True)
    return float(l1_loss(x_hat, x))


@pytest.fixture(scope="module")
def vgg_path(tmp_path_factory):
    from dsslic.losses import vgg19_features

    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in vgg19_features().state_dict().items()}, p)  # torchvision's layout
    return str(p)


@pytest.mark.parametrize("name,kw", [
    ("noSeg L1+SSIM", {}),
    ("withSeg + GAN + FM", dict(seg=True, gan=True)),
    ("withSeg + GAN + FM + VGG", dict(seg=True, gan=True, vgg="VGG")),
    ("synth", dict(gan=True, synth=True, vgg="VGG")),
    ("upComp", dict(finenet=False)),
    ("anchored c, strong aug", dict(compact="area", augment="strong", up_weight=1.0)),
    ("paper norm", dict(norm="instance")),
])
def test_each_configuration_learns(data_dir, tmp_path, vgg_path, name, kw):
    if kw.get("vgg") == "VGG":
        kw["vgg"] = vgg_path
    cfg = cfg_for(data_dir, tmp_path, **kw)
    imgs, labels = load_images(cfg)
    t = Trainer(cfg)
    x, s = batch_at(0, 0, cfg, imgs, labels)
    before = recon_loss(t, x, s)
    for _ in range(8):
        logs = t.train_step(x, s)
    assert np.isfinite(float(logs["loss_g"]))
    assert recon_loss(t, x, s) < before, name
    if cfg.gan:
        assert "d" in logs and "gan_g" in logs
    if cfg.vgg:
        assert "vgg" in logs


def test_resume_is_exact(data_dir, tmp_path):
    cfg_a = cfg_for(data_dir, tmp_path / "a", steps=4, gan=True, seg=True, ckpt_every=2)
    imgs, labels = load_images(cfg_a)
    torch.manual_seed(123)
    ta = Trainer(cfg_a)
    ta.fit(imgs, labels, progress=False)

    cfg_b = cfg_for(data_dir, tmp_path / "b", steps=4, gan=True, seg=True, ckpt_every=2)
    tb = Trainer(cfg_b)
    for _ in range(2):
        tb.train_step(*batch_at(tb.step, 0, cfg_b, imgs, labels))
    tb.clock.before = 1000.0  # as if the first session had trained for 1000 s
    tb.save()
    del tb
    torch.manual_seed(999)  # resume must not depend on the process's RNG state
    tc = Trainer(cfg_b, resume=True)
    assert tc.step == 2
    assert tc.clock() >= 1000.0  # the clock continues across resumes: model cards report total time
    tc.fit(imgs, labels, progress=False)
    for (k, a), (_, b) in zip(ta.G.state_dict().items(), tc.G.state_dict().items()):
        assert torch.equal(a, b), k
    log = (tmp_path / "b" / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 3  # header + steps 3, 4
    assert float(log[1].split(",")[1]) >= 1000.0  # time_s counts the earlier session


def test_schedule():
    cfg = TrainConfig(data=[], out="", steps=300, lr=2e-4)
    assert lr_at(0, cfg) == lr_at(199, cfg) == 2e-4
    assert lr_at(250, cfg) == pytest.approx(1e-4)
    assert lr_at(300, cfg) == 0


def test_export_loads_into_codec(data_dir, tmp_path):
    from dsslic.codec import Codec, psnr
    from dsslic.models import LearnedModel
    from dsslic.segmenters import FileSegmenter

    cfg = cfg_for(data_dir, tmp_path, steps=2, seg=True)
    imgs, labels = load_images(cfg)
    t = Trainer(cfg)
    t.fit(imgs, labels, progress=False)
    path = t.export({"note": "test"})
    m = LearnedModel.load(path)
    assert m.config.num_labels == 3 and m.config.width == 4
    x = synthetic(48, 64, seed=20)
    lab = np.asarray(Image.open(data_dir[1] / "im0.png"))
    seg = FileSegmenter(lab, ["a", "b", "c"])
    data = Codec(m, segmenter=seg).compress(x, quality=25)
    y = Codec(LearnedModel.load(path), segmenter=seg).decompress(data)
    assert psnr(x, y) > 30


def test_cli_train_bad_input(tmp_path, capsys):
    from dsslic.cli import main

    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), "--device", "cpu"]) == 2
    assert "no such directory" in capsys.readouterr().err
    lean = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--device", "cpu", "--arch", "lean",
            "--compact", "area", "--lossy-c", "hevc:30", "--segmenter", "photo"]
    assert main([*lean, "--num-labels", "5"]) == 2  # photo's other 6 classes would be void
    assert "--num-labels 5" in capsys.readouterr().err


def test_checkpoint_is_atomic_and_log_appends(tmp_path):
    from dsslic.training.loop import CsvLog, load_checkpoint, save_checkpoint

    assert load_checkpoint(tmp_path, "cpu") is None
    save_checkpoint(tmp_path, {"w": torch.ones(2), "step": 3})
    assert load_checkpoint(tmp_path, "cpu")["step"] == 3
    assert not list(tmp_path.glob("*.tmp"))
    for row in (1, 2):
        with CsvLog(tmp_path / "log.csv", ["step", "loss"]) as log:
            log.write({"step": row, "loss": 0.5, "ignored": 1})
    assert (tmp_path / "log.csv").read_text().splitlines() == ["step,loss", "1,0.5", "2,0.5"]


@pytest.mark.parametrize("cmd", [["train"], ["train-segnet", "--labels", "."], ["train-enhance"]])
def test_trainers_refuse_zero_counts(cmd, data_dir, tmp_path, capsys):
    from dsslic.cli import main

    d, _ = data_dir
    out = tmp_path / "run"
    assert main([*cmd, "--data", str(d), "--out", str(out), "--ckpt-every", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "dsslic: error: --ckpt-every must be at least 1, got 0"
    assert not out.exists()


def test_lean_recnet_learns_from_decoded_lossy_c(data_dir, tmp_path):
    """--arch lean --lossy-c: RecNet sees c as HEVC decodes it, crops aligned to the 8x8 grid."""
    from dsslic.codecs import get
    from dsslic.training.data import decoded_compacts, lossy_batch_at

    cfg = cfg_for(data_dir, tmp_path, compact="area", arch="lean", width=10, n_blocks=1, up_mode="bicubic",
                  norm="none", lossy_c="hevc:30,lossless", lossy_scales="1", ssim_weight=0.0)
    imgs, labels = load_images(cfg)
    pairs = decoded_compacts(cfg, imgs, cache=tmp_path / "c.pt")
    again = decoded_compacts(cfg, imgs, cache=tmp_path / "c.pt")  # a resumed run reads the decoded c's back
    assert all(torch.equal(a, b) for (_, ca), (_, cb) in zip(pairs, again) for a, b in zip(ca, cb))
    x0, (c30, c_ll) = pairs[0]
    c_np = c_ll.permute(1, 2, 0).numpy()
    hevc = get("hevc")
    assert torch.equal(c30, torch.from_numpy(hevc.decode(hevc.encode(np.ascontiguousarray(c_np), 30), c_np.shape))
                       .permute(2, 0, 1))
    assert not torch.equal(c30, c_ll)
    t = Trainer(cfg)
    x, c, s = lossy_batch_at(0, 0, cfg, pairs)
    assert x.shape == (2, 3, 32, 32) and c.shape == (2, 3, 4, 4) and s is None

    def loss() -> float:
        with torch.no_grad():
            return float(torch.nn.functional.l1_loss(t.G.reconstruct(None, c), x))

    before = loss()
    for _ in range(8):
        t.train_step(x, None, c)
    assert loss() < before


def test_lean_withseg_learns_from_the_map_the_codec_stores(data_dir, tmp_path):
    """withSeg for the lean RecNet: the label map of each training image is the one its file would carry (the
    codec's segmentation and storage rule), cropped with x and c by the same draws as without labels; started
    from a label-free model (zero weights on the new inputs) it computes what that model did."""
    from dsslic import bitstream
    from dsslic.codec import Codec, decode_layers
    from dsslic.training.data import decoded_compacts, lossy_batch_at
    from dsslic.training.loop import init_from

    kw = dict(compact="area", arch="lean", width=10, n_blocks=1, up_mode="bicubic", norm="none",
              lossy_c="hevc:30", lossy_scales="1", ssim_weight=0.0)
    plain_cfg = cfg_for(data_dir, tmp_path / "a", **kw)
    cfg = cfg_for(data_dir, tmp_path / "b", num_labels=11, segmenter="photo", **kw)
    imgs, _ = load_images(cfg)
    pairs = decoded_compacts(cfg, imgs, cache=tmp_path / "c.pt")
    again = decoded_compacts(cfg, imgs, cache=tmp_path / "c.pt")  # a resumed run reads the maps back too
    assert all(torch.equal(p[2], q[2]) for p, q in zip(pairs, again))
    x0, _, s0 = pairs[0]
    file = Codec("plain", segmenter="photo").compress(np.ascontiguousarray(x0.permute(1, 2, 0).numpy()),
                                                      residual="none")
    want = decode_layers(bitstream.parse(file), "seg").s  # the map a decoder of that image's file holds
    assert s0.dtype == torch.uint8 and np.array_equal(s0.numpy(), want) and len(np.unique(want)) > 1
    x, c, s = lossy_batch_at(3, 0, cfg, pairs)
    xp, cp, sp = lossy_batch_at(3, 0, plain_cfg, decoded_compacts(plain_cfg, imgs))
    assert torch.equal(x, xp) and torch.equal(c, cp) and sp is None
    assert s.shape == (2, 32, 32) and int(s.max()) < 11

    src = Trainer(plain_cfg)
    path = tmp_path / "noseg.safetensors"
    src.G.eval().save(path)
    t = Trainer(cfg)
    init_from(t.G, str(path), "test")
    with torch.no_grad():
        assert torch.allclose(t.G.reconstruct(s, c), src.G.reconstruct(None, c), atol=1e-6)
        assert t.G.recnet.finenet.head.weight.shape[1] == 3 + 11
    for _ in range(3):
        t.train_step(x, s, c)
    assert t.G.recnet.finenet.head.weight[:, 3:].abs().sum() > 0  # the map's inputs learn


def test_lean_recnet_is_cheap():
    from torch.utils.flop_counter import FlopCounterMode

    from dsslic.models import LearnedConfig, LearnedModel

    m = LearnedModel(LearnedConfig(width=40, n_blocks=4, norm="none", compact="area", up_mode="bicubic", arch="lean"))
    with FlopCounterMode(display=False) as fc:
        m.reconstruct(None, torch.rand(1, 3, 8, 8))
    assert fc.get_total_flops() / 2 / (64 * 64) <= 5000


def test_init_starts_from_exported_weights(data_dir, tmp_path, capsys):
    """--init: a run starts from a weights file (a shipped model's name or a path) with a fresh optimiser; weights
    of another shape are refused in one line."""
    from dsslic.cli import main
    from dsslic.models import LearnedModel

    cfg = cfg_for(data_dir, tmp_path, steps=2, compact="area")
    t = Trainer(cfg)
    t.fit(*load_images(cfg), progress=False)
    src = t.export()
    t2 = Trainer(cfg_for(data_dir, tmp_path / "b", steps=0, compact="area"), init=str(src))
    assert all(torch.equal(a, b) for a, b in zip(t2.G.state_dict().values(), LearnedModel.load(src).state_dict().values()))
    assert t2.step == 0
    d, _ = data_dir
    args = ["train", "--data", str(d), "--out", str(tmp_path / "c"), "--compact", "area", "--width", "4",
            "--n-blocks", "1", "--steps", "1", "--batch", "2", "--crop", "32", "--no-gan", "--device", "cpu"]
    assert main([*args, "--init", str(src)]) == 0
    capsys.readouterr()
    assert main([*args[:5], "--width", "6", *args[7:], "--init", str(src)]) == 2  # another width
    assert "not weights of this network" in capsys.readouterr().err
    assert main([*args, "--init", "no-such-model"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "dsslic: error: --init no-such-model: no such model weights"
