"""SegNet: the segmenters that produce DSSLIC's base layer s = SegNet(x).

A segmenter maps a uint8 HxWx3 image to an HxW integer label map and knows its class names and
palette. Its id (a hash of its name and label set) goes into the file so that a decoder can tell
which label space a map uses.

Built in: ``none`` (one label everywhere: the paper's noSeg) and ``file`` (a label map the user
supplies, e.g. ground truth); networks: :class:`SegNetLite` (our own, trained from scratch on
CamVid by ``dsslic train-segnet``) and adapters for models users already have on disk
(Hugging Face ``transformers``, torchvision DeepLabV3).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import labelspace, zoo
from .errors import DsslicInputError
from .labelspace import colorize, default_palette, label_space_id  # noqa: F401  (re-exported)


class Segmenter(ABC):
    """Interface: ``segment(image) -> labels`` plus the label space's names and colours."""

    name: str
    class_names: list[str]
    exact: bool = False  # a map given by the user: stored at full resolution, never subsampled

    @property
    def num_labels(self) -> int:
        return len(self.class_names)

    @property
    def palette(self) -> np.ndarray:
        ls = labelspace.by_id(self.id)
        return ls.palette if ls is not None else default_palette(self.num_labels)

    @property
    def id(self) -> bytes:
        """4 bytes naming the label space, stored in the file."""
        return label_space_id(self.class_names)

    @property
    def fingerprint(self) -> str:
        """What decides its label maps: the name, and a hash of the network's weights when it has one.

        ``id`` names only the label space (files stay decodable when weights are retrained); caches of
        results that depend on the maps (``dsslic eval``) key on this instead."""
        net = getattr(self, "net", None) or getattr(self, "model", None)
        if net is None or not hasattr(net, "state_dict"):
            return self.name
        h = zoo.digest(tensors=net.state_dict(), floats=None, ints=None, sort=False, size=6)  # bytes as held
        return f"{self.name}:{h.hex()}"

    @abstractmethod
    def segment(self, image: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) -> (H, W) uint8 or uint16 label map with values < num_labels."""


class NoSegmenter(Segmenter):
    """The paper's noSeg: every pixel gets label 0. Costs 2 bytes in the file."""

    name = "none"
    class_names = ["unlabelled"]

    def segment(self, image: np.ndarray) -> np.ndarray:
        return np.zeros(image.shape[:2], np.uint8)


class FileSegmenter(Segmenter):
    """Labels supplied by the user: a label-map PNG (values are class ids) or an array."""

    name = "file"
    exact = True

    def __init__(self, labels: str | os.PathLike | np.ndarray, class_names: list[str] | None = None,
                 label_space: str | None = None) -> None:
        if label_space is not None:
            ls = labelspace.by_name(label_space)
            if ls is None:
                raise DsslicInputError(f"unknown label space {label_space!r}; known: {', '.join(labelspace.names())}")
            class_names = list(ls.class_names)
        if isinstance(labels, np.ndarray):
            arr = labels
        else:
            from PIL import Image

            try:
                with Image.open(labels) as im:
                    if im.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                        raise DsslicInputError(f"{labels}: label map must be a single-channel PNG, not {im.mode}")
                    arr = np.asarray(im)
            except DsslicInputError:
                raise
            except Exception as e:
                raise DsslicInputError(f"{labels}: cannot read label map ({e})") from None
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer) or arr.min(initial=0) < 0:
            raise DsslicInputError("label map must be a 2-D array of non-negative integers")
        if arr.max(initial=0) > 65535:
            raise DsslicInputError("label map has ids above 65535")
        self.labels = arr.astype(np.uint16 if arr.max(initial=0) > 255 else np.uint8)
        n = int(self.labels.max(initial=0)) + 1
        self.class_names = class_names or [f"class{i}" for i in range(n)]
        if n > len(self.class_names):
            raise DsslicInputError(f"label map has id {n - 1} but its label space has only {len(self.class_names)} "
                                   "classes")

    def segment(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] != self.labels.shape:
            raise DsslicInputError(
                f"label map is {self.labels.shape[1]}x{self.labels.shape[0]}, image is {image.shape[1]}x{image.shape[0]}"
            )
        return self.labels


# ----------------------------------------------------------------------------------------------
# A compact segmentation network trained from scratch (issue #3): residual encoder, dilated
# context at 1/16, DeepLabv3+-style decoder with a 1/4-scale skip. Runs at a working resolution
# (long side ``work_size``) and upsamples the logits, which is what makes it fast on a CPU.
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# Bring your own weights: models users already have on disk (nothing is downloaded).
# ----------------------------------------------------------------------------------------------

class HFSegmenter(Segmenter):
    """A Hugging Face ``transformers`` semantic-segmentation model from a local folder
    (SegFormer, UPerNet, ... e.g. trained on ADE20K's 150 classes, as in the paper)."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu") -> None:
        try:
            from transformers import AutoModelForSemanticSegmentation
        except ImportError:
            raise DsslicInputError("the hf segmenter needs `pip install transformers`") from None
        if not Path(path).is_dir():
            raise DsslicInputError(f"{path}: not a folder holding a transformers model")
        self.model = AutoModelForSemanticSegmentation.from_pretrained(str(path), local_files_only=True).eval().to(device)
        id2label = self.model.config.id2label
        self.class_names = [str(id2label[i]) for i in range(len(id2label))]
        self.name = f"hf:{Path(path).name}"
        self.device = device

    @torch.inference_mode()
    def segment(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        x = torch.from_numpy(np.array(image)).to(self.device).permute(2, 0, 1)[None].float() / 255
        mean = torch.tensor([0.485, 0.456, 0.406], device=self.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=self.device).view(1, 3, 1, 1)
        logits = self.model(pixel_values=(x - mean) / std).logits
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        lab = logits[0].argmax(0)
        return lab.to(torch.uint8 if self.num_labels <= 256 else torch.int32).cpu().numpy().astype(
            np.uint8 if self.num_labels <= 256 else np.uint16)


class TorchvisionSegmenter(Segmenter):
    """torchvision's DeepLabV3 (ResNet-50) with a local state dict (``.pth``, loaded weights-only)."""

    VOC21 = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
             "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]

    def __init__(self, path: str | os.PathLike, num_classes: int = 21, device: str = "cpu") -> None:
        try:
            from torchvision.models.segmentation import deeplabv3_resnet50
        except ImportError:
            raise DsslicInputError("the torchvision segmenter needs torchvision") from None
        sd = torch.load(path, map_location="cpu", weights_only=True)
        self.model = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=num_classes,
                                        aux_loss=any(k.startswith("aux_classifier") for k in sd))
        self.model.load_state_dict(sd)
        self.model.eval().to(device)
        self.class_names = self.VOC21 if num_classes == 21 else [f"class{i}" for i in range(num_classes)]
        self.name, self.device = f"torchvision:{Path(path).name}", device

    @torch.inference_mode()
    def segment(self, image: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.array(image)).to(self.device).permute(2, 0, 1)[None].float() / 255
        mean = torch.tensor([0.485, 0.456, 0.406], device=self.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=self.device).view(1, 3, 1, 1)
        return self.model((x - mean) / std)["out"][0].argmax(0).to(torch.uint8).cpu().numpy()


def class_names_for_id(segmenter_id: bytes) -> list[str] | None:
    """Class names of a label space named in a file, if it is one this installation knows."""
    ls = labelspace.by_id(segmenter_id)
    return list(ls.class_names) if ls is not None else None


_SEGMENTERS = {"none": NoSegmenter}


def default_name() -> str:
    """The segmenter for general photos when it ships (``photo``), else ``none``: the base layer of every file
    that a label-free model writes, and the default of ``dsslic segment``."""
    return "photo" if zoo.find("photo", "segmenter") else "none"


def available() -> list[str]:
    return zoo.available("segmenter")


def get(name: str, device: str = "cpu") -> Segmenter:
    """A segmenter by name: ``none``, a shipped network (``camvid11`` once trained), ``file:MAP.png``,
    ``hf:FOLDER`` (transformers), ``torchvision:WEIGHTS.pth`` (DeepLabV3) or a ``.seg.safetensors`` path."""
    if name in _SEGMENTERS:
        return _SEGMENTERS[name]()
    kind, _, arg = name.partition(":")
    if kind == "file" and arg:
        return FileSegmenter(arg)
    if kind == "hf" and arg:
        return HFSegmenter(arg, device=device)
    if kind == "torchvision" and arg:
        return TorchvisionSegmenter(arg, device=device)
    path = zoo.find(name, "segmenter")  # a name is shipped; only X.safetensors or a/b is a path
    if path is not None:
        return NetSegmenter.load(path, device=device)
    raise DsslicInputError(
        f"unknown segmenter {name!r}; available: {', '.join(available())}, file:MAP.png, hf:FOLDER, torchvision:PTH")


def render_legend(rgb: np.ndarray, labels: np.ndarray, seg: "Segmenter") -> np.ndarray:
    """The colour rendering with a legend strip below it: one swatch and name per class present."""
    from PIL import Image, ImageDraw

    present = [int(i) for i in np.unique(labels) if i < seg.num_labels]
    h, w = rgb.shape[:2]
    rows = max(1, -(-len(present) // max(1, w // 140)))
    canvas = Image.new("RGB", (w, h + 18 * rows), (255, 255, 255))
    canvas.paste(Image.fromarray(rgb), (0, 0))
    d = ImageDraw.Draw(canvas)
    per_row = max(1, w // 140)
    for k, i in enumerate(present):
        x0, y0 = (k % per_row) * 140 + 4, h + (k // per_row) * 18 + 3
        d.rectangle([x0, y0, x0 + 12, y0 + 12], fill=tuple(int(v) for v in seg.palette[i]), outline=(0, 0, 0))
        d.text((x0 + 16, y0), seg.class_names[i][:18], fill=(0, 0, 0))
    return np.asarray(canvas)
