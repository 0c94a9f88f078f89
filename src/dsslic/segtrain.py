"""Training the SegNetLite segmenter from scratch (no pretrained weights exist here).

Recipe for small labelled sets such as CamVid: scale jitter, random crops, flips, colour jitter,
ENet class weights w_c = 1 / ln(1.02 + p_c), void ignored, AdamW with polynomial decay, bf16 on CUDA.
Batches are drawn per step from a generator seeded with (seed, step), so runs resume exactly.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .imageio import IMAGE_EXTS
from .segnet import CAMVID11, CAMVID11_PALETTE, SegNetLite
from .trainloop import Clock, CsvLog, check_counts, load_checkpoint, save_checkpoint


@dataclass
class SegTrainConfig:
    data: list[str]
    labels: list[str]
    out: str
    class_names: list[str] = field(default_factory=lambda: list(CAMVID11))
    void: int = 11  # label id ignored by the loss (CamVid's void)
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


def load_pairs(cfg: SegTrainConfig) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    from PIL import Image

    label_index = {f.stem: f for d in cfg.labels for f in Path(d).glob("*.png")}
    imgs, labs = [], []
    for f in sorted(f for d in cfg.data for f in Path(d).iterdir() if f.suffix.lower() in IMAGE_EXTS):
        if f.stem not in label_index:
            raise ValueError(f"no label map for {f.name}")
        x = np.asarray(Image.open(f).convert("RGB"))
        y = np.asarray(Image.open(label_index[f.stem]))
        if y.shape != x.shape[:2]:
            raise ValueError(f"{f.name}: label map {y.shape} does not match image {x.shape[:2]}")
        imgs.append(torch.from_numpy(np.array(x)).permute(2, 0, 1).contiguous())
        labs.append(torch.from_numpy(y.astype(np.int64)))
    if not imgs:
        raise ValueError(f"no images in {cfg.data}")
    return imgs, labs


def class_weights(labs: list[torch.Tensor], n: int) -> torch.Tensor:
    """ENet weighting: 1 / ln(1.02 + p_c) from the class frequencies of the training labels."""
    counts = torch.zeros(n, dtype=torch.float64)
    for y in labs:
        counts += torch.bincount(y[y < n].flatten(), minlength=n)[:n].double()
    p = counts / counts.sum().clamp(min=1)
    return (1 / torch.log(1.02 + p)).float()


def batch_at(step: int, cfg: SegTrainConfig, imgs, labs) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(hash((cfg.seed, step)) & 0x7FFFFFFF)
    xs, ys, k = [], [], cfg.crop
    for _ in range(cfg.batch):
        i = int(torch.randint(len(imgs), (1,), generator=g))
        x, y = imgs[i].float()[None] / 255, labs[i][None, None].float()
        s = float(torch.empty(1).uniform_(*cfg.scale, generator=g))
        h, w = max(k, round(x.shape[2] * s)), max(k, round(x.shape[3] * s))
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        y = F.interpolate(y, size=(h, w), mode="nearest")
        y0 = int(torch.randint(h - k + 1, (1,), generator=g))
        x0 = int(torch.randint(w - k + 1, (1,), generator=g))
        x, y = x[0, :, y0 : y0 + k, x0 : x0 + k], y[0, 0, y0 : y0 + k, x0 : x0 + k].long()
        if torch.rand(1, generator=g) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        b, c, sat = (float(torch.empty(1).uniform_(lo, hi, generator=g)) for lo, hi in [(-0.15, 0.15), (0.75, 1.25), (0.7, 1.3)])
        grey = x.mean(0, keepdim=True)
        x = ((grey + (x - grey) * sat - 0.5) * c + 0.5 + b).clamp(0, 1)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)


def poly_lr(step: int, cfg: SegTrainConfig) -> float:
    return cfg.lr * (1 - step / cfg.steps) ** 0.9


class SegTrainer:
    def __init__(self, cfg: SegTrainConfig, weights: torch.Tensor, resume: bool = False) -> None:
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.net = SegNetLite(len(cfg.class_names), cfg.width).to(self.device)
        if self.device.type == "cuda":
            self.net.to(memory_format=torch.channels_last)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.weights = weights.to(self.device)
        self.step = 0
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.clock = Clock()
        if resume and (st := load_checkpoint(self.out, self.device)) is not None:
            self.net.load_state_dict(st["net"])
            self.opt.load_state_dict(st["opt"])
            self.step = st["step"]
            self.clock = Clock(st.get("elapsed_s", 0.0))

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for grp in self.opt.param_groups:
            grp["lr"] = poly_lr(self.step, self.cfg)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cfg.bf16 and self.device.type == "cuda"):
            logits = self.net(x)
        y = torch.where(y < len(self.cfg.class_names), y, torch.full_like(y, -100))
        loss = F.cross_entropy(logits.float(), y, weight=self.weights, ignore_index=-100)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return loss.detach()

    def save(self) -> None:
        save_checkpoint(self.out, {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                                   "elapsed_s": self.clock()})

    def export(self, name: str = "camvid11", card: dict | None = None) -> Path:
        from safetensors.torch import save_file

        cfg = {"name": name, "class_names": self.cfg.class_names, "width": self.cfg.width,
               "work_size": self.cfg.work_size}
        if self.cfg.class_names == CAMVID11:
            cfg["palette"] = CAMVID11_PALETTE.tolist()
        sd = {k: (v.half() if v.is_floating_point() else v).contiguous().cpu() for k, v in self.net.state_dict().items()}
        path = self.out / f"{name}.seg.safetensors"
        save_file(sd, str(path), metadata={"config": json.dumps(cfg), "card": json.dumps(card or {})})
        return path

    def fit(self, imgs, labs, progress: bool = True) -> None:
        from tqdm import tqdm

        cfg = self.cfg
        with CsvLog(self.out / "log.csv", ["step", "time_s", "crops_per_s", "lr", "loss"]) as log:
            self.net.train()
            t0, n0 = time.time(), self.step
            for _ in tqdm(range(self.step, cfg.steps), disable=not progress, unit="step"):
                loss = self.train_step(*batch_at(self.step, cfg, imgs, labs))
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    dt = time.time() - t0
                    log.write({"step": self.step, "time_s": f"{self.clock():.1f}",
                               "crops_per_s": f"{(self.step - n0) * cfg.batch / max(dt, 1e-9):.1f}",
                               "lr": f"{poly_lr(self.step, cfg):.6f}", "loss": f"{float(loss):.4f}"})
                if self.step % cfg.ckpt_every == 0 or self.step == cfg.steps:
                    self.save()
        (self.out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))


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
    p.add_argument("--data", action="append", required=True, metavar="DIR")
    p.add_argument("--labels", action="append", required=True, metavar="DIR", help="label maps paired by file name")
    p.add_argument("--out", required=True, metavar="RUN_DIR")
    p.add_argument("--name", default="camvid11")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=320)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--ckpt-every", type=int, default=1000, help="steps between resumable checkpoints")
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=cmd_train_segnet)


def cmd_train_segnet(a) -> int:
    from .errors import DsslicInputError

    check_counts(a)
    for d in a.data + a.labels:
        if not Path(d).is_dir():
            raise DsslicInputError(f"{d}: no such directory")
    cfg = SegTrainConfig(data=a.data, labels=a.labels, out=a.out, steps=a.steps, batch=a.batch, crop=a.crop,
                         width=a.width, lr=a.lr, device=a.device, ckpt_every=a.ckpt_every)
    try:
        imgs, labs = load_pairs(cfg)
    except ValueError as e:
        raise DsslicInputError(str(e)) from None
    t = SegTrainer(cfg, class_weights(labs, len(cfg.class_names)), resume=a.resume)
    t.fit(imgs, labs)
    print(f"weights: {t.export(a.name, {'data': cfg.data, 'steps': t.step})}")
    return 0

