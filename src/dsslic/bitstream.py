"""The ``.dsslic`` file: a self-describing header, a layer table and the layers, base first.

See ``docs/FORMAT.md`` for the byte layout. :func:`parse` is written for hostile input: every
length and size is checked against the data actually present and against a pixel limit before
anything is allocated, and every failure is a :class:`~dsslic.errors.DsslicFormatError`.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

from . import codecs
from .errors import DsslicFormatError
from .imageio import DEFAULT_MAX_PIXELS, check_size

MAGIC = b"DSLC"

# which codecs may code which layer: lossless ones for s and c, 3-channel ones for the residual
LAYER_CODECS = {
    0: {"const", "jxl", "png", "labelmap"},
    1: {"jxl", "png"},
    2: {"hevc", "hevc-rgb", "hevc420", "avif", "jxl-lossy", "webp", "jpeg2000", "jpeg", "jxl", "png",
        "learned"},
}
VERSION = 1
_MAX_VARINT_BYTES = 5  # 35 bits: far above any size the limits admit


class LayerKind(IntEnum):
    """The three DSSLIC layers, in the order they are stored."""

    SEG = 0  #: base layer: semantic segmentation map s (lossless)
    COMPACT = 1  #: first enhancement: compact image c = CompNet(x, s) (lossless)
    RESIDUAL = 2  #: second enhancement: residual x - x', min/max rescaled (lossy)


@dataclass
class Layer:
    kind: LayerKind
    codec_id: int
    data: bytes
    quality: int | None = None  # informational: the codec setting used (not needed to decode)

    @property
    def crc(self) -> int:
        return zlib.crc32(self.data)


@dataclass
class Header:
    width: int
    height: int
    alpha: int  # downsampling factor of the compact image
    model_id: bytes  # 4 bytes: hash of the model's name and weights
    segmenter_id: bytes  # 4 bytes: hash of the segmenter's name and label set
    num_labels: int
    seg_factor: int = 1  # the label map is stored at ceil(H/seg_factor) x ceil(W/seg_factor)
    res_min: int = 0  # residual rescaling: r = r8 * (max - min) / 255 + min
    res_max: int = 0
    layers: list[Layer] = field(default_factory=list)

    @property
    def compact_shape(self) -> tuple[int, int, int]:
        return -(-self.height // self.alpha), -(-self.width // self.alpha), 3

    @property
    def seg_shape(self) -> tuple[int, int]:
        return -(-self.height // self.seg_factor), -(-self.width // self.seg_factor)

    def layer(self, kind: LayerKind) -> Layer | None:
        for layer in self.layers:
            if layer.kind == kind:
                return layer
        return None


def _varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise DsslicFormatError(f"file is truncated (ends inside the {what})")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str) -> int:
        n = shift = 0
        for _ in range(_MAX_VARINT_BYTES):
            b = self.u8(what)
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n
        raise DsslicFormatError(f"{what} is not a valid number")


def serialize(h: Header) -> bytes:
    """Header + layer table + header CRC-32 + layer payloads."""
    if len(h.model_id) != 4 or len(h.segmenter_id) != 4:
        raise ValueError("model_id and segmenter_id are 4 bytes each")
    head = bytearray(MAGIC)
    head.append(VERSION)
    head += _varint(h.width) + _varint(h.height)
    head += bytes([h.alpha, h.seg_factor])
    head += h.model_id + h.segmenter_id
    head += _varint(h.num_labels)
    head += struct.pack("<hh", h.res_min, h.res_max)
    head.append(len(h.layers))
    for layer in h.layers:
        q = 255 if layer.quality is None else layer.quality
        head += bytes([int(layer.kind), layer.codec_id, min(q, 255)])
        head += _varint(len(layer.data)) + struct.pack("<I", layer.crc)
    head += struct.pack("<I", zlib.crc32(head))
    return bytes(head) + b"".join(layer.data for layer in h.layers)


def parse(data: bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Header:
    """Parse and verify a ``.dsslic`` file. Raises DsslicFormatError on anything wrong."""
    r = _Reader(bytes(data))
    if len(data) == 0:
        raise DsslicFormatError("file is empty")
    magic = r.take(4, "magic number")
    if magic != MAGIC:
        raise DsslicFormatError("not a .dsslic file (wrong magic number)")
    version = r.u8("version")
    if version != VERSION:
        raise DsslicFormatError(f"unsupported format version {version} (this dsslic reads version {VERSION})")
    width, height = r.varint("width"), r.varint("height")
    alpha, seg_factor = r.u8("header"), r.u8("header")
    model_id, segmenter_id = r.take(4, "model id"), r.take(4, "segmenter id")
    num_labels = r.varint("number of labels")
    res_min, res_max = struct.unpack("<hh", r.take(4, "residual range"))
    n_layers = r.u8("layer table")
    table = []
    for _ in range(n_layers):
        kind, codec_id, q = r.take(3, "layer table")
        length = r.varint("layer table")
        (crc,) = struct.unpack("<I", r.take(4, "layer table"))
        table.append((kind, codec_id, q, length, crc))
    head_end = r.pos
    (head_crc,) = struct.unpack("<I", r.take(4, "header checksum"))
    if zlib.crc32(data[:head_end]) != head_crc:
        raise DsslicFormatError("header checksum mismatch (file is corrupt)")

    # The header is intact: now check that what it says is possible.
    check_size(width, height, max_pixels, DsslicFormatError, "header claims")
    if alpha < 1 or seg_factor < 1:
        raise DsslicFormatError("header has a zero scale factor")
    if res_min > res_max:
        raise DsslicFormatError("header has residual min > max")
    h = Header(width, height, alpha, model_id, segmenter_id, num_labels, seg_factor, res_min, res_max)
    expected = [LayerKind.SEG, LayerKind.COMPACT, LayerKind.RESIDUAL]
    total = r.pos + sum(t[3] for t in table)
    if total > len(data):
        raise DsslicFormatError(f"file is truncated: layers need {total} bytes, file has {len(data)}")
    if total < len(data):
        raise DsslicFormatError(f"file has {len(data) - total} unexpected bytes after the last layer")
    for i, (kind, codec_id, q, length, crc) in enumerate(table):
        if i >= len(expected) or kind != expected[i]:
            raise DsslicFormatError(f"layer {i} has kind {kind}; layers must be seg, compact, residual in order")
        codec = codecs.by_id(codec_id)
        if codec.name not in LAYER_CODECS[kind]:
            raise DsslicFormatError(f"{LayerKind(kind).name.lower()} layer cannot be coded with {codec.name}")
        payload = r.take(length, f"layer {LayerKind(kind).name.lower()}")
        if zlib.crc32(payload) != crc:
            raise DsslicFormatError(f"{LayerKind(kind).name.lower()} layer checksum mismatch (file is corrupt)")
        h.layers.append(Layer(LayerKind(kind), codec_id, payload, None if q == 255 else q))
    if len(h.layers) < 2:
        raise DsslicFormatError("file lacks the base and first enhancement layers")
    return h
