"""Distortion and rate-distortion summaries: PSNR, PSNR-Y, MS-SSIM, averaged curves and BD-rate.

Averages follow the field's convention: at each codec setting, the mean bits per pixel and the mean of the
per-image metrics. BD-rates use the ``bjontegaard`` package (Akima interpolation) on those averaged curves.
"""

from __future__ import annotations

import math

import numpy as np

from ..codec import psnr

__all__ = ["psnr", "psnr_y", "ms_ssim", "db", "psnr_per_class", "average", "average_per_class", "curve", "bd_rate",
           "interp_psnr"]


def psnr_y(a: np.ndarray, b: np.ndarray) -> float:
    w = np.array([0.299, 0.587, 0.114])
    return psnr(a.astype(np.float64) @ w, b.astype(np.float64) @ w)


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM over RGB (pytorch-msssim, 5 scales); NaN for images under 161 pixels a side."""
    if min(a.shape[:2]) <= 160:
        return float("nan")
    import torch
    from pytorch_msssim import ms_ssim as _ms_ssim

    ta = torch.from_numpy(np.array(a)).permute(2, 0, 1)[None].double()
    tb = torch.from_numpy(np.array(b)).permute(2, 0, 1)[None].double()
    return float(_ms_ssim(ta, tb, data_range=255))


def db(msssim: float) -> float:
    return -10 * math.log10(max(1 - msssim, 1e-10))


def psnr_per_class(a: np.ndarray, b: np.ndarray, labels: np.ndarray, names: list[str]) -> dict[str, list]:
    """PSNR over RGB of each class's pixels: {id: [name, pixels, PSNR]} (ids as strings: a JSON object)."""
    sq = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).sum(axis=2)
    ids, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    sse = np.bincount(inverse.ravel(), weights=sq.ravel(), minlength=len(ids))
    out = {}
    for i, n, e in zip(ids, counts, sse):
        mse = e / (3 * n)
        name = names[i] if i < len(names) else f"class{i}"
        out[str(int(i))] = [name, int(n), float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))]
    return out


def average(rows: list[dict]) -> list[dict]:
    """Per codec and setting: mean bpp and mean per-image metrics (the field's convention)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["codec"], r["setting"]), []).append(r)
    out = []
    for (c, s), rs in groups.items():
        avg = {"codec": c, "setting": s, "images": len(rs)}
        for k in ("bpp", "bpp_per_channel", "psnr", "psnr_y", "ms_ssim", "ms_ssim_db", "encode_s", "decode_s"):
            avg[k] = float(np.mean([r[k] for r in rs]))
        out.append(avg)
    return sorted(out, key=lambda a: (a["codec"], a["bpp"]))


def average_per_class(rows: list[dict]) -> list[dict]:
    """Per codec, setting and class: the mean PSNR over the images where the class is present, and the mean bpp
    of those images (the convention of :func:`average`, restricted to them)."""
    groups: dict[tuple, list[tuple[float, float, int]]] = {}
    names: dict[int, str] = {}
    for r in rows:
        for cid, (name, pixels, p) in r.get("per_class", {}).items():
            groups.setdefault((r["codec"], r["setting"], int(cid)), []).append((r["bpp"], p, pixels))
            names[int(cid)] = name
    out = [{"codec": c, "setting": s, "class": k, "name": names[k], "images": len(v),
            "pixels": int(sum(t[2] for t in v)), "bpp": float(np.mean([t[0] for t in v])),
            "psnr": float(np.mean([t[1] for t in v]))} for (c, s, k), v in groups.items()]
    return sorted(out, key=lambda a: (a["codec"], a["setting"], a["class"]))


def curve(avgs: list[dict], codec: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted((a["bpp"], a[metric]) for a in avgs if a["codec"] == codec and a[metric] == a[metric])
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def bd_rate(anchor: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> float:
    """BD-rate in percent of ``test`` against ``anchor`` (negative = fewer bits); NaN without overlap."""
    import warnings

    import bjontegaard as bd

    (ra, da), (rt, dt) = anchor, test
    lo, hi = max(da.min(), dt.min()), min(da.max(), dt.max())
    if len(ra) < 4 or len(rt) < 4 or lo >= hi:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(bd.bd_rate(ra, da, rt, dt, method="akima", require_matching_points=False, min_overlap=0))


def interp_psnr(avgs: list[dict], codec: str, bpp: float) -> float:
    """PSNR of a codec's averaged curve at ``bpp`` (linear in log-rate); NaN outside the curve."""
    r, d = curve(avgs, codec, "psnr")
    if len(r) < 2 or not r.min() <= bpp <= r.max():
        return float("nan")
    return float(np.interp(np.log(bpp), np.log(r), d))
