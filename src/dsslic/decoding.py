"""Who decodes a file: one policy for the CLI, the Python API and the batch workers.

The file is parsed once (by the caller) and its layers decoded once; the model is resolved once, from the
header, before any network is loaded: a file naming a model this installation lacks is refused without
torch, and ``--layers seg`` needs no model at all (the map is coloured in the file's own label space,
whichever segmenter the decoder holds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import bitstream
from .bitstream import Header
from .codec import Layers, decode_layers, render_labels
from .errors import DsslicFormatError
from .imageio import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from .codec import Codec
    from .segmenters.labelspace import LabelSpace


@dataclass(frozen=True)
class Decoder:
    """What decodes one file: resolved from its header and the user's overrides, without torch."""

    model: str | None  #: the model: the user's, or the installed one the file names (None: unknown here)
    enhance: str | None  #: the learned layer's model: the user's, or None for the shipped one its payload names
    label_space: LabelSpace | None  #: the file's label space (class names, palette); None if unknown here
    segmenter: str = "none"  #: decoding segments nothing: no segmenter is loaded for it


def resolve(hd: Header, layers: Layers = "full", model: str | None = None, enhance: str | None = None,
            name: str = "") -> Decoder:
    """The decoder of a parsed file. Beyond ``seg`` a model is needed: the one given, else the installed model
    whose id the file names, else a DsslicFormatError that says which are installed (``name``: the file's, for
    the message)."""
    from . import zoo
    from .segmenters import labelspace

    space = labelspace.by_id(hd.segmenter_id)
    if model is None:
        model = zoo.name_for_id(hd.model_id)
        if model is None and layers != "seg":
            raise DsslicFormatError(
                f"{name + ': ' if name else ''}made with model id {hd.model_id.hex()}, which this installation does not have "
                f"(installed: {', '.join(zoo.available())}); pass --model PATH.safetensors")
    return Decoder(model, enhance, space)


def decode(hd: Header, layers: Layers = "full", model: str | None = None, enhance: str | None = None,
           codec: Callable[[Decoder], Codec] | None = None, name: str = "") -> np.ndarray:
    """Decode a parsed file: every layer's payload first (a bad one fails before torch is imported), then with
    the decoder :func:`resolve` names; ``codec`` builds (or reuses) the :class:`~dsslic.codec.Codec` for it."""
    lay = decode_layers(hd, layers)
    who = resolve(hd, layers, model, enhance, name)
    if layers == "seg":  # the label map alone: no network
        return render_labels(hd, lay.s, who.label_space)
    return (codec or _codec)(who).reconstruct(hd, lay, layers)


def _codec(who: Decoder) -> Codec:
    from .codec import Codec

    return Codec(model=who.model, segmenter=who.segmenter, enhance=who.enhance)


def info(data: bytes, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict:
    """What a file holds, without running any network: sizes, model, labels present, layers, rate."""
    from . import codecs

    hd = bitstream.parse(data, max_pixels)
    layers = []
    for layer in hd.layers:
        c = codecs.by_id(layer.codec_id)
        layers.append({"layer": layer.kind.name.lower(), "codec": c.name, "quality": layer.quality,
                       "bytes": len(layer.data), "bpp": 8 * len(layer.data) / (hd.width * hd.height)})
    s = decode_layers(hd, "seg").s  # the base layer alone, with the same checks as decoding
    who = resolve(hd, "seg")
    space = who.label_space
    names = list(space.class_names) if space is not None else None
    ids, counts = np.unique(s, return_counts=True)  # area share of every class present
    present = [int(v) for v in ids]
    n = hd.width * hd.height
    header_bytes = len(data) - sum(len(la.data) for la in hd.layers)
    return {
        "width": hd.width, "height": hd.height, "alpha": hd.alpha,
        "model_id": hd.model_id.hex(), "model": who.model,
        "segmenter_id": hd.segmenter_id.hex(), "label_space": space.name if space is not None else None,
        "num_labels": hd.num_labels,
        "labels_present": present,
        "label_names_present": [names[i] for i in present if i < len(names)] if names else None,
        "label_areas": {(names[i] if names and i < len(names) else str(i)): float(k) / s.size for i, k in zip(ids, counts)},
        "residual_range": [hd.res_min, hd.res_max],
        "header_bytes": header_bytes, "layers": layers, "bytes": len(data),
        "bpp": 8 * len(data) / n, "bpp_per_channel": 8 * len(data) / n / 3,
    }
