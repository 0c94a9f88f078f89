"""The restoration filter at the decoder: x^ = x~ + f(x~, x', s, q), a small CNN that removes coding artefacts.

x~ is the decoded image (x' plus the HEVC residual), x' the coarse layer RecNet made from the base layers, s the
label map and q the residual's quantiser step in pixels, as a QP (:func:`strength`): everything the decoder holds, so
the filter costs no bits. It runs at half resolution (pixel unshuffle by 2) to stay cheap (a few thousand MAC per
pixel, against RecNet ``general``'s 30,048) and its output is rounded to 8 bits, like x'.

The codec runs every filter here, in numpy (:class:`RestoreFilter`, the operations of :mod:`dsslic.npnet`), on both
sides of a file: the PSNR the encoder reports is the one any decoder computes, whatever its thread count, and a
decoder needs no torch. The network is trained in torch (``dsslic.training.restore.RestoreNet``, the same layers);
:func:`apply` takes either.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import npnet
from .errors import DsslicFormatError, DsslicInputError

#: strengths are fed as (q - Q_MID) / Q_SCALE: the eval's QPs 22..49 give about -1..+1
Q_MID, Q_SCALE = 25.0, 15.0
#: receptive field margin in full-resolution pixels that tiles overlap by (2 * depth + 4 half-res pixels, rounded up)
TILE_OVERLAP = 32


def strength(qp: int, lo: int, hi: int, bits: int) -> float:
    """The residual's quantiser step in pixel units, on the QP scale: HEVC's step (2^(QP/6) in samples) times the
    pixels per sample of the min/max mapping, (hi - lo) / (2^bits - 1). A QP alone would not say how coarse the
    coding was: the same QP on a residual of twice the range is twice as coarse."""
    return float(qp + 6 * np.log2(max(hi - lo, 1) / ((1 << bits) - 1)))


@dataclass(frozen=True)
class RestoreConfig:
    """The filter's shape; stored as JSON in its weight file's metadata."""

    name: str = "custom"
    width: int = 24  # channels at half resolution
    depth: int = 5  # 3x3 convolutions between the input and output convolutions
    num_labels: int = 11  # label ids >= num_labels share one extra embedding
    emb: int = 4  # label embedding size


class RestoreFilter:
    """f(x~, x', s, q) in numpy: pixel-unshuffle of [x~ - 1/2, x' - x~], a label embedding and a plane of q, a 3x3
    convolution to ``width``, ``depth`` residual 3x3 convolutions (leaky ReLU 0.1), a 3x3 convolution to 12 channels
    and pixel shuffle, added to x~."""

    def __init__(self, tensors: dict[str, np.ndarray], config: RestoreConfig, filter_id: bytes) -> None:
        self.cfg, self.filter_id = config, filter_id

        def conv(key: str) -> npnet.Conv:
            return npnet.Conv.from_torch(tensors[f"{key}.weight"], tensors[f"{key}.bias"], pad=1)

        self.embed = np.asarray(tensors["embed.weight"], np.float32)
        self.head, self.tail = conv("head"), conv("tail")
        self.body = [conv(f"body.{i}") for i in range(config.depth)]

    @property
    def macs_per_pixel(self) -> float:
        """Multiply-accumulates per full-resolution pixel: every convolution runs at half resolution (the torch
        count of ``training.restore.macs_per_pixel``; a test pins the two together)."""
        return sum(c.w.size for c in (self.head, *self.body, self.tail)) / 4

    @npnet.one_blas_thread
    def _f(self, xt: np.ndarray, xc: np.ndarray, s: np.ndarray, q: float) -> np.ndarray:
        """(3, H, W) x~ and x' in [0, 1] and (H, W) label ids, H and W even -> x^ (3, H, W), not clipped."""
        img = npnet.pixel_unshuffle(np.concatenate([xt - 0.5, xc - xt]), 2)
        lab = self.embed[np.minimum(s[::2, ::2], self.cfg.num_labels)].transpose(2, 0, 1)
        qp = np.full((1, *img.shape[1:]), (q - Q_MID) / Q_SCALE, np.float32)
        y = npnet.leaky_relu(self.head(np.concatenate([img, lab, qp])))
        for conv in self.body:
            y += npnet.leaky_relu(conv(y))
        return xt + npnet.pixel_shuffle(self.tail(y), 2)

    def __call__(self, xt: np.ndarray, xc: np.ndarray, s: np.ndarray, q: float, tile: int = 1024) -> np.ndarray:
        """x^ as uint8 HxWx3 from the decoder's uint8 x~ and x' and its HxW label map (any size: reflect-padded to
        even sizes and run in overlapping tiles, which give the same result as one pass)."""
        from .tiling import pad_to, tiled

        h, w = xt.shape[:2]

        def img(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(pad_to(a, 2).transpose(2, 0, 1))

        def run(t: np.ndarray, c: np.ndarray, lab: np.ndarray) -> np.ndarray:
            y = self._f(t.astype(np.float32) / 255, c.astype(np.float32) / 255, lab, q)
            return np.rint(np.clip(y, 0, 1) * 255).astype(np.uint8)

        lab = np.ascontiguousarray(pad_to(s.astype(np.int64), 2))
        y = tiled(run, [img(xt), img(xc), lab], [1, 1, 1], 1, (h + h % 2, w + w % 2), tile, TILE_OVERLAP, align=2)
        return y.transpose(1, 2, 0)[:h, :w]


def filter_id(config: RestoreConfig, tensors: dict[str, Any]) -> bytes:
    """4 bytes naming these exact weights (what a file stores to ask for this filter): zoo's digest of the kind,
    the configuration and the float32 tensors (torch tensors or numpy arrays)."""
    from dataclasses import asdict

    from . import zoo

    return zoo.digest("restore", config=asdict(config), tensors=tensors)


def runtime(net: Any) -> RestoreFilter:
    """The numpy filter of a torch ``RestoreNet`` (training's; weights copied) or a :class:`RestoreFilter`."""
    if isinstance(net, RestoreFilter):
        return net
    tensors = {k: v.detach().cpu().float().numpy() for k, v in net.state_dict().items()}
    return RestoreFilter(tensors, net.cfg, net.filter_id)


def apply(net: Any, xt: np.ndarray, xc: np.ndarray, s: np.ndarray, q: float, tile: int = 1024) -> np.ndarray:
    """x^ (uint8 HxWx3) of a filter (numpy, or torch's training network run through its numpy copy)."""
    return runtime(net)(xt, xc, s, q, tile)


def load(path: str | os.PathLike) -> RestoreFilter:
    """A filter written by ``training.restore.save``, without torch; its weights are checked against the stored id."""
    try:
        tensors, meta = npnet.read_safetensors(path)
    except Exception as e:  # not safetensors at all
        raise DsslicInputError(f"{path}: not a safetensors weights file ({type(e).__name__})") from None
    if "config" not in meta:
        raise DsslicInputError(f"{path}: no restoration filter config in the safetensors metadata")
    try:
        cfg = RestoreConfig(**json.loads(meta["config"]))
        net = RestoreFilter(tensors, cfg, bytes.fromhex(meta.get("model_id", "")))
    except (TypeError, KeyError, ValueError) as e:
        raise DsslicInputError(f"{path}: not a restoration filter ({type(e).__name__}: {e})") from None
    if filter_id(cfg, tensors) != net.filter_id:
        raise DsslicInputError(f"{path}: weights do not match their stored filter id")
    return net


# ------------------------------------------------------------------ the codec's side: which filter, by name or id
def find(arg: str) -> Path | None:
    """The filter ``arg`` names: a path, or the shipped ``weights/ARG.restore.safetensors`` (a model's own filter
    bears the model's name); None when there is none."""
    from . import zoo

    return zoo.find(arg, "restore")


def by_id(fid: bytes) -> RestoreFilter:
    """The shipped filter a file names; a clear format error when this installation lacks it."""
    from . import zoo

    name = zoo.name_for_id(fid, "restore")
    if name is None:
        raise DsslicFormatError(f"file needs restoration filter id {fid.hex()}, which this installation "
                                "lacks; decode with --no-restore to skip it (the image then differs from the one "
                                "the encoder measured)")
    return load(find(name))  # type: ignore[arg-type]
