"""DSSLIC models: the pair (compact-image predictor, RecNet), found by name, path or id in the weights index (zoo).

Every model works on float images in [0, 1] of shape (B, 3, H, W) with H and W multiples of
``alpha``, and label maps of shape (B, H, W):

* ``compact(x, s)`` -> c at (H/alpha, W/alpha)   (the first enhancement layer, before 8-bit rounding)
* ``reconstruct(s, c)`` -> x' = RecNet(s, c)     (computed from the *decoded* 8-bit c by both sides)
* ``forward(x, s, round_c)`` -> (c, x') for training

``plain`` needs no weights: c is the area mean of each alpha x alpha block and x' its bilinear
upsampling (the paper's upComp without learning). ``LearnedModel`` holds CompNet and FineNet and is
loaded from a safetensors file whose metadata carries its configuration.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import zoo
from .compnet import CompNet
from .errors import DsslicInputError
from .finenet import FineNet, LeanFineNet, RecNet, upsample
from .zoo import available, default_model  # noqa: F401  (models.available(): what this installation loads)


class DsslicModel(nn.Module):
    name: str = "?"
    alpha: int = 8
    segmenter: str = "none"  # the segmenter this model was trained with
    num_labels: int = 0  # label channels the networks take (0: they ignore s)
    full_map: bool = False  # whether the networks read s pixel by pixel (the codec then stores it at full size)
    min_size: int = 1  # smaller inputs are reflect-padded up to this (by the codec, on both sides)

    def compact(self, x: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def reconstruct(self, s: torch.Tensor | None, c: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, s: torch.Tensor | None = None, round_c: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: (c, x'). ``round_c`` rounds c to 8 bits (straight-through), as the codec stores it."""
        c = self.compact(x, s)
        if round_c:
            c = c + ((c.clamp(0, 1) * 255).round() / 255 - c).detach()
        return c, self.reconstruct(s, c)

    @property
    def model_id(self) -> bytes:
        """4 bytes stored in every file: a decoder with another model refuses the file."""
        return zoo.digest(self.name)


class PlainModel(DsslicModel):
    """No learning: c = area downsampling of x, x' = up(c).

    Both run on integer-valued samples (0..255): the sums are then exact in float32 whatever their
    order (alpha*alpha integers; bilinear weights are multiples of 1/(4*alpha)), so encoder and
    decoder agree bit for bit across thread counts, CPUs and GPUs.
    """

    name = "plain"
    revision = "integer-exact"  # part of the model id: files from another computation are refused

    def __init__(self, alpha: int = 8, up_mode: str = "bilinear") -> None:
        super().__init__()
        self.alpha, self.up_mode = alpha, up_mode

    def compact(self, x: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        return F.avg_pool2d(torch.round(x * 255), self.alpha) / 255

    def reconstruct(self, s: torch.Tensor | None, c: torch.Tensor) -> torch.Tensor:
        return (upsample(torch.round(c * 255), self.alpha, self.up_mode) / 255).clamp(0, 1)

    @property
    def model_id(self) -> bytes:
        return zoo.digest(self.name, self.up_mode, self.alpha, self.revision)  # zoo.PLAIN_ID for the defaults


@dataclass
class LearnedConfig:
    """Everything needed to rebuild a LearnedModel; stored as JSON in the weights' metadata."""

    name: str = "custom"
    width: int = 64  # 64 = the paper's size
    n_blocks: int = 9
    norm: str = "instance"
    num_labels: int = 0  # 0 = noSeg
    segmenter: str = "none"
    alpha: int = 8
    compact: str = "compnet"  # "compnet" (paper) or "area" (c anchored to the low-pass image)
    finenet: bool = True  # False = upComp ablation
    up_mode: str = "bilinear"
    arch: str = "finenet"  # "finenet" (pix2pixHD's global generator) or "lean" (LeanFineNet, ~5k MAC/pixel)

    @classmethod
    def preset(cls, preset: str, **kw) -> "LearnedConfig":
        base = {"paper": dict(width=64, n_blocks=9), "small": dict(width=32, n_blocks=6, norm="instance-affine")}
        if preset not in base:
            raise ValueError(f"unknown preset {preset!r}: paper or small")
        return cls(**{**base[preset], **kw})


class LearnedModel(DsslicModel):
    """CompNet + RecNet(FineNet) as in §3.2, in [-1, 1] internally."""

    def __init__(self, config: LearnedConfig) -> None:
        super().__init__()
        self.config = config
        self.name, self.alpha, self.segmenter = config.name, config.alpha, config.segmenter
        self.num_labels = config.num_labels
        # a lean FineNet reads class shares per alpha block, trained on the map as the codec stores it (1/4-1/16);
        # FineNet and CompNet read the one-hot map pixel by pixel
        self.full_map = bool(config.num_labels) and (config.arch != "lean" or config.compact == "compnet")
        self.min_size = 4 * config.alpha  # the networks work at 1/8 inside: reflection padding needs pixels there
        self.compnet = (
            CompNet(config.num_labels, config.width, config.norm) if config.compact == "compnet" else None
        )
        fine = None
        if config.finenet:
            fine = (LeanFineNet(config.num_labels, config.width, config.n_blocks, config.alpha) if config.arch == "lean"
                    else FineNet(config.num_labels, config.width, config.n_blocks, config.norm))
        self.recnet = RecNet(fine, config.alpha, config.up_mode)
        self._id: bytes | None = None

    def compact(self, x: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        if self.compnet is None:
            return F.avg_pool2d(x, self.alpha)
        return (self.compnet(x * 2 - 1, s) + 1) / 2

    def reconstruct(self, s: torch.Tensor | None, c: torch.Tensor) -> torch.Tensor:
        return ((self.recnet(s, c * 2 - 1) + 1) / 2).clamp(0, 1)

    @property
    def model_id(self) -> bytes:
        if self._id is None:
            conf = asdict(self.config)
            if conf["arch"] == "finenet":  # fields added later hash only when set, so older models keep their ids
                del conf["arch"]
            self._id = zoo.digest(config=conf, tensors=self.state_dict())
        return self._id

    def save(self, path: str | os.PathLike, card: dict | None = None, half: bool = True) -> None:
        """Weights-only safetensors export (float16 by default: half the bytes, ~no loss)."""
        sd = zoo.stored(self.state_dict(), half)
        # hold exactly what is stored, so files written from this object decode with the saved weights
        self.load_state_dict({k: v.to(self.state_dict()[k].dtype) for k, v in sd.items()})
        self._id = None
        zoo.save(path, sd, asdict(self.config), card, model_id=self.model_id.hex())  # the id: found without torch

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LearnedModel":
        sd, config = zoo.load(path, "dsslic")
        model = cls(LearnedConfig(**config))
        model.load_state_dict(sd)
        return model.eval()


def load(name: str) -> DsslicModel:
    """A model by name (``plain`` or shipped), or from a path to a ``.safetensors`` file."""
    if name == "plain":
        return PlainModel().eval()
    path = zoo.find(name)  # a name is a shipped model; only NAME.safetensors or a/b is a path
    if path is not None:
        return LearnedModel.load(path)
    raise DsslicInputError(f"unknown model {name!r}; available: {', '.join(available())} (or a .safetensors path)")


