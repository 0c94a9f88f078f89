"""``dsslic eval``: rate-distortion curves of DSSLIC and the classical codecs on the same images.

:mod:`.sweep` runs the codecs (and caches the rows), :mod:`.metrics` measures them (PSNR, MS-SSIM, averaged
curves, BD-rate), :mod:`.report` writes the tables, plots and Markdown, :mod:`.cli` is the subcommand.
"""

from __future__ import annotations

from pathlib import Path

from .metrics import average, average_per_class, bd_rate, curve, db, interp_psnr, ms_ssim, psnr, psnr_per_class, psnr_y
from .report import KODAK_BPG444_ANCHOR, plot, write_report
from .sweep import BASELINES, Baseline, list_images, run_one, run_sweep

__all__ = ["evaluate", "run_sweep", "write_report", "run_one", "list_images", "BASELINES", "Baseline",
           "KODAK_BPG444_ANCHOR", "psnr", "psnr_y", "ms_ssim", "db", "psnr_per_class", "average", "average_per_class",
           "curve", "bd_rate", "interp_psnr", "plot"]


def evaluate(data: list[str], names: list[str], out: Path, jobs: int = 1, device: str = "cpu",
             model: str | None = None, limit: int | None = None, settings: dict[str, tuple[int, ...]] | None = None,
             command: str = "", progress: bool = True, enhance: tuple[str, ...] = (), per_class: bool = False) -> dict:
    """Run (or complete, from the cache) the sweep and write the report. Returns its summary."""
    rows = run_sweep(data, names, out, jobs=jobs, device=device, model=model, limit=limit, settings=settings,
                     progress=progress, enhance=enhance, per_class=per_class)
    return write_report(rows, out, command, [str(d) for d in data], model)
