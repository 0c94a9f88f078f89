"""Reading images from paths, PIL images or arrays into the codec's one format: uint8 HxWx3.

Every conversion that loses information (alpha, 16-bit depth, later frames of an animation)
is reported with a :class:`~dsslic.errors.DsslicWarning` rather than done silently.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DsslicInputError, DsslicWarning

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, bytes, BinaryIO]

#: File extensions treated as images when a folder is given (compress, eval, training).
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pnm", ".avif"})

def _default_max_pixels() -> int:
    """100 megapixels (like Pillow's decompression-bomb guard), or the environment's ``DSSLIC_MAX_PIXELS``."""
    v = os.environ.get("DSSLIC_MAX_PIXELS", "").strip()
    if not v:
        return 100_000_000
    try:
        n = int(v)
    except ValueError:
        n = 0
    if n < 1:
        raise DsslicInputError(f"DSSLIC_MAX_PIXELS={v!r}: expected a positive whole number of pixels")
    return n


#: Default limit on pixels per image (``--max-pixels``, ``max_pixels=``): servers set it with DSSLIC_MAX_PIXELS.
DEFAULT_MAX_PIXELS = _default_max_pixels()


def _warn(msg: str) -> None:
    warnings.warn(msg, DsslicWarning, stacklevel=3)


def check_size(width: int, height: int, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               error: type[Exception] = DsslicInputError, what: str = "image is") -> None:
    """Refuse empty or oversized images before anything large is allocated."""
    if width < 1 or height < 1:
        raise error(f"{what} {width}x{height}: no pixels")
    if max_pixels is not None and width * height > max_pixels:
        raise error(
            f"{what} {width}x{height} = {width * height / 1e6:.1f} megapixels, over the limit of "
            f"{max_pixels / 1e6:.1f} (raise it with max_pixels / --max-pixels)"
        )


def _from_pil(img: Image.Image, max_pixels: int | None) -> np.ndarray:
    check_size(img.width, img.height, max_pixels)
    if getattr(img, "is_animated", False):  # not n_frames: counting a TIFF's pages is quadratic in their number
        _warn("image has several frames; only the first is coded")
        img.seek(0)
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block is not worth failing for
        pass
    mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        _warn(f"image has an alpha channel ({mode}); it is dropped (composited on nothing)")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img)
        if arr.dtype != np.uint8:
            _warn(f"image has {arr.dtype.itemsize * 8}-bit samples; they are reduced to 8 bits")
            arr = _to_uint8(arr, 65535 if arr.max(initial=0) > 255 or mode != "I" else 255)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "F":
        _warn("image has floating-point samples; they are clipped to [0, 255] and rounded")
        arr = np.clip(np.rint(np.asarray(img)), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "CMYK":
        _warn("CMYK image converted to RGB without a colour profile")
    return np.ascontiguousarray(np.asarray(img.convert("RGB")))


def _to_uint8(arr: np.ndarray, maxval: int) -> np.ndarray:
    return np.clip(np.rint(arr.astype(np.float64) * (255.0 / maxval)), 0, 255).astype(np.uint8)


def _from_array(arr: np.ndarray, max_pixels: int | None) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise DsslicInputError(f"array must be HxW, HxWx1, HxWx3 or HxWx4, got shape {arr.shape}")
    check_size(arr.shape[1], arr.shape[0], max_pixels)
    if arr.shape[2] == 4:
        _warn("array has an alpha channel; it is dropped")
        arr = arr[..., :3]
    if arr.dtype == np.uint16:
        _warn("16-bit array reduced to 8 bits")
        arr = _to_uint8(arr, 65535)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise DsslicInputError("array contains NaN or infinity")
        # floats are taken as [0, 1], the convention of PyTorch and scikit-image
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise DsslicInputError(f"unsupported array dtype {arr.dtype} (use uint8, uint16 or float in [0, 1])")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def open_image(fp: BinaryIO, filename: str = "") -> Image.Image:
    """``Image.open`` without Pillow's process-wide bomb guard: the caller checks its own limit (``check_size``)
    on the size the header gives, before anything is decoded. ``Image.MAX_IMAGE_PIXELS`` is never changed, so
    other threads and the rest of the process keep Pillow's guard."""
    fp.seek(0)
    prefix = fp.read(16)
    for loader in (Image.preinit, Image.init):
        loader()
        for fmt in list(Image.ID):
            factory, accept = Image.OPEN[fmt]
            ok = not accept or accept(prefix)
            if not ok or isinstance(ok, str):
                continue
            try:
                fp.seek(0)
                return factory(fp, filename)
            except (SyntaxError, IndexError, TypeError, struct.error):
                continue
    raise UnidentifiedImageError("cannot identify image file")


def _deep_samples(img: Image.Image) -> int:
    """Bits per sample of an 8-bit-mode image whose file holds more (e.g. 16-bit RGB PNG, read as RGB)."""
    for tile in getattr(img, "tile", None) or []:
        args = tile.args if hasattr(tile, "args") else tile[3]
        raw = args[0] if isinstance(args, tuple) and args else args
        if isinstance(raw, str) and img.mode in ("L", "LA", "RGB", "RGBA", "P", "PA"):
            for bits in (16, 32):
                if f";{bits}" in raw:
                    return bits
    return 8


def _load_file(fp: BinaryIO, name: str, max_pixels: int | None) -> np.ndarray:
    try:
        img = open_image(fp, name)
        with img:
            check_size(img.width, img.height, max_pixels)
            bits = _deep_samples(img)
            img.load()
            if bits > 8:
                _warn(f"image has {bits}-bit samples; they are reduced to 8 bits")
            return _from_pil(img, max_pixels)
    except DsslicInputError as e:
        raise DsslicInputError(f"{name}: {e}") from None
    except UnidentifiedImageError:
        raise DsslicInputError(f"{name}: not an image file Pillow can read") from None
    except Image.DecompressionBombError as e:  # a plugin's own check inside the file (GIF frames, TIFF tiles)
        raise DsslicInputError(f"{name}: {e}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise DsslicInputError(f"{name}: cannot read image ({e})") from None


def load_image(image: ImageLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Return ``image`` as a contiguous uint8 array of shape (H, W, 3).

    Accepts a path, the bytes of an image file or a binary file object (e.g. stdin), a PIL image or a numpy
    array. EXIF orientation is applied. Raises :class:`DsslicInputError` for anything that is not a usable image.
    The size limit applies to this call only (thread-safe).
    """
    if isinstance(image, np.ndarray):
        return _from_array(image, max_pixels)
    if isinstance(image, Image.Image):
        return _from_pil(image, max_pixels)
    if isinstance(image, (bytes, bytearray, memoryview)):
        if not len(image):
            raise DsslicInputError("image data is empty")
        return _load_file(io.BytesIO(bytes(image)), "<image data>", max_pixels)
    if hasattr(image, "read"):
        return load_image(image.read(), max_pixels)
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise DsslicInputError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise DsslicInputError(f"{path}: file is empty")
        with open(path, "rb") as fp:
            return _load_file(fp, str(path), max_pixels)
    raise DsslicInputError(f"unsupported image type {type(image).__name__} (use a path, PIL image or numpy array)")


#: Output formats written without loss (WebP in its lossless mode), and those that lose: the latter only with
#: an explicit quality (``decompress --lossy-output-quality``), never at a library's default.
LOSSLESS_OUTPUTS = {".png": "PNG", ".ppm": "PPM", ".pnm": "PPM", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP",
                    ".webp": "WEBP"}
LOSSY_OUTPUTS = {".jpg": "JPEG", ".jpeg": "JPEG", ".avif": "AVIF", ".webp": "WEBP"}


def output_format(suffix: str, lossy_quality: int | None = None) -> tuple[str, dict]:
    """Pillow's format and options for an output named ``*suffix``: lossless, unless ``lossy_quality`` (1-100)
    is given for a format that has a lossy mode. A lossy-only format without a quality is refused."""
    ext = suffix.lower()
    if lossy_quality is not None:
        if ext not in LOSSY_OUTPUTS:
            raise DsslicInputError(f"{suffix!r} is written losslessly; --lossy-output-quality is for "
                                   f"{', '.join(sorted(LOSSY_OUTPUTS))}")
        if not 1 <= lossy_quality <= 100:
            raise DsslicInputError(f"--lossy-output-quality {lossy_quality} outside [1, 100]")
        fmt, opts = LOSSY_OUTPUTS[ext], {"quality": lossy_quality}
    elif ext in LOSSLESS_OUTPUTS:
        fmt, opts = LOSSLESS_OUTPUTS[ext], ({"lossless": True} if ext == ".webp" else {})
    elif ext in LOSSY_OUTPUTS:
        raise DsslicInputError(f"{LOSSY_OUTPUTS[ext]} ({suffix}) would lose information a second time; pass "
                               "--lossy-output-quality Q (1-100) to write it anyway, or use .png")
    else:
        raise DsslicInputError(f"unknown image extension {suffix!r}; use .png, .ppm, .tiff, .bmp or .webp "
                               f"(or {', '.join(sorted(set(LOSSY_OUTPUTS) - set(LOSSLESS_OUTPUTS)))} with "
                               "--lossy-output-quality)")
    return fmt, opts


def encode_image(array: np.ndarray, suffix: str = ".png", lossy_quality: int | None = None) -> bytes:
    """The bytes of ``array`` in the format ``suffix`` names (see :func:`output_format`)."""
    fmt, opts = output_format(suffix, lossy_quality)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **opts)
    return buf.getvalue()


def image_bytes(path: str | os.PathLike, array: np.ndarray, lossy_quality: int | None = None) -> bytes:
    """A uint8 image encoded in the format ``path``'s extension names (the bytes :func:`save_image` writes)."""
    try:
        return encode_image(array, Path(path).suffix, lossy_quality)
    except DsslicInputError as e:
        raise DsslicInputError(f"{path}: {e}") from None


def save_image(path: str | os.PathLike, array: np.ndarray, lossy_quality: int | None = None) -> None:
    """Write a uint8 image atomically (temporary file + rename), format from the extension (see
    :func:`encode_image`: lossless unless ``lossy_quality`` is given)."""
    from .fileutil import atomic_write

    atomic_write(path, image_bytes(path, array, lossy_quality))
