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
        return c_up + self.finenet(s, c_up)
