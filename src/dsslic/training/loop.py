"""What the three trainers (``train``, ``train-segnet``, ``train-enhance``) share.

Resumable runs on borrowed GPUs and on slow CPUs are stopped and continued many times, so each
trainer keeps one full checkpoint (written through a temporary file and an atomic rename, so a kill
never leaves a broken one), a CSV log that is appended to on resume, and a clock that continues
across resumes: ``time_s`` in the log and ``elapsed_s`` in the checkpoint are the run's total time,
which is what a model card reports.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import torch

CHECKPOINT = "checkpoint.pt"
COUNTS = ("steps", "batch", "crop", "log_every", "ckpt_every")


def check_counts(args) -> None:
    """One clear error (exit 2) for a step/batch/crop/interval option below 1, before any work starts."""
    from .errors import DsslicInputError

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


def add_run_args(p) -> None:
    """The flags every trainer shares: where it runs, how often it logs and checkpoints, resuming."""
    import torch

    p.add_argument("--seed", type=int, default=0, help="random seed (crops, initialisation)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu or cuda (default: cuda when available)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--log-every", type=int, default=50, help="steps between lines of the CSV log")
    p.add_argument("--ckpt-every", type=int, default=1000, help="steps between resumable checkpoints")
