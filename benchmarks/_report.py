"""What every benchmark does with its Markdown result: print it, and with ``--out`` write it with its command."""

from __future__ import annotations

import sys
from pathlib import Path


def emit(text: str, out: str | None) -> None:
    """Print ``text``; write it to ``out`` (if given) followed by the exact command that produced it."""
    print(text)
    if out:
        cmd = " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
        Path(out).write_text(f"{text}\n\nCommand: `{cmd}`\n")
