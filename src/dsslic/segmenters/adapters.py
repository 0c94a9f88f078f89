"""Bring your own weights: segmentation models users already have on disk (nothing is downloaded).

``hf:FOLDER``: a Hugging Face ``transformers`` model; ``torchvision:WEIGHTS.pth``: torchvision's DeepLabV3.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DsslicInputError
from .base import Segmenter


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
