"""Format version 2: per-layer parameters, and version 1 files still read the same."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from dsslic import bitstream
from dsslic.bitstream import LayerKind, _varint
from dsslic.errors import DsslicFormatError


def as_v1(hd: bitstream.Header) -> bytes:
    """The same file in version 1's layout: one global residual range, no layer parameters."""
    head = bytearray(bitstream.MAGIC) + bytes([1]) + _varint(hd.width) + _varint(hd.height)
    head += bytes([hd.alpha, hd.seg_factor]) + hd.model_id + hd.segmenter_id + _varint(hd.num_labels)
    head += struct.pack("<hh", hd.res_min, hd.res_max) + bytes([len(hd.layers)])
    for la in hd.layers:
        head += bytes([int(la.kind), la.codec_id, 255 if la.quality is None else la.quality])
        head += _varint(len(la.data)) + struct.pack("<I", la.crc)
    head += struct.pack("<I", zlib.crc32(head))
    return bytes(head) + b"".join(la.data for la in hd.layers)


def with_blob(data: bytes, kind: LayerKind, blob: bytes) -> bytes:
    """Replace one layer's parameter blob (raw bytes, length prefixed) and fix the header CRC."""
    hd = bitstream.parse(data)
    orig = bitstream._pack_params
    try:
        bitstream._pack_params = lambda la: bytes([len(blob)]) + blob if la.kind == kind else orig(la)
        return bitstream.serialize(hd)
    finally:
        bitstream._pack_params = orig


@pytest.fixture(scope="module")
def v1_like(img) -> bytes:
    """A file version 1 could hold: lossless c, 8-bit residual."""
    from dsslic.codec import Codec, ResidualCoding

    return Codec("plain", residual_coding=ResidualCoding(bits=8)).compress(img, quality=30, compact="jxl-lossless")


def test_v2_written_with_residual_params(encoded):
    assert encoded[4] == 2
    res = bitstream.parse(encoded).layer(LayerKind.RESIDUAL)
    assert res.params["bits"] in bitstream.RESIDUAL_BITS and res.params["range"][0] <= res.params["range"][1]


def test_v1_file_decodes_as_before(codec, v1_like):
    encoded = v1_like
    hd = bitstream.parse(encoded)
    v1 = as_v1(hd)
    assert v1[4] == 1 and v1 != encoded
    hd1 = bitstream.parse(v1)
    assert (hd1.res_min, hd1.res_max) == (hd.res_min, hd.res_max)
    assert np.array_equal(codec.decode(v1), codec.decode(encoded))
    assert bitstream.serialize(hd1) == encoded  # a v1 file rewritten is the v2 file


def test_v1_inverted_range_refused(codec, v1_like):
    hd = bitstream.parse(v1_like)
    hd.res_min, hd.res_max = 5, -5
    with pytest.raises(DsslicFormatError, match="min > max"):
        codec.decode(as_v1(hd))


@pytest.mark.parametrize("blob,msg", [
    (b"\x01", "truncated"),
    (b"\x01\x04\x00\x00", "truncated"),
    (b"\x09\x01\x00", "unknown tag 9"),
    (b"\x02\x01\x08\x01\x04\x00\x00\x00\x00", "out of order"),
    (b"\x02\x01\x08\x02\x01\x08", "repeated"),
    (b"\x01\x03\x00\x00\x00", "range has 3 bytes"),
    (b"\x02\x01\x09", "9-bit"),
    (b"\x01\x04\x05\x00\xfb\xff", "min > max"),
])
def test_bad_residual_params(codec, encoded, blob, msg):
    with pytest.raises(DsslicFormatError, match=msg):
        codec.decode(with_blob(encoded, LayerKind.RESIDUAL, blob))


def test_params_on_a_layer_that_has_none(codec, encoded):
    with pytest.raises(DsslicFormatError, match="compact layer parameters have unknown tag 1"):
        codec.decode(with_blob(encoded, LayerKind.COMPACT, b"\x01\x04\x00\x00\x00\x00"))


def test_deep_residual_only_with_hevc(codec, encoded):
    hd = bitstream.parse(encoded)
    hd.layers[2].params["bits"] = 10
    assert bitstream.parse(bitstream.serialize(hd)).layers[2].params["bits"] == 10
    hd.layers[2].codec_id = bitstream.codecs.get("avif").id
    with pytest.raises(DsslicFormatError, match="10-bit samples with avif"):
        codec.decode(bitstream.serialize(hd))


def test_list_params_round_trip(monkeypatch, encoded):
    """A list-valued parameter (format ending in '*'), as region lists will use."""
    monkeypatch.setitem(bitstream.PARAMS, LayerKind.SEG, {"ids": (1, "<H*")})
    hd = bitstream.parse(encoded)
    hd.layers[0].params["ids"] = (3, 700, 9)
    assert bitstream.parse(bitstream.serialize(hd)).layers[0].params["ids"] == (3, 700, 9)
    with pytest.raises(DsslicFormatError, match="ids has 3 bytes"):
        bitstream.parse(with_blob(encoded, LayerKind.SEG, b"\x01\x03\x00\x00\x00"))


def test_oversized_params_refused_when_writing(encoded):
    hd = bitstream.parse(encoded)
    hd.layers[2].params["colour"] = 1
    with pytest.raises(ValueError, match="no parameters"):
        bitstream.serialize(hd)
