"""Algorithm 1 end to end with the built-in plain model."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import synthetic

import dsslic
from dsslic import bitstream
from dsslic.codec import Codec, psnr
from dsslic.errors import DsslicFormatError, DsslicInputError


@pytest.mark.parametrize("h,w", [(1, 1), (7, 9), (9, 7), (16, 24), (33, 17), (321, 481)])
def test_round_trip_any_size(codec, h, w):
    x = synthetic(h, w, seed=h * w)
    res = codec.encode(x, quality=20)
    y = codec.decode(res.data)
    assert y.shape == (h, w, 3) and y.dtype == np.uint8
    assert psnr(x, y) == pytest.approx(res.psnr)  # the encoder's reconstruction is the decoder's
    assert psnr(x, y) > 30
    assert codec.decode(res.data, "coarse").shape == (h, w, 3)


def test_quality_orders_rate_and_distortion(codec, img):
    fine, coarse = codec.encode(img, quality=10), codec.encode(img, quality=40)
    assert len(fine.data) > len(coarse.data)
    assert fine.psnr > coarse.psnr + 3


def test_layers(codec, img, encoded):
    full, coarse, seg = (codec.decode(encoded, k) for k in ("full", "coarse", "seg"))
    assert full.shape == coarse.shape == seg.shape == img.shape
    assert psnr(img, full) > psnr(img, coarse) + 5  # the residual layer does its job
    from dsslic import bitstream
    from dsslic import codec as codec_mod
    from dsslic.segmenters import labelspace

    hd = bitstream.parse(encoded)
    s = codec_mod.decode_layers(hd, "seg").s  # the map, rendered in the palette of the file's label space
    assert np.array_equal(seg, labelspace.by_id(hd.segmenter_id).palette[s])


def test_closed_loop_coarse_is_decoder_coarse(codec, img):
    """The residual is computed against the x' the decoder will compute, not a float one."""
    res = codec.encode(img, residual="none")
    assert psnr(img, codec.decode(res.data)) == pytest.approx(res.psnr_coarse)
    assert bitstream.parse(res.data).layer(bitstream.LayerKind.RESIDUAL) is None


def test_bits_counted_are_file_size(codec, img, encoded):
    d = dsslic.info(encoded)
    assert d["bytes"] == len(encoded)
    assert d["bpp"] == pytest.approx(8 * len(encoded) / (img.shape[0] * img.shape[1]))
    assert d["bpp_per_channel"] == pytest.approx(d["bpp"] / 3)
    assert d["header_bytes"] + sum(la["bytes"] for la in d["layers"]) == len(encoded)
    assert [la["layer"] for la in d["layers"]] == ["seg", "compact", "residual"]


def test_deterministic(codec, img, encoded):
    assert codec.compress(img, quality=30) == encoded
    a, b = codec.decode(encoded), codec.decode(encoded)
    assert np.array_equal(a, b)
    assert np.array_equal(a, Codec("plain").decode(encoded))


@pytest.mark.parametrize("residual", ["hevc", "avif", "jxl", "webp", "jpeg2000", "none"])
def test_residual_codecs(codec, img, residual):
    res = codec.encode(img, residual=residual)
    y = codec.decode(res.data)
    assert psnr(img, y) == pytest.approx(res.psnr)
    assert res.psnr >= res.psnr_coarse - 0.5


def test_target_bpp(codec):
    x = synthetic(96, 128, seed=3)
    for target in (1.0, 3.0):
        res = codec.encode(x, target_bpp=target)
        assert res.bpp <= target
        # the next finer QP would overshoot: the search found the best setting that fits
        assert codec.encode(x, quality=res.quality - 1).bpp > target


def test_target_bpp_unreachable_warns(codec):
    x = synthetic(64, 64, seed=4)
    with pytest.warns(UserWarning, match="below what the base layers"):
        res = codec.encode(x, target_bpp=0.001)
    assert res.quality == 51


def test_api_functions(img):
    data = dsslic.compress(img, quality=35)
    out = dsslic.decompress(data)
    assert out.shape == img.shape
    assert dsslic.decompress(data, layers="seg").shape == img.shape


def test_model_mismatch_refused(img, encoded):
    import torch

    from dsslic.models import LearnedConfig, LearnedModel

    torch.manual_seed(0)
    other = Codec(LearnedModel(LearnedConfig(width=4, n_blocks=1)))
    with pytest.raises(DsslicFormatError, match="model id"):
        other.decode(encoded)


def test_learned_model_any_weights_round_trip(tmp_path):
    """The residual carries whatever the networks get wrong: random weights still round-trip."""
    import torch

    from dsslic.models import LearnedConfig, LearnedModel

    torch.manual_seed(1)
    m = LearnedModel(LearnedConfig(width=4, n_blocks=1, num_labels=3, norm="instance-affine")).eval()
    path = tmp_path / "tiny.safetensors"
    m.save(path)
    loaded = LearnedModel.load(path)
    from dsslic.segmenters import FileSegmenter

    x = synthetic(40, 56, seed=9)
    labels = (np.arange(40 * 56).reshape(40, 56) // 700 % 3).astype(np.uint8)
    c = Codec(loaded, segmenter=FileSegmenter(labels, ["a", "b", "c"]))
    res = c.encode(x, quality=25)
    y = Codec(LearnedModel.load(path), segmenter=FileSegmenter(labels, ["a", "b", "c"])).decode(res.data)
    assert psnr(x, y) == pytest.approx(res.psnr)
    seg = c.decode(res.data, "seg")
    assert len(np.unique(seg.reshape(-1, 3), axis=0)) == 3


def test_input_kinds(tmp_path, img):
    from PIL import Image

    c = Codec("plain")
    p = tmp_path / "a.png"
    Image.fromarray(img).save(p)
    a = c.compress(str(p), quality=30)
    assert a == c.compress(p, quality=30) == c.compress(Image.open(p), quality=30) == c.compress(img, quality=30)
    assert c.compress(img.astype(np.float32) / 255, quality=30) == a


def test_lossy_conversions_warn(tmp_path, img):
    from PIL import Image

    from dsslic.errors import DsslicWarning

    c = Codec("plain")
    rgba = np.dstack([img, np.full(img.shape[:2], 128, np.uint8)])
    with pytest.warns(DsslicWarning, match="alpha"):
        c.compress(rgba)
    p16 = tmp_path / "g16.png"
    Image.fromarray((img[..., 0].astype(np.uint16) * 257)).save(p16)
    with pytest.warns(DsslicWarning, match="16-bit"):
        y = c.decompress(c.compress(p16, quality=10))
    assert (y[..., 0] == y[..., 1]).mean() > 0.5  # grayscale in, (near-)grey out


def test_exif_orientation_applied(tmp_path, img):
    from PIL import Image

    p = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(img).save(p, quality=95, exif=exif)
    y = Codec("plain").decompress(Codec("plain").compress(p))
    assert y.shape == (img.shape[1], img.shape[0], 3)


def test_pixel_limit(img):
    with pytest.raises(DsslicInputError, match="over the limit"):
        Codec("plain", max_pixels=100).compress(img)
    data = Codec("plain").compress(img)
    with pytest.raises(DsslicFormatError, match="over the limit"):
        Codec("plain", max_pixels=100).decompress(data)


def test_bad_quality(codec, img):
    with pytest.raises(DsslicInputError, match="outside"):
        codec.compress(img, quality=60)
    with pytest.raises(DsslicInputError, match="unknown residual"):
        codec.compress(img, residual="bpg")


def test_plain_is_exact_across_thread_counts():
    """Integer-exact sums: the same c and x' with 1 or 2 threads (and so on any machine).

    A float bilinear upsampling of c/255 gives different 8-bit pixels with 1 and 2 threads on this
    random compact image (measured: hundreds of pixels), which this test would catch.
    """
    import torch

    from dsslic.models import PlainModel

    g = torch.Generator().manual_seed(0)
    c = torch.randint(0, 256, (1, 3, 64, 96), generator=g).float() / 255
    x = torch.randint(0, 256, (1, 3, 512, 768), generator=g).float() / 255
    m, old = PlainModel(), torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            outs.append(((m.reconstruct(None, c) * 255).round(), (m.compact(x, None) * 255).round()))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


def test_registry_ids_match_the_models_without_torch():
    """The torch-free id lookup (fast refusal of unknown models) agrees with the ids the models compute."""
    import subprocess
    import sys

    from dsslic import models, zoo

    assert zoo.PLAIN_ID == models.PlainModel().model_id
    for name in models.available():
        assert zoo.name_for_id(models.load(name).model_id) == name
    code = "import sys, dsslic.zoo as r; r.ids(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
