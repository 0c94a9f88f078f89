"""Which installed model wrote a file, from the weight files' metadata and without importing torch.

A file that names a model this installation lacks is then refused in a fraction of a second instead of
after loading every network. (A weight file without a stored id is not found by id; --model still loads it.)
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"
#: the id of the built-in ``plain`` model (``models.PlainModel.model_id``; a test pins the two together)
PLAIN_ID = hashlib.sha256(b"plain:bilinear:8:integer-exact").digest()[:4]


def is_path(arg: str) -> bool:
    """A weights argument is a path when it ends in ``.safetensors`` or contains a path separator; anything
    else is the name of a shipped file, looked up in the weights folder only (``../x`` never escapes it)."""
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return arg.endswith(".safetensors") or any(c in arg for c in seps)


def weights_file(arg: str, prefix: str = "", suffix: str = ".safetensors") -> Path | None:
    """The file ``arg`` names (see :func:`is_path`): the path itself, or ``WEIGHTS_DIR/PREFIX+NAME+SUFFIX``
    for a name; None when there is no such file."""
    p = Path(arg) if is_path(arg) else WEIGHTS_DIR / f"{prefix}{arg}{suffix}"
    try:
        return p if p.is_file() else None
    except (OSError, ValueError):
        return None


def shipped() -> list[str]:
    """Names of the CompNet/RecNet weight files inside the package (segmenters and enhancement layers apart)."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors")
                  if not p.name.endswith((".seg.safetensors", ".restore.safetensors")) and not p.name.startswith("enhance-"))


def available() -> list[str]:
    """Names of the models this installation can load: the built-in ``plain`` plus shipped weights."""
    return ["plain", *shipped()]


@functools.lru_cache(maxsize=None)
def ids() -> dict[bytes, str]:
    from safetensors import safe_open

    out = {PLAIN_ID: "plain"}
    for name in shipped():
        with safe_open(str(WEIGHTS_DIR / f"{name}.safetensors"), "np") as f:
            mid = (f.metadata() or {}).get("model_id")
        if mid is not None:  # models.save() stores it; test_codec checks every shipped model is found by it
            out[bytes.fromhex(mid)] = name
    return out


def name_for_id(model_id: bytes) -> str | None:
    """The installed model that wrote a file with this id, if any."""
    return ids().get(model_id)
