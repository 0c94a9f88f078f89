"""The weights index: every shipped network, found by name, path or id, without importing torch to find it.

One folder (``weights/``) holds every kind of network, told apart by the file name (``KINDS``): DSSLIC models
``NAME.safetensors``, segmenters ``NAME.seg.safetensors``, learned enhancement models ``enhance-NAME.safetensors``.
A new kind is one line in ``KINDS``. Every file is a safetensors file whose metadata holds a JSON ``config``, a
JSON ``card`` and, where the kind is named in ``.dsslic`` files, the ``model_id`` (read here with numpy, so that a
file naming a network this installation lacks is refused in a fraction of a second instead of after loading every
network). The ids all come from :func:`digest`; :func:`save` and :func:`load` are the one way such a file is
written and read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DsslicInputError

WEIGHTS_DIR = Path(__file__).parent / "weights"
ID_SIZE = 4  # bytes of a model id in a .dsslic file


@dataclass(frozen=True)
class Kind:
    """How a kind of network is named in the weights folder: ``PREFIX + NAME + SUFFIX``."""

    prefix: str = ""
    suffix: str = ".safetensors"
    builtin: tuple[str, ...] = ()  # names that need no file (``plain``, ``none``), listed first by :func:`available`

    def matches(self, filename: str) -> bool:
        return (filename.startswith(self.prefix) and filename.endswith(self.suffix)
                and len(filename) > len(self.prefix) + len(self.suffix))


KINDS: dict[str, Kind] = {
    "model": Kind(builtin=("plain",)),  # (CompNet, RecNet) pairs: models.py
    "segmenter": Kind(suffix=".seg.safetensors", builtin=("none",)),  # SegNetLite networks: segmenters/segnetlite.py
    "enhance": Kind(prefix="enhance-"),  # learned second enhancement layers: enhance.py
    "restore": Kind(suffix=".restore.safetensors"),  # the decoder's restoration filters: restoration.py
}


def digest(*head: object, config: Mapping[str, Any] | None = None, tensors: Mapping[str, Any] | None = None,
           floats: str | None = "float32", ints: str | None = "float32", sort: bool = True,
           size: int = ID_SIZE) -> bytes:
    """The first ``size`` bytes of the SHA-256 of: ``head`` joined by ``:`` (UTF-8), ``config`` as JSON with
    sorted keys, then each tensor's key and bytes (in sorted key order, or as given with ``sort=False``).

    Every id of the package is this hash, so that one function decides them all; its parameters are the
    differences between the schemes that files already carry, and must stay so: ``floats`` and ``ints`` are
    the dtypes floating and integer tensors are hashed as (None: as stored). Tensors are torch tensors or
    numpy arrays (a file opened with ``safe_open(..., "np")`` hashes without torch).
    """
    h = hashlib.sha256(":".join(map(str, head)).encode())
    if config is not None:
        h.update(json.dumps(config, sort_keys=True).encode())
    items = (tensors or {}).items()
    for k, v in sorted(items) if sort else items:
        h.update(k.encode())
        h.update(_tensor_bytes(v, floats, ints))
    return h.digest()[:size]


def _tensor_bytes(v: Any, floats: str | None, ints: str | None) -> bytes:
    if hasattr(v, "detach"):  # a torch tensor (torch is then imported already)
        import torch

        v = v.detach().cpu()
        dtype = floats if v.is_floating_point() else ints
        if dtype is None:  # bytes as stored, whatever the dtype (bfloat16 has no numpy equivalent)
            return v.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
        return v.to(getattr(torch, dtype)).numpy().tobytes()
    a = np.asarray(v)
    dtype = floats if a.dtype.kind == "f" else ints
    return (a if dtype is None else a.astype(dtype)).tobytes()


#: the id of the built-in ``plain`` model (``models.PlainModel.model_id``; a test pins the two together)
PLAIN_ID = digest("plain", "bilinear", 8, "integer-exact")


def is_path(arg: str) -> bool:
    """A weights argument is a path when it ends in ``.safetensors`` or contains a path separator; anything
    else is the name of a shipped file, looked up in the weights folder only (``../x`` never escapes it)."""
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return arg.endswith(".safetensors") or any(c in arg for c in seps)


def _kind_of(filename: str) -> str | None:
    """The most specific kind whose pattern the file name fits (``x.seg.safetensors`` is a segmenter)."""
    fits = [k for k, kind in KINDS.items() if kind.matches(filename)]
    return max(fits, key=lambda k: len(KINDS[k].prefix) + len(KINDS[k].suffix), default=None)


def names(kind: str = "model") -> list[str]:
    """The names of the shipped networks of one kind (files in the weights folder; built-ins apart)."""
    k = KINDS[kind]
    files = (p.name for p in WEIGHTS_DIR.glob("*") if p.is_file())
    return sorted(f[len(k.prefix): len(f) - len(k.suffix)] for f in files if _kind_of(f) == kind)


def available(kind: str = "model") -> list[str]:
    """Names this installation can load: the kind's built-ins (``plain``, ``none``), then shipped files."""
    return [*KINDS[kind].builtin, *names(kind)]


#: the default model: the first of these that ships. ``lean`` (numpy runtime, 3,448 MAC/pixel, with its 3,780
#: MAC/pixel restoration filter) codes Kodak at the BD-rate of ``general`` with its filter (38,742 MAC/pixel, torch)
#: and decodes 3x faster (README, Speed)
DEFAULT_MODELS = ("lean", "general")


def default_model() -> str:
    """The shipped default model: the first of :data:`DEFAULT_MODELS` that ships, ``plain`` without trained weights."""
    shipped_names = names("model")
    return next((m for m in DEFAULT_MODELS if m in shipped_names), "plain")


def shipped() -> list[str]:
    """Names of the shipped DSSLIC models (segmenters and enhancement layers apart)."""
    return names("model")


def find(arg: str, kind: str = "model") -> Path | None:
    """The file ``arg`` names (see :func:`is_path`): the path itself, or the shipped file of that kind and name;
    None when there is no such file. A name is only ever one of :func:`names`, so it cannot leave the folder."""
    if not is_path(arg):
        k = KINDS[kind]
        return WEIGHTS_DIR / f"{k.prefix}{arg}{k.suffix}" if arg in names(kind) else None
    p = Path(arg)
    try:
        return p if p.is_file() else None
    except (OSError, ValueError):
        return None


def ids(kind: str = "model") -> dict[bytes, str]:
    """Stored id -> name for the shipped networks of one kind (files without a ``model_id`` are not listed)."""
    return dict(_ids(kind, str(WEIGHTS_DIR)))


@functools.lru_cache(maxsize=None)
def _ids(kind: str, folder: str) -> tuple[tuple[bytes, str], ...]:
    from safetensors import safe_open

    out = {PLAIN_ID: "plain"} if kind == "model" else {}
    for name in names(kind):
        with safe_open(str(find(name, kind)), "np") as f:
            mid = (f.metadata() or {}).get("model_id")
        if mid is not None:  # save() stores it; test_codec checks every shipped model is found by it
            out[bytes.fromhex(mid)] = name
    return tuple(out.items())


def name_for_id(model_id: bytes, kind: str = "model") -> str | None:
    """The shipped network that wrote a file with this id, if any."""
    return ids(kind).get(model_id)


def stored(tensors: Mapping[str, Any], half: bool = True, keep32: tuple[str, ...] = ()) -> dict[str, Any]:
    """The tensors as a weights file holds them: contiguous, on the CPU, floating ones in float16 (half the
    bytes, ~no loss) unless their key starts with one of ``keep32``."""
    return {k: (v.half() if half and v.is_floating_point() and not k.startswith(keep32) else v).contiguous().cpu()
            for k, v in tensors.items()}


def save(path: str | os.PathLike, tensors: Mapping[str, Any], config: Mapping[str, Any], card: dict | None = None,
         **meta: str) -> None:
    """Write a weights file: the tensors (see :func:`stored`), the config and card as JSON, and any other
    metadata (``model_id=HEX``: found by id without torch)."""
    from safetensors.torch import save_file

    save_file(dict(tensors), str(path), metadata={"config": json.dumps(config), "card": json.dumps(card or {}),
                                                  **meta})


def load(path: str | os.PathLike, what: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, config) of a weights file; floating tensors in float32. ``what`` names the config a caller needs
    (a file without one is then refused); None accepts a file without config (``{}``). A file that is not
    safetensors, or lacks a needed config, is a DsslicInputError (a ValueError), not an internal error."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            if what is not None and "config" not in meta:
                raise DsslicInputError(f"{path}: no {what} config in the safetensors metadata")
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    except SafetensorError as e:
        raise DsslicInputError(f"{path}: not a safetensors weights file ({e})") from None
    return {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}, json.loads(
        meta.get("config", "{}"))
