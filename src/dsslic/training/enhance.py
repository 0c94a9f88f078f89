"""Training the learned enhancement layer (``enhance``): loss = lambda * 255^2 * MSE + bits per pixel.

The base model (``plain`` or trained CompNet/RecNet weights) is frozen; every batch gets its compact image
and prediction x' exactly as the codec computes them (8-bit c, 8-bit x'). Same conventions as ``train``:
deterministic batches per step, full checkpoints for ``--resume``, CSV log, safetensors export.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..enhance import STRIDE, EnhanceConfig, EnhanceModel
from .data import batch_at, load_images
from .loop import Clock, add_run_args, check_counts, resume_into, run_loop, save_checkpoint


@dataclass
class EnhanceTrainConfig:
    data: list[str]
    out: str
    base: str = "plain"  # the frozen base model (registry name or .safetensors path); noSeg models only
    name: str = "custom"
    lmbda: float = 0.01
    n: int = 64
    m: int = 96
    nz: int = 48
    steps: int = 20000
    batch: int = 8
    crop: int = 256
    lr: float = 1e-4
    augment: str = "strong"
    seed: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    log_every: int = 50
    ckpt_every: int = 1000


class EnhanceTrainer:
    def __init__(self, cfg: EnhanceTrainConfig, resume: bool = False) -> None:
        from .. import models

        if cfg.crop % STRIDE:
            raise ValueError(f"--crop must be a multiple of {STRIDE}")
        self.cfg, self.device = cfg, torch.device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.base = models.load(cfg.base).to(self.device).eval()
        if getattr(self.base, "num_labels", 0):
            raise ValueError("the enhancement trainer supports base models without a segmentation input (noSeg)")
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.model = EnhanceModel(EnhanceConfig(name=cfg.name, n=cfg.n, m=cfg.m, nz=cfg.nz, lmbda=cfg.lmbda))
        self.model.to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.step = 0
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.step, self.clock = (resume_into(self.out, self.device, model=self.model, opt=self.opt) if resume
                                 else (0, Clock()))

    @torch.no_grad()
    def base_layers(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """8-bit compact image (0..255) and 8-bit prediction x' in [0, 1], as the codec computes them."""
        c8 = torch.round(self.base.compact(x, None).clamp(0, 1) * 255)
        x_pred = torch.round(self.base.reconstruct(None, c8 / 255) * 255) / 255
        return c8, x_pred

    def train_step(self, x: torch.Tensor) -> dict[str, float]:
        x = x.to(self.device)
        c8, x_pred = self.base_layers(x)
        # lr: constant, then linear decay to a tenth over the last fifth
        frac = max(0.0, (self.step - 0.8 * self.cfg.steps) / (0.2 * self.cfg.steps))
        for g in self.opt.param_groups:
            g["lr"] = self.cfg.lr * (1 - 0.9 * min(1.0, frac))
        out = self.model(x, x_pred, c8)
        pixels = x.shape[-1] * x.shape[-2]
        mse = torch.mean((out["x_hat"] - x) ** 2)
        bpp = (out["bits_y"] + out["bits_z"]).mean() / pixels
        loss = self.cfg.lmbda * 255**2 * mse + bpp
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.step += 1
        with torch.no_grad():
            mse_pred = torch.mean((x_pred - x) ** 2)
        return {"loss": float(loss), "bpp": float(bpp), "psnr": float(-10 * torch.log10(mse.detach())),
                "psnr_pred": float(-10 * torch.log10(mse_pred))}

    def save(self) -> None:
        save_checkpoint(self.out, {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                                   "config": asdict(self.cfg), "elapsed_s": self.clock()})

    def export(self) -> Path:
        path = self.out / f"enhance-{self.cfg.name}.safetensors"
        self.model.cpu().eval()
        self.model.save(path, card={"steps": self.step, "config": asdict(self.cfg)})
        self.model.to(self.device).train()
        return path

    def fit(self, imgs, progress: bool = True) -> None:
        cfg = self.cfg
        self.model.train()

        def one_step() -> dict:  # batches drawn by its own seed, batch, crop and augment
            return self.train_step(batch_at(self.step, 0, cfg, imgs, [None] * len(imgs))[0])

        def row(logs: dict) -> dict:
            return {**logs, "step": self.step, "time_s": self.clock(), "lr": self.opt.param_groups[0]["lr"]}

        run_loop(self, ["step", "time_s", "lr", "loss", "bpp", "psnr", "psnr_pred"], one_step, row,
                 lambda r: {"bpp": f"{r['bpp']:.3f}", "psnr": f"{r['psnr']:.2f}"}, progress)


def add_parser(sub) -> None:
    p = sub.add_parser("train-enhance", help="train the learned enhancement layer (--residual learned)")
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="folder of training images (repeatable)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder: checkpoints, log, exported weights")
    p.add_argument("--base", default="plain", help="frozen base model: a registry name or .safetensors path")
    p.add_argument("--name", default="custom", help="enhancement model name stored in the weights")
    p.add_argument("--lmbda", type=float, default=0.01, help="loss = lmbda * 255^2 * MSE + bpp")
    p.add_argument("--n", type=int, default=64, help="channels of the transforms")
    p.add_argument("--m", type=int, default=96, help="channels of the latent y")
    p.add_argument("--nz", type=int, default=48, help="channels of the hyper-latent z")
    p.add_argument("--steps", type=int, default=20000, help="optimiser steps in all")
    p.add_argument("--batch", type=int, default=8, help="images per step")
    p.add_argument("--crop", type=int, default=256, help="training crop size in pixels")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    p.add_argument("--augment", default="strong", choices=["flip", "strong"], help="flip, or strong (+ rotations, brightness/contrast, scale jitter; default)")
    add_run_args(p)
    p.set_defaults(func=cmd_train_enhance)


def cmd_train_enhance(a) -> int:
    from ..errors import DsslicInputError

    check_counts(a)
    cfg = EnhanceTrainConfig(data=a.data, out=a.out, base=a.base, name=a.name, lmbda=a.lmbda, n=a.n, m=a.m,
                             nz=a.nz, steps=a.steps, batch=a.batch, crop=a.crop, lr=a.lr, augment=a.augment,
                             seed=a.seed, device=a.device, log_every=a.log_every, ckpt_every=a.ckpt_every)
    for d in cfg.data:
        if not Path(d).is_dir():
            raise DsslicInputError(f"{d}: no such directory")
    try:
        imgs, _ = load_images(cfg)  # its data and crop; no labels
        t = EnhanceTrainer(cfg, resume=a.resume)
    except ValueError as e:
        raise DsslicInputError(str(e)) from None
    t.fit(imgs)
    print(f"weights: {t.export()}")
    return 0
