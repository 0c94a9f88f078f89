"""Segmenters: what produces DSSLIC's base layer s = SegNet(x), found by name.

A segmenter maps a uint8 HxWx3 image to an HxW integer label map and knows its class names. Its label
space's id (a hash of the class names) goes into the file, so that a decoder can tell which label space
a map uses; the label spaces themselves (:mod:`.labelspace`) are data, resolved without a segmenter.

Built in: ``none`` (one label everywhere: the paper's noSeg) and ``file`` (a label map the user
supplies, e.g. ground truth) in :mod:`.base`; networks: :class:`~.segnetlite.SegNetLite` (our own, trained
from scratch by ``dsslic train-segnet``; run in numpy by :mod:`.segnetlite_np` on the CPU, so that encoding needs no
torch, and by torch's :mod:`.segnetlite` on other devices) and adapters for models users already have on disk
(:mod:`.adapters`: Hugging Face ``transformers``, torchvision DeepLabV3). Rendering in :mod:`.render`.

This package's ``__init__`` imports no torch: the segmenters are found through the tables below and their
modules imported when one is made. Adding a segmenter: a module with a :class:`~.base.Segmenter` subclass,
and one line in ``NAMED`` (a fixed name) or ``KINDS`` (a ``kind:ARG`` prefix).
"""

from __future__ import annotations

import importlib

from .. import zoo
from ..errors import DsslicInputError
from . import labelspace
from .base import FileSegmenter, NoSegmenter, Segmenter  # noqa: F401  (re-exported)
from .labelspace import colorize  # noqa: F401  (re-exported)
from .render import render_legend  # noqa: F401  (re-exported)

#: fixed names -> (module, class), made without arguments
NAMED = {"none": ("base", "NoSegmenter")}
#: ``kind:ARG`` prefixes -> (module, class, whether it takes ``device=``), made from ARG
KINDS = {"file": ("base", "FileSegmenter", False), "hf": ("adapters", "HFSegmenter", True),
         "torchvision": ("adapters", "TorchvisionSegmenter", True)}


def _class(module: str, name: str) -> type[Segmenter]:
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def class_names_for_id(segmenter_id: bytes) -> list[str] | None:
    """Class names of a label space named in a file, if it is one this installation knows."""
    ls = labelspace.by_id(segmenter_id)
    return list(ls.class_names) if ls is not None else None


def default_name() -> str:
    """The segmenter for general photos when it ships (``photo``), else ``none``: the base layer of every file
    that a label-free model writes, and the default of ``dsslic segment``."""
    return "photo" if zoo.find("photo", "segmenter") else "none"


def available() -> list[str]:
    return zoo.available("segmenter")


def get(name: str, device: str = "cpu") -> Segmenter:
    """A segmenter by name: ``none``, a shipped network (``camvid11`` once trained), ``file:MAP.png``,
    ``hf:FOLDER`` (transformers), ``torchvision:WEIGHTS.pth`` (DeepLabV3) or a ``.seg.safetensors`` path."""
    if name in NAMED:
        return _class(*NAMED[name])()
    kind, _, arg = name.partition(":")
    if kind in KINDS and arg:
        module, cls, takes_device = KINDS[kind]
        return _class(module, cls)(arg, **({"device": device} if takes_device else {}))
    path = zoo.find(name, "segmenter")  # a name is shipped; only X.safetensors or a/b is a path
    if path is not None:  # on the CPU, the numpy runtime (no torch import); torch's for other devices
        module, cls = ("segnetlite_np", "NumpySegmenter") if device == "cpu" else ("segnetlite", "NetSegmenter")
        return _class(module, cls).load(path, device=device)
    raise DsslicInputError(
        f"unknown segmenter {name!r}; available: {', '.join(available())}, file:MAP.png, hf:FOLDER, torchvision:PTH")
