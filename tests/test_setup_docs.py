"""The README's set-up is what CI runs: its install commands appear verbatim in .ci/run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_block() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_setup_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    cmds = [c for c in _setup_block() if c.startswith(("pip ", "python -m pytest"))]
    assert any(c.startswith("pip install torch==") and "+cpu" in c for c in cmds), cmds
    for c in cmds:
        assert c in ci, c


def test_test_extra_does_not_pull_transformers():
    extra = re.search(r"^test = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.M | re.S)
    assert extra and "pytest" in extra.group(1) and "transformers" not in extra.group(1)
