"""The ``dsslic eval`` subcommand (registered lazily in :mod:`dsslic.cli`)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from . import evaluate
from .sweep import BASELINES


def _parse_settings(specs: list[str]) -> dict[str, tuple[int, ...]]:
    out = {}
    for spec in specs:
        name, _, vals = spec.partition("=")
        try:
            out[name] = tuple(int(v) for v in vals.split(","))
        except ValueError:
            from ..errors import DsslicInputError

            raise DsslicInputError(f"--settings {spec!r}: expected CODEC=N,N,...") from None
    return out


def cmd_eval(a: argparse.Namespace) -> int:
    names = [n.strip() for n in a.codecs.split(",") if n.strip()]
    command = "dsslic " + " ".join(shlex.quote(x) for x in sys.argv[1:]) if a.command_line is None else a.command_line
    summary = evaluate(a.data, names, Path(a.out), jobs=a.jobs, device=a.device, model=a.model, limit=a.limit,
                       settings=_parse_settings(a.settings), command=command, progress=not a.quiet,
                       enhance=tuple(a.enhance), per_class=a.per_class)
    ac = summary["anchor_check"]
    if ac:
        print("bpg444 vs CompressAI's Kodak anchor (PSNR dB at 0.25/0.5/0.75/1.0 bpp): " + ", ".join(
            f"{o:.2f} vs {ref:.2f}" for o, ref in ac.values()))
    for r in summary["bd_rate"]:
        if r["codec"] != r["anchor"]:
            print(f"BD-rate {r['codec']} vs {r['anchor']}: PSNR {r['bd_rate_psnr']:+.1f}%, MS-SSIM {r['bd_rate_msssim']:+.1f}%")
    print(f"report: {Path(a.out) / 'report.md'}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="rate-distortion curves against classical codecs")
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="folder of images (repeatable)")
    p.add_argument("--codecs", default="dsslic,bpg444,bpg444rgb,bpg420,jpeg,jpeg2000,webp,avif,jxl",
                   help=f"comma-separated, from: {','.join(BASELINES)}")
    p.add_argument("--out", required=True, metavar="REPORT_DIR")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--model", help="DSSLIC model (default: the shipped default)")
    p.add_argument("--enhance", action="append", default=[], metavar="WEIGHTS",
                   help="learned enhancement model for dsslic-learned (repeat: one per rate point)")
    p.add_argument("--limit", type=int, help="at most this many images per folder")
    p.add_argument("--settings", action="append", default=[], metavar="CODEC=N,N,...", help="override a sweep")
    p.add_argument("--per-class", action="store_true",
                   help="also the PSNR of each class of the label map the DSSLIC file stores, for every codec")
    p.add_argument("--command-line", help=argparse.SUPPRESS)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)
