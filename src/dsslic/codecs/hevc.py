"""HEVC intra through x265 (BPG's engine), with PyAV; full-range BT.601 colour transforms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import DsslicFormatError, DsslicInputError
from .base import LayerCodec, Shape, _check_claimed, _expect, register

# --------------------------------------------------------------------------------------------
# Colour transforms (full-range BT.601, as JPEG, JFIF and libbpg's default use)
# --------------------------------------------------------------------------------------------

def rgb_to_ycbcr(rgb: np.ndarray, bits: int = 8) -> np.ndarray:
    """HxWx3 RGB -> 3xHxW full-range BT.601 YCbCr planes of ``bits`` bits (uint8, or uint16 above 8)."""
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mid = float(1 << (bits - 1))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = mid - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = mid + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.clip(np.rint(np.stack([y, cb, cr])), 0, (1 << bits) - 1).astype(np.uint8 if bits == 8 else np.uint16)


def ycbcr_to_rgb(ycc: np.ndarray, bits: int = 8) -> np.ndarray:
    """3xHxW full-range YCbCr planes of ``bits`` bits -> HxWx3 RGB (uint8, or uint16 above 8; in bands of rows:
    float only for a band)."""
    top, mid = (1 << bits) - 1, float(1 << (bits - 1))
    out = np.empty((*ycc.shape[1:], 3), np.uint8 if bits == 8 else np.uint16)
    for i in range(0, ycc.shape[1], 256):
        y, cb, cr = (p.astype(np.float32) for p in ycc[:, i : i + 256])
        cb -= mid
        cr -= mid
        r = y + 1.402 * cr
        g = y - 0.344136 * cb - 0.714136 * cr
        b = y + 1.772 * cb
        out[i : i + 256] = np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, top)
    return out


# --------------------------------------------------------------------------------------------
# HEVC intra through x265 (BPG's engine)
# --------------------------------------------------------------------------------------------

@register
@dataclass
class HevcCodec(LayerCodec):
    """HEVC all-intra with libbpg's choices: x265, fixed QP, YCbCr full range, 8 bit, no info SEI.

    ``colorspace`` is ``"ycbcr"`` (how BPG is used), or ``"rgb"`` (``bpgenc -c rgb``, coding G, B, R
    as the three planes: the paper's anchor). ``chroma`` is ``"444"`` or ``"420"``. The stream is a raw
    Annex-B HEVC stream; a BPG file would add a header of about 16 bytes (``container_overhead``).
    x265 needs each side >= 32 pixels, so smaller images are edge-padded and cropped back.
    A uint16 image is coded at ``bits`` (10 or 12) bits per sample, 4:4:4 only (the residual layer's
    deep mode); ``tune`` (``"none"``: x265's default), the chroma QP offsets and ``x265_params`` (more
    ``key=value`` pairs joined by ``:``, e.g. ``tu-intra-depth=2``) are encoder choices.
    """

    colorspace: str = "ycbcr"
    chroma: str = "444"
    preset: str = "veryslow"
    tune: str = "ssim"
    bits: int = 8
    cbqpoffs: int = 0
    crqpoffs: int = 0
    x265_params: str = ""

    name: ClassVar[str] = "hevc"
    id: ClassVar[int] = 3
    quality_range = (0, 51)
    higher_is_better = False
    default_quality = 29
    container_overhead = 16
    description = "HEVC intra (x265 via PyAV), QP, veryslow, tune ssim, YCbCr 4:4:4 full range"

    MIN_SIDE: ClassVar[int] = 32

    def _padded(self, h: int, w: int) -> tuple[int, int]:
        m = 2 if self.chroma == "420" else 1
        return max(self.MIN_SIDE, -(-h // m) * m), max(self.MIN_SIDE, -(-w // m) * m)

    def _planes(self, img: np.ndarray, bits: int = 8) -> np.ndarray:
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if self.colorspace == "rgb":
            return np.ascontiguousarray(img[..., [1, 2, 0]].transpose(2, 0, 1))  # G, B, R like bpgenc
        return rgb_to_ycbcr(img, bits)

    def _rgb(self, planes: np.ndarray, bits: int = 8) -> np.ndarray:
        if self.colorspace == "rgb":
            return np.ascontiguousarray(planes.transpose(1, 2, 0)[..., [2, 0, 1]])
        return ycbcr_to_rgb(planes, bits)

    def encode(self, img: np.ndarray, quality: int | None = None) -> bytes:
        import av

        qp = self.check_quality(quality)
        h, w = img.shape[:2]
        ph, pw = self._padded(h, w)
        bits = self.bits if img.dtype == np.uint16 else 8
        if bits not in (8, 10, 12) or (bits > 8 and self.chroma != "444"):
            raise DsslicInputError(f"{self.name}: {bits}-bit samples need 4:4:4 and 10 or 12 bits")
        planes = self._planes(img, bits)
        if (ph, pw) != (h, w):
            planes = np.pad(planes, ((0, 0), (0, ph - h), (0, pw - w)), mode="edge")
        if bits > 8:
            pix = f"yuv444p{bits}le"
            frame = av.VideoFrame(pw, ph, pix)
            for plane, src in zip(frame.planes, planes):
                buf = np.zeros((ph, plane.line_size // 2), np.uint16)
                buf[:, :pw] = src
                plane.update(buf.tobytes())
        elif self.chroma == "420":
            y = planes[0]
            c = planes[1:].astype(np.float32).reshape(2, ph // 2, 2, pw // 2, 2).mean(axis=(2, 4))
            c = np.clip(np.rint(c), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, c.reshape(-1, pw)], axis=0), format="yuv420p")
            pix = "yuv420p"
        else:
            frame = av.VideoFrame.from_ndarray(planes, format="yuv444p")
            pix = "yuv444p"
        ctx = av.CodecContext.create("libx265", "w")
        ctx.width, ctx.height, ctx.pix_fmt = pw, ph, pix
        ctx.options = {"preset": self.preset, **({"tune": self.tune} if self.tune != "none" else {}),
                       "x265-params": f"keyint=1:qp={qp}:info=0:repeat-headers=0:log-level=error"
                       + (f":cbqpoffs={self.cbqpoffs}:crqpoffs={self.crqpoffs}" if self.cbqpoffs or self.crqpoffs else "")
                       + (f":{self.x265_params}" if self.x265_params else "")}
        packets = list(ctx.encode(frame)) + list(ctx.encode(None))
        return b"".join(bytes(p) for p in packets)

    def decode(self, data: bytes, shape: Shape) -> np.ndarray:
        import av

        h, w = shape[:2]
        ph, pw = self._padded(h, w)
        try:
            ctx = av.CodecContext.create("hevc", "r")
            # FFmpeg refuses a stream claiming more pixels than this before allocating frames
            # (with room for its alignment of the coded size to 64-pixel coding tree blocks)
            ctx.options = {"max_pixels": str((ph + 64) * (pw + 64)), "threads": "1"}
            packets = ctx.parse(data) + ctx.parse(None)  # one per picture (access unit): no pixels yet
            if len(packets) != 1:
                raise DsslicFormatError(f"{self.name} layer holds {len(packets)} pictures, expected 1")
            frames = []
            for p in [*packets, None]:  # None flushes the decoder
                frames += ctx.decode(p)
                if len(frames) > 1:  # stop at the second picture, before any more are decoded
                    raise DsslicFormatError(f"{self.name} layer holds more than one picture")
        except DsslicFormatError:
            raise
        except Exception as e:
            if "max_pixels" in str(e):
                raise DsslicFormatError(
                    f"{self.name} stream claims more pixels than the header's {w}x{h}") from None
            raise DsslicFormatError(f"{self.name} layer does not decode ({str(e)[:120]})") from None
        if len(frames) != 1:
            raise DsslicFormatError(f"{self.name} layer holds {len(frames)} pictures, expected 1")
        fr = frames[0]
        _check_claimed(fr.width, fr.height, (ph, pw), self.name)
        deep = {"yuv444p10le": 10, "yuv444p12le": 12} if self.chroma == "444" else {}
        if fr.format.name != ("yuv420p" if self.chroma == "420" else "yuv444p") and fr.format.name not in deep:
            raise DsslicFormatError(f"{self.name} layer has pixel format {fr.format.name}")
        if fr.format.name in deep:  # a deep residual: uint16 samples (the caller checks the depth it expects)
            bits = deep[fr.format.name]
            planes = np.stack([np.frombuffer(p, np.uint16).reshape(ph, p.line_size // 2)[:, :pw] for p in fr.planes])
            return _expect(self._rgb(planes[:, :h, :w], bits), (h, w, 3), self.name)
        arr = fr.to_ndarray()
        if self.chroma == "420":
            planes = np.empty((3, ph, pw), np.uint8)
            planes[0] = arr[:ph]
            c = arr[ph:].reshape(2, ph // 2, pw // 2)
            for i in range(2):
                planes[1 + i] = _upsample2(c[i], ph, pw)
        else:
            planes = arr.reshape(3, ph, pw)
        rgb = self._rgb(planes[:, :h, :w])
        return _expect(rgb, (h, w, 3), self.name)


def _upsample2(plane: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    up = Image.fromarray(plane.astype(np.float32), "F").resize((w, h), Image.BILINEAR)
    return np.clip(np.rint(np.asarray(up)), 0, 255).astype(np.uint8)


@register
class HevcRgbCodec(HevcCodec):
    name = "hevc-rgb"
    id = 4
    description = "HEVC intra (x265), QP, coding the R, G, B planes directly (bpgenc -c rgb)"

    def __init__(self) -> None:
        super().__init__(colorspace="rgb")


@register
class Hevc420Codec(HevcCodec):
    name = "hevc420"
    id = 5
    description = "HEVC intra (x265), QP, YCbCr 4:2:0 full range (bpgenc's default)"

    def __init__(self) -> None:
        super().__init__(chroma="420")
