"""Kept for imports written before the split: the evaluation lives in :mod:`dsslic.evaluation`."""

from __future__ import annotations

from .evaluation import *  # noqa: F403
from .evaluation import __all__  # noqa: F401
from .evaluation.cli import add_parser, cmd_eval  # noqa: F401
