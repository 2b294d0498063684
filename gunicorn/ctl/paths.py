"""Where the control socket lives, and binding it without stealing another server's.

gunicorn 27 puts every instance at one default path and unlinks whatever is there, so a
second server silently takes the first one's socket. Here, when ``control_socket`` is left
at its default, each instance gets its own file in the default directory,
``gunicorn-<name>.ctl``, where ``<name>`` is ``proc_name`` when one is set and otherwise the
first address the server listens on (``127.0.0.1-8000``, ``unix-run-app.sock``). A socket
someone listens on is never unlinked: an instance whose default path is taken adds its pid
to the name; one whose explicitly configured path is taken logs a warning and runs without
a control socket. A socket file nobody listens on (a crashed server's) is replaced.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import re
import socket
import stat
from typing import Any

from gunicorn.config.settings.control import default_control_socket

PREFIX = "gunicorn"
SUFFIX = ".ctl"
# sun_path holds 108 bytes on Linux (104 on the BSDs): stay well inside.
_MAX_PATH = 100


class SocketTaken(Exception):
    """Another live server listens at the path (or it is not a socket)."""


def default_directory() -> str:
    return os.path.dirname(default_control_socket())


def instance_name(cfg: Any, listeners: list[Any]) -> str:
    """``proc_name`` if set, else the first listening address, made safe for a file name."""
    name = cfg.settings["proc_name"].get()
    if not name:
        name = _first_address(cfg, listeners)
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip("-.")
    return cleaned or "server"


def _first_address(cfg: Any, listeners: list[Any]) -> str:
    for listener in listeners:
        try:
            address = listener.getsockname()
        except OSError:
            continue
        if isinstance(address, tuple):
            return f"{address[0]}-{address[1]}"
        if isinstance(address, str) and address:
            return f"unix-{address.lstrip(os.sep)}"
    for address in cfg.address:
        if isinstance(address, tuple):
            return f"{address[0]}-{address[1]}"
        return f"unix-{str(address).lstrip(os.sep)}"
    return str(os.getpid())


def instance_path(directory: str, name: str) -> str:
    """``<directory>/gunicorn-<name>.ctl``, the name shortened (with a hash) if too long."""
    path = os.path.join(directory, f"{PREFIX}-{name}{SUFFIX}")
    if len(os.fsencode(path)) <= _MAX_PATH:
        return path
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]
    room = max(1, _MAX_PATH - len(os.fsencode(directory)) - len(PREFIX) - len(SUFFIX) - 13)
    return os.path.join(directory, f"{PREFIX}-{name[:room]}-{digest}{SUFFIX}")


def configured_path(cfg: Any) -> str | None:
    """The path set by the user, or None when ``control_socket`` is at its default."""
    value = cfg.control_socket
    if not value or value == default_control_socket():
        return None
    return os.path.abspath(os.path.expanduser(str(value)))


def is_live(path: str) -> bool:
    """Whether a server accepts connections on the socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError, NotADirectoryError):
        return False
    except BlockingIOError:
        return True  # a listener whose queue is full is still a listener
    except OSError:
        return False
    finally:
        probe.close()
    return True


def live_sockets(directory: str | None = None) -> list[str]:
    """Live control sockets of the default kind in ``directory``, sorted."""
    directory = directory or default_directory()
    found = glob.glob(os.path.join(glob.escape(directory), f"{PREFIX}*{SUFFIX}"))
    return sorted(path for path in found if _is_socket(path) and is_live(path))


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def bind(path: str, mode: int) -> socket.socket:
    """A listening, non-blocking unix socket at ``path`` with permission bits ``mode``.

    Raises SocketTaken when a live server owns the path or it is not a socket; a stale
    socket file is replaced. The directory is created (0700) when missing.
    """
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(st.st_mode):
            raise SocketTaken(f"{path} exists and is not a socket")
        if is_live(path):
            raise SocketTaken(f"another server listens on {path}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o777 & ~mode)  # no window with wider permissions than asked
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SocketTaken(f"another server listens on {path}") from None
        raise
    finally:
        os.umask(old_umask)
    try:
        os.chmod(path, mode)
        sock.listen(16)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    sock.set_inheritable(False)
    return sock


def identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of ``path``, to unlink it later only if it is still ours."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
