"""The sync worker (``-k sync``, the default): one request at a time, one per connection.

The loop waits on the listeners (and the signal wake-up pipe) with ``select``, accepts
every connection that is ready, serves one request on it with ``Connection: close``,
and writes the heartbeat on every turn. A TERM lets the current request finish; the
worker also stops when its arbiter is gone or after ``max_requests``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import ssl
from types import FrameType
from typing import Any

from gunicorn.drivers import tls
from gunicorn.drivers.blocking import BlockingHTTPConnection
from gunicorn.errors import RequestTimeout
from gunicorn.lifecycle.options import http2_wanted
from gunicorn.workers import base

# accept() failures that only mean "nothing to accept right now".
_NOTHING_TO_ACCEPT = {errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED, errno.EPROTO}
# accept() failures from exhausted resources: back off instead of spinning.
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_MIN_WAIT = 0.5


class SyncWorker(base.Worker):
    """Serves one request per connection, one connection at a time."""

    wsgi_multithread = False
    supports_http2 = False

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        if http2_wanted(cfg):
            log.warning(
                "The sync worker cannot keep connections open: HTTP/2 is not offered and "
                "clients get HTTP/1.1. Use -k gthread (or gevent, asgi) for HTTP/2."
            )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ssl_context: ssl.SSLContext | None = None

    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        """The arbiter found this worker silent past ``timeout``: whatever request is in
        progress is answered with 500 and its stack logged (``run_wsgi``) on the way out."""
        self.alive = False
        self.cfg.worker_abort(self)
        raise RequestTimeout(1)

    def run(self) -> None:
        for listener in self.sockets:
            listener.setblocking(False)
        if self.cfg.is_ssl:
            self._ssl_context = tls.ssl_context(self.cfg, http2=False)
        wait = max(float(self.timeout), _MIN_WAIT)
        listeners = list(self.sockets)
        while self.alive:
            self.notify()
            accepted = False
            for listener in listeners:
                if not self.alive:
                    break
                accepted = self._accept_ready(listener) or accepted
            if not self.alive:
                break
            if self.parent_changed():
                self.log.info("Parent changed, shutting down: %s", self)
                break
            if not accepted:
                self._wait(wait)

    def _accept_ready(self, listener: Any) -> bool:
        """Accept and serve the connections waiting on ``listener``; True if any."""
        served = False
        while self.alive:
            try:
                client, addr = listener.accept()
            except OSError as exc:
                if exc.errno in _NOTHING_TO_ACCEPT:
                    return served
                if exc.errno in _RESOURCE_ERRORS:
                    self.log.error("accept() failed on %s: %s", listener, exc)
                    self._wait(_MIN_WAIT, listen=False)
                    return served
                raise
            served = True
            self.handle(listener, client, addr)
            self.notify()
        return served

    def _wait(self, seconds: float, *, listen: bool = True) -> None:
        """Sleep until a listener is ready, a signal arrives or ``seconds`` pass."""
        fds: list[Any] = list(self.wait_fds) if listen else list(self.PIPE[:1])
        try:
            ready, _, _ = select.select(fds, [], [], seconds)
        except InterruptedError:
            return
        except OSError as exc:
            if exc.errno == errno.EBADF and not self.alive:
                return
            raise
        if self.PIPE and self.PIPE[0] in ready:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while os.read(self.PIPE[0], 4096):
                    pass

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        """Serve one request on a freshly accepted connection, then close it."""
        client.setblocking(True)
        if client.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            client = self._secure(client)
        except (OSError, ValueError) as exc:
            self.log.debug("TLS handshake with %s failed: %s", addr, exc)
            with contextlib.suppress(OSError):
                client.close()
            return
        conn = BlockingHTTPConnection(
            client, addr, listener, self.wsgi, self, head_timeout=max(float(self.timeout), 1.0)
        )
        conn.close_after_response()
        metrics = self.metrics
        metrics.connection_opened()
        try:
            conn.serve_one()
        finally:
            conn.close()
            metrics.connection_closed()

    def _secure(self, client: socket.socket) -> socket.socket:
        context = self._ssl_context
        if context is None:
            return client
        wrapped = tls.wrap_socket(client, context, self.cfg)
        tls.handshake(wrapped, float(self.cfg.timeout) or None)
        return wrapped
