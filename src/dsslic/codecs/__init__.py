"""Layer codecs: every image codec dsslic uses, behind one small interface.

A :class:`LayerCodec` turns a uint8 (or uint16, for label maps) image into bytes and back.
The same objects code DSSLIC's layers (label map, compact image, residual) and serve as the
classical baselines of ``dsslic eval`` (``bpg444`` is :class:`HevcCodec` coding the image itself),
so that every curve is measured through exactly the same encoder settings.

Decoders are written for strangers' files: each checks the size a stream claims *before*
decoding it and raises :class:`~dsslic.errors.DsslicFormatError` for anything that does not
match what the container promised.

Each codec is a module of this package (``base.py``: the interface and registry; ``labelmap.py``: const and
the label-map coder; ``jxl.py``; ``hevc.py``; ``pillow.py``: AVIF, WebP, JPEG, JPEG 2000, PNG; ``learned.py``)
whose classes register themselves with ``@register``; importing this package imports them all.
Adding a codec: a module, and its name in the import line below.
"""

from __future__ import annotations

from . import hevc, jxl, labelmap, learned, pillow  # noqa: F401  (each registers its codecs)
from .base import LayerCodec, Shape, by_id, get, names, register  # noqa: F401
from .hevc import HevcCodec  # noqa: F401
