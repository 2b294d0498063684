"""systemd integration: socket activation (``LISTEN_FDS``) and ``sd_notify`` messages."""

from __future__ import annotations

import os
import socket
from typing import Any

#: First descriptor systemd passes (``SD_LISTEN_FDS_START`` in sd-daemon.h).
SD_LISTEN_FDS_START = 3


def _env_int(name: str) -> int:
    try:
        return int(os.environ.get(name, "0"))
    except ValueError:
        return 0


def listen_fds(unset_environment: bool = True) -> int:
    """Number of sockets systemd passed to this process (0 when they are not ours).

    The descriptors are ``SD_LISTEN_FDS_START`` .. ``+ n - 1``. With
    ``unset_environment`` the ``LISTEN_*`` variables are removed so children
    do not take them for theirs.
    """
    fds = _env_int("LISTEN_FDS")
    if _env_int("LISTEN_PID") != os.getpid():
        return 0
    if unset_environment:
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
    return max(fds, 0)


def _notify_address() -> str | None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return None
    if addr.startswith("@"):
        return "\0" + addr[1:]
    return addr


def sd_notify(state: str, logger: Any, unset_environment: bool = False) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to the systemd notify socket, if there is one.

    Returns True when a message was sent. Failures are logged at debug level.
    """
    addr = _notify_address()
    if addr is None:
        return False
    sent = False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(addr)
        sock.sendall(state.encode("utf-8"))
        sent = True
    except Exception:
        logger.debug("Exception while invoking sd_notify()", exc_info=True)
    finally:
        sock.close()
        if unset_environment:
            os.environ.pop("NOTIFY_SOCKET", None)
    return sent


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None.

    None when no watchdog is configured or it is meant for another process
    (``WATCHDOG_PID`` set to a different pid).
    """
    usec = _env_int("WATCHDOG_USEC")
    if usec <= 0:
        return None
    pid = _env_int("WATCHDOG_PID")
    if pid and pid != os.getpid():
        return None
    return usec / 2 / 1_000_000
