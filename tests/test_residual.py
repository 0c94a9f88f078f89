"""Residual coders behind one interface (dsslic.residual), the decoding policy (dsslic.decoding), and the
residual's setting under one name from the API to the header."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic

from dsslic import DsslicFormatError, DsslicInputError, bitstream, codecs, decoding, residual
from dsslic.bitstream import LayerKind
from dsslic.codec import Codec, psnr
from dsslic.segmenters import FileSegmenter

GOLDEN = Path(__file__).resolve().parent / "golden"
ENHANCE = str(GOLDEN / "enhance-golden.safetensors")  # the tiny, untrained model of the golden learned file


def test_one_list_of_choices_each_found_back_from_its_layer():
    assert residual.names() == ["hevc", "avif", "jxl", "webp", "jpeg2000", "learned"]
    for name in residual.names():
        coder = residual.for_choice(name)
        layer = bitstream.Layer(LayerKind.RESIDUAL, coder.image_codec().id, b"")
        assert residual.class_for_layer(layer) is type(coder)
    for other in ("jpeg", "png", "hevc-rgb", "hevc420", "jxl"):  # legal in files, read as min/max residuals
        assert residual.class_for_layer(bitstream.Layer(LayerKind.RESIDUAL, codecs.get(other).id, b"")) \
            is residual.MinMaxCoder
    with pytest.raises(DsslicInputError, match="unknown residual codec 'nope'"):
        residual.for_choice("nope")


def test_a_coder_is_one_class_and_one_line(monkeypatch):
    """A coder registered by "module:Class" is found lazily, chosen by its name and read back by its codec."""
    import sys
    import types

    class Jpeg(residual.MinMaxCoder):
        name = "jpeg-minmax"
        layer_codecs = frozenset({"jpeg"})

    mod = types.ModuleType("dsslic_test_coder")
    mod.Jpeg = Jpeg
    monkeypatch.setitem(sys.modules, "dsslic_test_coder", mod)
    monkeypatch.setitem(residual.CODERS, "jpeg-minmax", "dsslic_test_coder:Jpeg")
    monkeypatch.setitem(residual.CHOICES, "jpeg", "jpeg")
    assert "jpeg" in residual.names() and type(residual.for_choice("jpeg")) is Jpeg
    assert residual.for_choice("jpeg").image_codec().name == "jpeg"
    assert residual.class_for_layer(bitstream.Layer(LayerKind.RESIDUAL, codecs.get("jpeg").id, b"")) is Jpeg
    x = synthetic(48, 64, 3)
    res = Codec("plain", segmenter="none").encode(x, residual="jpeg", quality=80, verify=True)
    assert bitstream.parse(res.data).layer(LayerKind.RESIDUAL).codec_id == codecs.get("jpeg").id


def test_quality_is_resolved_at_the_top_and_is_what_the_header_stores():
    x = synthetic(48, 64, 1)
    cod = Codec("plain", segmenter="none")
    for choice, default in [("hevc", 29), ("webp", 75), ("learned", None)]:
        if choice == "learned":
            cod = Codec("plain", segmenter="none", enhance=ENHANCE)
        res = cod.encode(x, residual=choice)
        stored = bitstream.parse(res.data).layer(LayerKind.RESIDUAL).quality
        assert res.quality == stored == (default if default is not None else 0)  # learned: no setting, stores 0
    assert cod.encode(x, residual="none").quality is None


def test_jpeg2000_setting_fits_the_header_byte():
    """The layer table stores a setting in one byte (255: none): JPEG 2000 ratios above 254 are refused up front
    instead of being written as 255 (= no setting) behind the user's back."""
    coder = residual.for_choice("jpeg2000")
    assert coder.quality_range == (2, bitstream.MAX_QUALITY) and codecs.get("jpeg2000").quality_range[1] > 255
    with pytest.raises(DsslicInputError, match="outside"):
        residual.check_quality("jpeg2000", 300)
    x = synthetic(48, 64, 2)
    res = Codec("plain", segmenter="none").encode(x, residual="jpeg2000", quality=254)
    assert res.quality == bitstream.parse(res.data).layer(LayerKind.RESIDUAL).quality == 254
    hd = bitstream.parse(res.data)
    hd.layers[-1].quality = 300
    with pytest.raises(ValueError, match="does not fit"):
        bitstream.serialize(hd)


@pytest.fixture(scope="module")
def scene():
    x = synthetic(64, 128, 7)
    labels = np.zeros((64, 128), np.uint8)
    labels[8:56, 16:72] = 1
    return x, labels


def test_learned_layer_takes_a_region_of_interest(scene):
    x, labels = scene
    cod = Codec("plain", segmenter=FileSegmenter(labels), enhance=ENHANCE)
    plain = cod.encode(x, residual="learned", verify=True)
    boosted = cod.encode(x, residual="learned", roi="class1", roi_boost=6, verify=True)  # decoder == encoder
    layer = bitstream.parse(boosted.data).layer(LayerKind.RESIDUAL)
    assert layer.codec_id == codecs.get("learned").id and layer.params == {"roi": (1,), "roi_boost": 6}
    assert "roi" not in bitstream.parse(plain.data).layer(LayerKind.RESIDUAL).params
    out = Codec("plain", enhance=ENHANCE).decode(boosted.data)  # another Codec: the map and params suffice
    assert psnr(x, out) == pytest.approx(boosted.psnr) and boosted.data != plain.data
    # the decoder divides x~ - x' by g inside the region: there the output moves toward x'
    coarse = Codec("plain").decode(boosted.data, "coarse")
    m = labels == 1
    d_plain = np.abs(Codec("plain", enhance=ENHANCE).decode(plain.data).astype(int) - coarse)
    assert np.abs(out.astype(int) - coarse)[m].mean() < d_plain[m].mean()


def test_roi_step_is_shared_and_exact_for_minmax(scene):
    """The base class's ROI step gives the minmax coder what it gave before: r * g, min/max range, / g after."""
    x, labels = scene
    cod = Codec("plain", segmenter=FileSegmenter(labels))
    res = cod.encode(x, quality=34, roi="class1", roi_boost=6)
    hd = bitstream.parse(res.data)
    layer = hd.layer(LayerKind.RESIDUAL)
    coarse = cod.decode(res.data, "coarse")
    g = np.where(labels == 1, np.float32(2.0), np.float32(1))[..., None]
    r = (x.astype(np.int16) - coarse.astype(np.int16)) * g
    assert layer.param("range") == (int(np.floor(r.min())), int(np.ceil(r.max())))
    assert psnr(x, cod.decode(res.data)) == pytest.approx(res.psnr)


def test_decoding_policy(scene):
    x, labels = scene
    data = Codec("plain", segmenter=FileSegmenter(labels, ["sky", "car"])).compress(x, quality=40)
    hd = bitstream.parse(data)
    who = decoding.resolve(hd)
    assert (who.model, who.enhance, who.segmenter) == ("plain", None, "none")
    hd.model_id = b"\xde\xad\xbe\xef"
    assert decoding.resolve(hd, "seg").model is None  # the map needs no model
    with pytest.raises(DsslicFormatError, match=r"x.dsslic: made with model id deadbeef.*installed: plain"):
        decoding.resolve(hd, "full", name="x.dsslic")
    assert decoding.resolve(hd, "full", model="plain").model == "plain"  # the user's override wins
    seen = []
    img = decoding.decode(bitstream.parse(data), "full", codec=lambda who: seen.append(who) or Codec(who.model))
    assert len(seen) == 1 and np.array_equal(img, Codec("plain").decode(data))


def test_cli_and_api_share_the_policy(scene, tmp_path, capsys):
    """A file naming a model this installation lacks: the CLI and the API refuse it with the same words, and both
    still render its label map."""
    import dsslic
    from dsslic.cli import main

    x, labels = scene
    hd = bitstream.parse(Codec("plain", segmenter=FileSegmenter(labels)).compress(x, quality=40))
    hd.model_id = b"\xde\xad\xbe\xef"
    data = bitstream.serialize(hd)
    f = tmp_path / "u.dsslic"
    f.write_bytes(data)
    assert main(["decompress", str(f), "-o", str(tmp_path / "u.png")]) == 2
    err = capsys.readouterr().err
    assert f"{f}: made with model id deadbeef" in err and "installed: plain" in err
    assert not (tmp_path / "u.png").exists()
    with pytest.raises(DsslicFormatError, match="made with model id deadbeef.*installed: plain"):
        dsslic.decompress(data)
    assert main(["decompress", str(f), "-o", str(tmp_path / "s.png"), "--layers", "seg"]) == 0
    assert dsslic.decompress(data, layers="seg").shape == (64, 128, 3)
    assert dsslic.info(data)["model"] is None


def test_x265_speed_settings_are_encoder_choices_any_decoder_reads():
    """preset and extra x265 parameters (benchmarks/joint_rule.py weighs their speed against bytes) change the
    stream, not the format: a default decoder decodes it, and the default's tag (eval cache keys) is unchanged."""
    x = synthetic(96, 128, seed=2)
    assert residual.ResidualCoding().tag == "minmax10:ssim:+0"
    default = Codec("plain", segmenter="none")
    ref = default.encode(x, quality=26).data
    for rc in (residual.ResidualCoding(preset="slow"), residual.ResidualCoding(x265="tu-intra-depth=2")):
        res = Codec("plain", segmenter="none", residual_coding=rc).encode(x, quality=26, verify=True)
        assert res.data != ref and rc.tag != "minmax10:ssim:+0"
        assert abs(psnr(x, default.decode(res.data)) - res.psnr) < 1e-9
