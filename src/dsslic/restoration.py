"""The restoration filter at the decoder: x^ = x~ + f(x~, x', s, q), a small CNN that removes coding artefacts.

x~ is the decoded image (x' plus the HEVC residual), x' the coarse layer RecNet made from the base layers, s the
label map and q the residual's quantiser step in pixels, as a QP (:func:`strength`): everything the decoder holds, so the filter costs no bits. It runs at
half resolution (pixel unshuffle by 2) to stay cheap (``macs_per_pixel``: a few thousand MAC per pixel, against
RecNet ``general``'s 30,048) and its output is rounded to 8 bits, like x', so that the encoder's reported quality
is that of what any decoder computes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: strengths are fed as (q - Q_MID) / Q_SCALE: the eval's QPs 22..49 give about -1..+1
Q_MID, Q_SCALE = 25.0, 15.0


def strength(qp: int, lo: int, hi: int, bits: int) -> float:
    """The residual's quantiser step in pixel units, on the QP scale: HEVC's step (2^(QP/6) in samples) times the
    pixels per sample of the min/max mapping, (hi - lo) / (2^bits - 1). A QP alone would not say how coarse the
    coding was: the same QP on a residual of twice the range is twice as coarse."""
    return float(qp + 6 * np.log2(max(hi - lo, 1) / ((1 << bits) - 1)))
#: receptive field margin in full-resolution pixels that tiles overlap by (2 * depth + 4 half-res pixels, rounded up)
TILE_OVERLAP = 32


@dataclass(frozen=True)
class RestoreConfig:
    """The filter's shape; stored as JSON in its weight file's metadata."""

    name: str = "custom"
    width: int = 24  # channels at half resolution
    depth: int = 5  # 3x3 convolutions between the input and output convolutions
    num_labels: int = 11  # label ids >= num_labels share one extra embedding
    emb: int = 4  # label embedding size


class RestoreNet(nn.Module):
    """f(x~, x', s, q) at half resolution; the output convolution starts at zero, so training starts at x^ = x~."""

    def __init__(self, cfg: RestoreConfig = RestoreConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.num_labels + 1, cfg.emb)
        c_in = 4 * 6 + cfg.emb + 1
        self.head = nn.Conv2d(c_in, cfg.width, 3, padding=1)
        self.body = nn.ModuleList(nn.Conv2d(cfg.width, cfg.width, 3, padding=1) for _ in range(cfg.depth))
        self.tail = nn.Conv2d(cfg.width, 12, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, xt: torch.Tensor, xc: torch.Tensor, s: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """x^ in [0, 1] (not rounded) from x~, x' (B,3,H,W in [0, 1], H and W even), s (B,H,W ids), q (B,) strengths."""
        b, _, h, w = xt.shape
        img = F.pixel_unshuffle(torch.cat([xt - 0.5, xc - xt], 1), 2)
        lab = self.embed(s[:, ::2, ::2].long().clamp(max=self.cfg.num_labels)).permute(0, 3, 1, 2)
        qp = ((q.float() - Q_MID) / Q_SCALE).view(b, 1, 1, 1).expand(b, 1, h // 2, w // 2)
        y = F.leaky_relu(self.head(torch.cat([img, lab, qp], 1)), 0.1)
        for conv in self.body:
            y = y + F.leaky_relu(conv(y), 0.1)
        return xt + F.pixel_shuffle(self.tail(y), 2)

    @property
    def filter_id(self) -> bytes:
        """4 bytes naming these exact weights (what a file stores to ask for this filter): zoo's digest of the
        kind, the configuration and the float32 tensors."""
        from . import zoo

        return zoo.digest("restore", config=asdict(self.cfg), tensors=self.state_dict())


def macs_per_pixel(net: RestoreNet, h: int = 64, w: int = 64) -> float:
    """Multiply-accumulates per full-resolution pixel, counted by ``torch.utils.flop_counter`` (FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, h, w)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(x, x, torch.zeros(1, h, w, dtype=torch.long), torch.tensor([30]))
    return fc.get_total_flops() / 2 / (h * w)


def apply(net: RestoreNet, xt: np.ndarray, xc: np.ndarray, s: np.ndarray, q: float, tile: int = 1024) -> np.ndarray:
    """x^ as uint8 HxWx3 from the decoder's uint8 x~ and x' and its HxW label map (any size: reflect-padded to even
    sizes and run in overlapping tiles, which give the same result as one pass)."""
    from .tiling import pad_to, tiled

    h, w = xt.shape[:2]

    def img(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(pad_to(a, 2), order="C")).permute(2, 0, 1)[None]  # a copy: inputs may be read-only

    def run(t: torch.Tensor, c: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        y = net(t.float() / 255, c.float() / 255, lab, torch.tensor([q], dtype=torch.float64))
        return (y.clamp(0, 1) * 255).round().to(torch.uint8)

    lab = torch.from_numpy(np.ascontiguousarray(pad_to(s.astype(np.int64), 2)))[None]
    with torch.inference_mode():
        y = tiled(run, [img(xt), img(xc), lab], [1, 1, 1], 1, (h + h % 2, w + w % 2), tile, TILE_OVERLAP, align=2)
    return y[0].permute(1, 2, 0).numpy()[:h, :w]


def save(net: RestoreNet, path: str | Path, card: dict | None = None) -> None:
    """The filter as a weights file (float32: 140 KB at the default size), its id stored for torch-free lookup."""
    from . import zoo

    zoo.save(path, {k: v.contiguous() for k, v in net.state_dict().items()}, asdict(net.cfg), card,
             model_id=net.filter_id.hex())


def load(path: str | Path) -> RestoreNet:
    """A filter written by :func:`save`, in eval mode; its id is checked against the stored one."""
    from safetensors import safe_open

    from . import zoo
    from .errors import DsslicInputError

    tensors, cfg = zoo.load(path, "restoration filter")
    with safe_open(str(path), "np") as f:
        stored = (f.metadata() or {}).get("model_id")
    try:
        net = RestoreNet(RestoreConfig(**cfg))
        net.load_state_dict(tensors)
    except (TypeError, RuntimeError) as e:
        raise DsslicInputError(f"{path}: not a restoration filter ({str(e).splitlines()[0]})") from None
    if net.filter_id.hex() != stored:
        raise DsslicInputError(f"{path}: weights do not match their stored filter id")
    return net.eval()


# ------------------------------------------------------------------ the codec's side: which filter, by name or id
def find(arg: str) -> Path | None:
    """The filter ``arg`` names: a path, or the shipped ``weights/ARG.restore.safetensors`` (a model's own filter
    bears the model's name); None when there is none."""
    from . import zoo

    return zoo.find(arg, "restore")


def by_id(filter_id: bytes) -> RestoreNet:
    """The shipped filter a file names; a clear format error when this installation lacks it."""
    from . import zoo
    from .errors import DsslicFormatError

    name = zoo.name_for_id(filter_id, "restore")
    if name is None:
        raise DsslicFormatError(f"file needs restoration filter id {filter_id.hex()}, which this installation "
                                "lacks; decode with --no-restore to skip it (the image then differs from the one "
                                "the encoder measured)")
    return load(find(name))  # type: ignore[arg-type]
