"""The second enhancement layer: residual coders behind one interface (the last step of Algorithm 1).

    encode:  r = x - x'                       (x' = RecNet(s, c): exactly the decoder's prediction)
             r <- r * g(s)                    with a region of interest (dsslic.roi), g known to the decoder
             layer, r^ = coder.code(r, x', c)
    decode:  r^ = coder.residual(layer, x', c);  r^ <- r^ / g(s)
             x~ = clip(round(x' + r^))

A coder owns its layer: the codec id, the quality byte and the parameters it needs (the min/max range and
sample depth of :class:`MinMaxCoder`, the model id inside a :class:`LearnedCoder` payload). The ROI step and the
final addition are the base class's, so every coder gets them. ``--residual`` names a *choice*
(:data:`CHOICES`): the codec its layers are written with; the coder of a codec is the one in :data:`CODERS` that
claims it (``layer_codecs``), else ``minmax`` (any image codec). Encoding finds the coder by the choice, decoding
by the layer's codec id (:func:`for_layer`). This module and the coders' modules import without torch (a coder
that needs it imports it when it runs).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from . import bitstream, codecs
from .bitstream import MAX_QUALITY, Layer, LayerKind
from .errors import DsslicFormatError, DsslicInputError
from .roi import Roi
from .roi import from_params as roi_from_params

if TYPE_CHECKING:
    from . import enhance

#: the decoded residual r^ on rows y0:y1 (float32, H' x W x 3): made band by band, so that a decoder holds
#: float temporaries for a band and not for the image
Rows = Callable[[int, int], np.ndarray]
BAND = 256


@dataclass(frozen=True)
class ResidualCoding:
    """How :class:`MinMaxCoder` maps the residual to samples and HEVC-codes it (encoder choices; the mapping is
    stored in the file).

    ``mapping``: ``"minmax"`` (the paper: [min, max] of r onto the full sample range) or ``"fixed"`` (r/2 + 128
    at 8 bits, r + 512 at 10 bits); ``bits``: 8, 10 or 12 (HEVC only); x265 ``tune``, chroma QP offset,
    ``preset`` and further ``x265`` parameters (``key=value:...``; speed against bytes, benchmarks/joint_rule.py).
    """

    mapping: str = "minmax"
    bits: int = 10  # measured best (benchmarks/joint_rule.py --sweep residual: -2.7% against 8 bits)
    tune: str = "ssim"  # at a fixed QP x265's ssim and psnr tunes code identically; "none" (psy-rd) differs
    chroma_offset: int = 0
    preset: str = "veryslow"  # BPG's; "slower" writes the same intra streams
    x265: str = ""

    def hevc(self) -> codecs.HevcCodec:
        return replace(codecs.get("hevc"), bits=self.bits, tune=self.tune, cbqpoffs=self.chroma_offset,
                       crqpoffs=self.chroma_offset, preset=self.preset, x265_params=self.x265)

    @property
    def tag(self) -> str:
        """Names the setting (eval caches key on it): the defaults' tag is the one earlier releases wrote."""
        extra = (f":{self.preset}" if self.preset != "veryslow" else "") + (f":{self.x265}" if self.x265 else "")
        return f"{self.mapping}{self.bits}:{self.tune}:{self.chroma_offset:+d}{extra}"


@dataclass
class Options:
    """What a :class:`~dsslic.codec.Codec` configures its coders with; ``cache`` holds what they load (one
    enhancement model per Codec, whichever coder instance asks)."""

    coding: ResidualCoding = field(default_factory=ResidualCoding)
    enhance: str | enhance.EnhanceModel | None = None  # the learned layer's model: a name, a path or a model
    tile: Callable | None = None  # how full-size transforms run on large images (dsslic.tiling.tiled)
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class ResidualCoder:
    """One way of coding r = x - x' given the decoder's x' and c. Subclasses give :attr:`name`,
    :attr:`layer_codecs` and the three methods of their own part: :meth:`code`, :meth:`unpack` and
    :meth:`residual`."""

    name: ClassVar[str]
    #: codec names of the residual layers it writes and reads; a codec no coder claims is ``minmax``'s
    layer_codecs: ClassVar[frozenset[str]] = frozenset()
    #: the compact image's codec when none is asked for (None: the Codec's default)
    default_compact: ClassVar[str | None] = None

    def __init__(self, choice: str | None = None, options: Options | None = None) -> None:
        self.choice = choice  # None: a decoder's (the layer names its codec)
        self.options = options or Options()

    # ---- the setting: the image codec's own scale, within what the layer table's byte stores
    def image_codec(self) -> codecs.LayerCodec:
        """The codec of the layers this coder writes for its choice."""
        return codecs.get(CHOICES[self.choice])  # type: ignore[index]

    @property
    def quality_range(self) -> tuple[int, int]:
        lo, hi = self.image_codec().quality_range
        return lo, min(hi, MAX_QUALITY)

    @property
    def higher_is_better(self) -> bool:
        return self.image_codec().higher_is_better

    @property
    def default_quality(self) -> int | None:
        return self.image_codec().default_quality

    def check_quality(self, quality: int | None) -> int | None:
        """The setting to code with (the codec's default for None), as the header will store it."""
        q = self.default_quality if quality is None else int(quality)
        lo, hi = self.quality_range
        if q is not None and not lo <= q <= hi:
            raise DsslicInputError(f"{self.choice}: quality {q} outside [{lo}, {hi}]")
        return q

    # ---- the coder's own part
    def code(self, r: np.ndarray, x_coarse: np.ndarray, c8: np.ndarray, quality: int | None,
             weighted: bool) -> tuple[Layer, Rows]:
        """Code r (int16, or float32 when ``weighted`` by a region's gain) into a layer; and r^, the decoder's."""
        raise NotImplementedError

    @classmethod
    def unpack(cls, layer: Layer, shape: tuple[int, int, int]) -> Any:
        """What of the layer decodes without x' and c (no network, no torch), checked against the header:
        a bad payload fails here, before any model is loaded."""
        raise NotImplementedError

    def residual(self, layer: Layer, unpacked: Any, x_coarse: np.ndarray, c8: np.ndarray) -> Rows:
        """r^ from the unpacked layer, given x' and c."""
        raise NotImplementedError

    # ---- shared: the region-of-interest step and x~ = x' + r^
    def encode(self, x: np.ndarray, x_coarse: np.ndarray, c8: np.ndarray, quality: int | None = None,
               region: Roi | None = None, labels: np.ndarray | None = None) -> tuple[Layer, np.ndarray]:
        """The residual layer of x given x' and c8, and x~ as the decoder will compute it."""
        r = x.astype(np.int16) - x_coarse.astype(np.int16)
        gain = region.gain_map(labels) if region is not None else None  # type: ignore[arg-type]
        if gain is not None:
            r = r * gain
        layer, rows = self.code(r, x_coarse, c8, self.check_quality(quality), gain is not None)
        if region is not None:
            layer.params.update(region.params)
        return layer, add_residual(x_coarse, rows, gain)

    def decode(self, layer: Layer, x_coarse: np.ndarray, c8: np.ndarray, labels: np.ndarray | None = None,
               unpacked: Any = None) -> np.ndarray:
        """x~ from the layer (``unpacked``: its :meth:`unpack`, if done already), x', c8 and the label map."""
        if unpacked is None:
            unpacked = self.unpack(layer, x_coarse.shape)
        region = roi_from_params(layer.params)
        gain = region.gain_map(labels) if region is not None else None  # type: ignore[arg-type]
        return add_residual(x_coarse, self.residual(layer, unpacked, x_coarse, c8), gain)


def add_residual(x_coarse: np.ndarray, rows: Rows, gain: np.ndarray | None = None) -> np.ndarray:
    """x~ = clip(round(x' + r^ / g)), in bands of rows."""
    out = np.empty(x_coarse.shape, np.uint8)
    for y in range(0, x_coarse.shape[0], BAND):
        r = rows(y, y + BAND)
        if gain is not None:  # a region of interest: its residual was coded amplified
            r = r / gain[y : y + BAND]
        out[y : y + BAND] = np.clip(np.rint(x_coarse[y : y + BAND].astype(np.float32) + r), 0, 255)
    return out


class MinMaxCoder(ResidualCoder):
    """The paper's residual: r min/max-rescaled (or at a fixed offset) to samples of 8 (10, 12) bits, coded by an
    image codec; the range and depth are the layer's parameters."""

    name = "minmax"

    def image_codec(self) -> codecs.LayerCodec:
        return self.options.coding.hevc() if self.choice == "hevc" else super().image_codec()

    @property
    def bits(self) -> int:
        return self.options.coding.bits if self.choice == "hevc" else 8

    def samples(self, r: np.ndarray, weighted: bool = False) -> tuple[np.ndarray, int, int]:
        """r mapped to samples of :attr:`bits` bits, and the range (lo, hi) they span: min/max-rescaled (the
        paper) or at a fixed offset; a weighted residual always min/max-rescaled (the offsets fit r alone)."""
        bits = self.bits
        top = (1 << bits) - 1
        if weighted:
            lo, hi = int(np.floor(r.min())), int(np.ceil(r.max()))
        elif self.options.coding.mapping == "fixed":  # r/2 + 128 at 8 bits, r + 512 at 10
            step = 2 if bits == 8 else 1
            lo = -step * (1 << (bits - 1))
            hi = lo + step * top
        else:
            lo, hi = int(r.min()), int(r.max())
        dtype = np.uint8 if bits == 8 else np.uint16
        if hi == lo:
            return np.zeros(r.shape, dtype), lo, hi
        rn = np.clip(np.rint((r - lo) * (top / (hi - lo))), 0, top).astype(dtype)
        return rn, lo, hi

    def code(self, r, x_coarse, c8, quality, weighted):
        rc = self.image_codec()
        rn, lo, hi = self.samples(r, weighted)
        payload = rc.encode(rn, quality)
        layer = Layer(LayerKind.RESIDUAL, rc.id, payload, rc.check_quality(quality),
                      {"range": (lo, hi), "bits": self.bits})
        return layer, self._rows(rc.decode(payload, rn.shape), layer)  # the decoder's r^ (closed loop)

    @classmethod
    def unpack(cls, layer, shape):
        arr = codecs.by_id(layer.codec_id).decode(layer.data, shape)
        bits = layer.param("bits")
        dtype = np.dtype(np.uint8 if bits == 8 else np.uint16)
        if arr.dtype != dtype or arr.shape != tuple(shape) or (bits > 8 and int(arr.max(initial=0)) >> bits):
            raise DsslicFormatError(f"residual layer decodes to {arr.dtype} {arr.shape}, expected {dtype.name} "
                                    f"{tuple(shape)} ({bits}-bit samples)")
        return arr

    def residual(self, layer, unpacked, x_coarse, c8):
        return self._rows(unpacked, layer)

    @staticmethod
    def _rows(rn: np.ndarray, layer: Layer) -> Rows:
        lo, hi = layer.param("range")  # type: ignore[misc]
        scale = (hi - lo) / float((1 << layer.param("bits")) - 1)  # type: ignore[operator]
        return lambda y0, y1: rn[y0:y1].astype(np.float32) * scale + lo


class LearnedCoder(ResidualCoder):
    """The learned layer (dsslic.enhance): x coded given x' and c by a conditional hyperprior model, whose id
    the payload names. Its input is an 8-bit image, so a region's amplified residual is coded as the image
    x' + g * r, clipped to 0..255 (a loss where it saturates)."""

    name = "learned"
    layer_codecs = frozenset({"learned"})
    default_compact = "jxl-lossless"  # what its models were trained on

    def model(self, model_id: bytes | None = None) -> enhance.EnhanceModel:
        """The enhancement model: the one given (encoding without one: the first shipped), or, decoding
        without one, the shipped model whose id the file names. One per :class:`Options`."""
        from . import enhance

        m = self.options.cache.get("enhance")
        if m is None:
            arg = self.options.enhance
            if arg is None:
                m = enhance.for_id(model_id) if model_id is not None else enhance.load(None)
            else:
                m = arg if isinstance(arg, enhance.EnhanceModel) else enhance.load(arg)
            self.options.cache["enhance"] = m = m.eval()
        if model_id is not None and model_id != m.model_id:
            raise DsslicFormatError(f"file needs learned enhancement model id {model_id.hex()}; the one given is "
                                    f"{m.model_id.hex()}")
        return m

    def code(self, r, x_coarse, c8, quality, weighted):
        target = x_coarse.astype(np.int16) + r if not weighted else np.rint(x_coarse.astype(np.float32) + r)
        x = np.clip(target, 0, 255).astype(np.uint8)  # x itself when r is not weighted
        payload, x_hat = self.model().compress(x, x_coarse, c8, self.options.tile)
        return Layer(LayerKind.RESIDUAL, codecs.get("learned").id, payload, quality), _difference(x_hat, x_coarse)

    @classmethod
    def unpack(cls, layer, shape):
        return layer.data  # range decoding needs the entropy parameters, computed from c by the model

    def residual(self, layer, unpacked, x_coarse, c8):
        x_hat = self.model(unpacked[:4]).decompress(unpacked, x_coarse, c8, self.options.tile)
        return _difference(x_hat, x_coarse)


def _difference(x_hat: np.ndarray, x_coarse: np.ndarray) -> Rows:
    """r^ of a coder that decodes to an image: x~ - x' (exact in float32, so x' + r^ gives x~ back)."""
    return lambda y0, y1: x_hat[y0:y1].astype(np.float32) - x_coarse[y0:y1].astype(np.float32)


# ---------------------------------------------------------------------------------------------- registry
#: the ``--residual`` choices -> the codec their layers are written with (``none`` is no layer): the format's one
#: list of residual codecs (bitstream.RESIDUAL_LAYER) is where a choice is added
CHOICES = bitstream.RESIDUAL_CODECS
#: every residual coder, by name: a class, or "module:Class" imported when first needed (a new coder is one
#: module and one line here, its choice one line in CHOICES)
CODERS: dict[str, type[ResidualCoder] | str] = {"minmax": MinMaxCoder, "learned": LearnedCoder}


def coder_class(name: str) -> type[ResidualCoder]:
    cls = CODERS[name]
    if isinstance(cls, str):
        module, _, attr = cls.partition(":")
        cls = CODERS[name] = getattr(importlib.import_module(module), attr)
    return cls  # type: ignore[return-value]


def class_for_codec(codec: str) -> type[ResidualCoder]:
    """The coder of residual layers coded with ``codec``: the one that claims it, else ``minmax`` (any image
    codec the format admits in the residual layer; bitstream.parse has checked it)."""
    for name in CODERS:
        cls = coder_class(name)
        if codec in cls.layer_codecs:
            return cls
    return MinMaxCoder


def class_for_layer(layer: Layer) -> type[ResidualCoder]:
    return class_for_codec(codecs.by_id(layer.codec_id).name)


def names() -> list[str]:
    """The ``--residual`` choices (without ``none``)."""
    return list(CHOICES)


def for_choice(choice: str, options: Options | None = None) -> ResidualCoder:
    """The coder of a ``--residual`` choice (an unknown name: DsslicInputError)."""
    if choice not in CHOICES:
        raise DsslicInputError(f"unknown residual codec {choice!r}; choose from {', '.join([*names(), 'none'])}")
    return class_for_codec(CHOICES[choice])(choice, options)


def for_layer(layer: Layer, options: Options | None = None) -> ResidualCoder:
    return class_for_layer(layer)(None, options)


def check_quality(choice: str, quality: int | None) -> int | None:
    """A ``--residual`` choice's setting checked against its range, torch-free (the CLI's early check)."""
    return for_choice(choice).check_quality(quality)
