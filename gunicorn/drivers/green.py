"""Connections served by greenlets (gevent, eventlet): the blocking drivers on green waits.

Theory of operation
-------------------
A green worker runs one greenlet per accepted connection (``GreenConnection.run``). The
greenlet owns its socket: it waits for the next request head with the hub (``GreenIO.wait``,
a readiness wait that blocks only this greenlet), then serves the request with the same
HTTP/1 driver as sync and gthread (``BlockingHTTPConnection``); the driver's own waits for
a slow client go to the hub too (``GreenHTTPConnection``). Nothing here parses HTTP: the
protocol core does, exactly as for the other workers.

HTTP/2 (ALPN, h2c prior knowledge, ``Upgrade: h2c``) runs on the threads' driver,
``H2Driver``: the connection greenlet holds the *reader role* for good (``claim`` never
hands it to a stream), reads and feeds the core, and every new stream runs the WSGI cycle
in a greenlet of its own (``spawn``). A stream waiting for body bytes or flow-control
window waits on the driver's condition (a green one: ``threading`` is patched), so it blocks
only itself. The reader wakes on the socket, and in short slices while streams run so that
it notices when the last one ends on a connection that is going away.

Deadlines: ``timeout`` from the connection's arrival to a complete first head (TLS
handshake included), ``keepalive`` between requests (none: one request per connection),
``timeout`` for an HTTP/2 connection whose streams make no progress.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol

from gunicorn.drivers import admission, tls
from gunicorn.drivers.blocking import BlockingHTTPConnection, Handoff
from gunicorn.drivers.multiplex import (
    CLOSED,
    WANT_NOTHING,
    WANT_WRITE,
    H2Driver,
    shutdown_socket,
)
from gunicorn.drivers.sendfile import SENDFILE_STEP
from gunicorn.errors import RequestTimeout
from gunicorn.lifecycle.logs import log_socket_error
from gunicorn.lifecycle.options import DriverOptions
from gunicorn.lifecycle.session import Session

# How often an HTTP/2 reader with streams running looks whether it should close.
_H2_SLICE = 0.1


class Watch(Protocol):
    """A descriptor one greenlet waits on again and again (its hub resources kept)."""

    def wait_readable(self) -> None:
        """Block this greenlet until the descriptor is readable (no timeout)."""

    def close(self) -> None:
        """Release the hub resources (before the descriptor is closed)."""


class GreenIO(Protocol):
    """What the drivers need from the green library (gevent or eventlet)."""

    def wait(self, fileno: int, write: bool, timeout: float | None) -> bool:
        """Block this greenlet until ``fileno`` is readable (writable); False on timeout."""

    def watch(self, fileno: int) -> Watch:
        """A reusable readability wait on ``fileno`` (the keep-alive wait of a connection)."""

    def sleep(self, seconds: float) -> None:
        """Yield to the hub for ``seconds``."""


class _NoLock:
    """A lock greenlets of one connection never need: they do not run at the same time
    and never yield between the checks and writes the threaded drivers guard."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class GreenHTTPConnection(BlockingHTTPConnection):
    """The HTTP/1 driver whose waits on the client go through the hub."""

    def __init__(self, *args: Any, io: GreenIO, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.io = io
        self._write_lock = _NoLock()  # type: ignore[assignment]

    def _wait_io(self, events: int) -> None:
        timeout = self._io_timeout
        if timeout is not None and timeout <= 0:
            raise TimeoutError("timed out")
        if not self.io.wait(self.sock.fileno(), bool(events & select.POLLOUT), timeout):
            raise TimeoutError("timed out")

    def _sendfile(self, fd: int, offset: int, count: int) -> int:
        out = self.sock.fileno()
        timeout = self._io_timeout
        sent = 0
        while sent < count:
            try:
                step = os.sendfile(out, fd, offset + sent, min(count - sent, SENDFILE_STEP))
            except BlockingIOError:
                if not self.io.wait(out, True, timeout):
                    raise TimeoutError("timed out sending a file") from None
                continue
            if step == 0:
                break
            sent += step
        return sent


class GreenH2Driver(H2Driver):
    """``H2Driver`` whose blocking writes wait through the hub."""

    # The hub runs one connection's turn at a time, with nothing to preempt it: a smaller
    # turn keeps a flood of tiny frames from delaying the other connections (threads
    # get that from the interpreter's switch interval).
    read_turn = 4096

    def __init__(self, *args: Any, io: GreenIO, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.io = io

    def _wait_writable(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out writing to the client")
        self.io.wait(self.sock.fileno(), True, remaining)

    def _wait_readable(self, timeout: float) -> bool:
        if self._eof:
            return False
        if isinstance(self.sock, ssl.SSLSocket) and self._tls_pending():
            return True
        return self.io.wait(self.sock.fileno(), False, max(timeout, 0.0))


def shutdown_read(sock: Any) -> None:
    """Stop reading ``sock``: a greenlet waiting for its next request sees the end of the
    stream; a response being written still goes out."""
    shutdown_socket(sock, socket.SHUT_RD)


def _tls_pending(sock: Any) -> bool:
    """Bytes the TLS layer decrypted already (the descriptor may not be readable)."""
    try:
        return bool(sock.pending())
    except (OSError, ValueError, AttributeError):
        return False


class GreenConnection:
    """One accepted connection and the greenlet that serves it (see the module docstring)."""

    __slots__ = (
        "addr",
        "deadline",
        "h2",
        "http",
        "idle",
        "io",
        "listener",
        "sock",
        "spawn",
        "worker",
    )

    def __init__(
        self,
        worker: Any,
        io: GreenIO,
        sock: socket.socket,
        addr: Any,
        listener: Any,
        spawn: Callable[[list[Callable[[], None]]], None],
    ) -> None:
        self.worker = worker
        self.io = io
        self.sock = sock
        self.addr = addr
        self.listener = listener
        self.spawn = spawn
        self.http: Any = None
        self.h2: GreenH2Driver | None = None
        # Waiting for the next request head with nothing read (safe to stop reading),
        # until ``deadline`` (the worker's sweep ends it then).
        self.idle = True
        self.deadline = float("inf")

    # -- the greenlet ---------------------------------------------------------------------

    def run(self, options: DriverOptions, context: ssl.SSLContext | None) -> None:
        """Serve the connection until it closes (the connection greenlet's body)."""
        worker = self.worker
        try:
            sock = self.sock
            if not self._first_bytes(options):
                return
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = self.sock = tls.wrap_socket(sock, context, worker.cfg)
                tls.handshake(sock, options.timeout or None)
            is_ssl = context is not None
            alpn = sock.selected_alpn_protocol() if is_ssl else None  # type: ignore[attr-defined]
            session = Session(
                sock, self.addr, self.listener, worker, options, is_ssl=is_ssl, alpn=alpn
            )
            if session.mode == "h2":
                self._serve_h2(session, options, None)
            else:
                self._serve_h1(session, options)
        except RequestTimeout:
            pass  # answered and logged by the request cycle
        except (OSError, ValueError, ssl.SSLError) as exc:
            log_socket_error(worker.log, self.addr, exc)
        except Exception:
            worker.log.exception("Error while serving a connection from %s", self.addr)
        finally:
            self.close()

    def _first_bytes(self, options: DriverOptions) -> bool:
        """Wait for the client's first bytes before anything is built for it (a connection
        that never sends one costs only this wait); False if it was ended meanwhile (by
        its deadline, admission or a graceful stop)."""
        timeout = options.timeout
        self.deadline = time.monotonic() + timeout if timeout else float("inf")
        self.io.wait(self.sock.fileno(), False, None)
        if not self.idle:
            return False
        self.idle = False
        return True

    def close(self) -> None:
        http = self.http
        with contextlib.suppress(Exception):
            if http is not None:
                http.close()
            else:
                self.sock.close()

    def admission_kind(self) -> int:
        """Whether this connection has begun a request (see ``admission``)."""
        if not self.idle:
            return admission.BUSY
        if self.h2 is not None:
            return admission.KEPT_ALIVE
        http = self.http
        if http is None:
            return admission.FRESH
        if http.conn.pending_input:
            return admission.BUSY
        return admission.KEPT_ALIVE if http.served else admission.FRESH

    def stop_reading(self) -> None:
        """End an idle connection (keep-alive or head deadline passed, graceful stop): its
        greenlet sees the end of the stream and closes it."""
        if self.idle:
            self.idle = False
            shutdown_read(self.sock)

    def shutdown(self) -> None:
        """Graceful stop: the next response says ``Connection: close``; HTTP/2 sends GOAWAY."""
        http = self.http
        if http is None:
            return
        if self.h2 is not None:
            self.h2.shutdown()
        else:
            http.close_after_response()

    # -- HTTP/1 ---------------------------------------------------------------------------

    def _serve_h1(self, session: Session, options: DriverOptions) -> None:
        worker = self.worker
        sock = self.sock
        http = self.http = GreenHTTPConnection(
            sock,
            self.addr,
            self.listener,
            worker.wsgi,
            worker,
            options=options,
            session=session,
            io=self.io,
        )
        watch = self.io.watch(sock.fileno())
        is_ssl = session.is_ssl
        keepalive = float(worker.cfg.keepalive or 0)
        wait_for = options.timeout  # the first head: from the arrival
        readable = not is_ssl  # the first bytes are there (``_first_bytes``)
        try:
            while True:
                if readable:
                    readable = False
                elif not http.has_pending_request and not (is_ssl and _tls_pending(sock)):
                    self.deadline = time.monotonic() + wait_for if wait_for else float("inf")
                    self.idle = True
                    watch.wait_readable()  # the worker's sweep ends it at the deadline
                    self.idle = False
                if keepalive <= 0 or not worker.accepting:
                    http.close_after_response()
                if not http.serve_one():
                    if http.handoff is not None:
                        self._serve_h2(session, options, http.handoff)
                    return
                wait_for = keepalive
        finally:
            watch.close()

    # -- HTTP/2 ---------------------------------------------------------------------------

    def _serve_h2(self, session: Session, options: DriverOptions, handoff: Handoff | None) -> None:
        worker = self.worker
        sock = self.sock
        driver = self.h2 = self.http = GreenH2Driver(
            sock,
            session,
            worker.wsgi,
            spawn=self.spawn,
            claim=_never,
            park=_ignore,
            timeout=options.timeout,
            io=self.io,
        )
        if not worker.accepting:
            driver.shutdown()
        self.idle = False
        self.deadline = float("inf")  # this loop keeps its own deadlines
        want = driver.start(handoff)
        keepalive = float(worker.cfg.keepalive or 0)
        timeout = options.timeout or 3600.0
        fileno = sock.fileno()
        is_ssl = session.is_ssl
        wait = self.io.wait
        while want != CLOSED:
            if want == WANT_NOTHING:  # the peer is gone; streams still run
                self.io.sleep(_H2_SLICE)
                want = driver.on_readable()
                continue
            active = driver.active
            limit = timeout if active else keepalive
            remaining = driver.last_activity + limit - time.monotonic()
            if remaining <= 0:
                driver.close()
                return
            if active or driver.going_away or want & WANT_WRITE:
                remaining = min(remaining, _H2_SLICE)
            self.idle = not active
            if not (is_ssl and _tls_pending(sock)):
                wait(fileno, bool(want & WANT_WRITE), remaining)
            self.idle = False
            want = driver.on_readable()


def _never() -> bool:
    return False


def _ignore(want: int) -> None:
    return None


__all__ = ["GreenConnection", "GreenH2Driver", "GreenHTTPConnection", "GreenIO", "shutdown_read"]
