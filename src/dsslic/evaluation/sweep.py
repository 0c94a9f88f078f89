"""Running the codecs: the baselines and their settings, one encode/decode per row, the sweep and its cache.

Every rate comes from real encoded bytes (DSSLIC: the whole ``.dsslic`` file); every distortion from the
decoded 8-bit image. Rows are cached in ``cache.jsonl`` by image digest, codec, setting and model version, so
an interrupted or extended sweep recomputes only what is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import codecs
from ..imageio import IMAGE_EXTS, load_image
from .metrics import db, ms_ssim, psnr, psnr_per_class, psnr_y


@dataclass(frozen=True)
class Baseline:
    """An eval codec: a layer codec (or DSSLIC) and the settings swept."""

    name: str
    codec: str  # layer codec name, or "dsslic"
    settings: tuple[int, ...]
    note: str


BASELINES: dict[str, Baseline] = {b.name: b for b in [
    Baseline("dsslic", "dsslic", (22, 25, 28, 31, 34, 37, 40, 43, 46, 49),
             "DSSLIC, all layers and header counted; setting = HEVC QP of the residual layer"),
    Baseline("dsslic-learned", "dsslic-learned", (),
             "DSSLIC with the learned enhancement layer (--residual learned); setting = index of the --enhance "
             "model (one model per rate point)"),
    Baseline("bpg444", "hevc", (22, 25, 28, 31, 34, 37, 40, 43, 46),
             "x265 all-intra, fixed QP, preset veryslow, tune ssim, YCbCr 4:4:4 full range BT.601, 8-bit, "
             "no info SEI; raw stream + 16 bytes for a BPG header; setting = QP (bpgenc -q = QP - 1)"),
    Baseline("bpg444rgb", "hevc-rgb", (22, 25, 28, 31, 34, 37, 40, 43, 46),
             "as bpg444 but coding the G, B, R planes directly (bpgenc -c rgb): the paper's BPG anchor"),
    Baseline("bpg420", "hevc420", (22, 25, 28, 31, 34, 37, 40, 43, 46),
             "as bpg444 with 4:2:0 chroma (bpgenc's default); bilinear chroma upsampling on decode"),
    Baseline("jpeg", "jpeg", (10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
             "libjpeg-turbo via Pillow, 4:2:0, optimised Huffman tables; setting = quality"),
    Baseline("jpeg2000", "jpeg2000", (192, 128, 96, 64, 48, 32, 24, 16, 12),
             "OpenJPEG via Pillow, 9/7 wavelet, colour transform on (mct=1); setting = compression ratio"),
    Baseline("webp", "webp", (5, 15, 30, 45, 60, 75, 85, 95),
             "libwebp via Pillow, method 6 (slowest, best); setting = quality"),
    Baseline("avif", "avif", (20, 30, 40, 50, 60, 70, 80, 90),
             "libavif/libaom via Pillow, 4:4:4, speed 4; setting = quality"),
    Baseline("jxl", "jxl-lossy", (20, 35, 50, 65, 75, 85, 92, 97),
             "libjxl via imagecodecs, VarDCT, effort 7; setting = quality; bare codestream"),
]}


# ------------------------------------------------------------------------------------ one encode
_WORKER: dict = {}


def _dsslic_codec(model: str | None, device: str, enhance: str | None = None):
    key = (model, device, enhance)
    if key not in _WORKER:
        from ..codec import Codec

        _WORKER[key] = Codec(model, device=device, enhance=enhance)
    return _WORKER[key]


def _label_map(data: bytes) -> tuple[np.ndarray, list[str]]:
    """The label map a ``.dsslic`` file stores (at full size) and the names of its label space's classes."""
    from .. import bitstream
    from ..codec import decode_layers
    from ..segmenters import labelspace

    hd = bitstream.parse(data)
    space = labelspace.by_id(hd.segmenter_id) or labelspace.generic(hd.num_labels)
    return decode_layers(hd, "seg").s, list(space.class_names)


_MAPS: dict = {}


def _image_label_map(path: str, x: np.ndarray, model: str | None, device: str) -> tuple[np.ndarray, list[str]]:
    """The label map DSSLIC stores for this image (from a file with the base layers only), for the baselines."""
    key = (path, model)
    if key not in _MAPS:
        _MAPS[key] = _label_map(_dsslic_codec(model, device).compress(x, residual="none"))
    return _MAPS[key]


def run_one(path: str, name: str, setting: int, model: str | None, device: str,
            enhance: tuple[str, ...] = (), per_class: bool = False) -> dict:
    """Encode and decode one image with one codec setting; a row of the report. ``per_class``: also the PSNR
    of each class of the DSSLIC file's label map (the row's own file for DSSLIC, else the image's map)."""
    x = load_image(path)
    h, w = x.shape[:2]
    b = BASELINES[name]
    t0 = time.perf_counter()
    if b.codec == "dsslic":
        codec = _dsslic_codec(model, device)
        data = codec.compress(x, quality=setting)
        t1 = time.perf_counter()
        y = codec.decompress(data)
        nbytes = len(data)
    elif b.codec == "dsslic-learned":
        codec = _dsslic_codec(model, device, enhance[setting])
        data = codec.compress(x, residual="learned")
        t1 = time.perf_counter()
        y = codec.decompress(data)
        nbytes = len(data)
    else:
        lc = codecs.get(b.codec)
        data = lc.encode(x, setting)
        t1 = time.perf_counter()
        y = lc.decode(data, x.shape)
        nbytes = len(data) + lc.container_overhead
    t2 = time.perf_counter()
    if y.shape != x.shape:
        raise RuntimeError(f"{name} decoded {y.shape} for a {x.shape} image")
    bpp = 8 * nbytes / (w * h)
    m = ms_ssim(x, y)
    row = {"image": Path(path).name, "codec": name, "setting": setting, "bytes": nbytes,
           "bpp": bpp, "bpp_per_channel": bpp / 3, "psnr": psnr(x, y), "psnr_y": psnr_y(x, y),
           "ms_ssim": m, "ms_ssim_db": db(m) if m == m else float("nan"),
           "width": w, "height": h, "encode_s": t1 - t0, "decode_s": t2 - t1}
    if per_class:
        s, names = _label_map(data) if b.codec.startswith("dsslic") else _image_label_map(path, x, model, device)
        row["per_class"] = psnr_per_class(x, y, s, names)
    return row


@contextlib.contextmanager
def _one_blas_thread():
    """Workers spawned inside see one BLAS/OpenMP thread each (the variables are read when numpy loads): ``jobs``
    processes with a thread per core each would oversubscribe the CPU, and OpenBLAS's spinning threads then run the
    numpy networks 5-10x slower (measured: 1.8 s instead of 0.22 s for one filter pass on a busy 2-core machine)."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    old = {n: os.environ.get(n) for n in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for n, v in old.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def _task(args: tuple) -> dict:
    import torch

    torch.set_num_threads(1)
    return run_one(*args)


def _key(digest: str, name: str, setting: int, version: str) -> str:
    return f"{digest}:{name}:{setting}:{version}"


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------------ the sweep
def list_images(dirs: list[str], limit: int | None) -> list[Path]:
    files: list[Path] = []
    for d in dirs:
        p = Path(d)
        if p.is_file():
            files.append(p)
            continue
        if not p.is_dir():
            from ..errors import DsslicInputError

            raise DsslicInputError(f"{d}: no such directory")
        found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_EXTS)
        files += found[:limit] if limit else found
    if not files:
        from ..errors import DsslicInputError

        raise DsslicInputError("no images found in --data")
    return files


def _read_cache(cache_path: Path) -> dict[str, dict]:
    cache: dict[str, dict] = {}
    if cache_path.is_file():
        for line in cache_path.read_text().splitlines():
            try:
                rec = json.loads(line)
                cache[rec["key"]] = rec["row"]
            except (ValueError, KeyError):
                continue  # a line cut short by a kill: recomputed
    return cache


def _versions(names: list[str], model: str | None, enhance: tuple[str, ...], per_class: bool) -> dict[str, str]:
    """Per codec, what its rows depend on beyond image and setting (part of the cache key)."""
    version = {n: "1" for n in names}
    if {"dsslic", "dsslic-learned"} & set(names):
        # rows depend on the model's weights and, for a label-conditioned model, on the segmenter's
        base = _dsslic_codec(model, "cpu")
        version["dsslic"] = base.model.model_id.hex() + ":" + base.encoder_tag
        if base.model.num_labels:
            version["dsslic"] += "+" + base.segmenter.fingerprint
        version["dsslic-learned"] = version["dsslic"] + "+" + "+".join(
            _dsslic_codec(model, "cpu", e).residual_coder("learned").model().model_id.hex() for e in enhance)
    if per_class:  # every row then depends on the label maps: on the segmenter of the model
        fingerprint = _dsslic_codec(model, "cpu").segmenter.fingerprint
        version = {n: f"{v}+classes:{fingerprint}" for n, v in version.items()}
    return version


def run_sweep(data: list[str], names: list[str], out: Path, jobs: int = 1, device: str = "cpu",
          model: str | None = None, limit: int | None = None, settings: dict[str, tuple[int, ...]] | None = None,
          progress: bool = True, enhance: tuple[str, ...] = (), per_class: bool = False) -> list[dict]:
    """Every (image, codec, setting) row, from ``out/cache.jsonl`` where present, else computed and cached."""
    from tqdm import tqdm

    from ..errors import DsslicInputError

    for n in names:
        if n not in BASELINES:
            raise DsslicInputError(f"unknown codec {n!r}; choose from {', '.join(BASELINES)}")
    settings = dict(settings or {})
    if "dsslic-learned" in names:
        if not enhance:
            raise DsslicInputError("dsslic-learned needs --enhance WEIGHTS (one per rate point)")
        settings.setdefault("dsslic-learned", tuple(range(len(enhance))))
    files = list_images(data, limit)
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / "cache.jsonl"
    cache = _read_cache(cache_path)
    version = _versions(names, model, enhance, per_class)
    digests = {f: _file_digest(f) for f in files}
    tasks, keys, rows = [], [], []
    for f in files:
        for n in names:
            for s in (settings or {}).get(n, BASELINES[n].settings):
                k = _key(digests[f], n, s, version[n])
                if k in cache:
                    rows.append(cache[k])
                else:
                    tasks.append((str(f), n, s, model, device, tuple(enhance), per_class))
                    keys.append(k)
    with open(cache_path, "a") as cf:
        def done(k: str, row: dict) -> None:
            rows.append(row)
            cf.write(json.dumps({"key": k, "row": row}) + "\n")
            cf.flush()

        bar = tqdm(total=len(tasks), unit="enc", disable=not progress, file=sys.stderr, desc="eval")
        if jobs > 1 and tasks:
            import multiprocessing as mp

            with _one_blas_thread(), mp.get_context("spawn").Pool(jobs) as pool:
                for k, row in zip(keys, pool.imap(_task, tasks, chunksize=1)):
                    done(k, row)
                    bar.update()
        else:
            for k, t in zip(keys, tasks):
                done(k, run_one(*t))
                bar.update()
        bar.close()
    order = {(str(f.name), n, s): i for i, (f, n, s) in enumerate(
        (f, n, s) for f in files for n in names for s in (settings or {}).get(n, BASELINES[n].settings))}
    rows.sort(key=lambda r: order.get((r["image"], r["codec"], r["setting"]), 1 << 30))
    return rows
