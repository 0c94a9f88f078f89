"""Atomic writes: whole outputs only, the permissions of a plain open(), and temporary files that belong
to their writer (issue 13.5: concurrent batch runs must not delete each other's)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from dsslic import fileutil


def test_atomic_write_respects_umask(tmp_path):
    old = os.umask(0o022)
    try:
        fileutil.atomic_write(tmp_path / "a.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    assert (tmp_path / "a.bin").read_bytes() == b"x"


def test_other_writers_temporary_files_are_left_alone(tmp_path):
    out = tmp_path / "a.dsslic"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = tmp_path / fileutil.temp_name(out.name, pid=live.pid)  # another process, mid-write
        theirs.write_bytes(b"half")
        foreign = tmp_path / ".a.dsslic.xyz.part"  # not ours in any way
        foreign.write_bytes(b"?")
        fileutil.atomic_write(tmp_path / "[ab].dsslic", b"1")  # a glob on this name matched a.dsslic's files
        fileutil.atomic_write(out, b"2")
        assert theirs.exists() and foreign.exists()
    finally:
        live.kill()
        live.wait()
    # the writer is gone: its file is provably stale, and the next write of that output removes it
    fileutil.atomic_write(out, b"3")
    assert not theirs.exists() and foreign.exists()
    assert out.read_bytes() == b"3"
