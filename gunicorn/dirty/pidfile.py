"""The dirty arbiter's PID file, used to clean up an orphan after a crash of the master.

``$TMPDIR/gunicorn-dirty-<proc_name>.pid`` holds the dirty arbiter's pid and its
master's pid. A new master reads it before starting its own dirty arbiter: if the file is
ours (owned by our uid, a regular file, not writable by others), the dirty arbiter it
names is alive and its master is gone, that orphan is stopped. Anything else is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import time
from typing import Any


def pidfile_path(proc_name: str) -> str:
    safe = proc_name.replace(os.sep, "_") or "gunicorn"
    return os.path.join(tempfile.gettempdir(), f"gunicorn-dirty-{safe}.pid")


def write_pidfile(path: str, pid: int, master_pid: int) -> None:
    tmp = f"{path}.{pid}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, f"{pid}\n{master_pid}\n".encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_owned_pidfile(path: str) -> tuple[int, int] | None:
    """``(pid, master_pid)`` from ``path`` if the file can be trusted, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != os.geteuid()
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            return None
        data = os.read(fd, 64).decode("ascii", "replace").split()
    finally:
        os.close(fd)
    try:
        pid, master = int(data[0]), int(data[1])
    except (IndexError, ValueError):
        return None
    return (pid, master) if pid > 1 and master > 0 else None


def remove_pidfile(path: str, pid: int) -> None:
    """Remove ``path`` if it still names ``pid``."""
    found = read_owned_pidfile(path)
    if found is not None and found[0] == pid:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _looks_like_gunicorn(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return True  # no /proc: the ownership checks are all there is
    return b"dirty-arbiter" in cmdline or b"gunicorn" in cmdline


def cleanup_orphan(path: str, log: Any, wait: float = 5.0) -> bool:
    """Stop the orphaned dirty arbiter named by ``path``; True if one was stopped."""
    found = read_owned_pidfile(path)
    if found is None:
        return False
    pid, master = found
    if pid == os.getpid() or not _alive(pid) or not _looks_like_gunicorn(pid):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return False
    if _alive(master) and _ppid(pid) == master:
        return False  # another server's dirty arbiter, its master alive: not ours to stop
    log.warning("Stopping orphaned dirty arbiter (pid:%s) left by master %s", pid, master)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.unlink(path)
    return True
