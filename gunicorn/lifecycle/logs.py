"""Log lines about clients: rejected requests and socket errors.

A client's mistake is never an ERROR. Every rejected request is logged once at INFO with
the client address and the reason, through a token bucket so a flood of junk cannot fill
the disk: a burst of ``BURST`` lines, then at most ``RATE`` lines a second per worker
process; the lines dropped meanwhile are counted and reported by the next line that is
written ("N more rejected requests were not logged").
"""

from __future__ import annotations

import errno
import os
import ssl
import threading
import time
import traceback
from typing import Any

from gunicorn.http.errors import ForbiddenProxyRequest, ForbiddenUWSGIRequest, ProtocolError

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_STDLIB_THREADING = os.path.abspath(threading.__file__)

BURST = 20
RATE = 5.0

_IGNORED_ERRNOS = {
    errno.EPIPE: "Ignoring EPIPE",
    errno.ECONNRESET: "Ignoring connection reset",
    errno.ENOTCONN: "Ignoring socket not connected",
}


class RateLimit:
    """A token bucket: ``allow()`` is True while tokens remain."""

    def __init__(self, burst: int = BURST, rate: float = RATE) -> None:
        self.burst = float(burst)
        self.rate = rate
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()
        self.dropped = 0

    def allow(self) -> tuple[bool, int]:
        """(may log now, lines dropped since the last allowed one)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1.0:
                self.dropped += 1
                return False, 0
            self._tokens -= 1.0
            dropped, self.dropped = self.dropped, 0
            return True, dropped


_rejected = RateLimit()


def peer_name(peer: Any) -> str:
    if isinstance(peer, tuple):
        return str(peer[0])
    if isinstance(peer, bytes):
        peer = peer.decode("latin-1")
    return str(peer) or "unix socket"


def log_rejected(log: Any, peer: Any, exc: ProtocolError, uri: str | None = None) -> None:
    """One INFO line for a request the server refused (a 500 is our fault: an ERROR;
    501 and 505 answer what the client sent)."""
    if exc.status == 500:
        log.error("Error handling request %s: %s", uri or "-", exc)
        return
    allowed, dropped = _rejected.allow()
    if not allowed:
        return
    kind = (
        "Forbidden"
        if isinstance(exc, (ForbiddenProxyRequest, ForbiddenUWSGIRequest))
        else ("Invalid")
    )
    if dropped:
        log.info(
            "%s request from ip=%s: %s (%d more rejected requests were not logged)",
            kind,
            peer_name(peer),
            exc,
            dropped,
        )
    else:
        log.info("%s request from ip=%s: %s", kind, peer_name(peer), exc)


def log_protocol_error(log: Any, peer: Any, reason: str) -> None:
    """One INFO line for a connection the server ended because the peer broke the protocol
    or tripped a flood guard (the same rate limit as rejected requests)."""
    allowed, dropped = _rejected.allow()
    if not allowed:
        return
    if dropped:
        log.info(
            "Ended the HTTP/2 connection from ip=%s: %s (%d more rejected requests were "
            "not logged)",
            peer_name(peer),
            reason,
            dropped,
        )
    else:
        log.info("Ended the HTTP/2 connection from ip=%s: %s", peer_name(peer), reason)


def log_socket_error(log: Any, peer: Any, exc: BaseException) -> None:
    """A connection failed under us: the client left, timed out or broke TLS."""
    if isinstance(exc, (TimeoutError, ssl.SSLError)):
        log.debug("Connection from %s: %s", peer_name(peer), exc)
        return
    number = getattr(exc, "errno", None)
    message = _IGNORED_ERRNOS.get(number) if number is not None else None
    if message is not None:
        log.debug(message)
    elif isinstance(exc, ConnectionError):
        log.debug("Connection from %s: %s", peer_name(peer), exc)
    else:
        log.exception("Socket error processing request.")


def application_stack(frames: traceback.StackSummary) -> str:
    """The frames of ``frames`` that are the application's (not the server's nor the
    thread machinery's), formatted with file, line and function."""
    kept = [
        frame
        for frame in frames
        if not frame.filename.startswith(_PACKAGE_DIR)
        and os.path.abspath(frame.filename) != _STDLIB_THREADING
    ]
    return "".join(traceback.format_list(kept)).rstrip() or "  (no frame of the application)"
