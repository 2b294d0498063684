"""Small operating-system helpers used by the arbiter and the workers.

Everything here is a thin, documented wrapper around ``os``; nothing reads the
configuration, so the module sits in the lowest layer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import sys
from typing import IO, Protocol

try:  # optional extra
    import setproctitle as _setproctitle_mod
except ImportError:  # pragma: no cover - depends on the environment
    _setproctitle_mod = None  # type: ignore[assignment]


class HasFileno(Protocol):
    def fileno(self) -> int: ...


FdLike = int | HasFileno | IO[bytes] | IO[str]

#: Title prefix every gunicorn process carries when setproctitle is installed.
TITLE_PREFIX = "gunicorn: "


def _fd(obj: FdLike) -> int:
    return obj if isinstance(obj, int) else obj.fileno()


def close_on_exec(fd: FdLike) -> None:
    """Make ``fd`` (an int or anything with ``fileno()``) close when the process execs."""
    os.set_inheritable(_fd(fd), False)


def set_inheritable(fd: FdLike) -> None:
    """Let ``fd`` survive an ``exec`` (used for listeners handed to a new master)."""
    os.set_inheritable(_fd(fd), True)


def set_non_blocking(fd: FdLike) -> None:
    """Put ``fd`` in non-blocking mode."""
    os.set_blocking(_fd(fd), False)


def closerange(low: int, high: int, keep: frozenset[int] = frozenset()) -> None:
    """Close every descriptor in ``[low, high)`` except those in ``keep``."""
    start = low
    for fd in sorted(k for k in keep if low <= k < high):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, high)


def setproctitle(title: str) -> None:
    """Set the process title to ``gunicorn: <title>`` when setproctitle is installed."""
    if _setproctitle_mod is None or sys.platform == "darwin":
        return
    _setproctitle_mod.setproctitle(TITLE_PREFIX + title)


def seed() -> None:
    """Reseed the ``random`` module so forked workers do not share a sequence."""
    random.seed(os.urandom(64))


def chown(path: str, uid: int, gid: int) -> None:
    """Change the owner of ``path``; ``-1`` keeps the current value."""
    os.chown(path, uid, gid)


def is_writable(path: str) -> bool:
    """True when the current process may write to ``path`` (or create it in its directory)."""
    if os.path.exists(path):
        return os.access(path, os.W_OK)
    return os.access(os.path.dirname(os.path.abspath(path)), os.W_OK)


def unlink_quietly(path: str) -> None:
    """Remove ``path``; a missing file is not an error."""
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def username_for(uid: int) -> str | None:
    """The login name of ``uid`` or None when it has no passwd entry."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def set_owner_process(uid: int, gid: int, initgroups: bool = False) -> None:
    """Switch the current process to ``uid``/``gid`` (group first, then user).

    With ``initgroups`` the supplementary groups of the user are set too;
    otherwise, when running as root, supplementary groups are dropped.
    """
    if gid is not None and gid >= 0 and (gid != os.getegid() or initgroups):
        if os.geteuid() == 0:
            name = username_for(uid) if initgroups and uid is not None else None
            if name is not None:
                os.initgroups(name, gid)
            else:
                os.setgroups([])
        os.setgid(gid)
    if uid is not None and uid >= 0 and uid != os.geteuid():
        os.setuid(uid)


def _redirect(fd: int, target: str, flags: int) -> None:
    new = os.open(target, flags)
    if new != fd:
        os.dup2(new, fd)
        os.close(new)


def daemonize(enable_stdio_inheritance: bool = False) -> None:
    """Detach from the terminal: fork, setsid, fork, umask 0o22, stdio to /dev/null.

    With ``enable_stdio_inheritance`` stdout and stderr are kept (only stdin is
    redirected). A process started by a re-exec (``GUNICORN_FD`` set) is
    already detached and is left alone.
    """
    if "GUNICORN_FD" in os.environ:
        return
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.umask(0o22)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    _redirect(0, os.devnull, os.O_RDONLY)
    if not enable_stdio_inheritance:
        _redirect(1, os.devnull, os.O_RDWR)
        _redirect(2, os.devnull, os.O_RDWR)
