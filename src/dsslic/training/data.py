"""Training data: images (and label maps) held in memory as uint8, and the deterministic batch of each step.

The batch of step ``t`` is drawn from a generator seeded with ``(seed, t[, rank])`` (:func:`step_generator`), so a
run resumed from a checkpoint continues exactly as if never stopped. Two pipelines share the loading and the
random draws below: CompNet/RecNet and the enhancement layer (:func:`load_images`, :func:`batch_at`: crops,
flips, optionally rotations, brightness/contrast and scale jitter; :func:`decoded_compacts` and
:func:`lossy_batch_at` for RecNet trained on a lossy c), and the segmenter (:func:`load_pairs`,
:func:`seg_batch_at`: scale jitter, crops, flips, colour jitter; label maps mapped into a label space).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..imageio import IMAGE_EXTS
from ..segmenters import labelspace

if TYPE_CHECKING:
    from .recnet import TrainConfig
    from .segnet import SegTrainConfig


# ------------------------------------------------------------------------------------- shared
def image_files(folders: list[str], recursive: bool = True) -> list[Path]:
    """The images in these folders (and their subfolders when ``recursive``), sorted."""
    return sorted(f for d in folders for f in (Path(d).rglob("*") if recursive else Path(d).iterdir())
                  if f.suffix.lower() in IMAGE_EXTS)


def labels_by_stem(folders: list[str], recursive: bool = True) -> dict[str, Path]:
    """Label-map PNGs by file stem, which pairs them with their images."""
    return {f.stem: f for d in folders for f in (Path(d).rglob("*.png") if recursive else Path(d).glob("*.png"))}


def to_chw(x: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> a 3xHxW uint8 tensor of its own memory."""
    return torch.from_numpy(np.array(x)).permute(2, 0, 1).contiguous()


def step_generator(*key: int) -> torch.Generator:
    """The random source of one step's batch, seeded by ``key`` (seed, step[, rank]): a resumed run draws alike."""
    return torch.Generator().manual_seed(hash(key) & 0x7FFFFFFF)


def pick(g: torch.Generator, n: int) -> int:
    """One index in [0, n)."""
    return int(torch.randint(n, (1,), generator=g))


def crop_origin(g: torch.Generator, h: int, w: int, k: int) -> tuple[int, int]:
    """(y0, x0) of a random k x k crop (or a k-cell crop of a grid) of an h x w image."""
    y0 = int(torch.randint(h - k + 1, (1,), generator=g))
    x0 = int(torch.randint(w - k + 1, (1,), generator=g))
    return y0, x0


def coin(g: torch.Generator) -> bool:
    """True with probability 1/2 (a horizontal flip)."""
    return bool(torch.rand(1, generator=g) < 0.5)


def uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return float(torch.empty(1).uniform_(lo, hi, generator=g))


# ------------------------------------------------------------------------------------- images (recnet, enhance)
def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def load_images(cfg: TrainConfig) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """All training images (uint8 3xHxW) and their label maps, in memory."""
    from PIL import Image

    files = image_files(cfg.data)
    if not files:
        raise ValueError(f"no training images under {cfg.data}")
    label_dirs = getattr(cfg, "labels", [])  # the enhancement trainer has none
    label_index = labels_by_stem(label_dirs)
    imgs, labels = [], []
    for f in files:
        x = _load_rgb(f)
        if min(x.shape[:2]) < cfg.crop:  # small images are upscaled to the crop size
            s = cfg.crop / min(x.shape[:2])
            x = np.asarray(Image.fromarray(x).resize((math.ceil(x.shape[1] * s), math.ceil(x.shape[0] * s)), Image.BICUBIC))
        imgs.append(to_chw(x))
        if label_dirs:
            if f.stem not in label_index:
                raise ValueError(f"no label map for {f.name} in {label_dirs}")
            lab = np.asarray(Image.open(label_index[f.stem]))
            if lab.shape != x.shape[:2]:
                lab = np.asarray(Image.fromarray(lab).resize((x.shape[1], x.shape[0]), Image.NEAREST))
            labels.append(torch.from_numpy(lab.astype(np.int64)))
        else:
            labels.append(None)
    return imgs, labels


def batch_at(step: int, rank: int, cfg: TrainConfig, imgs, labels) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The batch of a given step: random crops, flips (and more with augment='strong'). Deterministic."""
    g = step_generator(cfg.seed, step, rank)
    xs, ss = [], []
    k = cfg.crop
    for _ in range(cfg.batch):
        i = pick(g, len(imgs))
        x, s = imgs[i], labels[i]
        kk = k
        if cfg.augment == "strong":  # scale jitter: crop 0.75x-1.5x the size, resized to k below
            kk = min(int(k * uniform(g, 0.75, 1.5)), *x.shape[1:])
        y0, x0 = crop_origin(g, x.shape[1], x.shape[2], kk)
        xc = x[:, y0 : y0 + kk, x0 : x0 + kk].float() / 255
        sc = s[y0 : y0 + kk, x0 : x0 + kk] if s is not None else None
        if kk != k:
            xc = F.interpolate(xc[None], size=(k, k), mode="bilinear", antialias=True, align_corners=False)[0]
            if sc is not None:
                sc = F.interpolate(sc[None, None].float(), size=(k, k), mode="nearest")[0, 0].long()
        if coin(g):
            xc, sc = xc.flip(-1), (sc.flip(-1) if sc is not None else None)
        if cfg.augment == "strong":
            r = pick(g, 4)
            xc, sc = xc.rot90(r, (1, 2)), (sc.rot90(r, (0, 1)) if sc is not None else None)
            a = uniform(g, 0.7, 1.3)
            b = uniform(g, -0.1, 0.1)
            xc = ((xc - 0.5) * a + 0.5 + b).clamp(0, 1)
        xs.append(xc)
        ss.append(sc)
    x = torch.stack(xs)
    s = torch.stack(ss) if ss[0] is not None else None
    if s is not None:
        s = torch.where(s < cfg.num_labels, s, torch.full_like(s, -1))  # void: no one-hot bit set
    return x, s


def decoded_compacts(cfg: TrainConfig, imgs: list[torch.Tensor], alpha: int = 8, cache: Path | None = None
                     ) -> list[tuple[torch.Tensor, ...]]:
    """For ``lossy_c``: each image (at each scale, cropped to multiples of alpha) with its area-mean c as the
    codec decodes it at every listed quality ('lossless': c itself), as (x, [c, ...]); with labels (withSeg)
    (x, [c, ...], s), s the map the image's file would carry. Coded whole, as the codec codes a file.
    ``cache``: a file keeping the decoded c's (and maps) for a resumed run (recomputed if the settings differ)."""
    from PIL import Image

    from .. import bitstream, codecs

    key = [cfg.lossy_c, cfg.lossy_scales, cfg.crop, [tuple(x.shape) for x in imgs]]
    if cfg.num_labels:  # withSeg: the map each image's file would carry, as its decoder has it
        key.append(cfg.segmenter)
    saved = torch.load(cache, weights_only=True) if cache is not None and cache.is_file() else None
    if saved is not None and saved["key"] != json.dumps(key):
        saved = None
    stored_map = _stored_map(cfg.segmenter) if cfg.num_labels and saved is None else None

    name, _, qs = cfg.lossy_c.partition(":")
    cod = codecs.get(bitstream.RESIDUAL_CODECS.get(name, name))
    quals = [None if q == "lossless" else int(q) for q in qs.split(",") if q]
    out = []
    for x in imgs:
        for sc in (float(v) for v in cfg.lossy_scales.split(",")):
            h, w = int(x.shape[1] * sc) // alpha * alpha, int(x.shape[2] * sc) // alpha * alpha
            if min(h, w) < cfg.crop:
                continue
            xs = x if sc == 1 else torch.from_numpy(np.array(Image.fromarray(x.permute(1, 2, 0).numpy()).resize(
                (int(x.shape[2] * sc), int(x.shape[1] * sc)), Image.LANCZOS))).permute(2, 0, 1)
            xs = xs[:, :h, :w].contiguous()
            c = torch.round(F.avg_pool2d(xs[None].float(), alpha)[0]).to(torch.uint8)
            c_np = np.ascontiguousarray(c.permute(1, 2, 0).numpy())
            i = len(out)
            cs = saved["cs"][i] if saved is not None else [
                c if q is None else torch.from_numpy(np.array(cod.decode(cod.encode(c_np, q), c_np.shape))).permute(2, 0, 1)
                .contiguous() for q in quals]
            if cfg.num_labels:
                out.append((xs, cs, saved["s"][i] if saved is not None else stored_map(xs)))
            else:
                out.append((xs, cs))
    if cache is not None and saved is None:
        torch.save({"key": json.dumps(key), "cs": [o[1] for o in out], "s": [o[2] for o in out if len(o) > 2]}, cache)
    return out


def _stored_map(segmenter: str):
    """x (3xHxW uint8) -> the label map (HxW uint8) a file of x would carry, at the size its decoder upscales it
    to: the codec's own segmentation and storage rule (factor 1/4..1/16 by size), so RecNet learns from what it
    will be given."""
    from ..codec import Codec

    codec = Codec("plain", segmenter=segmenter)

    def run(x: torch.Tensor) -> torch.Tensor:
        s = codec._seg_layer(np.ascontiguousarray(x.permute(1, 2, 0).numpy()))[1]
        return torch.from_numpy(np.ascontiguousarray(s if s.dtype == np.uint8 else s.astype(np.int32)))

    return run


def lossy_batch_at(step: int, rank: int, cfg: TrainConfig, pairs, alpha: int = 8
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Crops of x aligned to the alpha grid with the matching crop of one decoded c (and of the stored label map,
    for withSeg: ids >= num_labels void); flips and rotations. The same draws with and without labels."""
    g = step_generator(cfg.seed, step, rank)
    k, kc = cfg.crop, cfg.crop // alpha
    xs, cs, ss = [], [], []
    for _ in range(cfg.batch):
        x, variants, *lab = pairs[pick(g, len(pairs))]
        c = variants[pick(g, len(variants))]
        y0, x0 = crop_origin(g, c.shape[1], c.shape[2], kc)
        xc = x[:, y0 * alpha : y0 * alpha + k, x0 * alpha : x0 * alpha + k].float() / 255
        cc = c[:, y0 : y0 + kc, x0 : x0 + kc].float() / 255
        sc = [m[y0 * alpha : y0 * alpha + k, x0 * alpha : x0 * alpha + k].long() for m in lab]  # [] or [s]
        if coin(g):
            xc, cc, sc = xc.flip(-1), cc.flip(-1), [m.flip(-1) for m in sc]
        r = pick(g, 4)
        xs.append(xc.rot90(r, (1, 2)))
        cs.append(cc.rot90(r, (1, 2)))
        ss += [m.rot90(r, (0, 1)) for m in sc]
    s = None
    if ss:
        s = torch.stack(ss)
        s = torch.where(s < cfg.num_labels, s, torch.full_like(s, -1))
    return torch.stack(xs), torch.stack(cs), s


# ------------------------------------------------------------------------------------- labelled images (segnet)
def target_space(cfg: SegTrainConfig) -> tuple[labelspace.LabelSpace, list[tuple[int, ...]]]:
    """The label space all sources map into, and the union of their class sets (codes n, n+1, ...)."""
    if len(cfg.sources) not in (1, len(cfg.data)):
        raise ValueError("give one --source per --data folder (or one for all)")
    spaces, sets = set(), []
    for src in cfg.sources:
        if src not in labelspace.SOURCES:
            raise ValueError(f"unknown label source {src!r}; known: {', '.join(labelspace.SOURCES)}")
        space, _, src_sets = labelspace.source_table(src)
        spaces.add(space.name)
        sets += [t for t in src_sets if t not in sets]
    if len(spaces) != 1:
        raise ValueError(f"sources map into different label spaces: {', '.join(sorted(spaces))}")
    return labelspace.by_name(spaces.pop()), sets


def load_pairs(cfg: SegTrainConfig) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Images and their label maps as target codes (class ids, then set codes; 255 ignored)."""
    from PIL import Image

    space, sets = target_space(cfg)
    held_out = json.loads(Path(cfg.split).read_text()) if cfg.split else {}
    imgs, labs = [], []
    for k, (d, ld) in enumerate(zip(cfg.data, cfg.labels)):
        src = cfg.sources[min(k, len(cfg.sources) - 1)]
        _, lut, src_sets = labelspace.source_table(src)
        n = space.num_labels  # the source's set codes -> the union's codes
        orig = lut.copy()
        for j, t in enumerate(src_sets):
            lut[orig == n + j] = n + sets.index(t)
        skip = set(held_out.get(src, {}).get("test", []))
        label_index = labels_by_stem([ld], recursive=False)
        for f in (f for f in image_files([d], recursive=False) if f.stem not in skip):
            if f.stem not in label_index:
                raise ValueError(f"no label map for {f.name}")
            x = np.asarray(Image.open(f).convert("RGB"))
            y = np.asarray(Image.open(label_index[f.stem]))
            if y.shape != x.shape[:2] or y.dtype != np.uint8:
                raise ValueError(f"{f.name}: label map {y.shape} {y.dtype} does not match image {x.shape[:2]}")
            imgs.append(to_chw(x))
            labs.append(torch.from_numpy(lut[y].astype(np.int64)))
    if not imgs:
        raise ValueError(f"no images in {cfg.data}")
    return imgs, labs


def seg_batch_at(step: int, cfg: SegTrainConfig, imgs, labs) -> tuple[torch.Tensor, torch.Tensor]:
    """The segmenter's batch of a given step: scale jitter, random crops, flips, colour jitter. Deterministic."""
    g = step_generator(cfg.seed, step)
    xs, ys, k = [], [], cfg.crop
    for _ in range(cfg.batch):
        i = pick(g, len(imgs))
        x, y = imgs[i].float()[None] / 255, labs[i][None, None].float()
        s = uniform(g, *cfg.scale)
        h, w = max(k, round(x.shape[2] * s)), max(k, round(x.shape[3] * s))
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        y = F.interpolate(y, size=(h, w), mode="nearest")
        y0, x0 = crop_origin(g, h, w, k)
        x, y = x[0, :, y0 : y0 + k, x0 : x0 + k], y[0, 0, y0 : y0 + k, x0 : x0 + k].long()
        if coin(g):
            x, y = x.flip(-1), y.flip(-1)
        b, c, sat = (uniform(g, lo, hi) for lo, hi in [(-0.15, 0.15), (0.75, 1.25), (0.7, 1.3)])
        grey = x.mean(0, keepdim=True)
        x = ((grey + (x - grey) * sat - 0.5) * c + 0.5 + b).clamp(0, 1)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)

