"""The file format against hostile input: every failure is a DsslicFormatError, fast and small."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsslic import bitstream, codecs
from dsslic.bitstream import LayerKind
from dsslic.errors import DsslicFormatError


def _rehead(data: bytes, mutate) -> bytes:
    """Change header fields and fix the header CRC, so the check under test is the one that fires."""
    hd = bitstream.parse(data)
    mutate(hd)
    return bitstream.serialize(hd)


def test_serialize_parse_round_trip(encoded):
    hd = bitstream.parse(encoded)
    assert bitstream.serialize(hd) == encoded
    assert [la.kind for la in hd.layers] == [LayerKind.SEG, LayerKind.COMPACT, LayerKind.RESIDUAL]


def test_truncation_at_every_offset(codec, encoded):
    for n in range(len(encoded)):
        with pytest.raises(DsslicFormatError):
            codec.decode(encoded[:n])


def test_trailing_bytes(codec, encoded):
    with pytest.raises(DsslicFormatError, match="unexpected bytes"):
        codec.decode(encoded + b"\0")


@pytest.mark.parametrize("what,data,msg", [
    ("empty", b"", "empty"),
    ("magic", b"PNG\x89" + b"\0" * 40, "magic"),
])
def test_not_a_file(codec, what, data, msg):
    with pytest.raises(DsslicFormatError, match=msg):
        codec.decode(data)


def test_unknown_version(codec, encoded):
    bad = bytearray(encoded)
    bad[4] = 99
    with pytest.raises(DsslicFormatError, match="version 99"):
        codec.decode(bytes(bad))


def test_header_crc(codec, encoded):
    bad = bytearray(encoded)
    bad[5] ^= 0x01  # width
    with pytest.raises(DsslicFormatError, match="header checksum"):
        codec.decode(bytes(bad))


def test_layer_crc(codec, encoded):
    bad = bytearray(encoded)
    bad[-10] ^= 0x40
    with pytest.raises(DsslicFormatError, match="residual layer checksum"):
        codec.decode(bytes(bad))


def test_absurd_size_refused_before_allocation(codec, encoded):
    def huge(hd):
        hd.width = hd.height = 100_000

    t = time.time()
    with pytest.raises(DsslicFormatError, match="megapixels, over the limit"):
        codec.decode(_rehead(encoded, huge))
    assert time.time() - t < 2


def test_header_size_disagrees_with_stream(codec, encoded):
    def wider(hd):
        hd.width += 8

    with pytest.raises(DsslicFormatError, match="claims|shape"):
        codec.decode(_rehead(encoded, wider))


def test_unknown_codec_id(codec, encoded):
    def unknown(hd):
        hd.layers[1].codec_id = 200

    with pytest.raises(DsslicFormatError, match="unknown codec id 200"):
        codec.decode(_rehead(encoded, unknown))


def test_layer_swapped_for_another_codec(codec, encoded):
    def swap(hd):  # a residual HEVC stream declared as JPEG XL
        hd.layers[2].codec_id = codecs.get("jxl").id

    with pytest.raises(DsslicFormatError, match="JPEG XL|samples with jxl"):
        codec.decode(_rehead(encoded, swap))


def test_jxl_layer_claiming_other_size():
    jxl = codecs.get("jxl")
    with pytest.raises(DsslicFormatError, match="claims 64x48"):
        jxl.decode(jxl.encode(np.zeros((48, 64, 3), np.uint8)), (8, 8, 3))


def test_layer_with_a_codec_it_cannot_have(codec, encoded):
    def const_compact(hd):
        hd.layers[1].codec_id = codecs.get("const").id
        hd.layers[1].data = b"\x00\x01"  # 256: would wrap around as an 8-bit sample

    with pytest.raises(DsslicFormatError, match="compact layer cannot be coded with const"):
        codec.decode(_rehead(encoded, const_compact))


def test_hevc_stream_claiming_more_pixels(codec, img):
    """An embedded stream bigger than the header says is refused by the decoder's pixel cap."""
    hevc = codecs.get("hevc")
    big = hevc.encode(np.zeros((256, 256, 3), np.uint8), 40)
    with pytest.raises(DsslicFormatError):
        hevc.decode(big, (32, 32, 3))


def test_layers_out_of_order(codec, encoded):
    def reorder(hd):
        hd.layers[0], hd.layers[1] = hd.layers[1], hd.layers[0]

    with pytest.raises(DsslicFormatError, match="in order"):
        codec.decode(_rehead(encoded, reorder))


def test_residual_range_inverted(codec, encoded):
    def inv(hd):
        hd.res_min, hd.res_max = 5, -5

    with pytest.raises(DsslicFormatError, match="min > max"):
        codec.decode(_rehead(encoded, inv))


def test_jxl_size_header():
    jxl = codecs.jxl.JxlCodec(effort=1)  # the size header is written the same at every effort (9 takes 25 s here)
    for h, w in [(1, 1), (8, 16), (37, 1000), (512, 768), (768, 512), (3000, 4000)]:
        data = jxl.encode(np.zeros((h, w), np.uint8) + 3)
        assert codecs.jxl.jxl_size(data) == (w, h)
        deep = jxl.encode(np.zeros((h, w), np.uint16) + 300)  # 16 bit: inside the ISO container
        assert codecs.jxl.jxl_size(deep) == (w, h)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutations(codec, encoded, data):
    """Random bit flips, byte edits, cuts and splices: a clean error or a correct-shaped image."""
    buf = bytearray(encoded)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        i = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del buf[i : i + data.draw(st.integers(1, 64))]
        else:
            buf[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    try:
        out = codec.decode(bytes(buf))
    except DsslicFormatError:
        return
    hd = bitstream.parse(bytes(buf))  # what survived the CRCs decodes to exactly the size its header gives
    assert out.dtype == np.uint8 and out.shape == (hd.height, hd.width, 3)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(raw):
    from dsslic.codec import Codec

    with pytest.raises(DsslicFormatError):  # random bytes behind the magic never pass the header's CRC
        Codec("plain").decode(b"DSLC\x01" + raw)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.tuples(st.integers(0, 2**20), st.integers(0, 2**20), st.integers(0, 255), st.integers(0, 255),
                        st.integers(-2**15, 2**15 - 1), st.integers(-2**15, 2**15 - 1)))
def test_fuzz_header_fields_with_valid_crc(codec, encoded, fields):
    w, h, alpha, sf, lo, hi = fields

    def mutate(hd):
        hd.width, hd.height, hd.alpha, hd.seg_factor, hd.res_min, hd.res_max = w, h, alpha, sf, lo, hi

    try:
        out = codec.decode(_rehead(encoded, mutate))
    except DsslicFormatError:
        return
    assert out.shape == (h, w, 3)


def test_one_list_of_residual_codecs():
    """What the encoder offers comes from the format's one list, and that list still admits every codec a residual
    layer has been allowed (files stay readable)."""
    assert bitstream.LAYER_CODECS[2] == set(bitstream.RESIDUAL_LAYER) == {
        "hevc", "hevc-rgb", "hevc420", "avif", "jxl-lossy", "webp", "jpeg2000", "jpeg", "jxl", "png", "learned"}
    assert list(bitstream.RESIDUAL_CODECS) == ["hevc", "avif", "jxl", "webp", "jpeg2000", "learned"]
    assert all(bitstream.RESIDUAL_LAYER[name] == choice for choice, name in bitstream.RESIDUAL_CODECS.items())
    for name in bitstream.RESIDUAL_LAYER:
        codecs.get(name)  # registered


def test_a_codec_id_or_name_registers_once():
    class Twin(codecs.LayerCodec):
        name, id = "hevc-twin", codecs.get("hevc").id

    with pytest.raises(ValueError, match="already registered"):
        codecs.register(Twin)
    assert codecs.by_id(Twin.id).name == "hevc"


def test_every_codec_module_is_imported_by_the_package():
    """A codec is a module plus its name in codecs/__init__.py's import line: each module registers something."""
    import sys
    from pathlib import Path

    mods = sorted(p.stem for p in Path(codecs.__file__).parent.glob("*.py") if p.stem not in ("__init__", "base"))
    assert all(f"dsslic.codecs.{m}" in sys.modules for m in mods)
    registered = {type(codecs.get(n)).__module__ for n in codecs.names()}
    assert registered == {f"dsslic.codecs.{m}" for m in mods}
