"""The building blocks of §3.2, named as the paper names them (c_k, d_k, r_k, u_k).

``norm`` is a knob because the paper's InstanceNorm without affine parameters is one suspect for
the poor generalisation measured in FINDINGS.md: "instance" (paper), "instance-affine" or "none".
"""

from __future__ import annotations

import torch
from torch import nn


def norm_layer(norm: str, ch: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm2d(ch, affine=False)
    if norm == "instance-affine":
        return nn.InstanceNorm2d(ch, affine=True)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}")


def c_k(cin: int, k: int, norm: str) -> nn.Sequential:
    """7x7 convolution, stride 1 (reflection padded), normalisation, ReLU."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cin, k, 7), norm_layer(norm, k), nn.ReLU(True))


def d_k(cin: int, k: int, norm: str) -> nn.Sequential:
    """3x3 convolution, stride 2 (halves the size), normalisation, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, k, 3, stride=2, padding=1), norm_layer(norm, k), nn.ReLU(True))


def u_k(cin: int, k: int, norm: str) -> nn.Sequential:
    """3x3 fractional-strided convolution, stride 1/2 (doubles the size), normalisation, ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, k, 3, stride=2, padding=1, output_padding=1), norm_layer(norm, k), nn.ReLU(True)
    )


def c_out(cin: int, k: int = 3) -> nn.Sequential:
    """The final c_3 layer: 7x7 convolution then tanh (no normalisation, as in pix2pixHD)."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cin, k, 7), nn.Tanh())


def encoder(cin: int, w: int, norm: str) -> list[nn.Module]:
    """c_w, d_2w, d_4w, d_8w: the front that CompNet and FineNet share (1/8 of the size, 8w channels)."""
    return [c_k(cin, w, norm), d_k(w, 2 * w, norm), d_k(2 * w, 4 * w, norm), d_k(4 * w, 8 * w, norm)]


class ResBlock(nn.Module):
    """r_k: reflection padding and two 3x3 convolutions with normalisation, plus the identity."""

    def __init__(self, k: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(k, k, 3), norm_layer(norm, k), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(k, k, 3), norm_layer(norm, k),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def one_hot(s: torch.Tensor, num_labels: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, H, W) integer labels -> (B, num_labels, H, W); labels outside the range give all zeros."""
    valid = (s >= 0) & (s < num_labels)
    oh = torch.zeros(s.shape[0], num_labels, *s.shape[1:], dtype=dtype, device=s.device)
    oh.scatter_(1, (s * valid).long().unsqueeze(1), valid.unsqueeze(1).to(dtype))
    return oh
