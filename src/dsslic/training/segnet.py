"""Training the SegNetLite segmenter from scratch (no pretrained weights exist here).

Recipe for small labelled sets such as CamVid: scale jitter, random crops, flips, colour jitter,
ENet class weights w_c = 1 / ln(1.02 + p_c), void ignored, AdamW with polynomial decay, bf16 on CUDA.
Batches are drawn per step from a generator seeded with (seed, step), so runs resume exactly.

Several labelled sets train one network: each set's classes are mapped into the target label space
(``labelspace.SOURCES``); a source class that stands for one of several target classes (Stanford's
"foreground") is trained with the probability of that set, -log sum_{k in set} p_k.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..segmenters import labelspace
from ..segmenters.segnetlite import SegNetLite
from .data import load_pairs, seg_batch_at, target_space
from .loop import Clock, check_counts, init_from, resume_into, run_loop, save_checkpoint


@dataclass
class SegTrainConfig:
    data: list[str]
    labels: list[str]
    out: str
    sources: list[str] = field(default_factory=lambda: ["camvid"])  # per --data folder: its labelspace.SOURCES name
    split: str | None = None  # a JSON split (tools/make_photo_split.py): its "test" stems per source are left out
    width: int = 32
    work_size: int = 480  # long side the network sees at inference
    steps: int = 6000
    batch: int = 16
    crop: int = 320
    scale: tuple[float, float] = (0.9, 1.75)
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    bf16: bool = True
    log_every: int = 50
    ckpt_every: int = 1000


def set_loss(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, sets: list[tuple[int, ...]]) -> torch.Tensor:
    """Weighted cross-entropy where a code n+j asks for the probability of the classes in sets[j]."""
    n = logits.shape[1]
    logp = F.log_softmax(logits.float(), 1)
    w_all = torch.cat([weights, torch.stack([weights[list(t)].mean() for t in sets])]) if sets else weights
    valid = y < n + len(sets)
    yc = torch.where(valid, y, torch.zeros_like(y))
    nll = -logp.gather(1, yc.clamp(max=n - 1)[:, None])[:, 0]
    for j, t in enumerate(sets):
        m = yc == n + j
        if m.any():
            nll = torch.where(m, -torch.logsumexp(logp[:, list(t)], 1), nll)
    w = w_all[yc] * valid
    return (nll * w).sum() / w.sum().clamp(min=1e-9)


def class_weights(labs: list[torch.Tensor], n: int) -> torch.Tensor:
    """ENet weighting: 1 / ln(1.02 + p_c) from the class frequencies of the training labels."""
    counts = torch.zeros(n, dtype=torch.float64)
    for y in labs:
        counts += torch.bincount(y[y < n].flatten(), minlength=n)[:n].double()
    p = counts / counts.sum().clamp(min=1)
    return (1 / torch.log(1.02 + p)).float()


def poly_lr(step: int, cfg: SegTrainConfig) -> float:
    return cfg.lr * (1 - step / cfg.steps) ** 0.9


class SegTrainer:
    def __init__(self, cfg: SegTrainConfig, weights: torch.Tensor, resume: bool = False,
                 init: str | None = None) -> None:
        self.cfg = cfg
        self.space, self.sets = target_space(cfg)
        self.device = torch.device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.net = SegNetLite(self.space.num_labels, cfg.width).to(self.device)
        if self.device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.weights = weights.to(self.device)
        self.step = 0
        self.out = Path(cfg.out)
        if init is not None:  # start from exported weights (e.g. a shipped segmenter), with a fresh optimiser
            init_from(self.net, init, f"a width-{cfg.width} SegNetLite with {self.space.num_labels} classes")
        self.out.mkdir(parents=True, exist_ok=True)
        self.step, self.clock = resume_into(self.out, self.device, net=self.net, opt=self.opt) if resume else (0, Clock())

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for grp in self.opt.param_groups:
            grp["lr"] = poly_lr(self.step, self.cfg)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cfg.bf16 and self.device.type == "cuda"):
            logits = self.net(x)
        loss = set_loss(logits, y, self.weights, self.sets)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return loss.detach()

    def save(self) -> None:
        save_checkpoint(self.out, {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                                   "elapsed_s": self.clock()})

    def export(self, name: str = "camvid11", card: dict | None = None) -> Path:
        from .. import zoo

        cfg = {"name": name, "class_names": list(self.space.class_names), "width": self.cfg.width,
               "work_size": self.cfg.work_size, "palette": self.space.palette.tolist()}
        path = self.out / f"{name}.seg.safetensors"
        zoo.save(path, zoo.stored(self.net.state_dict()), cfg, card)
        return path

    def fit(self, imgs, labs, progress: bool = True) -> None:
        cfg = self.cfg
        self.net.train()
        t0, n0 = time.time(), self.step

        def row(loss: torch.Tensor) -> dict:
            dt = time.time() - t0
            return {"step": self.step, "time_s": f"{self.clock():.1f}",
                    "crops_per_s": f"{(self.step - n0) * cfg.batch / max(dt, 1e-9):.1f}",
                    "lr": f"{poly_lr(self.step, cfg):.6f}", "loss": f"{float(loss):.4f}"}

        run_loop(self, ["step", "time_s", "crops_per_s", "lr", "loss"],
                 lambda: self.train_step(*seg_batch_at(self.step, cfg, imgs, labs)), row, progress=progress)


def confusion(pred: np.ndarray, gt: np.ndarray, n: int) -> np.ndarray:
    m = gt < n
    return np.bincount(n * gt[m].astype(np.int64) + pred[m], minlength=n * n).reshape(n, n)


def scores(conf: np.ndarray) -> dict:
    """Per-class IoU, mean IoU over the classes, and pixel accuracy, from a confusion matrix."""
    tp = np.diag(conf).astype(np.float64)
    iou = tp / np.maximum(conf.sum(0) + conf.sum(1) - tp, 1)
    return {"iou": iou.tolist(), "miou": float(iou.mean()), "pixel_acc": float(tp.sum() / max(conf.sum(), 1))}


def add_parser(sub) -> None:
    p = sub.add_parser("train-segnet", help="train the SegNetLite segmenter from scratch on labelled images")
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="folder of training images (repeatable, paired with --labels)")
    p.add_argument("--labels", action="append", required=True, metavar="DIR", help="label maps paired by file name")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder: checkpoints, log, exported weights")
    p.add_argument("--source", action="append", metavar="NAME",
                   help=f"per --data folder, how its labels map into a label space: {', '.join(labelspace.SOURCES)} "
                        "(default camvid)")
    p.add_argument("--split", metavar="JSON", help="leave out the 'test' images of this split (tools/splits/photo.json)")
    p.add_argument("--work-size", type=int, default=480, help="long side the network sees at inference")
    p.add_argument("--name", default="camvid11", help="name of the exported segmenter")
    p.add_argument("--steps", type=int, default=6000, help="optimiser steps in all")
    p.add_argument("--batch", type=int, default=16, help="images per step")
    p.add_argument("--crop", type=int, default=320, help="training crop size in pixels")
    p.add_argument("--width", type=int, default=32, help="channels of SegNetLite")
    p.add_argument("--lr", type=float, default=2e-3, help="learning rate")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu or cuda (default: cuda when available)")
    p.add_argument("--ckpt-every", type=int, default=1000, help="steps between resumable checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--init", metavar="NAME|PATH", help="start from these segmenter weights (a shipped name such as "
                                                      "photo, or a .seg.safetensors path) with a fresh optimiser")
    p.set_defaults(func=cmd_train_segnet)


def cmd_train_segnet(a) -> int:
    from ..errors import DsslicInputError

    check_counts(a)
    for d in a.data + a.labels:
        if not Path(d).is_dir():
            raise DsslicInputError(f"{d}: no such directory")
    if len(a.data) != len(a.labels):
        raise DsslicInputError("give one --labels folder per --data folder")
    cfg = SegTrainConfig(data=a.data, labels=a.labels, out=a.out, steps=a.steps, batch=a.batch, crop=a.crop,
                         width=a.width, lr=a.lr, device=a.device, ckpt_every=a.ckpt_every,
                         sources=a.source or ["camvid"], split=a.split, work_size=a.work_size)
    try:
        imgs, labs = load_pairs(cfg)
    except (ValueError, OSError) as e:
        raise DsslicInputError(str(e)) from None
    init = None
    if a.init:
        from .. import zoo

        if (found := zoo.find(a.init, "segmenter")) is None:
            raise DsslicInputError(f"--init {a.init}: no such segmenter weights")
        init = str(found)
    try:
        t = SegTrainer(cfg, class_weights(labs, target_space(cfg)[0].num_labels), resume=a.resume, init=init)
    except ValueError as e:
        raise DsslicInputError(str(e)) from None
    t.fit(imgs, labs)
    print(f"weights: {t.export(a.name, {'data': cfg.data, 'steps': t.step})}")
    return 0

