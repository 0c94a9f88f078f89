"""Atomic file writes: an output is either complete or absent, never half-written.

The temporary file sits beside the output and is named after it, its writer's host and process id and a
random token (``.NAME.HOST-PID-TOKEN.part``). A writer removes its own file if it fails, and another one's
only when it is provably stale (same host, process gone): concurrent runs never delete each other's.
Outputs get the permissions a plain ``open()`` would give: new files follow the umask, replaced files
keep their mode.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import socket
import stat
from pathlib import Path

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _stem(name: str) -> str:
    """The output's name as it appears in its temporary file's name, short enough for any file system."""
    if len(name.encode()) <= 160:
        return name
    return name.encode()[:100].decode(errors="ignore") + "~" + hashlib.sha256(name.encode()).hexdigest()[:8]


def temp_name(name: str, pid: int | None = None) -> str:
    """Name of a temporary file for the output ``name`` written by process ``pid`` (default: this one)."""
    return f".{_stem(name)}.{_HOST}-{os.getpid() if pid is None else pid}-{secrets.token_hex(4)}.part"


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate it there: never call anything stale
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale(path: str | os.PathLike) -> None:
    """Remove temporary files of ``path`` whose writer (on this host) is gone, e.g. killed mid-write.

    Names are compared exactly (no glob on a user's file name), and a file whose writer may still run is kept."""
    path = Path(path)
    prefix = f".{_stem(path.name)}.{_HOST}-"
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for e in entries:
        if not (e.name.startswith(prefix) and e.name.endswith(".part")):
            continue
        pid, _, token = e.name[len(prefix) : -len(".part")].partition("-")
        if pid.isdigit() and len(token) == 8 and int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                os.unlink(e.path)
            except OSError:
                pass


def check_writable(path: str | os.PathLike) -> None:
    """Raise the OSError that writing ``path`` would raise (missing or read-only folder, name too long, ...),
    before any work is done: a temporary file is created in its folder and removed."""
    path = Path(path)
    try:
        try:
            os.lstat(path)  # ENAMETOOLONG, ENOTDIR, EACCES on the way
        except FileNotFoundError:
            pass
        tmp = path.parent / temp_name(path.name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)  # replacing a file keeps its mode, as open("w") does
    except OSError:
        mode = None
    tmp = path.parent / temp_name(path.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)  # umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    remove_stale(path)


def is_no_space(e: OSError) -> bool:
    """A full disk or quota (exit code 3 on the command line) rather than a bad path."""
    return e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1))
