"""The blocking driver: recv -> protocol core -> WSGI application -> sendall.

One ``BlockingHTTPConnection`` serves one client socket. ``serve_one`` reads a request
(blocking, bounded by the socket timeout and a deadline for the head), runs the
application through the WSGI adapter and writes what the core frames. The sync worker
calls it once per connection; gthread parks kept-alive connections, uses
``receive_request`` to read without blocking until a whole head is there, then calls
``serve_one`` from a pool thread.

Every protocol decision is the core's: this module only moves bytes, calls the
application and hooks, and logs. Socket I/O goes through ``_recv``, ``_sendall`` and
``_send_file_bytes`` so a TLS-aware path can replace them.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import ssl
import time
from datetime import timedelta
from typing import Any

from gunicorn.drivers.options import DriverOptions, is_trusted, worker_options
from gunicorn.drivers.sendfile import can_sendfile, copy_file, sendfile
from gunicorn.http import h1
from gunicorn.http.errors import (
    ForbiddenProxyRequest,
    ForbiddenUWSGIRequest,
    InvalidProxyLine,
    LocalProtocolError,
    NoMoreData,
    ProtocolError,
)
from gunicorn.http.events import Data, EndOfMessage, Event, Request, Response
from gunicorn.http.proxy import ProxyInfo, parse_proxy_header, proxy_environ
from gunicorn.wsgi.environ import ConnectionEnviron, connection_environ, request_environ
from gunicorn.wsgi.filewrapper import FileWrapper
from gunicorn.wsgi.input import WSGIInput
from gunicorn.wsgi.request import RequestInfo
from gunicorn.wsgi.response import WSGIResponder, WSGIResponse

# Bytes asked from the socket per read.
READ_SIZE = 65536
# After an error or an unread request body: read (and drop) at most this much, for at
# most LINGER_SECONDS, before closing, so the client sees our response instead of a
# reset (RFC 9112 §9.6).
LINGER_BYTES = 65536
LINGER_SECONDS = 1.0

# receive_request() results
REQUEST_READY = 1
NEED_DATA = 2
CLOSED = 3

# uwsgi variables a trusted front server sets for the client it serves.
_UWSGI_ENVIRON = (b"REMOTE_ADDR", b"REMOTE_PORT", b"SERVER_NAME", b"SERVER_PORT")
_IGNORED_ERRNOS = {
    errno.EPIPE: "Ignoring EPIPE",
    errno.ECONNRESET: "Ignoring connection reset",
    errno.ENOTCONN: "Ignoring socket not connected",
}


class BlockingHTTPConnection:
    """Serves the requests of one client socket with blocking I/O."""

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
    ) -> None:
        self.sock = sock
        self.client_addr = client_addr
        self.listener = listener
        self.app = app
        self.worker = worker
        self.cfg = worker.cfg
        self.log = worker.log
        self.options = options = options if options is not None else worker_options(worker)
        self.is_ssl = isinstance(sock, ssl.SSLSocket)
        self.head_timeout = head_timeout if head_timeout is not None else options.timeout
        self.trusted = is_trusted(client_addr, options.forwarded_allow)
        self.conn = self._make_core()
        self.served = 0
        self.closed = False
        self.head_started = False
        self.waiting_head_since: float | None = None
        self._pending: Request | None = None
        self._pending_error: ProtocolError | None = None
        self._proxy_buf: bytearray | None = bytearray() if options.proxy_mode else None
        self._proxy_info: ProxyInfo | None = None
        self._peer_checked = not options.uwsgi
        self._environ_base: ConnectionEnviron | None = None
        self._responder: WSGIResponder | None = None
        self._request_info: RequestInfo | None = None
        self._io_error: BaseException | None = None
        self._must_close = False
        self._linger = False
        self._head = b""  # a response head waiting for the first body bytes
        # The socket stays non-blocking: an operation that would block waits in poll()
        # for at most _io_timeout. (A socket with a timeout would poll before every
        # send and recv: two system calls where one usually does.)
        self._io_timeout: float | None = options.timeout or None
        sock.setblocking(False)

    def _make_core(self) -> h1.H1Connection:
        limits, policy = self.options.limits, self.options.policy
        if self.options.uwsgi:
            from gunicorn.http.uwsgi import UWSGIConnection

            return UWSGIConnection(limits, policy, clock=time.time, trusted_forwarder=self.trusted)
        return h1.H1Connection(limits, policy, clock=time.time, trusted_forwarder=self.trusted)

    # -- public API ----------------------------------------------------------------------

    def close_after_response(self) -> None:
        """Close the connection once the current (or next) response is done."""
        self.conn.close_after_response()

    @property
    def has_pending_request(self) -> bool:
        """Whether a complete request (or a broken one to answer) is already buffered."""
        if self._pending is not None or self._pending_error is not None:
            return True
        if self.closed:
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
        """Read what has arrived without blocking: REQUEST_READY, NEED_DATA or CLOSED."""
        if self.closed:
            return CLOSED
        if self.has_pending_request:
            return REQUEST_READY
        try:
            self._check_peer()
            while True:
                event = self.conn.next_event()
                if isinstance(event, Request):
                    self._pending = event
                    return REQUEST_READY
                if event is not h1.NEED_DATA:
                    self.close()
                    return CLOSED
                try:
                    data = self._recv_nowait()
                except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                    return NEED_DATA
                if data and not self.head_started:
                    self.head_started = True
                    self.waiting_head_since = time.monotonic()
                self._feed(data)
        except ProtocolError as exc:
            self._reject(exc)
        except OSError as exc:
            self._socket_error(exc)
            self.close()
        return CLOSED

    def serve_one(self) -> bool:
        """Serve one request; True when the connection stays open for another."""
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
                self.close()
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
            if self._linger:
                self._drain_before_close()
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    # -- reading -------------------------------------------------------------------------

    def _recv_nowait(self) -> bytes:
        return self.sock.recv(READ_SIZE)

    def _wait_io(self, events: int) -> None:
        """Wait until the socket is ready for ``events`` (poll flags), or time out."""
        timeout = self._io_timeout
        poller = select.poll()
        poller.register(self.sock.fileno(), events)
        if not poller.poll(None if timeout is None else max(timeout, 0.0) * 1000.0):
            raise TimeoutError("timed out")

    def _recv(self, size: int) -> bytes:
        recv = self.sock.recv
        while True:
            try:
                return recv(size)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                self._wait_io(select.POLLIN)
            except ssl.SSLWantWriteError:
                self._wait_io(select.POLLOUT)

    def _sendall(self, data: bytes) -> None:
        send = self.sock.send
        view: bytes | memoryview = data
        while view:
            try:
                sent = send(view)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                self._wait_io(select.POLLOUT)
                continue
            except ssl.SSLWantReadError:
                self._wait_io(select.POLLIN)
                continue
            if sent >= len(view):
                return
            view = memoryview(view)[sent:]

    def _feed(self, data: bytes) -> None:
        """Give received bytes to the core (a PROXY header, if expected, goes first)."""
        if self._proxy_buf is None:
            self.conn.receive_data(data)
            return
        if not data:
            pending, self._proxy_buf = self._proxy_buf, None
            if pending:
                self.conn.receive_data(bytes(pending))
            self.conn.receive_data(b"")
            return
        self._proxy_buf += data
        self._parse_proxy_header()

    def _parse_proxy_header(self) -> None:
        buf = self._proxy_buf
        assert buf is not None and self.options.proxy_mode is not None
        allowed = is_trusted(self.client_addr, self.options.proxy_allow)
        try:
            result = parse_proxy_header(buf, self.options.proxy_mode)
        except InvalidProxyLine:
            if not allowed:
                raise ForbiddenProxyRequest(f"PROXY header from {_peer_name(self)}") from None
            raise
        if result is None:
            return
        info, consumed = result
        if consumed and not allowed:
            raise ForbiddenProxyRequest(f"PROXY header from {_peer_name(self)}")
        self._proxy_info = info
        self._proxy_buf = None
        if consumed < len(buf):
            self.conn.receive_data(bytes(buf[consumed:]))

    def _check_peer(self) -> None:
        if not self._peer_checked:
            if not is_trusted(self.client_addr, self.options.uwsgi_allow):
                raise ForbiddenUWSGIRequest(f"uwsgi request from {_peer_name(self)}")
            self._peer_checked = True

    def _pull(self, deadline: float | None) -> Event | None:
        """The next event from the core, reading from the socket as needed (None when
        the core is paused until a response is done). With a ``deadline`` each read
        waits only for the time left."""
        conn = self.conn
        while True:
            event = conn.next_event()
            if isinstance(event, Event):
                return event
            if event is not h1.NEED_DATA:
                return None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("timed out waiting for the request head")
                self._io_timeout = remaining
            self._feed(self._recv(READ_SIZE))

    def _read_request(self) -> Request | None:
        self._check_peer()
        if not self.head_timeout:
            event = self._pull(None)
        else:
            try:
                event = self._pull(time.monotonic() + self.head_timeout)
            finally:
                self._io_timeout = self.options.timeout or None
        if isinstance(event, Request):
            return event
        return None  # ConnectionClosed (or a connection left PAUSED)

    def _receive_body(self) -> bytes:
        """``wsgi.input``'s source: the next body piece, b"" at the end."""
        event = self._pull(None)
        if type(event) is Data:
            return event.data
        if type(event) is EndOfMessage:
            trailers = event.trailers
            if trailers and self._request_info is not None:
                self._request_info.set_trailers(trailers)
            return b""
        raise NoMoreData("connection closed in the request body")

    def _send_continue(self) -> None:
        data = self.conn.send_continue()
        if data:
            self._write(data)

    # -- writing (the ResponseChannel of the WSGI adapter) ------------------------------

    def _write(self, data: bytes) -> None:
        try:
            self._sendall(data)
        except OSError as exc:
            self._io_error = exc
            raise

    def send(self, event: Event) -> None:
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
            sent = self._send_file_bytes(fd, offset, count)
        except OSError as exc:
            self._io_error = exc
            raise
        if sent < count:
            # The file shrank: the framing announced more than we had.
            self.conn.body_sent -= count - sent
            self._must_close = True
            return sent
        if suffix:
            self._write(suffix)
        return sent

    def _send_file_bytes(self, fd: int, offset: int, count: int) -> int:
        return sendfile(self.sock, fd, offset, count, self._io_timeout)

    # -- one request ---------------------------------------------------------------------

    def _connection_environ(self) -> ConnectionEnviron:
        base = self._environ_base
        if base is None:
            try:
                server = self.listener.getsockname()
            except (OSError, AttributeError):
                server = self.sock.getsockname()
            base = self._environ_base = connection_environ(
                self.options.environ,
                self.client_addr,
                server,
                sock=self.sock,
                extra=proxy_environ(self._proxy_info),
            )
        return base

    def _environ(
        self, request: Request, body: WSGIInput, responder: WSGIResponder
    ) -> dict[str, Any]:
        scheme = "https" if self.is_ssl else "http"
        if self.options.uwsgi and request.scheme:
            scheme = request.scheme.decode("ascii")
        environ = request_environ(
            self._connection_environ(),
            request,
            self.options.environ,
            url_scheme=scheme,
            trusted=self.trusted,
            wsgi_input=body,
            early_hints=responder.early_hints,
        )
        if self.options.uwsgi:
            uwsgi_vars = getattr(self.conn, "uwsgi_vars", None) or {}
            for key in _UWSGI_ENVIRON:
                value = uwsgi_vars.get(key)
                if value:
                    environ[key.decode("ascii")] = value.decode("latin-1")
        return environ

    def _serve_request(self, request: Request) -> None:
        worker = self.worker
        started = time.monotonic()
        self.head_started = False
        self.waiting_head_since = None
        self._linger = False
        self._head = b""
        self.served += 1
        worker.count_request()
        if not worker.alive:
            self.conn.close_after_response()
        responder = self._responder = WSGIResponder(self, request.method)
        body = WSGIInput(self._receive_body, self._send_continue, empty=not request.has_body)
        proxy_info = self._proxy_info
        remote = self.client_addr
        if proxy_info is not None and proxy_info.src_addr is not None:
            remote = (proxy_info.src_addr, proxy_info.src_port)
        req = self._request_info = RequestInfo(
            request,
            self.client_addr,
            scheme="https" if self.is_ssl else "http",
            remote_addr=remote,
            proxy_protocol_info=_proxy_dict(proxy_info),
            req_number=self.served,
            body=body,
        )
        environ: dict[str, Any] = {}
        try:
            environ = self._environ(request, body, responder)
            req.scheme = environ["wsgi.url_scheme"]
            pre_request = self.options.pre_request
            if pre_request is not None:
                pre_request(worker, req)
            responder.run(self.app, environ)
        except Exception as exc:
            self._request_failed(exc, req, responder, body)
        finally:
            if request.has_body and not body.complete:
                self._linger = True
            if self.conn.body_dropped:
                self.log.warning(
                    "Dropped the response body for %s %s: a %d response to %s has no body",
                    req.method,
                    req.uri,
                    responder.response.status_code,
                    req.method,
                )
            self._after_request(
                req, environ or _fallback_environ(self, request), responder, started
            )

    def _request_failed(
        self, exc: Exception, req: RequestInfo, responder: WSGIResponder, body: WSGIInput
    ) -> None:
        response = responder.response
        self._must_close = True
        if self._io_error is not None:
            self._socket_error(self._io_error)
            return
        failure = body.error
        if failure is not None and not isinstance(failure, ProtocolError):
            # The client went away (or timed out) while the application read the body.
            if isinstance(failure, OSError):
                self._socket_error(failure)
            return
        answer: ProtocolError | LocalProtocolError
        if isinstance(failure, ProtocolError):
            answer = failure
            self._log_rejected(failure)
        elif isinstance(exc, ProtocolError):
            answer = exc
            self._log_rejected(exc, req)
        elif isinstance(exc, LocalProtocolError):
            self.log.error("Invalid response to %s %s: %s", req.method, req.uri, exc)
            answer = LocalProtocolError()
        else:
            self.log.exception("Error handling request %s", req.uri)
            answer = LocalProtocolError()
        if responder.finished or response.headers_sent:
            return
        self._write_error(answer, response)

    def _after_request(
        self, req: RequestInfo, environ: dict[str, Any], responder: WSGIResponder, started: float
    ) -> None:
        options = self.options
        response = responder.response
        if options.log_access:
            request_time = timedelta(seconds=time.monotonic() - started)
            try:
                self.log.access(response, req, environ, request_time)
            except Exception:
                self.log.exception("Failed to write the access log")
        post_request = options.post_request
        if post_request is not None:
            try:
                post_request(self.worker, req, environ, response)
            except Exception:
                self.log.exception("Exception in post_request hook")

    # -- errors --------------------------------------------------------------------------

    def _write_error(
        self, exc: ProtocolError | LocalProtocolError, response: WSGIResponse | None = None
    ) -> None:
        data = self.conn.error_response(exc)
        self._must_close = True
        self._linger = True
        if response is not None:
            response.status = f"{exc.status} {exc.reason}"
            response.status_code = exc.status
            response.headers = []
            response.sent = len(data) - data.find(b"\r\n\r\n") - 4 if data else 0
        if data:
            try:
                self._sendall(data)
            except OSError as error:
                self._socket_error(error)

    def _reject(self, exc: ProtocolError) -> None:
        """Answer a request the core refused, then close."""
        self._pending_error = None
        self._log_rejected(exc)
        self._write_error(exc)
        self.close()

    def _log_rejected(self, exc: ProtocolError, req: RequestInfo | None = None) -> None:
        if exc.status >= 500:
            self.log.error("Error handling request %s: %s", req.uri if req else "-", exc)
        elif isinstance(exc, (ForbiddenProxyRequest, ForbiddenUWSGIRequest)):
            self.log.debug("Forbidden request from ip=%s: %s", _peer_name(self), exc)
        else:
            self.log.debug("Invalid request from ip=%s: %s", _peer_name(self), exc)

    def _socket_error(self, exc: BaseException) -> None:
        self._must_close = True
        if isinstance(exc, (TimeoutError, ssl.SSLError)):
            self.log.debug("Connection from %s: %s", _peer_name(self), exc)
            return
        number = getattr(exc, "errno", None)
        message = _IGNORED_ERRNOS.get(number) if number is not None else None
        if message is not None:
            self.log.debug(message)
        else:
            self.log.exception("Socket error processing request.")

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


def _peer_name(connection: BlockingHTTPConnection) -> str:
    peer = connection.client_addr
    if isinstance(peer, tuple):
        return str(peer[0])
    return str(peer) or "unix socket"


def _proxy_dict(info: ProxyInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        "proxy_protocol": info.family,
        "client_addr": info.src_addr,
        "client_port": info.src_port,
        "proxy_addr": info.dst_addr,
        "proxy_port": info.dst_port,
    }


def _fallback_environ(connection: BlockingHTTPConnection, request: Request) -> dict[str, Any]:
    """What the access log needs when the full environ could not be built."""
    peer = connection.client_addr
    major, minor = request.version
    return {
        "REMOTE_ADDR": str(peer[0]) if isinstance(peer, tuple) else str(peer),
        "REQUEST_METHOD": request.method.decode("latin-1"),
        "RAW_URI": request.target.decode("latin-1"),
        "PATH_INFO": request.path.decode("latin-1"),
        "QUERY_STRING": request.query.decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{major}.{minor}",
    }


__all__ = [
    "CLOSED",
    "NEED_DATA",
    "REQUEST_READY",
    "BlockingHTTPConnection",
    "ForbiddenUWSGIRequest",
]
