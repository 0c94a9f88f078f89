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

#: The residual layer's codecs, the one list of them: codec name -> the name the encoder offers it by
#: (``--residual``, ``Codec.encode(residual=)``), or None for a codec readers accept there (allowed since version 1,
#: e.g. files of other writers and the fuzzers') that dsslic's encoder does not offer.
RESIDUAL_LAYER: dict[str, str | None] = {
    "hevc": "hevc", "avif": "avif", "jxl-lossy": "jxl", "webp": "webp", "jpeg2000": "jpeg2000", "learned": "learned",
    "hevc-rgb": None, "hevc420": None, "jpeg": None, "jxl": None, "png": None,
}
#: the residual codecs the encoder offers: choice -> codec name (derived from RESIDUAL_LAYER, in its order)
RESIDUAL_CODECS = {choice: name for name, choice in RESIDUAL_LAYER.items() if choice is not None}
# which codecs may code which layer: lossless ones for s, lossless or lossy 8-bit ones for c (since version 2),
# 3-channel ones for the residual
LAYER_CODECS = {
    0: {"const", "jxl", "png", "labelmap"},
    1: {"jxl", "png", "hevc", "avif", "jxl-lossy"},
    2: set(RESIDUAL_LAYER),
}
VERSION = 2  # written; version 1 (one global residual range, no layer parameters) is still read
#: the most any decoder step pads a side by (x265's 32-pixel minimum and FFmpeg's 64-pixel coding blocks, the
#: networks' multiples of alpha, the learned layer's multiples of 64): every array a decoder makes is at most
#: working_pixels(W, H) pixels, which parse() bounds by 2 * max(max_pixels, working_pixels(PAD, PAD))
PAD = 64


def working_pixels(width: int, height: int) -> int:
    """Pixels of the largest array decoding a WxH file can make: (W + PAD) x (H + PAD)."""
    return (width + PAD) * (height + PAD)

_MAX_VARINT_BYTES = 5  # 35 bits: far above any size the limits admit


class LayerKind(IntEnum):
    """The three DSSLIC layers, in the order they are stored."""

    SEG = 0  #: base layer: semantic segmentation map s (lossless)
    COMPACT = 1  #: first enhancement: compact image c = CompNet(x, s) (lossless)
    RESIDUAL = 2  #: second enhancement: residual x - x', min/max rescaled (lossy)


#: Per-layer parameters (version 2): name -> (tag, struct format). A format ending in ``*`` is a list of
#: that item. Stored as tag u8, length u8, value, in increasing tag order, after the layer's table entry.
PARAMS: dict[LayerKind, dict[str, tuple[int, str]]] = {
    LayerKind.SEG: {},
    LayerKind.COMPACT: {},
    # r = r_n * (hi - lo) / (2**bits - 1) + lo, r_n the decoded samples of ``bits`` bits
    # roi: label ids whose residual was multiplied by 2^(roi_boost/6) before coding (dsslic.roi)
    # restore: (filter id, QP it is told) of the decoder's restoration filter applied to x~ (dsslic.restoration)
    LayerKind.RESIDUAL: {"range": (1, "<hh"), "bits": (2, "<B"), "roi": (3, "<H*"), "roi_boost": (4, "<b"),
                         "restore": (5, "<4sB")},
}
PARAM_DEFAULTS: dict[str, object] = {"range": (0, 0), "bits": 8}
MAX_PARAMS_BYTES = 255  # the blob's length is one byte
RESIDUAL_BITS = (8, 10, 12)
#: a layer's setting is one byte in the layer table, 255 meaning none: settings above this cannot be stored
MAX_QUALITY = 254


@dataclass
class Layer:
    kind: LayerKind
    codec_id: int
    data: bytes
    quality: int | None = None  # informational: the codec setting used (not needed to decode)
    params: dict[str, object] = field(default_factory=dict)  # what decoding this layer needs, see PARAMS

    @property
    def crc(self) -> int:
        return zlib.crc32(self.data)

    def param(self, name: str) -> object:
        return self.params.get(name, PARAM_DEFAULTS.get(name))


def _fmt(fmt: str, n: int) -> str:
    """The struct format of a parameter holding n items ('<B*' with 3 items: '<BBB')."""
    return fmt[0] + fmt[1:-1] * n if fmt.endswith("*") else fmt


def _pack_params(layer: Layer) -> bytes:
    schema = PARAMS[layer.kind]
    out = bytearray()
    for name, (tag, fmt) in sorted(schema.items(), key=lambda kv: kv[1][0]):
        if name not in layer.params:
            continue
        v = layer.params[name]
        vals = tuple(v) if isinstance(v, (tuple, list)) else (v,)
        b = struct.pack(_fmt(fmt, len(vals)), *vals)
        out += bytes([tag, len(b)]) + b
    if set(layer.params) - set(schema):
        raise ValueError(f"{layer.kind.name.lower()} layer has no parameters {sorted(set(layer.params) - set(schema))}")
    if len(out) > MAX_PARAMS_BYTES:
        raise ValueError("layer parameters take more than 255 bytes")
    return bytes([len(out)]) + bytes(out)


def _parse_params(kind: int, blob: bytes) -> dict[str, object]:
    """The layer's parameters: known tags only, each once, in increasing order, of the right size."""
    by_tag = {tag: (name, fmt) for name, (tag, fmt) in PARAMS.get(LayerKind(kind), {}).items()}
    where = f"{LayerKind(kind).name.lower()} layer parameters"
    out: dict[str, object] = {}
    pos, last = 0, -1
    while pos < len(blob):
        if pos + 2 > len(blob):
            raise DsslicFormatError(f"{where} are truncated")
        tag, n = blob[pos], blob[pos + 1]
        val, pos = blob[pos + 2 : pos + 2 + n], pos + 2 + n
        if len(val) != n:
            raise DsslicFormatError(f"{where} are truncated")
        if tag not in by_tag:
            raise DsslicFormatError(f"{where} have unknown tag {tag} (file from a newer dsslic?)")
        if tag <= last:
            raise DsslicFormatError(f"{where} are repeated or out of order")
        name, fmt = by_tag[tag]
        is_list = fmt.endswith("*")
        size = struct.calcsize(fmt.rstrip("*"))
        if (n % size if is_list else n != size):
            raise DsslicFormatError(f"{where}: {name} has {n} bytes")
        vals = struct.unpack(_fmt(fmt, n // size), val)
        out[name] = vals if is_list or len(vals) > 1 else vals[0]
        last = tag
    return out


@dataclass
class Header:
    width: int
    height: int
    alpha: int  # downsampling factor of the compact image
    model_id: bytes  # 4 bytes: hash of the model's name and weights
    segmenter_id: bytes  # 4 bytes: hash of the segmenter's name and label set
    num_labels: int
    seg_factor: int = 1  # the label map is stored at ceil(H/seg_factor) x ceil(W/seg_factor)
    layers: list[Layer] = field(default_factory=list)

    # the residual's range (version 1 kept it in the header; since version 2 it is the residual layer's)
    @property
    def res_min(self) -> int:
        return self._res_range()[0]

    @res_min.setter
    def res_min(self, v: int) -> None:
        self._set_res_range(v, self.res_max)

    @property
    def res_max(self) -> int:
        return self._res_range()[1]

    @res_max.setter
    def res_max(self, v: int) -> None:
        self._set_res_range(self.res_min, v)

    def _res_range(self) -> tuple[int, int]:
        res = self.layer(LayerKind.RESIDUAL)
        return tuple(res.param("range")) if res is not None else (0, 0)  # type: ignore[return-value]

    def _set_res_range(self, lo: int, hi: int) -> None:
        res = self.layer(LayerKind.RESIDUAL)
        if res is None:
            raise ValueError("no residual layer to hold a range")
        res.params["range"] = (int(lo), int(hi))

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
    head.append(len(h.layers))
    for layer in h.layers:
        q = 255 if layer.quality is None else layer.quality
        if not 0 <= q <= MAX_QUALITY and layer.quality is not None:
            raise ValueError(f"layer setting {q} does not fit the layer table (0..{MAX_QUALITY})")
        head += bytes([int(layer.kind), layer.codec_id, q]) + _pack_params(layer)
        head += _varint(len(layer.data)) + struct.pack("<I", layer.crc)
    head += struct.pack("<I", zlib.crc32(head))
    return bytes(head) + b"".join(layer.data for layer in h.layers)


def _check_params(kind: int, codec_name: str, params: dict[str, object]) -> None:
    lo, hi = params.get("range", PARAM_DEFAULTS["range"])  # type: ignore[misc]
    if lo > hi:
        raise DsslicFormatError("residual layer has range min > max")
    bits = params.get("bits", PARAM_DEFAULTS["bits"])
    if bits not in RESIDUAL_BITS or (bits != 8 and not codec_name.startswith("hevc")):
        raise DsslicFormatError(f"residual layer cannot have {bits}-bit samples with {codec_name}")
    if not -24 <= params.get("roi_boost", 0) <= 24 or params.get("roi", None) == ():  # type: ignore[operator]
        raise DsslicFormatError("residual layer has a region of interest boost outside -24..24 or no classes")


def parse(data: bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Header:
    """Parse and verify a ``.dsslic`` file. Raises DsslicFormatError on anything wrong."""
    r = _Reader(bytes(data))
    if len(data) == 0:
        raise DsslicFormatError("file is empty")
    magic = r.take(4, "magic number")
    if magic != MAGIC:
        raise DsslicFormatError("not a .dsslic file (wrong magic number)")
    version = r.u8("version")
    if version not in (1, VERSION):
        raise DsslicFormatError(f"unsupported format version {version} (this dsslic reads versions 1-{VERSION})")
    width, height = r.varint("width"), r.varint("height")
    alpha, seg_factor = r.u8("header"), r.u8("header")
    model_id, segmenter_id = r.take(4, "model id"), r.take(4, "segmenter id")
    num_labels = r.varint("number of labels")
    res_min, res_max = struct.unpack("<hh", r.take(4, "residual range")) if version == 1 else (0, 0)
    n_layers = r.u8("layer table")
    table = []
    for _ in range(n_layers):
        kind, codec_id, q = r.take(3, "layer table")
        blob = r.take(r.u8("layer table"), "layer parameters") if version > 1 else b""
        length = r.varint("layer table")
        (crc,) = struct.unpack("<I", r.take(4, "layer table"))
        table.append((kind, codec_id, q, length, crc, blob))
    head_end = r.pos
    (head_crc,) = struct.unpack("<I", r.take(4, "header checksum"))
    if zlib.crc32(data[:head_end]) != head_crc:
        raise DsslicFormatError("header checksum mismatch (file is corrupt)")

    # The header is intact: now check that what it says is possible.
    check_size(width, height, max_pixels, DsslicFormatError, "header claims")
    if max_pixels is not None and working_pixels(width, height) > 2 * max(max_pixels, working_pixels(PAD, PAD)):
        raise DsslicFormatError(
            f"header claims {width}x{height}: so thin that decoding it pads to {working_pixels(width, height) / 1e6:.1f}"
            f" megapixels, over twice the limit of {max_pixels / 1e6:.1f} (raise it with max_pixels / --max-pixels)")
    if alpha < 1 or seg_factor < 1:
        raise DsslicFormatError("header has a zero scale factor")
    h = Header(width, height, alpha, model_id, segmenter_id, num_labels, seg_factor)
    expected = [LayerKind.SEG, LayerKind.COMPACT, LayerKind.RESIDUAL]
    total = r.pos + sum(t[3] for t in table)
    if total > len(data):
        raise DsslicFormatError(f"file is truncated: layers need {total} bytes, file has {len(data)}")
    if total < len(data):
        raise DsslicFormatError(f"file has {len(data) - total} unexpected bytes after the last layer")
    for i, (kind, codec_id, q, length, crc, blob) in enumerate(table):
        if i >= len(expected) or kind != expected[i]:
            raise DsslicFormatError(f"layer {i} has kind {kind}; layers must be seg, compact, residual in order")
        codec = codecs.by_id(codec_id)
        if codec.name not in LAYER_CODECS[kind]:
            raise DsslicFormatError(f"{LayerKind(kind).name.lower()} layer cannot be coded with {codec.name}")
        v1 = {"range": (res_min, res_max), "bits": 8} if kind == LayerKind.RESIDUAL else {}
        params = _parse_params(kind, blob) if version > 1 else v1
        _check_params(kind, codec.name, params)
        payload = r.take(length, f"layer {LayerKind(kind).name.lower()}")
        if zlib.crc32(payload) != crc:
            raise DsslicFormatError(f"{LayerKind(kind).name.lower()} layer checksum mismatch (file is corrupt)")
        h.layers.append(Layer(LayerKind(kind), codec_id, payload, None if q == 255 else q, params))
    if len(h.layers) < 2:
        raise DsslicFormatError("file lacks the base and first enhancement layers")
    return h
