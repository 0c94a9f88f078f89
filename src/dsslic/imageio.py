"""Reading images from paths, PIL images or arrays into the codec's one format: uint8 HxWx3.

Every conversion that loses information (alpha, 16-bit depth, later frames of an animation)
is reported with a :class:`~dsslic.errors.DsslicWarning` rather than done silently.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DsslicInputError, DsslicWarning

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]

#: File extensions treated as images when a folder is given (compress, eval, training).
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pnm", ".avif"})

#: Default limit on pixels per image, like Pillow's decompression-bomb guard (100 megapixels).
DEFAULT_MAX_PIXELS = 100_000_000


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
    if getattr(img, "n_frames", 1) > 1:
        _warn(f"image has {img.n_frames} frames; only the first is coded")
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


def load_image(image: ImageLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Return ``image`` as a contiguous uint8 array of shape (H, W, 3).

    Accepts a path, a PIL image or a numpy array. EXIF orientation is applied.
    Raises :class:`DsslicInputError` for anything that is not a usable image.
    """
    if isinstance(image, np.ndarray):
        return _from_array(image, max_pixels)
    if isinstance(image, Image.Image):
        return _from_pil(image, max_pixels)
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise DsslicInputError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise DsslicInputError(f"{path}: file is empty")
        # Pillow's own bomb check would raise at twice its limit only; ours is explicit.
        old_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with Image.open(path) as img:
                check_size(img.width, img.height, max_pixels)
                img.load()
                return _from_pil(img, max_pixels)
        except DsslicInputError as e:
            raise DsslicInputError(f"{path}: {e}") from None
        except UnidentifiedImageError:
            raise DsslicInputError(f"{path}: not an image file Pillow can read") from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise DsslicInputError(f"{path}: cannot read image ({e})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = old_limit
    raise DsslicInputError(f"unsupported image type {type(image).__name__} (use a path, PIL image or numpy array)")


def image_bytes(path: str | os.PathLike, array: np.ndarray) -> bytes:
    """A uint8 image encoded in the format ``path``'s extension names (the bytes :func:`save_image` writes)."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise DsslicInputError(f"{path}: unknown image extension {path.suffix!r} (use .png)")
    import io

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def save_image(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 image atomically (temporary file + rename), format from the extension."""
    from .fileutil import atomic_write

    atomic_write(path, image_bytes(path, array))
