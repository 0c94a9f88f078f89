"""What the three trainers (``train``, ``train-segnet``, ``train-enhance``) share.

Resumable runs on borrowed GPUs and on slow CPUs are stopped and continued many times, so each
trainer keeps one full checkpoint (written through a temporary file and an atomic rename, so a kill
never leaves a broken one), a CSV log that is appended to on resume, and a clock that continues
across resumes: ``time_s`` in the log and ``elapsed_s`` in the checkpoint are the run's total time,
which is what a model card reports.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

CHECKPOINT = "checkpoint.pt"
COUNTS = ("steps", "batch", "crop", "log_every", "ckpt_every")


def check_counts(args) -> None:
    """One clear error (exit 2) for a step/batch/crop/interval option below 1, before any work starts."""
    from ..errors import DsslicInputError

    for k in COUNTS:
        v = getattr(args, k, None)
        if v is not None and v < 1:
            raise DsslicInputError(f"--{k.replace('_', '-')} must be at least 1, got {v}")


def save_checkpoint(out: Path, state: dict) -> None:
    """Write ``out/checkpoint.pt`` atomically."""
    tmp = Path(out) / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, Path(out) / CHECKPOINT)


def load_checkpoint(out: Path, device: torch.device | str) -> dict | None:
    """The run's checkpoint (tensors only, no pickled code), or None when there is none."""
    path = Path(out) / CHECKPOINT
    if not path.is_file():
        return None
    return torch.load(path, map_location=device, weights_only=True)


def resume_into(out: Path, device: torch.device | str, **parts) -> tuple[int, Clock]:
    """Load the run's checkpoint into ``parts`` (checkpoint key -> module or optimiser): the step and clock to
    continue from, or (0, a new clock) when the run has no checkpoint yet."""
    state = load_checkpoint(out, device)
    if state is None:
        return 0, Clock()
    for key, obj in parts.items():
        obj.load_state_dict(state[key])
    return state["step"], Clock(state.get("elapsed_s", 0.0))


def init_from(net: torch.nn.Module, path: str, shape: str) -> None:
    """``--init``: load exported weights (a shipped network or a weights file) into ``net`` before training, with
    a fresh optimiser; weights of another shape are a ValueError naming what the network is (``shape``). A
    convolution that now takes more inputs (a label-free model started as withSeg) gets zero weights on the new
    ones: at step 0 the network computes what the loaded one did."""
    from .. import zoo

    try:
        loaded, own = zoo.load(path)[0], net.state_dict()
        for k, v in loaded.items():
            mine = own.get(k)
            if mine is not None and v.ndim == 4 and mine.shape[0] == v.shape[0] and mine.shape[2:] == v.shape[2:] \
                    and mine.shape[1] > v.shape[1]:
                loaded[k] = torch.cat([v, v.new_zeros(v.shape[0], mine.shape[1] - v.shape[1], *v.shape[2:])], 1)
        net.load_state_dict(loaded)
    except (OSError, RuntimeError, ValueError) as e:
        raise ValueError(f"--init {path}: not weights of this network ({shape}: {type(e).__name__})") from None


def due(step: int, every: int, total: int) -> bool:
    """Whether a periodic action (a log line, a checkpoint) falls on this step: every ``every`` steps, and the last."""
    return step % every == 0 or step == total


def write_config(out: Path, cfg) -> None:
    """``out/config.json``: the run's settings (a dataclass), written when training ends."""
    (Path(out) / "config.json").write_text(json.dumps(asdict(cfg), indent=2))


class Clock:
    """Seconds of training so far, counting the time of earlier (resumed) sessions."""

    def __init__(self, before: float = 0.0) -> None:
        self.before, self.t0 = float(before), time.time()

    def __call__(self) -> float:
        return self.before + time.time() - self.t0


class CsvLog:
    """Rows appended to a CSV file; the header is written once, when the file is new."""

    def __init__(self, path: Path, fields: list[str], enabled: bool = True) -> None:
        self.f = None
        if enabled:
            new = not Path(path).is_file()
            self.f = open(path, "a", newline="")
            self.w = csv.DictWriter(self.f, fieldnames=fields, extrasaction="ignore")
            if new:
                self.w.writeheader()

    def write(self, row: dict) -> None:
        if self.f:
            self.w.writerow(row)
            self.f.flush()

    def close(self) -> None:
        if self.f:
            self.f.close()
            self.f = None

    def __enter__(self) -> CsvLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_loop(trainer, fields: list[str], one_step: Callable[[], dict], row: Callable[[dict], dict],
             postfix: Callable[[dict], dict] | None = None, progress: bool = True, main: bool = True) -> None:
    """The loop of every trainer: ``one_step()`` (the next batch and optimiser step: its logs) until
    ``trainer.cfg.steps``; every ``log_every`` steps and at the end, ``row(logs)`` appended to ``log.csv`` (and
    ``postfix(row)`` on the progress bar); every ``ckpt_every`` steps and at the end, ``trainer.save()``; then
    ``config.json``. ``main``: False on the other ranks of a distributed run (no log, no bar)."""
    from tqdm import tqdm

    cfg = trainer.cfg
    with (CsvLog(trainer.out / "log.csv", fields, enabled=main) as log,
          tqdm(total=cfg.steps, initial=trainer.step, disable=not progress or not main, unit="step") as bar):
        while trainer.step < cfg.steps:
            logs = one_step()
            bar.update()
            if due(trainer.step, cfg.log_every, cfg.steps):
                logs = row(logs)
                log.write(logs)
                if postfix is not None:
                    bar.set_postfix(postfix(logs))
            if due(trainer.step, cfg.ckpt_every, cfg.steps):
                trainer.save()
    write_config(trainer.out, cfg)


def add_run_args(p) -> None:
    """The flags every trainer shares: where it runs, how often it logs and checkpoints, resuming."""
    import torch

    p.add_argument("--seed", type=int, default=0, help="random seed (crops, initialisation)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu or cuda (default: cuda when available)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--log-every", type=int, default=50, help="steps between lines of the CSV log")
    p.add_argument("--ckpt-every", type=int, default=1000, help="steps between resumable checkpoints")
