"""Admission at ``worker_connections``: which open connection may be closed for a new one.

A worker that holds ``worker_connections`` connections and sees another arrive closes
one that has not begun a request (a new connection that sent nothing yet, or a kept-alive
one waiting between requests), as nginx reuses such connections, so that a flood of
silent connections cannot lock real clients out. A connection whose request has begun
(bytes received, even unread ones) is never chosen. New connections that never sent a
byte go first, oldest first; kept-alive ones only when there is no such connection.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import resource
import socket
import ssl
import termios
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

# accept() failures that mean "out of descriptors or memory": pause accepting (as nginx
# does, for half a second) rather than retry at once on a listener that stays readable.
ACCEPT_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_BACKOFF = 0.5


def has_unread(sock: Any) -> bool:
    """Whether bytes wait in the kernel (or the TLS layer) that nobody read yet."""
    if isinstance(sock, ssl.SSLSocket):
        try:
            if sock.pending():
                return True
        except (OSError, ValueError):
            return True
    size = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, size, True)
    except (OSError, ValueError):
        return True  # unknown: keep the connection
    return size[0] > 0


def choose(
    conns: Iterable[T], kind: Callable[[T], int], sock_of: Callable[[T], Any], count: int = 1
) -> list[T]:
    """Up to ``count`` connections to close: of ``conns`` (listed oldest first) the
    ``FRESH`` ones first, then the ``KEPT_ALIVE`` ones; never a ``BUSY`` one, nor one with
    unread input. Called only at the cap: it may scan every open connection."""
    chosen: list[T] = []
    kept: list[T] = []
    for conn in conns:
        what = kind(conn)
        if what == FRESH:
            if not has_unread(sock_of(conn)):
                chosen.append(conn)
                if len(chosen) >= count:
                    return chosen
        elif what == KEPT_ALIVE and len(kept) < count:
            kept.append(conn)
    for conn in kept:
        if len(chosen) >= count:
            break
        if not has_unread(sock_of(conn)):
            chosen.append(conn)
    return chosen


class AcceptBackoffSocket(socket.socket):
    """A listening socket for asyncio's own event loop that stops it spinning on EMFILE.

    On EMFILE (ENFILE, ENOBUFS, ENOMEM) asyncio's ``_accept_connection`` logs the error,
    stops watching the listener and schedules a retry a second later, but then goes on
    calling ``accept()`` up to ``backlog`` times in the same turn, logging and scheduling
    a retry each time (CPython 3.10 to 3.13): thousands of tracebacks a second and a loop
    too busy to serve. After one such failure this socket answers "nothing to accept"
    (``BlockingIOError``) for ``ACCEPT_BACKOFF`` seconds, which ends that turn at once.
    """

    _paused_until = 0.0

    def accept(self) -> tuple[socket.socket, Any]:
        if self._paused_until and time.monotonic() < self._paused_until:
            raise BlockingIOError(errno.EAGAIN, "accepting is paused")
        try:
            return super().accept()
        except OSError as exc:
            if exc.errno in ACCEPT_EXHAUSTED:
                self._paused_until = time.monotonic() + ACCEPT_BACKOFF
            raise


def connection_cap(wanted: int, reserve: int = 16) -> int:
    """``wanted`` (``worker_connections``), or fewer if the descriptor limit leaves room
    for fewer connections besides the ``reserve`` kept for the application and the
    descriptors open now: admission then makes room before ``accept()`` meets EMFILE."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            in_use = len(os.listdir(directory))
            break
        except OSError:
            continue
    else:
        return wanted
    return max(1, min(wanted, soft - in_use - reserve))


def accept_backoff_socket(sock: socket.socket) -> AcceptBackoffSocket:
    """An ``AcceptBackoffSocket`` on a duplicate of the listener ``sock``'s descriptor
    (closing it leaves ``sock`` open)."""
    return AcceptBackoffSocket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))


# What a connection is doing, for ``choose``.
BUSY = 0
FRESH = 1  # accepted, no byte of a request received yet
KEPT_ALIVE = 2  # between requests, no byte of the next one received yet

__all__ = [
    "ACCEPT_BACKOFF",
    "ACCEPT_EXHAUSTED",
    "BUSY",
    "FRESH",
    "KEPT_ALIVE",
    "AcceptBackoffSocket",
    "accept_backoff_socket",
    "choose",
    "connection_cap",
    "has_unread",
]
