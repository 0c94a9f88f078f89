"""Segmenters: the interface contract, the file segmenter in the bitstream, adapters, training."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import synthetic
from PIL import Image

from dsslic import segmenters
from dsslic.cli import main
from dsslic.codec import Codec
from dsslic.errors import DsslicInputError
from dsslic.segmenters.segnetlite import CAMVID11, NetSegmenter, SegNetLite
from dsslic.segmenters.segnetlite_np import NumpySegmenter
from dsslic.training.data import load_pairs, seg_batch_at
from dsslic.training.segnet import SegTrainConfig, SegTrainer, class_weights, confusion, scores


def _contract(seg: segmenters.Segmenter, img: np.ndarray) -> np.ndarray:
    lab = seg.segment(img)
    assert lab.shape == img.shape[:2]
    assert lab.dtype in (np.uint8, np.uint16)
    assert int(lab.max()) < seg.num_labels
    assert len(seg.class_names) == seg.num_labels
    assert seg.palette.shape == (seg.num_labels, 3) and seg.palette.dtype == np.uint8
    assert len(seg.id) == 4
    return lab


def test_none_and_file(tmp_path):
    img = synthetic(30, 50)
    assert (_contract(segmenters.get("none"), img) == 0).all()
    labels = (np.arange(30 * 50).reshape(30, 50) % 7).astype(np.uint8)
    p = tmp_path / "m.png"
    Image.fromarray(labels).save(p)
    assert np.array_equal(_contract(segmenters.get(f"file:{p}"), img), labels)
    with pytest.raises(DsslicInputError, match="label map is"):
        segmenters.FileSegmenter(labels).segment(synthetic(31, 50))
    with pytest.raises(DsslicInputError, match="unknown segmenter"):
        segmenters.get("pspnet")


def test_file_labels_round_trip_through_bitstream():
    img = synthetic(40, 48)
    labels = (np.arange(40 * 48).reshape(40, 48) // 200 % 5).astype(np.uint8)
    seg = segmenters.FileSegmenter(labels)
    data = Codec("plain", segmenter=seg).compress(img)
    from dsslic import bitstream, codecs

    hd = bitstream.parse(data)
    assert hd.num_labels == 5 and hd.segmenter_id == seg.id
    s = codecs.by_id(hd.layers[0].codec_id).decode(hd.layers[0].data, hd.seg_shape)
    assert np.array_equal(s, labels)  # the base layer is lossless
    rendered = Codec("plain", segmenter=seg).decompress(data, "seg")
    assert np.array_equal(rendered, seg.palette[labels])


def test_many_labels_uint16():
    labels = (np.arange(20 * 30).reshape(20, 30) % 300).astype(np.uint16)
    seg = segmenters.FileSegmenter(labels)
    data = Codec("plain", segmenter=seg).compress(synthetic(20, 30))
    from dsslic import info

    assert info(data)["labels_present"] == list(range(300))


def test_net_segmenter_export_load(tmp_path):
    torch.manual_seed(0)
    d, lab = tmp_path / "img", tmp_path / "lab"
    d.mkdir(), lab.mkdir()
    for i in range(2):
        x = synthetic(64, 80, seed=i)
        Image.fromarray(x).save(d / f"f{i}.png")
        Image.fromarray(((x[..., 2] > 128) * 3 + (x[..., 0] > 128) * 1 + (i == 1) * 11 * (x[..., 1] > 250)).astype(np.uint8)).save(lab / f"f{i}.png")
    cfg = SegTrainConfig(data=[str(d)], labels=[str(lab)], out=str(tmp_path / "run"), width=8, steps=6, batch=2,
                         crop=48, device="cpu", lr=3e-3)
    imgs, labs = load_pairs(cfg)
    w = class_weights(labs, 11)
    assert w.shape == (11,) and (w > 0).all()
    t = SegTrainer(cfg, w)
    x, y = seg_batch_at(0, cfg, imgs, labs)
    assert x.shape == (2, 3, 48, 48) and y.shape == (2, 48, 48)
    losses = [float(t.train_step(x, y)) for _ in range(6)]
    assert losses[-1] < losses[0]
    path = t.export("tiny")
    again = SegTrainer(SegTrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "run2")}), w, init=str(path))
    assert all(torch.equal(a.half().float(), b) for a, b in zip(t.net.state_dict().values(),
                                                                again.net.state_dict().values())
               if a.is_floating_point())  # --init starts from the exported weights
    with pytest.raises(ValueError, match="not weights of this network"):
        SegTrainer(SegTrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "run3"), "width": 4}), w, init=str(path))
    seg = NetSegmenter.load(path)
    assert seg.class_names == CAMVID11 and seg.name == "tiny"
    _contract(seg, synthetic(100, 130))
    _contract(segmenters.get(str(path)), synthetic(33, 17))


def test_scores():
    gt = np.array([0, 0, 1, 1, 2, 11])
    pred = np.array([0, 1, 1, 1, 2, 0])
    s = scores(confusion(pred, gt, 3))
    assert s["iou"] == pytest.approx([0.5, 2 / 3, 1.0])
    assert s["pixel_acc"] == pytest.approx(4 / 5)


def test_hf_adapter_tiny_random(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.SegformerConfig(num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1],
                                       hidden_sizes=[8, 16], num_attention_heads=[1, 1], patch_sizes=[7, 3],
                                       strides=[4, 2], mlp_ratios=[2, 2], decoder_hidden_size=16, num_labels=150,
                                       id2label={i: f"ade{i}" for i in range(150)},
                                       label2id={f"ade{i}": i for i in range(150)})
    torch.manual_seed(0)
    transformers.SegformerForSemanticSegmentation(cfg).save_pretrained(tmp_path / "segformer-tiny")
    seg = segmenters.get(f"hf:{tmp_path / 'segformer-tiny'}")
    assert seg.num_labels == 150 and seg.class_names[3] == "ade3"
    img = synthetic(48, 64)
    lab = _contract(seg, img)
    data = Codec("plain", segmenter=seg).compress(img)
    assert Codec("plain", segmenter=seg).decompress(data).shape == img.shape
    assert lab.shape == (48, 64)


def test_torchvision_adapter(tmp_path):
    tv = pytest.importorskip("torchvision", reason="torchvision does not install beside torch 2.13 here")
    m = tv.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=21)
    torch.save(m.state_dict(), tmp_path / "dl.pth")
    _contract(segmenters.get(f"torchvision:{tmp_path / 'dl.pth'}"), synthetic(64, 64))


def test_segment_cli(tmp_path, capsys):
    p = tmp_path / "in.png"
    Image.fromarray(synthetic(40, 60)).save(p)
    labels = (np.arange(40 * 60).reshape(40, 60) // 300 % 3).astype(np.uint8)
    lp = tmp_path / "gt.png"
    Image.fromarray(labels).save(lp)
    out = tmp_path / "map.png"
    assert main(["segment", str(p), "-o", str(out), "--segmenter", f"file:{lp}"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), labels)
    col = tmp_path / "col.png"
    assert main(["segment", str(p), "-o", str(col), "--segmenter", f"file:{lp}", "--color"]) == 0
    assert np.asarray(Image.open(col)).shape[0] > 40  # legend strip below the map
    capsys.readouterr()
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    assert main(["segment", str(bad), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dsslic: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("f", [2, 4, 3])
def test_label_map_at_lower_resolution(f):
    img = synthetic(37, 50)
    yy, xx = np.mgrid[0:37, 0:50]
    labels = ((yy // 10 + xx // 12) % 4).astype(np.uint8)  # regions, as a segmenter gives
    seg = segmenters.FileSegmenter(labels)
    full = Codec("plain", segmenter=seg).compress(img)
    c = Codec("plain", segmenter=seg, seg_factor=f)
    res = c.encode(img)
    assert len(res.data) < len(full)
    rendered = c.decode(res.data, "seg")
    agree = (rendered == seg.palette[labels]).all(-1).mean()
    assert rendered.shape == img.shape and agree > 0.8
    from dsslic.codec import psnr

    assert psnr(img, Codec("plain", segmenter=seg).decode(res.data)) == pytest.approx(res.psnr)


def test_info_names_known_label_spaces():
    from dsslic import info

    labels = np.zeros((24, 32), np.uint8)
    labels[:, 16:] = 3
    seg = segmenters.FileSegmenter(labels, list(CAMVID11))
    d = info(Codec("plain", segmenter=seg).compress(synthetic(24, 32)))
    assert d["label_names_present"] == ["sky", "road"]
    assert info(Codec("plain", segmenter="none").compress(synthetic(24, 32)))["label_names_present"] == ["unlabelled"]
    d = info(Codec("plain").compress(synthetic(24, 32)))  # the default segmenter: the photo label space
    assert d["label_space"] == "photo" and set(d["label_names_present"]) <= set(segmenters.get("photo").class_names)


@pytest.mark.parametrize("name", segmenters.available()[1:] or ["(none shipped)"])
def test_shipped_segmenters_load(name):
    if name == "(none shipped)":
        pytest.skip("no segmenter weights shipped")
    seg = segmenters.get(name)  # on the CPU: the numpy runtime (tests/test_npnet.py compares it with torch's)
    assert isinstance(seg, NumpySegmenter) and seg.name == name
    _contract(seg, synthetic(120, 160))
    from dsslic.models import available

    assert name not in available() and f"{name}.seg" not in available()


def test_fingerprint_follows_weights_id_follows_label_space():
    torch.manual_seed(0)
    a = NetSegmenter("camvid11", SegNetLite(11, 8), list(CAMVID11))
    b = NetSegmenter("camvid11", SegNetLite(11, 8), list(CAMVID11))
    assert a.id == b.id  # files stay decodable when the segmenter is retrained
    assert a.fingerprint != b.fingerprint  # but cached results that depend on its maps do not carry over
    same = NetSegmenter("camvid11", copy.deepcopy(a.net), list(CAMVID11))
    assert same.fingerprint == a.fingerprint  # the same weights in another object: the same fingerprint
    assert segmenters.NoSegmenter().fingerprint == "none"


def test_set_loss_is_the_probability_of_the_set():
    from dsslic.training.segnet import set_loss

    logits = torch.tensor([[0.0, 1.0, 2.0]]).view(1, 3, 1, 1)
    w = torch.ones(3)
    p = torch.softmax(logits.view(3), 0)
    exact = set_loss(logits, torch.tensor([[[2]]]), w, [(1, 2)])
    assert float(exact) == pytest.approx(-float(torch.log(p[2])), rel=1e-6)
    either = set_loss(logits, torch.tensor([[[3]]]), w, [(1, 2)])  # code n + 0: one of classes 1, 2
    assert float(either) == pytest.approx(-float(torch.log(p[1] + p[2])), rel=1e-6)
    ignored = set_loss(logits, torch.tensor([[[255]]]), w, [(1, 2)])
    assert float(ignored) == 0.0


def test_two_sources_map_into_one_space_and_respect_the_split(tmp_path):
    import json

    from dsslic.segmenters import labelspace

    dirs = {}
    for src, lab_val in (("stanford", 7), ("msrc", 3)):  # stanford foreground; msrc cow
        d, lab = tmp_path / src / "img", tmp_path / src / "lab"
        d.mkdir(parents=True), lab.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(synthetic(40, 50, seed=i)).save(d / f"{src}{i}.jpg")
            y = np.zeros((40, 50), np.uint8)
            y[:10] = lab_val
            y[-3:] = 255
            Image.fromarray(y).save(lab / f"{src}{i}.png")
        dirs[src] = (str(d), str(lab))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"stanford": {"test": ["stanford1"]}, "msrc": {"test": []}}))
    cfg = SegTrainConfig(data=[dirs["stanford"][0], dirs["msrc"][0]], labels=[dirs["stanford"][1], dirs["msrc"][1]],
                         sources=["stanford", "msrc"], split=str(split), out=str(tmp_path / "run"), width=8,
                         steps=2, batch=2, crop=32, device="cpu")
    imgs, labs = load_pairs(cfg)
    assert len(imgs) == 3  # stanford1 held out
    ph = labelspace.PHOTO
    assert int(labs[0][0, 0]) == ph.num_labels  # the object set
    assert int(labs[0][20, 0]) == ph.index("sky") and int(labs[0][-1, 0]) == 255
    assert int(labs[1][0, 0]) == ph.index("animal")
    t = SegTrainer(cfg, class_weights(labs, ph.num_labels))
    assert t.space is ph and len(t.sets) == 1
    float(t.train_step(*seg_batch_at(0, cfg, imgs, labs)))
    seg = NetSegmenter.load(t.export("tinyphoto"))
    assert seg.class_names == list(ph.class_names) and seg.id == ph.id


def test_every_registered_segmenter_name_and_kind_resolves():
    """The dispatcher's tables name real Segmenter classes (they are imported only when one is made)."""
    for module, cls in segmenters.NAMED.values():
        assert issubclass(segmenters._class(module, cls), segmenters.Segmenter)
    for module, cls, _ in segmenters.KINDS.values():
        assert issubclass(segmenters._class(module, cls), segmenters.Segmenter)
    assert segmenters.get("none").name == "none"
