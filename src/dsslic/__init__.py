"""dsslic: deep semantic segmentation-based layered image compression.

    >>> import dsslic
    >>> data = dsslic.compress("photo.png")          # bytes of one .dsslic file
    >>> img = dsslic.decompress(data)                # uint8 numpy array, H x W x 3
    >>> dsslic.info(data)["bpp"]

For repeated use keep a :class:`Codec` (it holds the loaded networks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import DsslicError, DsslicFormatError, DsslicInputError, DsslicWarning

__version__ = "0.1.0"
__all__ = [
    "Codec", "compress", "decompress", "info", "index", "search",
    "DsslicError", "DsslicFormatError", "DsslicInputError", "DsslicWarning", "__version__",
]

if TYPE_CHECKING:
    from .codec import Codec

_codecs: dict[tuple, Any] = {}


def _codec(model: str | None, device: str, segmenter: str | None = None, enhance: str | None = None) -> "Codec":
    from .codec import Codec

    key = (model, device, segmenter, enhance)
    if key not in _codecs:
        _codecs[key] = Codec(model=model, device=device, segmenter=segmenter, enhance=enhance)
    return _codecs[key]


def compress(image: Any, *, model: str | None = None, residual: str = "hevc", quality: int | None = None,
             target_bpp: float | None = None, device: str = "cpu", segmenter: str | None = None,
             roi: str | list[str] | None = None, roi_boost: int | None = None) -> bytes:
    """Compress a path, PIL image or numpy array into the bytes of one ``.dsslic`` file.

    ``roi``: class names of the label map whose residual gets ``roi_boost`` QP steps more (default 6)."""
    return _codec(model, device, segmenter).compress(image, residual=residual, quality=quality, target_bpp=target_bpp,
                                                     roi=roi, roi_boost=roi_boost)


def decompress(data: bytes, *, layers: str = "full", model: str | None = None, device: str = "cpu",
               enhance: str | None = None) -> Any:
    """Decode ``.dsslic`` bytes to a uint8 HxWx3 numpy array (``layers``: seg, coarse or full; seg runs no network
    and does not import torch). ``model``/``enhance``: decode with these instead of the installed ones the file
    names (dsslic.decoding decides, as for the command line)."""
    from . import bitstream, decoding

    return decoding.decode(bitstream.parse(data), layers, model, enhance,  # type: ignore[arg-type]
                           lambda who: _codec(who.model, device, who.segmenter, who.enhance))


def info(data: bytes) -> dict:
    """Describe a ``.dsslic`` file without running any network."""
    from .decoding import info as _info

    return _info(data)


def index(paths: Any, db: Any, **kw: Any) -> Any:
    """Index ``.dsslic`` files (folders searched recursively) by their base layers into a SQLite file."""
    from .semantic_search import index as _index

    return _index(paths, db, **kw)


def search(db: Any, **kw: Any) -> list[dict]:
    """Query an index (``has``, ``not_``, ``like``, ``top``): ``[{path, score, areas}]``, best first."""
    from .semantic_search import search as _search

    return _search(db, **kw)


def __getattr__(name: str) -> Any:  # lazy: importing dsslic does not import torch or the codecs
    if name == "Codec":
        from .codec import Codec

        return Codec
    raise AttributeError(name)
