"""Sending a file body: ``os.sendfile`` on plain sockets, reading and writing otherwise."""

from __future__ import annotations

import os
import selectors
import socket
import ssl
from collections.abc import Callable

# Largest piece handed to one sendfile() call (keeps a timeout check between pieces).
SENDFILE_STEP = 1 << 20
# Piece size for the copying fallback.
COPY_STEP = 1 << 16


def can_sendfile(sock: socket.socket) -> bool:
    """``sendfile`` writes file pages straight to the socket: never on a TLS socket."""
    return not isinstance(sock, ssl.SSLSocket) and hasattr(os, "sendfile")


def _wait_writable(sock: socket.socket, timeout: float | None) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        if not selector.select(timeout):
            raise TimeoutError("timed out sending a file")


def sendfile(
    sock: socket.socket, fd: int, offset: int, count: int, timeout: float | None = None
) -> int:
    """Send ``count`` bytes of ``fd`` from ``offset`` with ``os.sendfile``.

    The file's own position is not changed. Returns the bytes sent, fewer than
    ``count`` only if the file is shorter than expected. When the socket is not ready,
    waits up to ``timeout`` seconds (None: no limit).
    """
    out = sock.fileno()
    sent = 0
    while sent < count:
        try:
            step = os.sendfile(out, fd, offset + sent, min(count - sent, SENDFILE_STEP))
        except BlockingIOError:
            _wait_writable(sock, timeout)
            continue
        if step == 0:
            break  # end of file
        sent += step
    return sent


def copy_file(write: Callable[[bytes], None], fd: int, offset: int, count: int) -> int:
    """Read ``count`` bytes of ``fd`` from ``offset`` and pass them to ``write`` in pieces.

    Uses ``pread``, so the file's position is not changed. Returns the bytes written.
    """
    sent = 0
    while sent < count:
        data = os.pread(fd, min(count - sent, COPY_STEP), offset + sent)
        if not data:
            break
        write(data)
        sent += len(data)
    return sent
