"""Pillow plugin: ``import dsslic.pillow`` and ``Image.open("x.dsslic")`` / ``img.save("x.dsslic")`` work.

    >>> import dsslic.pillow
    >>> from PIL import Image
    >>> im = Image.open("photo.dsslic")       # size, mode and im.info["dsslic"] from the file; no network runs
    >>> im.load()                             # decodes (networks loaded once per process and kept)
    >>> im.save("copy.dsslic", quality=32, residual="hevc", model="general")

``Image.open`` parses the header with :func:`dsslic.bitstream.parse` and decodes only the base layer (the
label map, lossless, no network) for ``im.info["dsslic"]``, which is what ``dsslic info`` prints. torch is
imported on ``load()`` only. Errors follow Pillow: a file that does not start with ``DSLC`` is left to the
other plugins (``UnidentifiedImageError`` if none takes it); a ``.dsslic`` file that is corrupt raises
``OSError`` with dsslic's message, on open (header, base layer) or on ``load()`` (the other layers).
"""

from __future__ import annotations

import inspect
from typing import IO

from PIL import Image, ImageFile

from . import bitstream
from .errors import DsslicError

FORMAT = "DSSLIC"
MIME = "image/x-dsslic"
#: what :meth:`Image.Image.save` passes on to :meth:`dsslic.Codec.encode` (``model`` chooses the Codec)
SAVE_OPTIONS = ("quality", "residual", "target_bpp", "roi", "verify")


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == bitstream.MAGIC


def _max_pixels() -> int | None:
    """Pillow's own bomb limit: it warns above MAX_IMAGE_PIXELS and refuses above twice that."""
    return None if Image.MAX_IMAGE_PIXELS is None else 2 * Image.MAX_IMAGE_PIXELS


def _parse(data: bytes) -> bitstream.Header:
    try:
        return bitstream.parse(data, _max_pixels())
    except DsslicError as e:
        raise OSError(f"dsslic: {e}") from e


class DsslicImageFile(ImageFile.ImageFile):
    """A ``.dsslic`` file opened by Pillow: the image is decoded on ``load()``."""

    format = FORMAT
    format_description = "DSSLIC layered image (semantic map, compact image, residual)"

    def _open(self) -> None:
        from .decoding import info

        assert self.fp is not None
        data = self.fp.read()
        hd = _parse(data)
        try:
            self.info["dsslic"] = info(data, _max_pixels())  # decodes the label map: the classes present
        except DsslicError as e:
            raise OSError(f"dsslic: {e}") from e
        self._mode = "RGB"
        self._size = (hd.width, hd.height)
        self.tile = [ImageFile._Tile(FORMAT, (0, 0, hd.width, hd.height), 0, ())]


class _Decoder(ImageFile.PyDecoder):
    """Reads the whole file from the start and decodes it with the process's shared :class:`dsslic.Codec`."""

    _pulls_fd = True

    def decode(self, buffer: bytes | Image.SupportsArrayInterface) -> tuple[int, int]:
        import dsslic

        assert self.fd is not None
        self.fd.seek(0)
        data = self.fd.read()
        hd = _parse(data)
        if (hd.width, hd.height) != (self.state.xsize, self.state.ysize):
            raise OSError("dsslic: file changed between open and load")
        try:
            arr = dsslic.decompress(data)
        except DsslicError as e:
            raise OSError(f"dsslic: {e}") from e
        self.set_as_raw(arr.tobytes())
        return -1, 0


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    """``im.save(fp, format="DSSLIC", quality=, residual=, target_bpp=, roi=, model=, verify=)``."""
    import dsslic

    if im.mode not in ("RGB", "L"):
        raise OSError(f"cannot write mode {im.mode} as DSSLIC (convert to RGB first)")
    opts = {k: im.encoderinfo[k] for k in SAVE_OPTIONS if im.encoderinfo.get(k) is not None}
    codec = dsslic._codec(im.encoderinfo.get("model"), im.encoderinfo.get("device", "cpu"))
    if "roi" in opts and "roi" not in inspect.signature(codec.encode).parameters:
        raise ValueError("roi= needs a dsslic whose encoder supports regions of interest; this one does not")
    try:
        data = codec.encode(im.convert("RGB"), **opts).data  # the whole file in memory, then one write
    except DsslicError as e:
        raise OSError(f"dsslic: {e}") from e
    fp.write(data)


def register() -> None:
    """Register the format with Pillow (done on import; calling it again is harmless)."""
    Image.register_open(FORMAT, DsslicImageFile, _accept)
    Image.register_decoder(FORMAT, _Decoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, ".dsslic")
    Image.register_mime(FORMAT, MIME)


register()
