"""FineNet and RecNet (§3.1–3.2): x' = RecNet(s, c) = up(c) + FineNet(s, up(c)).

FineNet is pix2pixHD's global generator: c64, d128, d256, d512, 9 x r512, u256, u128, u64, c3, tanh.
It predicts the fine information f that the upsampled compact image c' lacks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ResBlock, c_out, encoder, one_hot, u_k


class FineNet(nn.Module):
    def __init__(self, num_labels: int = 0, width: int = 64, n_blocks: int = 9, norm: str = "instance") -> None:
        super().__init__()
        self.num_labels = num_labels
        w = width
        self.net = nn.Sequential(
            *encoder(3 + num_labels, w, norm),
            *[ResBlock(8 * w, norm) for _ in range(n_blocks)],
            u_k(8 * w, 4 * w, norm),
            u_k(4 * w, 2 * w, norm),
            u_k(2 * w, w, norm),
            c_out(w, 3),
        )

    def forward(self, s: torch.Tensor | None, c_up: torch.Tensor) -> torch.Tensor:
        x = c_up
        if self.num_labels:
            x = torch.cat([x, one_hot(s, self.num_labels, x.dtype)], 1)
        return self.net(x)


class LeanFineNet(nn.Module):
    """A cheap FineNet that works where the information is: at the compact image's resolution.

    x' = up(c) + f with f grown from c itself: ``n_blocks`` residual blocks at 1/8 (width ``width``), then
    pixel-shuffle steps to 1/4 and 1/2 (widths ``width*3/5``, ``width*2/5``) and a last pixel shuffle to full
    size. About 4,900 multiply-accumulates per output pixel at width 40 (FineNet at width 16: 30,000).

    With ``num_labels`` (the paper's withSeg) it also reads the label map, as the share of each class in every
    alpha x alpha block, beside c: a coarse reading that a map stored at 1/4 to 1/16 of the size (a few bytes) can
    feed, so the map stays cheap (it is trained on the map as the codec stores it).
    """

    takes_compact = True  # RecNet gives it c, not up(c)

    def __init__(self, num_labels: int = 0, width: int = 40, n_blocks: int = 4, alpha: int = 8) -> None:
        super().__init__()
        if alpha != 8:
            raise ValueError("the lean FineNet is built for alpha 8")
        w, m, h = width, width * 3 // 5, width * 2 // 5

        def conv(i: int, o: int) -> nn.Conv2d:
            return nn.Conv2d(i, o, 3, padding=1, padding_mode="replicate")

        self.num_labels, self.alpha = num_labels, alpha
        self.head = conv(3 + num_labels, w)
        self.blocks = nn.ModuleList(nn.Sequential(conv(w, w), nn.ReLU(True), conv(w, w)) for _ in range(n_blocks))
        self.tail = nn.Sequential(
            conv(w, 4 * m), nn.PixelShuffle(2), nn.ReLU(True), conv(m, m), nn.ReLU(True),  # 1/4
            conv(m, 4 * h), nn.PixelShuffle(2), nn.ReLU(True), conv(h, h), nn.ReLU(True),  # 1/2
            conv(h, 12), nn.PixelShuffle(2),  # full size
        )

    def forward(self, s: torch.Tensor | None, c: torch.Tensor) -> torch.Tensor:
        if self.num_labels:
            c = torch.cat([c, label_shares(s, self.num_labels, self.alpha, c.dtype)], 1)
        f = self.head(c)
        for b in self.blocks:
            f = f + b(f)
        return self.tail(f)


def label_shares(s: torch.Tensor, num_labels: int, alpha: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, H, W) label ids -> (B, num_labels, H/alpha, W/alpha): the share of each class in each block (void
    ids count for none)."""
    return F.avg_pool2d(one_hot(s, num_labels, dtype), alpha)


def upsample(c: torch.Tensor, alpha: int, mode: str = "bilinear") -> torch.Tensor:
    """c' = up(c): the compact image brought back to full size."""
    return F.interpolate(c, scale_factor=alpha, mode=mode, align_corners=False)


class RecNet(nn.Module):
    """x' = c' + FineNet(s, c'), all in [-1, 1]. With ``finenet=None`` it is the paper's upComp."""

    def __init__(self, finenet: FineNet | None, alpha: int = 8, up_mode: str = "bilinear") -> None:
        super().__init__()
        self.finenet, self.alpha, self.up_mode = finenet, alpha, up_mode

    def forward(self, s: torch.Tensor | None, c: torch.Tensor) -> torch.Tensor:
        c_up = upsample(c, self.alpha, self.up_mode)
        if self.finenet is None:
            return c_up
        return c_up + self.finenet(s, c if getattr(self.finenet, "takes_compact", False) else c_up)
