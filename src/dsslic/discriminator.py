"""The two multi-scale PatchGAN discriminators of §3.2: C64, C128, C256, C512, then a 1-channel conv.

D_1 sees the full-scale input, D_2 the 2x downsampled one. Their input is (s, c', x) stacked:
the one-hot label map, the upsampled compact image and the real or reconstructed image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import norm_layer


class PatchDiscriminator(nn.Module):
    """C_k: 4x4 convolution, stride 2, instance norm (not on the first), LeakyReLU(0.2)."""

    def __init__(self, cin: int, width: int = 64, norm: str = "instance") -> None:
        super().__init__()
        chans = [width, 2 * width, 4 * width, 8 * width]
        blocks, prev = [], cin
        for i, k in enumerate(chans):
            blocks.append(nn.Sequential(
                nn.Conv2d(prev, k, 4, stride=2, padding=2),
                nn.Identity() if i == 0 else norm_layer(norm, k),
                nn.LeakyReLU(0.2, True),
            ))
            prev = k
        blocks.append(nn.Conv2d(prev, 1, 4, stride=1, padding=2))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All intermediate features (for feature matching); the last is the patch logits."""
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    def __init__(self, cin: int, width: int = 64, n_scales: int = 2, norm: str = "instance") -> None:
        super().__init__()
        self.ds = nn.ModuleList(PatchDiscriminator(cin, width, norm) for _ in range(n_scales))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outs = []
        for i, d in enumerate(self.ds):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs
