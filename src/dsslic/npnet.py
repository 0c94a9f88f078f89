"""Torch-free inference for the project's small networks, in numpy float32: the lean RecNet, SegNetLite and (in
:mod:`dsslic.restoration`, with these operations) the decoder's restoration filter.

Why: importing torch takes 1.3 s on an idle machine (3 s and more on a loaded one), most of issue 16's 2 s budget for
a one-image ``compress`` + ``decompress`` round trip, while these networks are small enough (LeanFineNet about
4,900 multiply-accumulates per pixel) that numpy runs them about as fast. Training stays in torch; the weights are read
straight from the safetensors files with ``safetensors.numpy``. Nothing here imports torch.

Layout is channels-first (C, H, W), as torch's: a convolution is an im2col (the k*k shifted views, copied whole rows at
a time, in bands of output rows so that the temporary stays under :data:`BAND_BYTES`) and one ``matmul`` of torch's
(O, C*k*k) weight matrix with it. (Channels-last copies runs of only C samples: 5-10x slower on this CPU.)

Determinism: x' is computed on both sides of a file (closed loop), so a lean model always runs here, on the encoder
and on the decoder, and both must get the same floats. OpenBLAS (numpy's BLAS) does not give them across thread
counts: on products of these shapes its multi-threaded path rounds differently from its one-thread path (measured:
almost every output of a 256x384 filter convolution differs in its last bits, and x' of a Kodak image in 1 to 5
samples), so an encoder and a decoder with different ``OPENBLAS_NUM_THREADS`` (or cores) disagreed. Every network
here therefore runs its products on one BLAS thread (:func:`one_blas_thread`, with threadpoolctl), which costs
about 10% against two threads on an idle 2-core machine and saves 5x on a loaded one, where OpenBLAS's spinning
threads compete with other work. Band shapes depend only on the image size, so both sides run the same products
(tests/test_npnet.py checks 1 against 2 threads in subprocesses at a size OpenBLAS threads). What remains is
OpenBLAS's choice of kernel per CPU family: machines of different families may still differ in a last bit.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .errors import DsslicInputError

#: bound on one convolution's im2col temporary (bytes): peak memory stays linear in pixels, with a small constant
BAND_BYTES = 1 << 20  # the L2 of one core here: one-thread decode of a 768x512 image 208-213 ms against 257-289 ms
# with 8 MB bands, 235-239 ms with 512 KB (measured 2026-12-02); the band shape changes the floats (OpenBLAS's
# blocking), so it is part of what both sides of a file must agree on
BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


# ------------------------------------------------------------------------------------------------ one BLAS thread
class _OneBlasThread:
    """BLAS on one thread while any network here runs, in any thread of the process (a count, so that concurrent
    codecs, e.g. under Dask's threaded scheduler, never see the limit lifted under them); restored after the last."""

    def __init__(self) -> None:
        self._lock, self._active, self._limiter = threading.Lock(), 0, None

    @staticmethod
    @functools.cache
    def _controller():
        from threadpoolctl import ThreadpoolController

        return ThreadpoolController()

    def __enter__(self) -> None:
        with self._lock:
            if self._active == 0:
                self._limiter = self._controller().limit(limits=1, user_api="blas")
            self._active += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                self._limiter.restore_original_limits()  # type: ignore[union-attr]
                self._limiter = None


_ONE_BLAS_THREAD = _OneBlasThread()


def one_blas_thread(fn: Callable) -> Callable:
    """Decorator: ``fn`` runs its products on one BLAS thread (module docstring: the same floats on every side)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _ONE_BLAS_THREAD:
            return fn(*args, **kwargs)

    return wrapper


# ------------------------------------------------------------------------------------------------ operations
@dataclass
class Conv:
    """A 2-D convolution ready for im2col: weights as torch's (O, C*k*k) matrix, bias (O, 1), geometry."""

    w: np.ndarray
    b: np.ndarray
    k: int
    stride: int = 1
    dilation: int = 1
    pad: int = 0
    mode: str = "constant"  # or "edge" (torch's padding_mode="replicate")

    @classmethod
    def from_torch(cls, weight: np.ndarray, bias: np.ndarray | None = None, bn: Mapping[str, np.ndarray] | None = None,
                   **geometry) -> Conv:
        """From torch's (O, C, k, k) weight, with an eval-mode BatchNorm folded in (scale and shift per channel)."""
        w = np.asarray(weight, np.float64)
        b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, np.float64)
        if bn is not None:
            scale = np.asarray(bn["weight"], np.float64) / np.sqrt(np.asarray(bn["running_var"], np.float64) + BN_EPS)
            w = w * scale[:, None, None, None]
            b = (b - np.asarray(bn["running_mean"], np.float64)) * scale + np.asarray(bn["bias"], np.float64)
        return cls(np.ascontiguousarray(w.reshape(w.shape[0], -1), np.float32), b.astype(np.float32)[:, None],
                   w.shape[2], **geometry)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return conv2d(x, self)


def _pad(x: np.ndarray, p: int, mode: str) -> np.ndarray:
    """(C, H, W) padded by p on both spatial axes: zeros, or the border samples repeated (``edge``)."""
    c, h, w = x.shape
    out = np.empty((c, h + 2 * p, w + 2 * p), np.float32) if mode == "edge" else np.zeros((c, h + 2 * p, w + 2 * p),
                                                                                          np.float32)
    out[:, p: p + h, p: p + w] = x
    if mode == "edge":
        out[:, p: p + h, :p] = x[:, :, :1]
        out[:, p: p + h, p + w:] = x[:, :, -1:]
        out[:, :p] = out[:, p: p + 1]
        out[:, p + h:] = out[:, p + h - 1: p + h]
    return out


def conv2d(x: np.ndarray, conv: Conv) -> np.ndarray:
    """(C, H, W) float32 -> (O, Ho, Wo): padding, im2col in bands of output rows (copies along whole rows), and
    one matmul per band."""
    k, s, d, p = conv.k, conv.stride, conv.dilation, conv.pad
    if p:
        x = _pad(x, p, conv.mode)
    c, h, w = x.shape
    ho, wo = (h - d * (k - 1) - 1) // s + 1, (w - d * (k - 1) - 1) // s + 1
    o = conv.w.shape[0]
    if ho < 1 or wo < 1:
        raise ValueError(f"a {k}x{k} convolution needs more than {h}x{w} pixels")
    if k == 1 and s == 1:
        out = np.matmul(conv.w, x.reshape(c, h * w)).reshape(o, h, w)
        out += conv.b[:, :, None]
        return out
    band = max(1, BAND_BYTES // (4 * wo * k * k * c))
    out = np.empty((o, ho, wo), np.float32)
    for y0 in range(0, ho, band):
        n = min(band, ho - y0)
        cols = np.empty((c, k, k, n, wo), np.float32)
        for i in range(k):
            r = y0 * s + i * d
            for j in range(k):
                cols[:, i, j] = x[:, r: r + (n - 1) * s + 1: s, j * d: j * d + (wo - 1) * s + 1: s]
        y = np.matmul(conv.w, cols.reshape(c * k * k, n * wo))
        y += conv.b
        out[:, y0: y0 + n] = y.reshape(o, n, wo)
    return out


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


def leaky_relu(x: np.ndarray, slope: float = 0.1) -> np.ndarray:
    return np.maximum(x, slope * x, out=x)


def pixel_unshuffle(x: np.ndarray, r: int) -> np.ndarray:
    """torch.nn.PixelUnshuffle: (C, H*r, W*r) -> (C*r*r, H, W), the inverse of :func:`pixel_shuffle`."""
    c, hr, wr = x.shape
    out = np.empty((c, r, r, hr // r, wr // r), x.dtype)
    for i in range(r):  # r*r strided plane copies: 1.5x faster here than one copy of a 5-d transpose
        for j in range(r):
            out[:, i, j] = x[:, i::r, j::r]
    return out.reshape(c * r * r, hr // r, wr // r)


def pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    """torch.nn.PixelShuffle: (C*r*r, H, W) -> (C, H*r, W*r), channel c*r*r + i*r + j to offset (i, j)."""
    crr, h, w = x.shape
    c = crr // (r * r)
    out = np.empty((c, h * r, w * r), x.dtype)
    xv = x.reshape(c, r, r, h, w)
    for i in range(r):  # as above: 6-8x faster than the transpose (3-5 ms less per 768x512 decode)
        for j in range(r):
            out[:, i::r, j::r] = xv[:, i, j]
    return out


def _resize_taps(n_in: int, n_out: int, mode: str, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (n_out, taps) of torch's 1-D interpolation with align_corners=False.

    ``bilinear``/``bicubic`` as ``F.interpolate`` (source index (i + 0.5) * scale - 0.5, borders clamped, cubic
    A = -0.75); ``antialias``: bilinear with antialias=True (a triangle filter widened by the scale when shrinking,
    weights normalised: Pillow's and torch's resampling)."""
    scale = n_in / n_out if scale is None else scale
    i = np.arange(n_out, dtype=np.float64)
    if mode == "antialias":
        support = max(scale, 1.0)
        center = scale * (i + 0.5)
        lo = np.maximum((center - support + 0.5).astype(np.int64), 0)
        hi = np.minimum((center + support + 0.5).astype(np.int64), n_in)
        taps = int((hi - lo).max())
        idx = lo[:, None] + np.arange(taps)
        wt = np.clip(1 - np.abs((idx - center[:, None] + 0.5) / support), 0, None) * (idx < hi[:, None])
        wt /= wt.sum(1, keepdims=True)
        return np.minimum(idx, n_in - 1), wt
    src = (i + 0.5) * scale - 0.5
    if mode == "bilinear":
        src = np.maximum(src, 0)
        i0 = np.floor(src).astype(np.int64)
        t = src - i0
        return np.minimum(np.stack([i0, i0 + 1], 1), n_in - 1), np.stack([1 - t, t], 1)
    if mode != "bicubic":
        raise ValueError(f"unknown interpolation {mode!r}")
    i0 = np.floor(src).astype(np.int64)
    t = src - i0
    a = -0.75

    def near(u: np.ndarray) -> np.ndarray:  # |u| <= 1
        return ((a + 2) * u - (a + 3)) * u * u + 1

    def far(u: np.ndarray) -> np.ndarray:  # 1 < |u| < 2
        return ((a * u - 5 * a) * u + 8 * a) * u - 4 * a

    wt = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], 1)
    return np.clip(i0[:, None] + np.arange(-1, 3), 0, n_in - 1), wt


def _resize_axis(x: np.ndarray, axis: int, idx: np.ndarray, wt: np.ndarray) -> np.ndarray:
    wt = wt.astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = -1
    out = np.take(x, idx[:, 0], axis=axis) * wt[:, 0].reshape(shape)
    for t in range(1, idx.shape[1]):
        out += np.take(x, idx[:, t], axis=axis) * wt[:, t].reshape(shape)
    return out


def resize(x: np.ndarray, size: tuple[int, int], mode: str = "bilinear", scale: int | None = None) -> np.ndarray:
    """(C, H, W) float32 to ``size`` (rows, columns), width first then height as torch does. ``scale``: an integer
    upscaling factor given as such (``F.interpolate(scale_factor=...)``)."""
    h, w = x.shape[1:]
    inv = None if scale is None else 1 / scale
    x = _resize_axis(x, 2, *_resize_taps(w, size[1], mode, inv))
    return _resize_axis(x, 1, *_resize_taps(h, size[0], mode, inv))


# ------------------------------------------------------------------------------------------------ weights
def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors as float32 numpy arrays, metadata) of a safetensors file, without torch."""
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in tensors.items()}, meta


# ------------------------------------------------------------------------------------------------ lean RecNet
class LeanRecNet:
    """x' = up(c) + LeanFineNet(s, c) (models.LearnedModel with ``arch="lean"``), on 8-bit images.

    ``compact`` is the area model's c (the mean of each 8x8 block, rounded: integer arithmetic, exact); ``reconstruct``
    takes the decoded 8-bit c (and, for a withSeg model, the label map) and gives the 8-bit x' that both sides of a
    file compute.
    """

    alpha = 8
    min_size = 32  # as LearnedModel: 4 * alpha
    full_map = False  # a withSeg lean model reads class shares per 8x8 block: the codec may store s at 1/4-1/16

    def __init__(self, tensors: Mapping[str, np.ndarray], config: Mapping, model_id: bytes) -> None:
        if not supports(config):
            raise ValueError("the numpy runtime runs lean models with an area c and alpha 8")
        self.config, self.name, self.model_id = dict(config), config.get("name", "custom"), model_id
        self.up_mode = config.get("up_mode", "bilinear")
        self.num_labels = int(config.get("num_labels", 0))  # 0: noSeg
        self.segmenter = config.get("segmenter", "none") if self.num_labels else "none"
        p = "recnet.finenet."
        n_blocks = sum(1 for k in tensors if k.startswith(f"{p}blocks.") and k.endswith(".0.weight"))

        def conv(key: str) -> Conv:
            return Conv.from_torch(tensors[f"{key}.weight"], tensors[f"{key}.bias"], pad=1, mode="edge")

        self.head = conv(p + "head")
        self.blocks = [(conv(f"{p}blocks.{i}.0"), conv(f"{p}blocks.{i}.2")) for i in range(n_blocks)]
        self.tail = [conv(f"{p}tail.{i}") for i in (0, 3, 5, 8, 10)]

    @classmethod
    def load(cls, path: str | os.PathLike) -> LeanRecNet:
        tensors, meta = read_safetensors(path)
        if "config" not in meta or "model_id" not in meta:  # models.save() writes both
            raise DsslicInputError(f"{path}: no dsslic config and model id in the safetensors metadata")
        return cls(tensors, json.loads(meta["config"]), bytes.fromhex(meta["model_id"]))

    def compact(self, x: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8, H and W multiples of 8 -> c (H/8, W/8, 3) uint8: block means rounded half to even."""
        h, w, ch = x.shape
        a = self.alpha
        sums = x.reshape(h // a, a, w // a, a, ch).sum((1, 3), dtype=np.int64)
        return np.rint(sums / (a * a)).astype(np.uint8)

    def label_shares(self, s: np.ndarray) -> np.ndarray:
        """(H, W) label ids -> (num_labels, H/8, W/8) float32: each class's share of each 8x8 block, as
        ``finenet.label_shares`` (counts / 64 are exact in float32; ids past the label space count for none)."""
        a = self.alpha
        blocks = s.reshape(s.shape[0] // a, a, s.shape[1] // a, a)
        return np.stack([(blocks == k).sum((1, 3), dtype=np.int32) for k in range(self.num_labels)]).astype(
            np.float32) / (a * a)

    @one_blas_thread
    def fine(self, c: np.ndarray) -> np.ndarray:
        """LeanFineNet on c in [-1, 1] (3, h, w), with the label shares beside it for withSeg -> f (3, 8h, 8w)."""
        f = self.head(c)
        for a, b in self.blocks:
            f += b(relu(a(f)))
        t0, t1, t2, t3, t4 = self.tail
        f = relu(pixel_shuffle(t0(f), 2))
        f = relu(pixel_shuffle(t2(relu(t1(f))), 2))
        return pixel_shuffle(t4(relu(t3(f))), 2)

    def reconstruct(self, c8: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
        """(h, w, 3) uint8 c (and the (8h, 8w) label map for withSeg) -> (8h, 8w, 3) uint8
        x' = round(255 * clip((up(c') + f + 1) / 2)), c' = 2c/255 - 1."""
        c = np.ascontiguousarray(c8.transpose(2, 0, 1), np.float32) / 255 * 2 - 1
        h, w = c.shape[1:]
        x = resize(c, (h * self.alpha, w * self.alpha), self.up_mode, scale=self.alpha)
        if self.num_labels and (s is None or s.shape != x.shape[1:]):
            raise ValueError(f"this withSeg model needs a {x.shape[2]}x{x.shape[1]} label map")
        x += self.fine(np.concatenate([c, self.label_shares(s)]) if self.num_labels else c)
        x = np.clip((x + 1) / 2, 0, 1)
        return np.rint(x * 255).astype(np.uint8).transpose(1, 2, 0)


def supports(config: Mapping) -> bool:
    """Whether a LearnedModel configuration (its JSON in the weights' metadata) runs here."""
    return (config.get("arch") == "lean" and config.get("compact") == "area" and config.get("finenet", True)
            and config.get("alpha", 8) == 8)


def model_for(model: object) -> LeanRecNet | None:
    """The numpy runtime of a lean model given by name, path or as a torch ``LearnedModel``; None for any other
    model (those run in torch). A lean model always runs here, so that both sides of a file compute the same x'."""
    if isinstance(model, LeanRecNet):
        return model
    if isinstance(model, str):
        from . import zoo

        path = zoo.find(model)
        try:
            from safetensors import safe_open

            with safe_open(str(path), "np") as f:
                config = json.loads((f.metadata() or {}).get("config", "{}"))
        except Exception:  # no such file, not safetensors, no JSON config: torch's loader says what is wrong
            return None
        return LeanRecNet.load(path) if supports(config) else None
    config = getattr(model, "config", None)
    if config is None or not supports(vars(config)):
        return None
    tensors = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}  # type: ignore[attr-defined]
    return LeanRecNet(tensors, vars(config), model.model_id)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------ SegNetLite
class SegNetLite:
    """segnet.SegNetLite in numpy, BatchNorm folded into the convolutions: image in [0, 1] (3, H, W) -> logits."""

    def __init__(self, tensors: Mapping[str, np.ndarray]) -> None:
        def cbr(key: str, stride: int = 1, dilation: int = 1, k: int = 3) -> Conv:
            """A convolution (key ``....N``) and the BatchNorm after it (``....N+1``), folded."""
            bn = key[:-1] + str(int(key[-1]) + 1)
            stats = {n: tensors[f"{bn}.{n}"] for n in ("weight", "bias", "running_mean", "running_var")}
            return Conv.from_torch(tensors[f"{key}.weight"], tensors.get(f"{key}.bias"), stats,
                                   stride=stride, dilation=dilation, pad=dilation * (k // 2))

        def res(key: str, stride: int = 1, dilation: int = 1) -> tuple[Conv, Conv, Conv | None]:
            skip = cbr(f"{key}.skip.0", stride, k=1) if f"{key}.skip.0.weight" in tensors else None
            return cbr(f"{key}.a.0", stride, dilation), cbr(f"{key}.b.0", 1, dilation), skip

        self.stem = [cbr("stem.0.0", 2), cbr("stem.1.0")]
        self.s2 = [res("s2.0", 2), res("s2.1")]
        self.s3 = [res("s3.0", 2), res("s3.1")]
        self.s4 = [res("s4.0", 2), res("s4.1", dilation=2), res("s4.2", dilation=4)]
        self.pool = Conv.from_torch(tensors["pool.1.weight"], tensors["pool.1.bias"])
        self.ctx = cbr("ctx.0")
        self.low = cbr("low.0", k=1)
        self.head = [cbr("head.0", k=1), cbr("head.3.0"),
                     Conv.from_torch(tensors["head.4.weight"], tensors["head.4.bias"])]
        self.mean = tensors.get("mean", IMAGENET_MEAN).reshape(3).astype(np.float32)
        self.std = tensors.get("std", IMAGENET_STD).reshape(3).astype(np.float32)

    @staticmethod
    def _res(x: np.ndarray, block: tuple[Conv, Conv, Conv | None]) -> np.ndarray:
        a, b, skip = block
        y = b(relu(a(x)))
        y += x if skip is None else skip(x)
        return relu(y)

    @one_blas_thread
    def __call__(self, x: np.ndarray) -> np.ndarray:
        size = x.shape[1:]
        x = (x - self.mean[:, None, None]) / self.std[:, None, None]
        for c in self.stem:
            x = relu(c(x))
        for blk in self.s2:
            x = self._res(x, blk)
        low = x
        for blk in (*self.s3, *self.s4):
            x = self._res(x, blk)
        pooled = relu(self.pool(x.mean((1, 2), keepdims=True, dtype=np.float32)))
        ctx = np.concatenate([relu(self.ctx(x)), np.broadcast_to(pooled, (pooled.shape[0], *x.shape[1:]))])
        ctx = resize(ctx, low.shape[1:])
        y = np.concatenate([ctx, relu(self.low(low))])
        y = relu(self.head[0](y))
        y = self.head[2](relu(self.head[1](y)))
        return resize(y, size)


def segment(net: Callable[[np.ndarray], np.ndarray], image: np.ndarray, work_size: int, flip: bool = False,
            rows: int = 64) -> np.ndarray:
    """segnet.NetSegmenter.segment in numpy: resize to the working size (antialiased), logits (and the mirror's),
    bilinear back to the image's size and argmax, ``rows`` output rows at a time (memory: a band, not the image)."""
    h, w = image.shape[:2]
    return labels_at(logits(net, image, work_size, flip), h, w, np.arange(h), np.arange(w), rows)


def logits(net: Callable[[np.ndarray], np.ndarray], image: np.ndarray, work_size: int, flip: bool = False
           ) -> np.ndarray:
    """The segmenter's class scores (C, h, w) at its working size (long side ``work_size``, never below 16 px)."""
    h, w = image.shape[:2]
    x = np.ascontiguousarray(image.transpose(2, 0, 1), np.float32) / 255
    s = min(1.0, work_size / max(h, w))
    if s < 1:  # never below 16 px on a side, as NetSegmenter
        x = resize(x, (max(16, min(h, round(h * s))), max(16, min(w, round(w * s)))), "antialias")
    y = net(x)
    if flip:
        y += net(np.ascontiguousarray(x[:, :, ::-1]))[:, :, ::-1]
    return y


def labels_at(y: np.ndarray, h: int, w: int, rows: np.ndarray, cols: np.ndarray, band: int = 64) -> np.ndarray:
    """The argmax of the scores ``y`` bilinearly resized to (h, w), at these rows and columns only (all of them:
    :func:`segment`). Every output is its own taps' sum, so a subset costs its share and equals the full map
    there: the codec, which stores the map at 1/4 to 1/16, computes 1/16 of it or less."""
    y = _resize_axis(y, 2, *(a[cols] for a in _resize_taps(y.shape[2], w, "bilinear")))  # columns first, as torch
    idx, wt = (a[rows] for a in _resize_taps(y.shape[1], h, "bilinear"))
    out = np.empty((len(rows), len(cols)), np.uint8 if y.shape[0] <= 256 else np.uint16)
    for r0 in range(0, len(rows), band):
        out[r0: r0 + band] = _resize_axis(y, 1, idx[r0: r0 + band], wt[r0: r0 + band]).argmax(0)
    return out
