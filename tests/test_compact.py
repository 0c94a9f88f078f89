"""Lossy compact image (closed loop, joint rule) and the residual coder's choices (mapping, bit depth)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import synthetic

from dsslic import bitstream, codecs
from dsslic.bitstream import LayerKind
from dsslic.codec import COMPACT_CODECS, JOINT_K, Codec, ResidualCoding, compact_quality, psnr


@pytest.mark.parametrize("compact", list(COMPACT_CODECS))
def test_each_compact_codec_closed_loop(codec, img, compact):
    res = codec.encode(img, quality=30, compact=compact, verify=True)  # verify: decoder == encoder's x~
    hd = bitstream.parse(res.data)
    c = hd.layer(LayerKind.COMPACT)
    assert codecs.by_id(c.codec_id).name == COMPACT_CODECS[compact]
    assert (c.quality is None) == (compact == "jxl-lossless")
    coarse = codec.decode(res.data, "coarse")
    assert psnr(img, coarse) == pytest.approx(res.psnr_coarse)


def test_joint_rule_follows_residual_qp(codec, img):
    a, b = codec.encode(img, quality=10), codec.encode(img, quality=24)
    assert (a.compact_quality, b.compact_quality) == (10 + JOINT_K, 24 + JOINT_K)
    assert a.layer_bytes["compact"] > b.layer_bytes["compact"]
    assert codec.encode(img, quality=40).compact_quality == min(51, 40 + JOINT_K)  # HEVC's QP range ends at 51
    assert compact_quality("hevc", "none", None) != compact_quality("hevc", "hevc", 51)
    fixed = codec.encode(img, quality=40, compact_q=10)
    assert fixed.compact_quality == 10 and fixed.layer_bytes["compact"] > b.layer_bytes["compact"]


def test_target_bpp_over_the_joint_choice(codec, img):
    lo, hi = codec.encode(img, quality=40), codec.encode(img, quality=22)
    target = (lo.bpp + hi.bpp) / 2
    res = codec.encode(img, target_bpp=target, verify=True)
    assert res.bpp <= target
    assert codec.encode(img, quality=res.quality - 1).bpp > target  # the best setting that fits


@pytest.mark.parametrize("rc", [ResidualCoding(), ResidualCoding(mapping="fixed"), ResidualCoding(bits=10),
                                ResidualCoding(mapping="fixed", bits=10), ResidualCoding(bits=12, tune="psnr"),
                                ResidualCoding(tune="none", chroma_offset=3)])
def test_residual_codings_round_trip(img, rc):
    cod = Codec("plain", residual_coding=rc)
    res = cod.encode(img, quality=4, verify=True)
    res_layer = bitstream.parse(res.data).layer(LayerKind.RESIDUAL)
    assert res_layer.params["bits"] == rc.bits
    assert res.psnr > 40  # near-lossless at QP 4 whatever the mapping
    assert np.array_equal(Codec("plain").decode(res.data), cod.decode(res.data))  # the file says how to decode


def test_deep_residual_beats_8_bit_near_lossless():
    x = synthetic(64, 64, seed=3)
    p8 = Codec("plain", residual_coding=ResidualCoding(bits=8)).encode(x, quality=0, compact="jxl-lossless").psnr
    p10 = Codec("plain", residual_coding=ResidualCoding(bits=10)).encode(x, quality=0, compact="jxl-lossless").psnr
    assert p10 > p8


def test_deep_stream_declared_8_bit_refused(codec, img):
    from dsslic.errors import DsslicFormatError

    data = Codec("plain", residual_coding=ResidualCoding(bits=10)).compress(img, quality=30)
    hd = bitstream.parse(data)
    hd.layers[2].params["bits"] = 8
    with pytest.raises(DsslicFormatError, match="8-bit samples"):
        codec.decode(bitstream.serialize(hd))


def test_cli_compact_choices_match_the_codec():
    from dsslic.cli import build_parser

    act = next(a for a in build_parser(["compress"])._subparsers._group_actions[0].choices["compress"]._actions
               if a.dest == "compact_codec")
    assert sorted(act.choices) == sorted(COMPACT_CODECS)
