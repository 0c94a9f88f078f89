"""Training CompNet, FineNet and the two discriminators with the paper's losses (§3.3-3.4).

Resumable and deterministic: the batch of step ``t`` is drawn from a generator seeded with
``(seed, t, rank)``, so a run resumed from a checkpoint continues exactly as if never stopped.
Images are held in memory as uint8 and cropped per step, which keeps a GPU fed without loader
workers. Only torch, numpy and Pillow are needed (no codec libraries), so this runs on a bare
GPU machine; SSIM needs ``pytorch-msssim``.

Schedule (paper): Adam(2e-4, betas 0.5/0.999), constant learning rate, then linear decay to 0 over
the last third of the steps; feature-matching and VGG losses leave the generator loss in that last
third (kept throughout with ``synth``). The compact image is rounded to 8 bits with a
straight-through estimator, as the codec stores it.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..discriminator import MultiscaleDiscriminator
from ..finenet import upsample
from ..layers import one_hot
from ..losses import VGGLoss, feature_matching_loss, gan_loss, l1_loss, ssim_loss
from ..models import LearnedConfig, LearnedModel
from .data import batch_at, decoded_compacts, load_images, lossy_batch_at
from .loop import Clock, add_run_args, check_counts, init_from, load_checkpoint, run_loop, save_checkpoint


@dataclass
class TrainConfig:
    data: list[str]
    out: str
    labels: list[str] = field(default_factory=list)  # label-map folders paired by file stem (e.g. CamVid *annot)
    num_labels: int = 0  # 0 = noSeg; with labels: number of classes (ids >= num_labels are 'void')
    segmenter: str = "camvid11"  # the segmenter the codec runs at inference for a model trained with labels
    preset: str = "small"
    name: str = "custom"
    width: int | None = None
    n_blocks: int | None = None
    norm: str | None = None
    compact: str = "compnet"  # or "area": c anchored to the low-pass image
    finenet: bool = True  # False: the upComp ablation
    up_mode: str = "bilinear"  # up(c): "bilinear" (paper) or "bicubic" (+0.3 dB for an area-mean c)
    arch: str = "finenet"  # "finenet" or "lean" (LeanFineNet at 1/8 with pixel shuffle, ~4.5k MAC/pixel)
    lossy_c: str = ""  # "CODEC:Q1,Q2,..." (e.g. hevc:20,28,36,lossless): RecNet learns from c as that codec decodes it
    lossy_scales: str = "1,0.5"  # lossy_c: images are coded whole at these scales (instead of per-crop scale jitter)
    steps: int = 10000
    batch: int = 16
    crop: int = 256
    lr: float = 2e-4
    gan: bool = True
    fm: bool = True  # discriminator feature matching
    vgg: str | None = None  # path to torchvision vgg19 weights; None: no VGG loss
    synth: bool = False  # keep perceptual losses in the last third (the paper's 'synth' ablation)
    lam: float = 10.0  # the paper's lambda (L1 weight 2*lambda, FM and VGG weight lambda)
    ssim_weight: float = 1.0
    up_weight: float = 0.0  # optional L1(up(c), x): ties c to a thumbnail of x
    augment: str = "flip"  # "flip" (paper) or "strong": + 90-degree rotations, brightness/contrast, scale
    seed: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    bf16: bool = True  # autocast on CUDA
    compile: bool = False
    log_every: int = 50
    ckpt_every: int = 1000


# ------------------------------------------------------------------------------------- model
def build(cfg: TrainConfig) -> tuple[LearnedModel, MultiscaleDiscriminator | None]:
    over = {k: v for k, v in [("width", cfg.width), ("n_blocks", cfg.n_blocks), ("norm", cfg.norm)] if v is not None}
    mcfg = LearnedConfig.preset(cfg.preset, name=cfg.name, num_labels=cfg.num_labels, compact=cfg.compact,
                                finenet=cfg.finenet, up_mode=cfg.up_mode, arch=cfg.arch, segmenter=cfg.segmenter if cfg.num_labels else "none", **over)
    g = LearnedModel(mcfg)
    if cfg.lossy_c and (cfg.compact != "area" or (cfg.num_labels and cfg.arch != "lean")):
        raise ValueError("lossy_c trains RecNet alone: it needs compact='area' (and arch='lean' with labels)")
    d = None
    if cfg.gan:
        d = MultiscaleDiscriminator(cfg.num_labels + 6, width=mcfg.width, norm="instance")
    return g, d


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Constant for the first two thirds, then linear to zero."""
    decay_start = cfg.steps * 2 // 3
    if step < decay_start:
        return cfg.lr
    return cfg.lr * max(0.0, (cfg.steps - step) / max(1, cfg.steps - decay_start))


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False, init: str | None = None) -> None:
        self.cfg = cfg
        self.rank, self.world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        self.device = torch.device(cfg.device)
        if self.world > 1:
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
                torch.cuda.set_device(self.device)
        torch.manual_seed(cfg.seed)
        self.G, self.D = build(cfg)
        if init is not None:  # start from exported weights (e.g. a shipped model), with a fresh optimiser
            init_from(self.G, init, "same --arch, --width, --n-blocks, --norm, --compact and --up-mode as it was "
                      "trained with")
        self.G.to(self.device)
        if self.D is not None:
            self.D.to(self.device)
        if self.device.type == "cuda":
            self.G.to(memory_format=torch.channels_last)
        self.optG = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.optD = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(0.5, 0.999)) if self.D else None
        self.vgg = VGGLoss(cfg.vgg).to(self.device) if cfg.vgg else None
        self.step = 0
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.clock = Clock()
        if resume and (state := load_checkpoint(self.out, self.device)) is not None:
            self.load(state)
        gm, dm = self.G, self.D
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            gm = DDP(self.G, device_ids=ids)
            dm = DDP(self.D, device_ids=ids) if self.D else None
        self.g_fwd = torch.compile(gm) if cfg.compile else gm
        self.d_fwd = (torch.compile(dm) if cfg.compile else dm) if dm is not None else None

    # ---- one step of eq. 10: L = L_D + L_G
    def train_step(self, x: torch.Tensor, s: torch.Tensor | None, c_dec: torch.Tensor | None = None
                   ) -> dict[str, torch.Tensor | float]:
        """One generator and one discriminator update. Logged values are detached tensors (no GPU sync).
        ``c_dec``: the decoded compact image to reconstruct from (lossy_c) instead of CompNet's."""
        cfg, lam = self.cfg, self.cfg.lam
        lr = lr_at(self.step, cfg)
        for opt in (self.optG, self.optD):
            if opt is not None:
                for grp in opt.param_groups:
                    grp["lr"] = lr
        perceptual = cfg.synth or self.step < cfg.steps * 2 // 3
        x = x.to(self.device, non_blocking=True)
        s = s.to(self.device, non_blocking=True) if s is not None else None
        amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.bf16 and self.device.type == "cuda")
        with amp:
            if c_dec is not None:
                c = c_dec.to(self.device, non_blocking=True)
                x_hat = self.G.reconstruct(s, c)
            else:
                c, x_hat = self.g_fwd(x, s, True)
            c_up = upsample(c, self.G.alpha, self.G.config.up_mode)
            logs = {}
            loss_g = 2 * lam * l1_loss(x_hat, x)
            logs["l1"] = l1_loss(x_hat, x).detach()
            if cfg.ssim_weight:
                ls = ssim_loss(x_hat, x)
                loss_g = loss_g + cfg.ssim_weight * ls
                logs["ssim_loss"] = ls.detach()
            if cfg.up_weight:
                loss_g = loss_g + cfg.up_weight * l1_loss(c_up, x)
            if self.D is not None:
                cond = [one_hot(s, cfg.num_labels, x.dtype)] if cfg.num_labels else []
                real_in = torch.cat([*cond, c_up.detach() * 2 - 1, x * 2 - 1], 1)
                fake_in = torch.cat([*cond, c_up.detach() * 2 - 1, x_hat * 2 - 1], 1)
                d_fake = self.d_fwd(fake_in)
                lg = gan_loss(d_fake, True)
                loss_g = loss_g + lg
                logs["gan_g"] = lg.detach()
                if cfg.fm and perceptual:
                    with torch.no_grad():
                        d_real_feats = self.d_fwd(real_in)
                    lf = feature_matching_loss(d_real_feats, d_fake)
                    loss_g = loss_g + lam * lf
                    logs["fm"] = lf.detach()
            if self.vgg is not None and perceptual:
                lv = self.vgg(x_hat.float(), x.float())
                loss_g = loss_g + lam * lv
                logs["vgg"] = lv.detach()
        self.optG.zero_grad(set_to_none=True)
        loss_g.backward()
        self.optG.step()
        if self.D is not None:
            with amp:
                ld = gan_loss(self.d_fwd(real_in), True) + gan_loss(self.d_fwd(fake_in.detach()), False)
            self.optD.zero_grad(set_to_none=True)
            ld.backward()
            self.optD.step()
            logs["d"] = ld.detach()
        logs["loss_g"] = loss_g.detach()
        logs["psnr"] = (10 * torch.log10(1 / F.mse_loss(x_hat.detach().float().clamp(0, 1), x.float())))
        logs["lr"] = lr
        self.step += 1
        return logs

    # ---- checkpoints: full state for resume (torch.save, local use) + weights-only safetensors export
    def save(self) -> None:
        if self.rank:
            return
        state = {"G": self.G.state_dict(), "optG": self.optG.state_dict(), "step": self.step,
                 "config": asdict(self.cfg)}
        if self.D is not None:
            state |= {"D": self.D.state_dict(), "optD": self.optD.state_dict()}
        save_checkpoint(self.out, state | {"elapsed_s": self.clock()})

    def load(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.optG.load_state_dict(state["optG"])
        if self.D is not None and "D" in state:
            self.D.load_state_dict(state["D"])
            self.optD.load_state_dict(state["optD"])
        self.step = state["step"]
        self.clock = Clock(state.get("elapsed_s", 0.0))

    def export(self, card: dict | None = None) -> Path:
        path = self.out / f"{self.cfg.name}.safetensors"
        if not self.rank:
            self.G.eval()
            self.G.cpu().save(path, card={"steps": self.step, **(card or {})})
            self.G.to(self.device).train()
        return path

    def fit(self, imgs, labels, progress: bool = True) -> None:
        cfg = self.cfg
        pairs = decoded_compacts(cfg, imgs, self.G.alpha, self.out / "decoded_c.pt") if cfg.lossy_c else None
        writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.out / "tb")) if not self.rank else None
        except Exception:  # tensorboard not installed: CSV only
            pass
        fields = ["step", "time_s", "crops_per_s", "lr", "loss_g", "l1", "ssim_loss", "gan_g", "fm", "vgg", "d", "psnr"]
        self.G.train()
        t0, n0 = time.time(), self.step

        def one_step() -> dict:
            c_dec = None
            if pairs is not None:
                x, c_dec, s = lossy_batch_at(self.step, self.rank, cfg, pairs, self.G.alpha)
            else:
                x, s = batch_at(self.step, self.rank, cfg, imgs, labels)
            if self.device.type == "cuda":
                x = x.pin_memory()
            return self.train_step(x, s, c_dec)

        def row(logs: dict) -> dict:
            logs = {k: float(v) for k, v in logs.items()}
            dt = time.time() - t0
            logs |= {"step": self.step, "time_s": self.clock(),
                     "crops_per_s": (self.step - n0) * cfg.batch * self.world / max(dt, 1e-9)}
            if writer:
                for k, v in logs.items():
                    writer.add_scalar(k, v, self.step)
            return logs

        run_loop(self, fields, one_step, row, lambda r: {"psnr": f"{r['psnr']:.2f}", "l1": f"{r['l1']:.4f}"},
                 progress, main=not self.rank)


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train CompNet + FineNet (+ discriminators) on folders of images")
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="folder of training images (repeatable)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder: checkpoints, CSV log, the exported weights")
    p.add_argument("--labels", action="append", default=[], metavar="DIR", help="label maps paired by file name")
    p.add_argument("--num-labels", type=int, default=0, help="label channels the networks take (0: from the labels found; the paper's withSeg needs > 0)")
    p.add_argument("--no-seg", action="store_true", help="ignore labels (the paper's noSeg)")
    p.add_argument("--segmenter", default="camvid11", help="the segmenter the codec runs for this model; with "
                   "--lossy-c and --num-labels, the label maps come from it, as the codec stores them (lean withSeg)")
    p.add_argument("--preset", default="small", choices=["paper", "small"], help="network size: paper (width 64, 9 blocks) or small (width 32, 6 blocks; default)")
    p.add_argument("--name", default="custom", help="model name stored in the weights (and in every file's model id)")
    p.add_argument("--width", type=int, help="channels of CompNet/FineNet (overrides the preset)")
    p.add_argument("--n-blocks", type=int, help="FineNet residual blocks (overrides the preset)")
    p.add_argument("--norm", choices=["instance", "instance-affine", "none"], help="normalisation layers (overrides the preset)")
    p.add_argument("--compact", default="compnet", choices=["compnet", "area"], help="how c is made: compnet (the paper) or area (8x8 mean)")
    p.add_argument("--no-finenet", action="store_true", help="the upComp ablation")
    p.add_argument("--up-mode", default="bilinear", choices=["bilinear", "bicubic"], help="how c is brought to size")
    p.add_argument("--arch", default="finenet", choices=["finenet", "lean"], help="FineNet, or the lean one at 1/8")
    p.add_argument("--lossy-c", default="", metavar="CODEC:Q,...",
                   help="train RecNet on c as this codec decodes it, e.g. hevc:20,28,36,lossless (needs --compact area)")
    p.add_argument("--ssim-weight", type=float, default=1.0, help="weight of the SSIM loss (0: L1 only)")
    p.add_argument("--steps", type=int, default=10000, help="optimiser steps in all (a resumed run continues to this count)")
    p.add_argument("--batch", type=int, default=16, help="images per step")
    p.add_argument("--crop", type=int, default=256, help="training crop size in pixels")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate")
    p.add_argument("--no-gan", action="store_true", help="train without the discriminators")
    p.add_argument("--vgg", metavar="VGG19.pth", help="torchvision vgg19 state dict (enables the VGG loss)")
    p.add_argument("--synth", action="store_true", help="keep perceptual losses in all steps")
    p.add_argument("--up-weight", type=float, default=0.0, help="weight of an extra L1(up(c), x) term tying c to a thumbnail of x (default 0: off)")
    p.add_argument("--augment", default="flip", choices=["flip", "strong"], help="flip (the paper's) or strong (+ rotations, brightness/contrast, scale jitter)")
    p.add_argument("--compile", action="store_true", help="run the networks through torch.compile")
    p.add_argument("--init", metavar="NAME|PATH", help="start RecNet from these weights (a shipped model name such "
                   "as general, or a .safetensors path) with a fresh optimiser")
    add_run_args(p)
    p.set_defaults(func=cmd_train)


def cmd_train(a) -> int:
    from ..errors import DsslicInputError

    check_counts(a)
    if a.vgg is None:
        import warnings

        warnings.warn("no --vgg weights given: training without the VGG perceptual loss", stacklevel=1)
    cfg = TrainConfig(
        data=a.data, out=a.out, labels=[] if a.no_seg else a.labels, num_labels=0 if a.no_seg else a.num_labels,
        preset=a.preset, name=a.name, width=a.width, n_blocks=a.n_blocks, norm=a.norm, compact=a.compact,
        finenet=not a.no_finenet, up_mode=a.up_mode, arch=a.arch, lossy_c=a.lossy_c, ssim_weight=a.ssim_weight, steps=a.steps, batch=a.batch, crop=a.crop, lr=a.lr, gan=not a.no_gan, vgg=a.vgg,
        segmenter=a.segmenter, synth=a.synth, up_weight=a.up_weight, augment=a.augment, seed=a.seed, device=a.device, compile=a.compile,
        log_every=a.log_every, ckpt_every=a.ckpt_every)
    if cfg.labels and not cfg.num_labels:
        raise DsslicInputError("--labels needs --num-labels")
    if cfg.lossy_c:
        from .. import bitstream, codecs

        name, _, qs = cfg.lossy_c.partition(":")
        try:
            codecs.get(bitstream.RESIDUAL_CODECS.get(name, name)).check_quality(
                *[int(q) for q in qs.split(",") if q and q != "lossless"][:1])
        except ValueError as e:
            raise DsslicInputError(f"--lossy-c {cfg.lossy_c}: {e}") from None
        if cfg.compact != "area" or (cfg.num_labels and cfg.arch != "lean"):
            raise DsslicInputError("--lossy-c trains RecNet alone: it needs --compact area (and --arch lean with "
                                   "--num-labels)")
        if cfg.labels:
            raise DsslicInputError("--lossy-c takes its label maps from --segmenter, not --labels")
        if cfg.num_labels:
            from .. import segmenters

            if (k := segmenters.get(cfg.segmenter).num_labels) > cfg.num_labels:
                raise DsslicInputError(f"--segmenter {cfg.segmenter} has {k} classes; --num-labels {cfg.num_labels} "
                                       "would make the rest void")
    for d in cfg.data + cfg.labels:
        if not Path(d).is_dir():
            raise DsslicInputError(f"{d}: no such directory")
    try:
        imgs, labels = load_images(cfg)
    except ValueError as e:
        raise DsslicInputError(str(e)) from None
    init = None
    if a.init:
        from .. import zoo

        if (found := zoo.find(a.init)) is None:
            raise DsslicInputError(f"--init {a.init}: no such model weights")
        init = str(found)
    try:
        t = Trainer(cfg, resume=a.resume, init=init)
    except ValueError as e:
        raise DsslicInputError(str(e)) from None
    t.fit(imgs, labels)
    path = t.export({"data": cfg.data, "config": asdict(cfg)})
    print(f"weights: {path}")
    return 0
