"""SegNetLite: a compact segmentation network trained from scratch (issue #3), and :class:`NetSegmenter`,
which runs it with its weights (``weights/NAME.seg.safetensors``, written by ``dsslic train-segnet``).

Residual encoder, dilated context at 1/16, DeepLabv3+-style decoder with a 1/4-scale skip. Runs at a working
resolution (long side ``work_size``) and upsamples the logits, which is what makes it fast on a CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import zoo
from . import labelspace
from .base import Segmenter

CAMVID11 = list(labelspace.CAMVID11.class_names)
CAMVID11_PALETTE = labelspace.CAMVID11.palette


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dilation, dilation, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(True))


class _Res(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.a = _cbr(cin, cout, stride, dilation)
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, dilation, dilation, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if stride == 1 and cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.b(self.a(x)) + self.skip(x))


class SegNetLite(nn.Module):
    """Encoder-decoder segmenter: image in [0, 1] (B, 3, H, W) -> logits (B, classes, H, W)."""

    def __init__(self, num_classes: int = 11, width: int = 32) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_cbr(3, w, 2), _cbr(w, w))  # 1/2
        self.s2 = nn.Sequential(_Res(w, 2 * w, 2), _Res(2 * w, 2 * w))  # 1/4
        self.s3 = nn.Sequential(_Res(2 * w, 4 * w, 2), _Res(4 * w, 4 * w))  # 1/8
        self.s4 = nn.Sequential(_Res(4 * w, 8 * w, 2), _Res(8 * w, 8 * w, dilation=2), _Res(8 * w, 8 * w, dilation=4))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8 * w, 4 * w, 1), nn.ReLU(True))
        self.ctx = _cbr(8 * w, 4 * w)
        self.low = nn.Sequential(nn.Conv2d(2 * w, w, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True))
        self.head = nn.Sequential(nn.Conv2d(8 * w + w, 2 * w, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(True),
                                  _cbr(2 * w, 2 * w), nn.Conv2d(2 * w, num_classes, 1))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = (x - self.mean) / self.std
        low = self.s2(self.stem(x))
        deep = self.s4(self.s3(low))
        ctx = torch.cat([self.ctx(deep), self.pool(deep).expand(-1, -1, *deep.shape[-2:])], 1)
        ctx = F.interpolate(ctx, size=low.shape[-2:], mode="bilinear", align_corners=False)
        y = self.head(torch.cat([ctx, self.low(low)], 1))
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


class NetSegmenter(Segmenter):
    """A SegNetLite with its weights, run at a working resolution (long side ``work_size``)."""

    def __init__(self, name: str, net: SegNetLite, class_names: list[str], palette: np.ndarray | None = None,
                 work_size: int = 480, flip: bool = False, device: str = "cpu") -> None:
        self.name, self.net, self.class_names = name, net.eval().to(device), class_names
        self._palette, self.work_size, self.flip, self.device = palette, work_size, flip, device

    @property
    def palette(self) -> np.ndarray:
        return self._palette if self._palette is not None else super().palette

    @classmethod
    def load(cls, path: str | os.PathLike, **kw) -> "NetSegmenter":
        sd, cfg = zoo.load(path)
        names = cfg.get("class_names") or CAMVID11
        net = SegNetLite(len(names), cfg.get("width", 32))
        net.load_state_dict(sd)
        pal = np.array(cfg["palette"], np.uint8) if "palette" in cfg else None
        return cls(cfg.get("name", Path(path).stem), net, names, pal, cfg.get("work_size", 480), **kw)

    @torch.inference_mode()
    def logits(self, image: np.ndarray) -> torch.Tensor:
        h, w = image.shape[:2]
        x = torch.from_numpy(np.array(image)).to(self.device).permute(2, 0, 1)[None].float() / 255
        s = min(1.0, self.work_size / max(h, w))
        if s < 1:  # never below 16 px on a side (a 16x10000 strip still has a working image)
            size = (max(16, min(h, round(h * s))), max(16, min(w, round(w * s))))
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        y = self.net(x)
        if self.flip:
            y = y + self.net(x.flip(-1)).flip(-1)
        return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)

    def segment(self, image: np.ndarray) -> np.ndarray:
        return self.logits(image)[0].argmax(0).to(torch.uint8).cpu().numpy()
