"""The blocking HTTP/1 driver: recv -> protocol core -> WSGI application -> send.

One ``BlockingHTTPConnection`` serves one client socket. ``serve_one`` reads a request
(bounded by the socket timeout and a deadline for the head), runs the request cycle of
``gunicorn.lifecycle`` and writes what the core frames. The sync worker calls it once per
connection; gthread parks kept-alive connections, uses ``receive_request`` to read
without blocking until a whole head is there, then calls ``serve_one`` from a pool thread.

This module only moves bytes: every protocol decision is the core's, everything else
about a request (environ, hooks, logs, errors) is the lifecycle's. When a cleartext peer
opens with the HTTP/2 preface or switches with ``Upgrade: h2c``, ``handoff`` holds what an
HTTP/2 driver needs to take the connection over.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from gunicorn.drivers.sendfile import can_sendfile, copy_file, sendfile
from gunicorn.http.connection import NEED_DATA as CORE_NEED_DATA
from gunicorn.http.error_page import body_length
from gunicorn.http.errors import (
    InvalidRequestLine,
    LocalProtocolError,
    NoMoreData,
    ProtocolError,
)
from gunicorn.http.events import Data, EndOfMessage, Event, InformationalResponse, Request, Response
from gunicorn.lifecycle.logs import log_rejected, log_socket_error
from gunicorn.lifecycle.options import DriverOptions, worker_options
from gunicorn.lifecycle.session import Session
from gunicorn.lifecycle.wsgi import run_wsgi, uwsgi_environ
from gunicorn.wsgi.filewrapper import FileWrapper

# Bytes asked from the socket per read.
READ_SIZE = 65536
# After an error or an unread request body: read (and drop) at most this much, for at
# most LINGER_SECONDS, before closing, so the client sees our response instead of a
# reset (RFC 9112 §9.6).
LINGER_BYTES = 65536
LINGER_SECONDS = 1.0

# A wait on the client longer than this is a slow client (see _wait_io).
_SLOW_CLIENT = 0.01

# receive_request() results
REQUEST_READY = 1
NEED_DATA = 2
CLOSED = 3
SWITCH_H2 = 4  # the peer speaks HTTP/2: see ``handoff``

_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)


class Handoff:
    """What an HTTP/2 driver takes over: the bytes already read (they start with the
    client preface), and for an ``Upgrade: h2c`` the upgraded request, its body and the
    decoded HTTP2-Settings."""

    __slots__ = ("body", "data", "request", "settings")

    def __init__(
        self,
        data: bytes,
        request: Request | None = None,
        body: bytes = b"",
        settings: bytes = b"",
    ) -> None:
        self.data = data
        self.request = request
        self.body = body
        self.settings = settings


def reset_on_close(sock: socket.socket) -> None:
    """Make the next close discard unsent data and reset the connection."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class BlockingHTTPConnection:
    """Serves the HTTP/1 requests of one client socket with blocking I/O."""

    def __init__(
        self,
        sock: socket.socket,
        client_addr: Any,
        listener: Any,
        app: Any,
        worker: Any,
        *,
        options: DriverOptions | None = None,
        head_timeout: float | None = None,
        session: Session | None = None,
    ) -> None:
        self.sock = sock
        self.app = app
        self.options = options = options if options is not None else worker_options(worker)
        if session is None:
            is_ssl = isinstance(sock, ssl.SSLSocket)
            alpn = sock.selected_alpn_protocol() if is_ssl else None  # type: ignore[attr-defined]
            session = Session(
                sock, client_addr, listener, worker, options, is_ssl=is_ssl, alpn=alpn
            )
        self.session = session
        self.log = worker.log
        self.head_timeout = head_timeout if head_timeout is not None else options.timeout
        self.conn = self.session.h1_connection()
        self.closed = False
        self.head_started = False
        self.waiting_head_since: float | None = None
        self.handoff: Handoff | None = None
        self._sniffing = self.session.mode == "sniff"
        self._sniffed = b""
        # Set while the first bytes could still be the HTTP/2 preface: when to give up.
        self.preface_deadline: float | None = None
        self._pending: Request | None = None
        self._pending_error: ProtocolError | None = None
        self.io_error: BaseException | None = None
        self.request_trailers: list[tuple[bytes, bytes]] = []
        self._write_lock = threading.Lock()
        self._aborted = False
        # Told when this thread starts and stops waiting on a slow client (gthread).
        self.client_wait: Callable[[bool], None] | None = None
        self._must_close = False
        self._linger = False
        self._head = b""  # a response head waiting for the first body bytes
        # The socket stays non-blocking: an operation that would block waits in poll()
        # for at most _io_timeout. (A socket with a timeout would poll before every
        # send and recv: two system calls where one usually does.)
        self._io_timeout: float | None = options.timeout or None
        sock.setblocking(False)

    @property
    def served(self) -> int:
        return self.session.served

    # -- public API ----------------------------------------------------------------------

    def close_after_response(self) -> None:
        """Close the connection once the current (or next) response is done. Safe from
        another thread: a response whose head already announced keep-alive keeps it
        (the client may be sending its next request already)."""
        with self._write_lock:
            if not self.conn.response_started:
                self.conn.close_after_response()

    @property
    def has_pending_request(self) -> bool:
        """Whether a complete request (or a broken one to answer) is already buffered."""
        if self._pending is not None or self._pending_error is not None:
            return True
        if self.closed or self.handoff is not None:
            return False
        try:
            event = self.conn.next_event()
        except ProtocolError as exc:
            self._pending_error = exc
            return True
        if isinstance(event, Request):
            self._pending = event
            return True
        return False

    def receive_request(self) -> int:
        """Read what has arrived without blocking: REQUEST_READY, NEED_DATA, CLOSED or
        SWITCH_H2."""
        if self.closed:
            return CLOSED
        if self.has_pending_request:
            return REQUEST_READY
        try:
            self.session.check_peer()
            while True:
                event = self.conn.next_event()
                if isinstance(event, Request):
                    self._pending = event
                    return REQUEST_READY
                if event is not CORE_NEED_DATA:
                    self.close()
                    return CLOSED
                try:
                    data = self.sock.recv(READ_SIZE)
                except _WOULD_BLOCK:
                    return NEED_DATA
                if data and not self.head_started:
                    self.head_started = True
                    self.waiting_head_since = time.monotonic()
                self._feed(data)
                if self.handoff is not None:
                    return SWITCH_H2
        except ProtocolError as exc:
            self._reject(exc)
        except OSError as exc:
            self._socket_error(exc)
            self.close()
        return CLOSED

    def serve_one(self) -> bool:
        """Serve one request; True when the connection stays open for another. False
        with ``handoff`` set when the connection switched to HTTP/2 (still open)."""
        if self.closed:
            return False
        try:
            if self._pending_error is not None:
                raise self._pending_error
            request = self._pending
            self._pending = None
            if request is None:
                request = self._read_request()
            if request is None:
                if self.handoff is None:
                    self.close()
                return False
            if self.session.allow_upgrade and self._upgrade(request):
                return False
            self._serve_request(request)
        except ProtocolError as exc:
            self._reject(exc)
            return False
        except OSError as exc:
            self._socket_error(exc)
            self.close()
            return False
        conn = self.conn
        if self._must_close or not conn.keep_alive or not conn.response_complete:
            self.close()
            return False
        conn.start_next_cycle()
        return True

    def close(self) -> None:
        """Close the socket (after letting the client read our last response)."""
        if self.closed:
            return
        self.closed = True
        sock = self.sock
        try:
            if isinstance(self.io_error, TimeoutError):
                # A client too slow to read what we wrote: drop what the kernel still
                # holds for it (a reset) instead of trickling it out after the close.
                reset_on_close(sock)
            elif self._linger:
                self._drain_before_close()
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    # -- reading -------------------------------------------------------------------------

    def _wait_io(self, events: int) -> None:
        """Wait until the socket is ready for ``events`` (poll flags), or time out. A wait
        longer than ``_SLOW_CLIENT`` is announced to ``client_wait`` (gthread then lets
        a stand-in thread serve other clients meanwhile)."""
        timeout = self._io_timeout
        poller = select.poll()
        poller.register(self.sock.fileno(), events)
        wait = None if timeout is None else max(timeout, 0.0)
        if self.client_wait is not None and (wait is None or wait > _SLOW_CLIENT):
            if poller.poll(_SLOW_CLIENT * 1000.0):
                return
            self.client_wait(True)
            try:
                if wait is not None:
                    wait -= _SLOW_CLIENT
                if poller.poll(None if wait is None else wait * 1000.0):
                    return
            finally:
                self.client_wait(False)
            raise TimeoutError("timed out")
        if not poller.poll(None if wait is None else wait * 1000.0):
            raise TimeoutError("timed out")

    def _recv(self, size: int) -> bytes:
        recv = self.sock.recv
        while True:
            try:
                return recv(size)
            except _WOULD_BLOCK:
                self._wait_io(select.POLLIN)
            except ssl.SSLWantWriteError:
                self._wait_io(select.POLLOUT)

    def _sendall(self, data: bytes) -> None:
        """Write all of ``data``; the whole write must end within the I/O timeout (a
        client reading a byte now and then cannot hold the connection for ever)."""
        send = self.sock.send
        view: bytes | memoryview = data
        limit = self._io_timeout
        deadline = None if limit is None else time.monotonic() + limit
        try:
            while view:
                try:
                    sent = send(view)
                except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                    self._wait_until(select.POLLOUT, deadline)
                    continue
                except ssl.SSLWantReadError:
                    self._wait_until(select.POLLIN, deadline)
                    continue
                if sent >= len(view):
                    return
                if not sent:  # gevent's TLS socket says "would block" so
                    self._wait_until(select.POLLOUT, deadline)
                    continue
                view = memoryview(view)[sent:]
        finally:
            self._io_timeout = limit

    def _wait_until(self, events: int, deadline: float | None) -> None:
        if deadline is not None:
            self._io_timeout = deadline - time.monotonic()
            if self._io_timeout <= 0:
                raise TimeoutError("timed out writing to the client")
        self._wait_io(events)

    def _feed(self, data: bytes) -> None:
        """Give received bytes to the core (a PROXY header, if expected, goes first; a
        cleartext HTTP/2 preface, where allowed, hands the connection over)."""
        session = self.session
        if session.prefix_pending:
            passed = session.feed(data)
            if passed is None:
                return
            if not data:
                if passed:
                    self._feed_core(passed)
                self.conn.receive_data(b"")
                return
            data = passed
        self._feed_core(data)

    def _feed_core(self, data: bytes) -> None:
        if self._sniffing:
            from gunicorn.http import negotiate

            sniffed = self._sniffed + data
            verdict = negotiate.sniff_preface(sniffed) if sniffed else None
            if verdict is None and data:
                if not self._sniffed:
                    self.preface_deadline = time.monotonic() + negotiate.PREFACE_TIMEOUT
                self._sniffed = sniffed
                return
            self._sniffing = False
            self._sniffed = b""
            self.preface_deadline = None
            if verdict:
                self.handoff = Handoff(sniffed)
                return
            if not self.session.allow_upgrade:
                # http2_cleartext = prior-knowledge: a trusted peer must speak HTTP/2.
                raise InvalidRequestLine("expected the HTTP/2 connection preface")
            data = sniffed
            if not data:
                self.conn.receive_data(b"")
                return
        self.conn.receive_data(data)

    def _pull(self, deadline: float | None) -> Event | None:
        """The next event from the core, reading from the socket as needed (None when
        the core is paused until a response is done). With a ``deadline`` each read
        waits only for the time left."""
        conn = self.conn
        while True:
            event = conn.next_event()
            if isinstance(event, Event):
                return event
            if event is not CORE_NEED_DATA or self.handoff is not None:
                return None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("timed out waiting for the request head")
                self._io_timeout = remaining
            self._feed(self._recv(READ_SIZE))

    def _read_request(self) -> Request | None:
        self.session.check_peer()
        if not self.head_timeout:
            event = self._pull(None)
        else:
            try:
                event = self._pull(time.monotonic() + self.head_timeout)
            finally:
                self._io_timeout = self.options.timeout or None
        if isinstance(event, Request):
            return event
        return None  # ConnectionClosed, a connection left PAUSED, or a hand-off

    # -- the StreamIO of the request cycle -----------------------------------------------

    def receive_body(self) -> bytes:
        """``wsgi.input``'s source: the next body piece, b"" at the end."""
        event = self._pull(None)
        if type(event) is Data:
            return event.data
        if type(event) is EndOfMessage:
            self.request_trailers = event.trailers
            return b""
        raise NoMoreData("connection closed in the request body")

    def send_continue(self) -> None:
        data = self.conn.send_continue()
        if data:
            self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            with self._write_lock:
                if self._aborted:
                    raise ConnectionAbortedError("the request was answered after its timeout")
                self._sendall(data)
        except OSError as exc:
            self.io_error = exc
            raise

    def abort(self, exc: LocalProtocolError) -> None:
        """From another thread, for a request stuck past its timeout: answer it with
        ``exc``'s error page if no byte of the response went out, then shut the socket
        so the stuck thread's later writes fail instead of mixing with ours."""
        with self._write_lock:
            if self._aborted:
                return
            self._aborted = True
            data = b"" if self.conn.response_started else self.conn.error_response(exc)
            with contextlib.suppress(OSError):
                if data:
                    self._io_timeout = 1.0
                    self._sendall(data)
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def send(self, event: Event) -> None:
        if type(event) is Response:
            with self._write_lock:  # against a close_after_response from another thread
                data = self.conn.send(event)
        else:
            data = self.conn.send(event)
        if type(event) is Response:
            # The head always precedes a body piece or the end of the message: write
            # them together (one system call, one packet for small responses).
            self._head = data
            return
        head = self._head
        if head:
            self._head = b""
            data = head + data
        if data:
            self._write(data)

    def body_sent(self) -> int:
        return self.conn.body_sent

    @property
    def body_dropped(self) -> bool:
        return self.conn.body_dropped

    def write_error(self, exc: ProtocolError | LocalProtocolError) -> int:
        self._must_close = True
        self._linger = True
        with self._write_lock:
            data = b"" if self._aborted else self.conn.error_response(exc)
            if data:
                try:
                    self._sendall(data)
                except OSError as error:
                    self._socket_error(error)
        return body_length(data)

    def send_file(self, wrapper: FileWrapper, fd: int, offset: int, count: int) -> int | None:
        def through_core(data: bytes) -> None:
            self.send(Data(data))

        if not self.options.sendfile or not can_sendfile(self.sock) or count <= 0:
            return copy_file(through_core, fd, offset, count)
        prefix, count, suffix = self.conn.file_segment(count)
        head, self._head = self._head, b""
        if head or prefix:
            self._write(head + prefix)
        if not count:
            return 0
        try:
            sent = self._sendfile(fd, offset, count)
        except OSError as exc:
            self.io_error = exc
            raise
        if sent < count:
            # The file shrank: the framing announced more than we had.
            self.conn.body_sent -= count - sent
            self._must_close = True
            return sent
        if suffix:
            self._write(suffix)
        return sent

    def _sendfile(self, fd: int, offset: int, count: int) -> int:
        return sendfile(self.sock, fd, offset, count, self._io_timeout)

    # -- one request ---------------------------------------------------------------------

    def _serve_request(self, request: Request) -> None:
        self.head_started = False
        self.waiting_head_since = None
        self._linger = False
        self._head = b""
        self.request_trailers = []
        extra = (
            uwsgi_environ(getattr(self.conn, "uwsgi_vars", None)) if self.options.uwsgi else None
        )
        outcome = run_wsgi(self.session, self, request, self.app, extra)
        if request.has_body and outcome.body_unread:
            self._linger = True
        if outcome.must_close:
            self._must_close = True
            self._linger = True

    def _upgrade(self, request: Request) -> bool:
        """Switch to h2c when the request asks for it and may (RFC 7540 §3.2): read its
        body, answer 101 and hand the connection over."""
        settings = self.session.h2c_upgrade(request)
        if settings is None:
            return False
        body = bytearray()
        while True:
            event = self._pull(None)
            if type(event) is Data:
                body += event.data
            elif type(event) is EndOfMessage:
                break
            else:
                raise NoMoreData("connection closed in the request body")
        switching = InformationalResponse(101, [(b"Connection", b"Upgrade"), (b"Upgrade", b"h2c")])
        self._write(self.conn.send(switching))
        rest, _eof = self.conn.trailing_data
        self.handoff = Handoff(rest, request, bytes(body), settings)
        return True

    # -- errors --------------------------------------------------------------------------

    def _reject(self, exc: ProtocolError) -> None:
        """Answer a request the core refused, then close."""
        self._pending_error = None
        log_rejected(self.log, self.session.client_addr, exc)
        self.write_error(exc)
        self.close()

    def _socket_error(self, exc: BaseException) -> None:
        self._must_close = True
        log_socket_error(self.log, self.session.client_addr, exc)

    def _drain_before_close(self) -> None:
        sock = self.sock
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(LINGER_SECONDS)
            deadline = time.monotonic() + LINGER_SECONDS
            drained = 0
            while drained < LINGER_BYTES and time.monotonic() < deadline:
                data = sock.recv(16384)
                if not data:
                    break
                drained += len(data)
        except (OSError, ValueError):
            pass


__all__ = [
    "CLOSED",
    "NEED_DATA",
    "REQUEST_READY",
    "SWITCH_H2",
    "BlockingHTTPConnection",
    "Handoff",
]
