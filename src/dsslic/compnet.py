"""CompNet (§3.2): the compact image c = CompNet(x, s) at 1/8 of the size.

c64, d128, d256, d512, c3, tanh. Three stride-2 d_k layers give the factor alpha = 8.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import c_out, encoder, one_hot


class CompNet(nn.Module):
    """Maps an image in [-1, 1] (and optionally its label map) to a compact image in [-1, 1]."""

    def __init__(self, num_labels: int = 0, width: int = 64, norm: str = "instance") -> None:
        super().__init__()
        self.num_labels = num_labels
        w = width
        self.net = nn.Sequential(*encoder(3 + num_labels, w, norm), c_out(8 * w, 3))

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_labels:
            x = torch.cat([x, one_hot(s, self.num_labels, x.dtype)], 1)
        return self.net(x)
