"""Training: every loss configuration steps and learns; resume is exact; exports load into the codec."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import synthetic
from PIL import Image

from dsslic.train import TrainConfig, Trainer, batch_at, load_images, lr_at


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
    from dsslic.segnet import FileSegmenter

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


def test_checkpoint_is_atomic_and_log_appends(tmp_path):
    from dsslic.trainloop import CsvLog, load_checkpoint, save_checkpoint

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
