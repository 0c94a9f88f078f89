"""The losses of §3.3 (eq. 4-10): L1, SSIM, GAN, discriminator feature matching, VGG.

SSIM comes from ``pytorch-msssim``. The VGG19 perceptual loss needs ImageNet weights that cannot be
downloaded here: :class:`VGGLoss` loads a torchvision ``vgg19`` state dict from a local path.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn


def l1_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).abs().mean()


def ssim_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 - SSIM on images in [0, 1] (the paper's -SSIM, shifted to be >= 0)."""
    from pytorch_msssim import ssim

    return 1 - ssim(x.float(), y.float(), data_range=1.0, size_average=True)


def gan_loss(logits_per_scale: list[list[torch.Tensor]], real: bool) -> torch.Tensor:
    """Binary cross-entropy of each scale's patch logits (eq. 8), summed over the two discriminators."""
    loss = 0.0
    for feats in logits_per_scale:
        logits = feats[-1].float()
        loss = loss + F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))
    return loss  # type: ignore[return-value]


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """L_DIS: mean absolute difference of every intermediate discriminator feature (eq. 6)."""
    loss = 0.0
    for fr, ff in zip(real, fake):
        for a, b in zip(fr[:-1], ff[:-1]):
            loss = loss + (a.detach().float() - b.float()).abs().mean()
    return loss  # type: ignore[return-value]


_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
_VGG_LAYERS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 as pix2pixHD uses
_VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def vgg19_features() -> nn.Sequential:
    """torchvision's ``vgg19().features`` layout, so that its state dict loads as is."""
    layers: list[nn.Module] = []
    cin = 3
    for v in _VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
            cin = int(v)
    return nn.Sequential(*layers)


class VGGLoss(nn.Module):
    """L_VGG (eq. 7) with torchvision VGG19 weights from ``path`` (``features.*`` keys, or a bare features dict)."""

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__()
        sd = torch.load(path, map_location="cpu", weights_only=True)
        if any(k.startswith("features.") for k in sd):
            sd = {k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")}
        self.features = vgg19_features()[: _VGG_LAYERS[-1] + 1]
        self.features.load_state_dict({k: v for k, v in sd.items() if int(k.split(".")[0]) <= _VGG_LAYERS[-1]})
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _VGG_LAYERS:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = 0.0
        for w, a, b in zip(_VGG_WEIGHTS, self._feats(x), self._feats(y)):
            loss = loss + w * (a - b.detach()).abs().mean()
        return loss  # type: ignore[return-value]
