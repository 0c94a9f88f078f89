"""The DSSLIC codec: Algorithm 1 of the paper, closed loop, on real bitstreams.

Encode(x):
    s  <- SegNet(x)                    base layer, lossless
    c  <- CompNet(x, s)                first enhancement layer, 8-bit (lossless, or lossy at a quality chosen
                                       jointly with the residual's)
    x' <- RecNet(decoded s, decoded c) exactly what the decoder will compute
    r  <- x - x'                       second enhancement layer, lossy: a residual coder (dsslic.residual;
                                       the paper's: min/max-rescaled, through an image codec)
Decode(s, c, r):
    x' <- RecNet(s, c);  x~ <- x' + r^

x' is rounded to 8 bits on both sides, so the residual is an integer image and its range is exact.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from . import bitstream, codecs, residual
from .bitstream import Header, Layer, LayerKind
from .errors import DsslicFormatError, DsslicInputError
from .imageio import DEFAULT_MAX_PIXELS, ImageLike, load_image
from .residual import ResidualCoding
from .roi import Roi
from .roi import resolve as resolve_roi
from .tiling import pad_min as _pad_min
from .tiling import pad_to as _pad_to

if TYPE_CHECKING:  # torch, the networks and segmenters are imported when a Codec is made, not before:
    import torch  # a bad file is refused without paying for them

    from . import enhance, models, restoration, segmenters
    from .segmenters.labelspace import LabelSpace

Layers = Literal["seg", "coarse", "full"]

#: a label-free model's map is stored at the finest of these resolutions whose base layer fits the budget
AUTO_SEG_FACTORS = (4, 8, 16)
LABEL_BUDGET_BPP = 0.006
#: codecs for the compact image c (names as ``--compact-codec`` takes them): the paper's lossless JPEG XL, or
#: a lossy one (closed loop: x' is computed from the decoded c on both sides)
COMPACT_CODECS = {"jxl-lossless": "jxl", "hevc": "hevc", "avif": "avif", "jxl": "jxl-lossy"}
DEFAULT_COMPACT = "hevc"
#: the joint rule, fitted on training photos (benchmarks/joint_rule.py): an HEVC c at QP = residual QP + K,
#: the coarse preview (no residual) at COARSE_QP, other residual codecs with c at the rule's value for QP 29.
#: K = 25 (reports/joint_rule.md, 10-bit residual, `general`): BD-rate fell with every larger K up to 25, where c
#: sits at QP 47-51 at every eval setting; the residual, not c, is where bits buy PSNR
JOINT_K = 25
COARSE_QP = 22
COMPACT_DEFAULTS = {"avif": 80, "jxl": 90}  # lossy c by other codecs, when no quality is given


def compact_quality(compact: str, residual: str, quality: int | None) -> int | None:
    """c's quality from the residual's setting (the joint rule); None for a lossless c."""
    if compact == "jxl-lossless":
        return None
    if compact != "hevc":
        return COMPACT_DEFAULTS[compact]
    if residual == "none":
        return COARSE_QP
    q_res = quality if residual == "hevc" and quality is not None else codecs.get("hevc").default_quality
    return int(np.clip(q_res + JOINT_K, 0, 51))


@dataclass
class EncodeResult:
    """A compressed file and what the encoder knows about it (all from real bytes)."""

    data: bytes
    width: int
    height: int
    layer_bytes: dict[str, int] = field(default_factory=dict)
    quality: int | None = None  # the residual's setting, as the residual layer stores it (None: no residual)
    compact_quality: int | None = None
    psnr_coarse: float | None = None
    psnr: float | None = None

    @property
    def bpp(self) -> float:
        """Bits per pixel over all channels (the field's unit): 8 * file bytes / (W * H)."""
        return 8 * len(self.data) / (self.width * self.height)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR over all channels of two uint8 images (one MSE over R, G and B)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def stored_samples(n: int, f: int) -> np.ndarray:
    """Which of n rows (or columns) a map stored at 1/f keeps: the centre of each f-cell of the map padded
    symmetrically to a multiple of f (indices past the end mirror back, as ``np.pad(mode="symmetric")``)."""
    p = (np.arange(-(-n // f)) * f + f // 2) % (2 * n)
    return np.where(p < n, p, 2 * n - 1 - p)


def _upscale_labels(s: np.ndarray, f: int, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour upscaling of a label map stored at 1/f of the size, indexed straight to (h, w): nothing
    larger than the output is made, whatever f is."""
    if f == 1:
        return s
    return np.take(np.take(s, np.arange(h) // f, axis=0), np.arange(w) // f, axis=1)


def render_labels(hd: Header, s: np.ndarray, space: LabelSpace | None = None) -> np.ndarray:
    """The label map in colour, in the palette of the file's own label space (no network: torch-free)."""
    from .segmenters import labelspace

    ls = space or labelspace.by_id(hd.segmenter_id)
    if ls is None:
        warnings.warn(f"unknown label space {hd.segmenter_id.hex()}: the map is shown in a generic palette",
                      stacklevel=2)
    return labelspace.colorize(s, ls.palette if ls is not None else None)


def seg_layer(s_stored: np.ndarray) -> Layer:
    """The base layer: the label map coded by whichever lossless coder makes it smallest (2 bytes if uniform)."""
    if (s_stored == s_stored.flat[0]).all():
        names = ["const"]
    else:
        names = ["jxl", "labelmap"] if s_stored.dtype == np.uint8 else ["jxl"]
    coded = [(codecs.get(n).encode(s_stored), codecs.get(n).id) for n in names]
    data, codec_id = min(coded, key=lambda t: len(t[0]))
    return Layer(LayerKind.SEG, codec_id, data)


@dataclass
class DecodedLayers:
    """The payloads of a file, decoded by their codecs (no network involved)."""

    s: np.ndarray  # label map at full size
    c8: np.ndarray | None = None  # compact image
    residual: object = None  # the residual layer as far as it decodes without x' and c (its coder's unpack)


def _decode_layer(hd: Header, kind: LayerKind, shape: tuple[int, ...]) -> np.ndarray:
    layer = hd.layer(kind)
    assert layer is not None  # parse() checked that the codec exists and fits this layer
    arr = codecs.by_id(layer.codec_id).decode(layer.data, shape)
    allowed = (np.uint8, np.uint16) if kind == LayerKind.SEG else (np.uint8,)
    if arr.dtype not in allowed or arr.shape != tuple(shape):  # float or NaN label maps, 16-bit images, ...
        raise DsslicFormatError(f"{kind.name.lower()} layer decodes to {arr.dtype} {arr.shape}, expected "
                                f"{' or '.join(np.dtype(t).name for t in allowed)} {tuple(shape)} (8-bit samples)")
    return arr


def decode_layers(hd: Header, layers: Layers = "full") -> DecodedLayers:
    """Decode the layers that ``layers`` needs, checking each against the header."""
    h, w = hd.height, hd.width
    s = _decode_layer(hd, LayerKind.SEG, hd.seg_shape)
    if hd.num_labels and int(s.max(initial=0)) >= hd.num_labels:
        raise DsslicFormatError(f"label map has id {int(s.max())}, the header says {hd.num_labels} labels")
    out = DecodedLayers(_upscale_labels(s, hd.seg_factor, h, w))
    if layers != "seg":
        out.c8 = _decode_layer(hd, LayerKind.COMPACT, hd.compact_shape)
    res = hd.layer(LayerKind.RESIDUAL)
    if layers == "full" and res is not None:
        out.residual = residual.class_for_layer(res).unpack(res, (h, w, 3))
    return out


class Codec:
    """Loaded networks for repeated use: ``Codec().compress(img)`` / ``.decompress(data)``."""

    def __init__(
        self,
        model: str | models.DsslicModel | None = None,
        segmenter: str | segmenters.Segmenter | None = None,
        device: str = "cpu",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        tile: int = 1024,
        overlap: int = 128,
        seg_factor: int | None = None,
        label_budget_bpp: float = LABEL_BUDGET_BPP,
        enhance: str | enhance.EnhanceModel | None = None,
        residual_coding: ResidualCoding | None = None,
        restore: str | bool | restoration.RestoreFilter | None = None,
    ) -> None:
        from . import npnet, zoo

        # a lean model runs in numpy (dsslic.npnet, on the CPU: no torch import), on both sides of a file
        self.model: models.DsslicModel | npnet.LeanRecNet | None = npnet.model_for(model or zoo.default_model())
        self.device: torch.device | None = None
        if self.model is None:
            import torch

            from . import models

            if device.startswith("cuda") and not torch.cuda.is_available():
                raise DsslicInputError("--device cuda asked for, but PyTorch sees no CUDA device")
            self.device = torch.device(device)
            m = models.load(model or zoo.default_model()) if not isinstance(model, models.DsslicModel) else model
            self.model = m.to(self.device).eval()
        self._segmenter_arg, self._segmenter, self._segmenter_device = segmenter, None, device
        self.max_pixels = max_pixels
        self.alpha = self.model.alpha
        # networks run in overlapping tiles of tile x tile pixels (full resolution) on large images
        self.tile, self.overlap = tile, overlap
        if seg_factor is not None and not 1 <= seg_factor <= 255:
            raise DsslicInputError("seg_factor must be in 1..255")
        self.seg_factor = seg_factor  # the label map is stored at 1/seg_factor of the size (None: chosen per image)
        self.label_budget_bpp = label_budget_bpp
        # what the residual coders are configured with: the residual's mapping and HEVC choices, the learned
        # layer's model (a name, a path or a model; loaded when needed), how its transforms are tiled
        self.residual_options = residual.Options(residual_coding or ResidualCoding(), enhance, self._enhance_tiles)
        # the decoder's restoration filter (dsslic.restoration): None = the model's shipped one if any, False = off
        self._restore_arg, self._restore_net, self._restore_found = restore, None, False
        self._file_filters: dict[bytes, restoration.RestoreFilter] = {}  # filters that decoded files name, by id
        self.restore_always = False  # the encoder names the filter only in files where it raises the PSNR

    @property
    def residual_coding(self) -> ResidualCoding:
        return self.residual_options.coding

    @property
    def segmenter(self) -> segmenters.Segmenter:
        """The encoder's segmenter, made when first needed (a decoder never needs one). A model trained with label
        maps needs its own segmenter's; a label-free one still stores a real map (for search and per-object
        coding): the default segmenter's."""
        if self._segmenter is None:
            from . import segmenters

            seg = self._segmenter_arg
            if seg is None:
                seg = self.model.segmenter if self.model.num_labels else segmenters.default_name()
            seg = segmenters.get(seg, device=self._segmenter_device) if isinstance(seg, str) else seg
            if self.model.num_labels and seg.num_labels > self.model.num_labels:
                raise DsslicInputError(f"segmenter {seg.name!r} has {seg.num_labels} labels; "
                                       f"model {self.model.name!r} takes {self.model.num_labels}")
            self._segmenter = seg
        return self._segmenter

    @property
    def encoder_tag(self) -> str:
        """The encoder's choices beyond the model (default c codec, joint rule, residual coding): eval's cache
        keys on it, so rows made with other choices are not reused."""
        net = self.restorer()
        return (f"c={DEFAULT_COMPACT}:K{JOINT_K:+d}:coarse{COARSE_QP}:res={self.residual_coding.tag}"
                + (f":restore={net.filter_id.hex()}" if net is not None else ""))

    def restorer(self, filter_id: bytes | None = None) -> restoration.RestoreFilter | None:
        """The restoration filter: the encoder's (None when off or when the model has none), or the one a file
        names (``filter_id``): the one given if it matches, else the shipped filter with that id."""
        arg = self._restore_arg
        if arg is False:
            return None
        if not self._restore_found:  # looked up once, even when the model has none
            self._restore_net, self._restore_found = self._given_restorer(arg), True
        net = self._restore_net
        if filter_id is None or (net is not None and net.filter_id == filter_id):
            return net
        if net is not None and arg is not None:
            raise DsslicFormatError(f"file needs restoration filter id {filter_id.hex()}; the one given is "
                                    f"{net.filter_id.hex()}")
        from . import restoration

        if filter_id not in self._file_filters:  # an older file's filter: for decoding only, never the encoder's
            self._file_filters[filter_id] = restoration.by_id(filter_id)
        return self._file_filters[filter_id]

    def _given_restorer(self, arg: object) -> restoration.RestoreFilter | None:
        """The filter given (a filter, training's torch network, a name or a path), or with none given the
        model's shipped one if any; always the numpy runtime (restoration.RestoreFilter)."""
        from . import restoration

        if arg is not None and not isinstance(arg, str):
            return restoration.runtime(arg)
        if (path := restoration.find(arg or self.model.name)) is None:
            if arg is not None:
                raise DsslicInputError(f"--restore {arg}: no such restoration filter")
            return None
        return restoration.load(path)

    def _restored(self, res: Layer, x_tilde: np.ndarray, x_coarse: np.ndarray, s: np.ndarray) -> np.ndarray:
        """x^ = filter(x~, x', s, q) when the residual layer names a filter (and it is not turned off); q from the
        field's QP and the layer's range and bits (restoration.strength)."""
        if "restore" not in res.params or self._restore_arg is False:
            return x_tilde
        from . import restoration

        fid, qp = res.params["restore"]  # type: ignore[misc]
        q = restoration.strength(qp, *res.param("range"), res.param("bits"))  # type: ignore[misc]
        return self.restorer(fid)(x_tilde, x_coarse, s, q, self.tile)  # type: ignore[misc]

    def _restore_encode(self, x: np.ndarray, layer: Layer, x_hat: np.ndarray, p_hat: float, x_coarse: np.ndarray,
                        s: np.ndarray) -> float:
        """Name the filter in the residual layer when it raises this image's PSNR ``p_hat`` (or always, with
        ``restore_always``); the PSNR of the decoder's image either way."""
        if (net := self.restorer()) is None:
            return p_hat
        layer.params["restore"] = (net.filter_id, layer.quality)
        p_rest = psnr(x, self._restored(layer, x_hat, x_coarse, s))
        if self.restore_always or p_rest > p_hat:
            return p_rest
        del layer.params["restore"]
        return p_hat

    def residual_coder(self, choice: str) -> residual.ResidualCoder:
        """The coder of a ``--residual`` choice, configured as this Codec is."""
        return residual.for_choice(choice, self.residual_options)

    def _enhance_tiles(self, fn, ins, facs, out_f):
        """How the enhancement layer runs its full-size transforms: in overlapping tiles on large images."""
        from .tiling import tiled

        return tiled(fn, ins, facs, out_f, (ins[0].shape[-2] * facs[0], ins[0].shape[-1] * facs[0]), self.tile,
                     self.overlap, align=64)

    # ------------------------------------------------------------------ networks on numpy arrays
    def _img_tensor(self, x: np.ndarray) -> torch.Tensor:
        import torch

        return torch.from_numpy(np.array(x, dtype=np.uint8, order="C")).to(self.device).permute(2, 0, 1)[None].float() / 255

    def _label_tensor(self, s: np.ndarray) -> torch.Tensor | None:
        import torch

        if not self.model.num_labels:
            return None
        return torch.from_numpy(s.astype(np.int64)).to(self.device)[None]

    @staticmethod
    def _to_uint8(t: torch.Tensor) -> np.ndarray:
        import torch

        return (t[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()

    def _tiled(self, fn, inputs, factors, out_factor, size) -> torch.Tensor:
        from .tiling import tiled

        # tiles aligned so that FineNet's three stride-2 layers see whole pixels at 1/alpha too
        return tiled(fn, inputs, factors, out_factor, size, self.tile, self.overlap, align=8 * self.alpha)

    def compact(self, x_pad: np.ndarray, s_pad: np.ndarray) -> np.ndarray:
        """c = CompNet(x, s), rounded to the 8-bit image that is stored."""
        if self.device is None:  # the numpy runtime's area c: exact integer block means, no tiles needed
            return self.model.compact(x_pad)
        import torch

        h, w = x_pad.shape[:2]
        x_pad, s_pad = _pad_min(x_pad, self.model.min_size), _pad_min(s_pad, self.model.min_size)
        with torch.inference_mode():
            x, s = self._img_tensor(x_pad), self._label_tensor(s_pad)
            c = self._tiled(self.model.compact, [x, s], [1, 1], self.alpha, x_pad.shape[:2])
            return self._to_uint8(c)[: h // self.alpha, : w // self.alpha]

    def recnet(self, s_pad: np.ndarray, c8: np.ndarray) -> np.ndarray:
        """x' = RecNet(s, c) from the decoded layers, rounded to 8 bits (both sides do the same)."""
        h, w = s_pad.shape[:2]
        s_pad = _pad_min(s_pad, self.model.min_size)
        c8 = _pad_min(c8, self.model.min_size // self.alpha)
        if self.device is None:  # the numpy runtime, in the same tiles (channels first, as tiled() cuts them)
            x = self._tiled(lambda s, c: self.model.reconstruct(c.transpose(1, 2, 0), s if s is None else s[0]
                                                                ).transpose(2, 0, 1),
                            [s_pad[None] if self.model.num_labels else None, c8.transpose(2, 0, 1)],
                            [1, self.alpha], 1, s_pad.shape[:2])
            return np.ascontiguousarray(x.transpose(1, 2, 0)[:h, :w])
        import torch

        def run(s: torch.Tensor | None, c: torch.Tensor) -> torch.Tensor:  # one tile, rounded to 8 bits there
            x = self.model.reconstruct(None if s is None else s.long(), c)
            return (x.clamp(0, 1) * 255).round().to(torch.uint8)

        with torch.inference_mode():  # labels and output stay 8-bit at full size: float only inside a tile
            s = None if not self.model.num_labels else torch.from_numpy(
                s_pad if s_pad.dtype == np.uint8 else s_pad.astype(np.int32)).to(self.device)[None]
            x = self._tiled(run, [s, self._img_tensor(c8)], [1, self.alpha], 1, s_pad.shape[:2])
            return x[0].permute(1, 2, 0).cpu().numpy()[:h, :w]

    # ------------------------------------------------------------------ Algorithm 1: encoder
    def _seg_layer(self, x: np.ndarray) -> tuple[Layer, np.ndarray, int]:
        """The base layer, the label map the decoder will have, and its storage factor."""
        h, w = x.shape[:2]
        f, s_stored, s_layer = self._store_labels(self.segmenter.sampler(x), h, w)  # s <- SegNet(x), as stored
        return s_layer, _upscale_labels(s_stored, f, h, w), f

    def _base_layers(self, x: np.ndarray, seg: tuple[Layer, np.ndarray, int], compact: str, q_c: int | None
                     ) -> tuple[Header, np.ndarray, np.ndarray]:
        """Base and first enhancement layers, and x' computed from their decoded content."""
        h, w = x.shape[:2]
        s_layer, s, f = seg
        c_codec = codecs.get(COMPACT_CODECS[compact])
        x_pad = _pad_to(x, self.alpha)
        s_pad = _pad_to(s, self.alpha)
        c8 = self.compact(x_pad, s_pad)  # c <- CompNet(x, s)
        c_layer = Layer(LayerKind.COMPACT, c_codec.id, c_codec.encode(c8, q_c), c_codec.check_quality(q_c))
        c8 = c_codec.decode(c_layer.data, c8.shape)  # closed loop: the c the decoder will have

        x_coarse = self.recnet(s_pad, c8)[:h, :w]  # x' <- RecNet(s, c)
        header = Header(
            width=w, height=h, alpha=self.alpha, model_id=self.model.model_id,
            segmenter_id=self.segmenter.id, num_labels=self.segmenter.num_labels,
            seg_factor=f, layers=[s_layer, c_layer],
        )
        return header, x_coarse, c8

    def _store_labels(self, sample: Callable[[np.ndarray, np.ndarray], np.ndarray], h: int, w: int
                      ) -> tuple[int, np.ndarray, Layer]:
        """The base layer: the map at 1/seg_factor, from ``sample`` (rows, columns -> the segmenter's labels there:
        only the samples stored are computed). A label-free model's map is side information (search, ROI): with
        ``seg_factor=None`` it is stored at the finest of 1/4, 1/8, 1/16 that fits ``label_budget_bpp``; a map the
        user gives or one the model reads pixel by pixel at full resolution, and one whose stored samples are all
        one label as that label at full size (2 bytes)."""
        if self.seg_factor is not None:
            factors = [self.seg_factor]
        elif self.model.full_map or self.segmenter.exact:
            factors = [1]
        else:
            factors = list(AUTO_SEG_FACTORS)
        for f in factors:
            s_stored = sample(stored_samples(h, f), stored_samples(w, f))
            if f != 1 and (s_stored == s_stored.flat[0]).all() and self.seg_factor is None:
                f, s_stored = 1, np.full((h, w), s_stored.flat[0], s_stored.dtype)  # uniform: one label, 2 bytes
            layer = seg_layer(s_stored)
            if f == 1 or 8 * len(layer.data) <= self.label_budget_bpp * h * w:
                break
        return f, s_stored, layer

    def encode(
        self,
        image: ImageLike,
        residual: str = "hevc",
        quality: int | None = None,
        target_bpp: float | None = None,
        verify: bool = False,
        compact: str | None = None,
        compact_q: int | None = None,
        roi: str | Sequence[str] | Roi | None = None,
        roi_boost: int | None = None,
    ) -> EncodeResult:
        """Compress ``image`` into one ``.dsslic`` file.

        ``residual`` is a choice of :func:`residual.names` or ``"none"`` (coarse layers only); ``quality`` is
        its native setting (QP for hevc; None: its default, resolved here, so ``EncodeResult.quality`` is what
        the header stores); ``target_bpp`` instead searches the setting whose whole file comes closest under
        that many bits per pixel (bisection on real encodes). ``compact`` codes c (:data:`COMPACT_CODECS`;
        default hevc, or the residual coder's own, e.g. the paper's ``jxl-lossless`` under a learned residual,
        whose models were trained on it) at ``compact_q``, or else at the quality the joint rule
        :func:`compact_quality` gives for the residual's setting. ``roi`` (class names of the label space, with
        ``roi_boost`` in QP steps, default 6) spends more of the residual's bits on those classes (dsslic.roi).
        """
        if target_bpp is not None and residual == "none":
            raise DsslicInputError("--target-bpp sets the residual's quality; with --residual none there is none to set")
        x = load_image(image, self.max_pixels)
        h, w = x.shape[:2]
        coder = self.residual_coder(residual) if residual != "none" else None
        compact = compact or (coder and coder.default_compact) or DEFAULT_COMPACT
        if compact not in COMPACT_CODECS:
            raise DsslicInputError(f"unknown compact codec {compact!r}; choose from {', '.join(COMPACT_CODECS)}")
        if coder is not None and target_bpp is None:
            quality = coder.check_quality(quality)
        region = None if roi is None and roi_boost is None else self.roi(roi, roi_boost, residual)
        seg = self._seg_layer(x)
        bases: dict[int | None, tuple[Header, np.ndarray, np.ndarray]] = {}  # per quality of c, for the search

        def finish(quality: int | None) -> EncodeResult:
            q_c = compact_q if compact_q is not None else compact_quality(compact, residual, quality)
            if q_c not in bases:
                bases[q_c] = self._base_layers(x, seg, compact, q_c)
            header, x_coarse, c8 = bases[q_c]  # s, c and x' <- RecNet(s, c)
            hd = Header(**{**header.__dict__, "layers": list(header.layers)})
            p_coarse = p_hat = psnr(x, x_coarse)
            if coder is not None:  # r = x - x' coded given x' and c; x~ = x' + r^, the decoder's
                layer, x_hat = coder.encode(x, x_coarse, c8, quality, region, seg[1])
                hd.layers.append(layer)
                p_hat = psnr(x, x_hat)
                if residual == "hevc" and region is None:  # x^ <- filter(x~, x', s, q) where it helps
                    p_hat = self._restore_encode(x, layer, x_hat, p_hat, x_coarse, seg[1])
            data = bitstream.serialize(hd)
            sizes = {k.kind.name.lower(): len(k.data) for k in hd.layers}
            stored = hd.layers[-1].quality if coder is not None else None
            return EncodeResult(data, w, h, sizes, stored, q_c, p_coarse, p_hat)

        if target_bpp is None or coder is None:
            res = finish(quality if coder is not None else None)
        else:
            res = self._search_quality(finish, coder, target_bpp)
            if verify:
                res = finish(res.quality)
        if verify:
            decoded = self.decode(res.data)
            if res.psnr is not None and abs(psnr(x, decoded) - res.psnr) > 1e-9:
                raise RuntimeError("verification failed: the decoded file differs from the encoder's reconstruction")
        return res

    @staticmethod
    def _search_quality(finish, rc: residual.ResidualCoder, target_bpp: float) -> EncodeResult:
        """Best setting whose total file fits under ``target_bpp`` (quality assumed monotone in size)."""
        lo, hi = rc.quality_range
        order = list(range(lo, hi + 1)) if rc.higher_is_better else list(range(hi, lo - 1, -1))  # worst..best
        a, b = 0, len(order) - 1
        best = finish(order[0])
        if best.bpp > target_bpp:
            warnings.warn(
                f"target {target_bpp} bpp is below what the base layers and the coarsest residual take "
                f"({best.bpp:.4f} bpp); using the coarsest setting",
                stacklevel=3,
            )
            return best
        while a < b:  # invariant: order[a] fits
            mid = (a + b + 1) // 2
            res = finish(order[mid])
            if res.bpp <= target_bpp:
                a, best = mid, res
            else:
                b = mid - 1
        return best

    # ------------------------------------------------------------------ Algorithm 1: decoder
    def _check_model(self, hd: Header) -> None:
        if hd.model_id != self.model.model_id or hd.alpha != self.alpha:
            raise DsslicFormatError(
                f"file was made with model id {hd.model_id.hex()} (alpha {hd.alpha}); this decoder holds "
                f"model {self.model.name!r} (id {self.model.model_id.hex()}); pass --model with the right one"
            )

    def decode(self, data: bytes, layers: Layers = "full") -> np.ndarray:
        """Decode a ``.dsslic`` file to uint8 HxWx3: the label map rendered (``seg``), x' (``coarse``) or x~."""
        hd = bitstream.parse(data, self.max_pixels)
        return self.reconstruct(hd, decode_layers(hd, layers), layers)

    def reconstruct(self, hd: Header, lay: DecodedLayers, layers: Layers = "full") -> np.ndarray:
        """The decoder's network part, from a parsed header and its decoded layers."""
        if layers == "seg":
            return render_labels(hd, lay.s)
        self._check_model(hd)
        x_coarse = self.recnet(_pad_to(lay.s, self.alpha), lay.c8)[: hd.height, : hd.width]  # x' <- RecNet(s, c)
        res = hd.layer(LayerKind.RESIDUAL)
        if layers == "coarse" or res is None:
            return x_coarse
        coder = residual.for_layer(res, self.residual_options)
        x_tilde = coder.decode(res, x_coarse, lay.c8, lay.s, lay.residual)  # x~ <- x' + r^
        return self._restored(res, x_tilde, x_coarse, lay.s)  # x^ <- filter(x~, x', s, q) if the file names one

    def roi(self, classes: str | Sequence[str] | Roi | None, boost: int | None = None, residual: str = "hevc") -> Roi:
        """A region of interest in the label space this codec stores (bad classes, boost or residual: input error)."""
        if classes is None:
            raise DsslicInputError("--roi-boost needs --roi")
        if residual == "none":
            raise DsslicInputError(f"--roi weights a coded residual; --residual {residual} has none to weight")
        if isinstance(classes, Roi):
            return classes
        return resolve_roi(classes, boost, self.segmenter.class_names, self.segmenter.name)

    # ------------------------------------------------------------------ API conveniences
    def compress(self, image: ImageLike, **kw) -> bytes:
        return self.encode(image, **kw).data

    def decompress(self, data: bytes, layers: Layers = "full") -> np.ndarray:
        return self.decode(data, layers)

