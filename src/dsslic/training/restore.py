"""Training the restoration filter (``dsslic train-restore``) on what the decoder sees, for the PSNR of x^.

The data are ``.npz`` files of ``tools/make_restore_data.py`` (x, the decoded label map s, and per residual QP q the
decoder's x' as ``xc<q>`` and x~ as ``xt<q>``). The loss is the images' PSNR change, to first order (see
``train_step``). Batches are a function of the step (seeded), so a resumed run draws what the uninterrupted one
would have; ``--val`` files spread over the sorted list are held out and scored in the log as the PSNR gain of x^
(rounded to 8 bits, as decoded) over x~.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..restoration import Q_MID, Q_SCALE, RestoreConfig, filter_id
from .loop import Clock, CsvLog, add_run_args, check_counts, init_from, load_checkpoint, save_checkpoint

#: whole-image MSE floor (45 dB) of the loss's weights: images coded almost exactly would otherwise get weights
#: of 1e6 and blow the training up (measured: a run at 1e-6 diverged at step 350)
MSE_FLOOR = 10**-4.5
Sample = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float]  # x, x~, x', s, strength, MSE of x~
CLIP = 1.0  # gradient norm clipping, a second guard against single-batch blow-ups
#: the residual coding the data were made with (the default: min/max to 10 bits), for the filter's strength input
BITS = 10


class RestoreNet(nn.Module):
    """f(x~, x', s, q) in torch, for training: the layers of ``restoration.RestoreFilter`` (which the codec runs);
    the output convolution starts at zero, so training starts at x^ = x~."""

    def __init__(self, cfg: RestoreConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or RestoreConfig()
        self.embed = nn.Embedding(cfg.num_labels + 1, cfg.emb)
        c_in = 4 * 6 + cfg.emb + 1
        self.head = nn.Conv2d(c_in, cfg.width, 3, padding=1)
        self.body = nn.ModuleList(nn.Conv2d(cfg.width, cfg.width, 3, padding=1) for _ in range(cfg.depth))
        self.tail = nn.Conv2d(cfg.width, 12, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, xt: torch.Tensor, xc: torch.Tensor, s: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """x^ in [0, 1] (not rounded) from x~, x' (B,3,H,W in [0, 1], H and W even), s (B,H,W ids), q (B,) strengths."""
        b, _, h, w = xt.shape
        img = F.pixel_unshuffle(torch.cat([xt - 0.5, xc - xt], 1), 2)
        lab = self.embed(s[:, ::2, ::2].long().clamp(max=self.cfg.num_labels)).permute(0, 3, 1, 2)
        qp = ((q.float() - Q_MID) / Q_SCALE).view(b, 1, 1, 1).expand(b, 1, h // 2, w // 2)
        y = F.leaky_relu(self.head(torch.cat([img, lab, qp], 1)), 0.1)
        for conv in self.body:
            y = y + F.leaky_relu(conv(y), 0.1)
        return xt + F.pixel_shuffle(self.tail(y), 2)

    @property
    def filter_id(self) -> bytes:
        return filter_id(self.cfg, self.state_dict())


def macs_per_pixel(net: RestoreNet, h: int = 64, w: int = 64) -> float:
    """Multiply-accumulates per full-resolution pixel, counted by ``torch.utils.flop_counter`` (FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, h, w)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(x, x, torch.zeros(1, h, w, dtype=torch.long), torch.tensor([30]))
    return fc.get_total_flops() / 2 / (h * w)


def save(net: RestoreNet, path: str | Path, card: dict | None = None) -> None:
    """The filter as a weights file (float32: 140 KB at the default size), its id stored for torch-free lookup."""
    from .. import zoo

    zoo.save(path, {k: v.contiguous() for k, v in net.state_dict().items()}, asdict(net.cfg), card,
             model_id=net.filter_id.hex())


def load(path: str | Path) -> RestoreNet:
    """A filter file as a torch network (to continue training it), checked by the codec's loader."""
    from .. import restoration, zoo

    filt = restoration.load(path)
    net = RestoreNet(filt.cfg)
    net.load_state_dict(zoo.load(path)[0])
    return net.eval()


def make_pairs(codec, x: np.ndarray, qs: list[int]) -> dict[str, np.ndarray]:
    """What the decoder holds for ``x`` coded by ``codec`` (made with ``restore=False``: x~ unfiltered) at each
    residual QP: x, s, and per q x' (``xc<q>``), x~ (``xt<q>``) and the file's size in bytes (``bytes<q>``)."""
    from .. import bitstream
    from ..codec import decode_layers

    arrays: dict[str, np.ndarray] = {"x": x}
    for q in qs:
        data = codec.compress(x, quality=q)
        hd = bitstream.parse(data)
        lay = decode_layers(hd, "full")
        arrays.setdefault("s", lay.s.astype(np.uint8))
        arrays[f"xc{q}"] = codec.reconstruct(hd, lay, "coarse")
        arrays[f"xt{q}"] = codec.reconstruct(hd, lay, "full")
        arrays[f"bytes{q}"] = np.array(len(data))
    return arrays


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    """MSE on the [0, 1] scale, floored at MSE_FLOOR."""
    return max(float(np.mean((a.astype(np.float64) - b) ** 2)) / 255**2, MSE_FLOOR)


def _strength(x: np.ndarray, xc: np.ndarray, q: int) -> float:
    """The filter's strength input for x coded at QP q over x' (the min/max range the encoder stores)."""
    from ..restoration import strength

    r = x.astype(np.int16) - xc
    return strength(q, int(r.min()), int(r.max()), BITS)


def load_samples(folders: list[str]) -> list[list[Sample]]:
    """Per file (sorted by name), its (x, x~, x', s, q) at every QP it holds."""
    files = sorted(f for d in folders for f in Path(d).glob("*.npz") if not f.name.endswith(".tmp.npz"))
    if not files:
        raise ValueError(f"no .npz files in {', '.join(folders)}")
    out = []
    for f in files:
        with np.load(f) as z:
            qs = sorted(int(k[2:]) for k in z.files if k.startswith("xt"))
            x = z["x"]
            out.append([(x, z[f"xt{q}"], z[f"xc{q}"], z["s"], _strength(x, z[f"xc{q}"], q), _mse(x, z[f"xt{q}"]))
                        for q in qs])
    return out


@dataclass
class RestoreTrainConfig:
    data: list[str]
    out: str
    name: str = "custom"
    width: int = 24
    depth: int = 5
    num_labels: int = 11
    steps: int = 6000
    batch: int = 16
    crop: int = 96
    lr: float = 1e-3
    val: int = 8
    seed: int = 0
    device: str = "cpu"
    log_every: int = 50
    ckpt_every: int = 500


def _tensors(items: list[Sample], device) -> list[torch.Tensor]:
    x, xt, xc, s, q, mse = zip(*items)

    def img(a):
        return torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float().div(255).to(device)

    return [img(x), img(xt), img(xc), torch.from_numpy(np.stack(s).astype(np.int64)).to(device),
            torch.tensor(q, device=device), torch.tensor(mse, dtype=torch.float32, device=device)]


def batch_at(samples: list[list[Sample]], step: int, cfg: RestoreTrainConfig) -> list[Sample]:
    """The step's crops: random file, QP, position (on the 8-pixel grid HEVC codes on) and flips."""
    rng = np.random.default_rng([cfg.seed, step])
    out = []
    for _ in range(cfg.batch):
        per = samples[rng.integers(len(samples))]
        x, xt, xc, s, q, mse = per[rng.integers(len(per))]
        c = min(cfg.crop, x.shape[0] // 2 * 2, x.shape[1] // 2 * 2)
        y0 = rng.integers((x.shape[0] - c) // 8 + 1) * 8
        x0 = rng.integers((x.shape[1] - c) // 8 + 1) * 8
        fy, fx = (-1 if rng.random() < 0.5 else 1), (-1 if rng.random() < 0.5 else 1)
        cut = [np.ascontiguousarray(a[y0 : y0 + c, x0 : x0 + c][::fy, ::fx]) for a in (x, xt, xc, s)]
        out.append((*cut, q, mse))
    return out


class RestoreTrainer:
    def __init__(self, cfg: RestoreTrainConfig, resume: bool = False, init: str | None = None) -> None:
        if cfg.crop % 8:
            raise ValueError("--crop must be a multiple of 8")
        self.cfg, self.device = cfg, torch.device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.net = RestoreNet(RestoreConfig(name=cfg.name, width=cfg.width, depth=cfg.depth,
                                            num_labels=cfg.num_labels)).to(self.device)
        if init is not None:  # start from exported weights (e.g. the shipped filter), with a fresh optimiser
            init_from(self.net, init, f"a width-{cfg.width}, depth-{cfg.depth} filter with {cfg.num_labels} labels")
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.step = 0
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.clock = Clock()
        if resume and (state := load_checkpoint(self.out, self.device)) is not None:
            self.net.load_state_dict(state["model"])
            self.opt.load_state_dict(state["opt"])
            self.step = state["step"]
            self.clock = Clock(state.get("elapsed_s", 0.0))

    def lr_at(self, step: int) -> float:
        """A linear warm-up over the first tenth (at most 200 steps: Adam's first steps away from the identity are
        large), constant, then a linear decay to a tenth over the last fifth of the run."""
        warm, tail = max(1, min(200, self.cfg.steps // 10)), max(1, self.cfg.steps // 5)
        frac = min(1.0, max(0.0, (step - (self.cfg.steps - tail)) / tail))
        return self.cfg.lr * min(1.0, (step + 1) / warm) * (1 - 0.9 * frac)

    def train_step(self, items: list[Sample]) -> tuple[float, float]:
        """One step on the PSNR change of the crops' images in dB, to first order: each crop's change of MSE over
        its whole image's MSE before filtering (x 10 / ln 10), so that every image and QP counts alike, as every
        rate point does in a BD-rate, instead of the worst-coded images dominating a plain MSE (and without a
        per-crop log, which flat crops coded almost exactly would dominate)."""
        x, xt, xc, s, q, mse_img = _tensors(items, self.device)
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step)
        mse = torch.mean((self.net(xt, xc, s, q) - x) ** 2, dim=(1, 2, 3))
        base = torch.mean((xt - x) ** 2, dim=(1, 2, 3))
        loss = torch.mean((mse - base) / mse_img) * (10 / np.log(10))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), CLIP)
        self.opt.step()
        self.step += 1
        return float(loss.detach()), float(mse.detach().mean())

    @torch.no_grad()
    def validate(self, val: list[list[Sample]]) -> tuple[float, float]:
        """Mean PSNR of x~ and of x^ (8-bit) over every held-out file and QP, whole images."""
        from ..restoration import apply

        self.net.eval()
        a, b = [], []
        for per in val:
            for x, xt, xc, s, q, _ in per:
                y = apply(self.net, xt, xc, s, q)
                for arr, acc in ((xt, a), (y, b)):
                    mse = np.mean((arr.astype(np.float64) - x) ** 2)
                    acc.append(10 * np.log10(255**2 / max(mse, 1e-10)))
        self.net.train()
        return float(np.mean(a)), float(np.mean(b))

    def checkpoint(self) -> None:
        save_checkpoint(self.out, {"model": self.net.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                                   "elapsed_s": self.clock(), "config": json.dumps(asdict(self.cfg))})

    def fit(self, samples: list[list[Sample]]) -> None:
        cfg = self.cfg
        n_val = min(cfg.val, len(samples) - 1)
        held = set(range(0, len(samples), max(1, len(samples) // max(n_val, 1)))[:n_val]) if n_val else set()
        train = [p for i, p in enumerate(samples) if i not in held]
        val = [p for i, p in enumerate(samples) if i in held]
        fields = ["step", "train_psnr", "train_gain_db", "val_psnr_in", "val_psnr_out", "val_gain_db", "lr", "time_s"]
        with CsvLog(self.out / "log.csv", fields) as log:
            run = []
            while self.step < cfg.steps:
                run.append(self.train_step(batch_at(train, self.step, cfg)))
                last = self.step == cfg.steps
                if self.step % cfg.log_every == 0 or last:
                    loss, mse = np.mean(run, axis=0)
                    row = {"step": self.step, "train_psnr": f"{10 * np.log10(1 / max(mse, 1e-12)):.3f}",
                           "train_gain_db": f"{-loss:+.4f}",
                           "lr": f"{self.lr_at(self.step):.2e}", "time_s": f"{self.clock():.1f}"}
                    run = []
                    if val and (self.step % cfg.ckpt_every == 0 or last):
                        pin, pout = self.validate(val)
                        row.update(val_psnr_in=f"{pin:.4f}", val_psnr_out=f"{pout:.4f}",
                                   val_gain_db=f"{pout - pin:+.4f}")
                    log.write(row)
                    print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
                if self.step % cfg.ckpt_every == 0 or last:
                    self.checkpoint()
                    save(self.net, self.out / f"{cfg.name}.restore.safetensors")

    def export(self) -> Path:
        path = self.out / f"{self.cfg.name}.restore.safetensors"
        save(self.net, path)
        return path


def add_parser(sub) -> None:
    p = sub.add_parser("train-restore", help="train the decoder's restoration filter on (decoded, original) pairs")
    p.add_argument("--data", action="append", required=True, metavar="DIR",
                   help="folder of .npz pairs from tools/make_restore_data.py (repeatable)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder: checkpoint, log, exported weights")
    p.add_argument("--name", default="custom", help="name of the exported filter")
    p.add_argument("--steps", type=int, default=6000, help="optimiser steps in all")
    p.add_argument("--batch", type=int, default=16, help="crops per step")
    p.add_argument("--crop", type=int, default=96, help="crop size in pixels (multiple of 8)")
    p.add_argument("--width", type=int, default=24, help="channels at half resolution")
    p.add_argument("--depth", type=int, default=5, help="hidden 3x3 convolutions")
    p.add_argument("--num-labels", type=int, default=11, help="label ids the embedding distinguishes")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    p.add_argument("--val", type=int, default=8, help="files held out for the log's validation gain")
    p.add_argument("--init", metavar="NAME|PATH", help="start from these filter weights (a shipped name such as "
                   "lean, or a .restore.safetensors path) with a fresh optimiser")
    add_run_args(p)
    p.set_defaults(func=cmd_train_restore, ckpt_every=500)


def cmd_train_restore(a) -> int:
    from ..errors import DsslicInputError

    check_counts(a)
    for d in a.data:
        if not Path(d).is_dir():
            raise DsslicInputError(f"{d}: no such directory")
    if a.crop % 8:
        raise DsslicInputError("--crop must be a multiple of 8")
    cfg = RestoreTrainConfig(data=a.data, out=a.out, name=a.name, width=a.width, depth=a.depth,
                             num_labels=a.num_labels, steps=a.steps, batch=a.batch, crop=a.crop, lr=a.lr,
                             val=a.val, seed=a.seed, device=a.device, log_every=a.log_every, ckpt_every=a.ckpt_every)
    init = None
    if a.init:
        from .. import restoration

        if (found := restoration.find(a.init)) is None:
            raise DsslicInputError(f"--init {a.init}: no such restoration filter weights")
        init = str(found)
    try:
        samples = load_samples(cfg.data)
    except (ValueError, OSError) as e:
        raise DsslicInputError(str(e)) from None
    try:
        t = RestoreTrainer(cfg, resume=a.resume, init=init)
    except ValueError as e:
        raise DsslicInputError(str(e)) from None
    t.fit(samples)
    print(f"weights: {t.export()}")
    return 0
