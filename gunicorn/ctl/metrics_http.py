"""The metrics endpoint (``--metrics-bind``): a tiny HTTP/1.x server inside the arbiter's loop.

``GET /metrics`` (or ``/``) answers the Prometheus text format, or OpenMetrics when the
scraper's ``Accept`` asks for ``application/openmetrics-text``; ``HEAD`` is answered
without a body; anything else gets 404 or 405. Every answer closes the connection. A request
head must arrive whole, within 8 KiB and 10 seconds.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from gunicorn import util
from gunicorn.ctl.server import Connection, Endpoint
from gunicorn.instrument.exposition import OPENMETRICS_TYPE, PROMETHEUS_TYPE, render

_MAX_HEAD = 8192
_PATHS = (b"/metrics", b"/")


def listen(address: str, backlog: int = 64) -> socket.socket:
    """A non-blocking listener on ``HOST:PORT``, ``[v6]:PORT`` or ``unix:PATH``."""
    parsed = util.parse_address(address, default_port="9100")
    if isinstance(parsed, tuple):
        host, port = parsed
        family = socket.AF_INET6 if util.is_ipv6(host) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        target: Any = (host, port)
    elif isinstance(parsed, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = parsed
    else:
        raise ValueError(f"metrics_bind cannot be a file descriptor: {address!r}")
    try:
        sock.bind(target)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    sock.set_inheritable(False)
    return sock


def describe(sock: socket.socket) -> str:
    address = sock.getsockname()
    if isinstance(address, tuple):
        host = f"[{address[0]}]" if ":" in address[0] else address[0]
        return f"http://{host}:{address[1]}/metrics"
    return f"unix:{address}"


class MetricsEndpoint(Endpoint):
    IDLE_TIMEOUT = 10.0

    def __init__(
        self,
        listener: socket.socket,
        snapshot: Callable[[], dict[str, Any]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(listener, clock)
        self.snapshot = snapshot

    def opened(self, conn: Connection) -> None:
        conn.state = bytearray()

    def received(self, conn: Connection, data: bytes) -> None:
        if conn.closing:
            return
        head: bytearray = conn.state
        head += data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > _MAX_HEAD:
                self._answer(conn, 431, b"Request Header Fields Too Large")
            return
        self._serve(conn, bytes(head[:end]))

    def _serve(self, conn: Connection, head: bytes) -> None:
        line, _, fields = head.partition(b"\r\n")
        parts = line.split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            self._answer(conn, 400, b"Bad Request")
            return
        method, target = parts[0], parts[1].partition(b"?")[0]
        if target not in _PATHS:
            self._answer(conn, 404, b"Not Found")
            return
        if method not in (b"GET", b"HEAD"):
            self._answer(conn, 405, b"Method Not Allowed", extra=b"Allow: GET, HEAD\r\n")
            return
        accept = b""
        for field in fields.split(b"\r\n"):
            name, _, value = field.partition(b":")
            if name.strip().lower() == b"accept":
                accept = value.lower()
        openmetrics = b"application/openmetrics-text" in accept
        body = render(self.snapshot(), openmetrics=openmetrics).encode("utf-8")
        content_type = OPENMETRICS_TYPE if openmetrics else PROMETHEUS_TYPE
        self._answer(
            conn, 200, b"OK", body, content_type.encode("ascii"), head_only=method == b"HEAD"
        )

    def _answer(
        self,
        conn: Connection,
        status: int,
        reason: bytes,
        body: bytes | None = None,
        content_type: bytes = b"text/plain; charset=utf-8",
        extra: bytes = b"",
        head_only: bool = False,
    ) -> None:
        if body is None:
            body = reason + b"\n"
        head = (
            b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            b"%sConnection: close\r\n\r\n" % (status, reason, content_type, len(body), extra)
        )
        self.send(conn, head if head_only else head + body, close=True)
