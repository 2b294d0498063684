"""What every connection of the asyncio driver shares in one worker: the application,
the options, the open connections, the listening servers and their stop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import Any

from gunicorn.asgi.http import HTTPCycle
from gunicorn.asgi.scope import ConnectionScope
from gunicorn.drivers import admission, tls
from gunicorn.drivers.aio import HTTPProtocol
from gunicorn.drivers.aio_tls import tls_extension
from gunicorn.http.events import Request
from gunicorn.instrument.metrics import metrics_of
from gunicorn.lifecycle.options import DriverOptions
from gunicorn.lifecycle.session import Session


class AsyncServer:
    """The asyncio side of one ASGI worker (see ``gunicorn.workers.gasgi``)."""

    def __init__(
        self,
        worker: Any,
        app: Any,
        options: DriverOptions,
        loop: asyncio.AbstractEventLoop,
        *,
        state: dict[str, Any] | None,
    ) -> None:
        cfg = worker.cfg
        self.worker = worker
        self.app = app
        self.options = options
        self.loop = loop
        self.state = state
        # Insertion-ordered: the oldest connection first.
        self.connections: dict[HTTPProtocol, None] = {}
        self.metrics = metrics_of(worker)
        self.servers: list[asyncio.AbstractServer] = []
        self.accepting = True
        # Set by the graceful stop: a connection accepted just before it, whose
        # connection_made comes later, is shut down as it arrives.
        self.draining = False
        self.keepalive = float(cfg.keepalive or 0)
        self.header_timeout = float(cfg.timeout or 30)
        self.grace_period = float(getattr(cfg, "asgi_disconnect_grace_period", 3) or 0)
        self.root_path = str(getattr(cfg, "root_path", "") or "")
        self.raw_root = self.root_path.encode("utf-8")
        wanted = int(cfg.worker_connections or 1000)
        # Within the descriptor limit: uvloop meets EMFILE by accepting and closing what
        # waits in the backlog; admission closes idle connections instead.
        self.max_connections = admission.connection_cap(wanted)
        if self.max_connections < wanted:
            worker.log.warning(
                "worker_connections lowered to %d by the open-files limit (ulimit -n)",
                self.max_connections,
            )
        self.ssl_context: ssl.SSLContext | None = None
        if options.is_ssl:
            self.ssl_context = tls.ssl_context(cfg, http2=options.h2_enabled)
        self._ws_config: Any = None

    # -- listening --------------------------------------------------------------------------

    async def start(self, listeners: list[Any]) -> None:
        """Serve ``listeners``. A stop can come while this awaits (a TERM during boot):
        the listeners not served yet are closed, never served after it."""
        loop = self.loop
        for listener in listeners:
            sock = listener.sock if hasattr(listener, "sock") else listener
            if not self.accepting:
                sock.close()
                continue
            if not isinstance(sock, socket.socket):
                sock = socket.socket(fileno=sock.fileno())
            if isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
                sock = admission.accept_backoff_socket(sock)  # EMFILE: see there
            server = await loop.create_server(
                self._factory(listener),
                sock=sock,
                ssl=self.ssl_context,
                backlog=int(self.worker.cfg.backlog),
                ssl_handshake_timeout=self.header_timeout if self.ssl_context else None,
            )
            self.servers.append(server)
            if not self.accepting:
                server.close()

    def _factory(self, listener: Any) -> Any:
        def make() -> HTTPProtocol:
            return HTTPProtocol(self, listener)

        return make

    def admit(self, protocol: HTTPProtocol) -> bool:
        """At ``worker_connections`` (the caller checks the count): make room by closing
        the oldest connection that has not begun a request, else refuse the new one."""
        for other in self.connections:
            if other.idle:
                other.close()
                del self.connections[other]
                self.metrics.connection_closed()
                return True
        return False

    def stop_accepting(self) -> None:
        self.accepting = False
        for server in self.servers:
            server.close()

    # -- connections ------------------------------------------------------------------------

    def connection_scope(self, session: Session, transport: Any, sslobj: Any) -> ConnectionScope:
        options = self.options
        server = transport.get_extra_info("sockname")
        extensions = None
        if sslobj is not None:
            extensions = {"tls": tls_extension(sslobj)}
        return ConnectionScope(
            client=session.remote_addr,
            server=server,
            scheme=session.scheme,
            root_path=self.root_path,
            trusted=session.trusted,
            secure_headers=options.environ.secure_scheme_headers,
            state=self.state,
            extensions=extensions,
            raw_root=self.raw_root,
        )

    def uwsgi_scope(self, scope: dict[str, Any], conn: Any) -> None:
        """The client and scheme a trusted uwsgi front server names."""
        variables = getattr(conn, "uwsgi_vars", None) or {}
        addr = variables.get(b"REMOTE_ADDR")
        if addr:
            port = variables.get(b"REMOTE_PORT") or b"0"
            scope["client"] = (addr.decode("latin-1"), int(port) if port.isdigit() else 0)
        request = conn.request
        if request is not None and request.scheme:
            scope["scheme"] = request.scheme.decode("ascii")

    def disconnected(self, cycle: HTTPCycle) -> None:
        """The client of a running cycle left: the application gets the grace period,
        then its task is cancelled."""
        task = cycle.task
        if task is None or task.done():
            return
        if self.grace_period <= 0:
            task.cancel()
            return
        handle = self.loop.call_later(self.grace_period, task.cancel)
        task.add_done_callback(lambda _task: handle.cancel())

    # -- WebSockets -------------------------------------------------------------------------

    def websocket_request(self, request: Request) -> bool:
        if self.options.uwsgi:
            return False
        from gunicorn.asgi.websocket import is_websocket_request

        return bool(is_websocket_request(request))

    @property
    def websocket_config(self) -> Any:
        config = self._ws_config
        if config is None:
            from gunicorn.asgi.websocket import WebSocketConfig

            config = self._ws_config = WebSocketConfig.from_config(self.worker.cfg)
        return config

    def websocket_done(
        self, protocol: HTTPProtocol, request: Request, scope: dict[str, Any]
    ) -> Any:
        """The callback a WebSocket cycle calls when it ends: the access log line."""
        import time

        started = time.monotonic()

        def done(status: int, headers: list[tuple[bytes, bytes]], sent: int) -> None:
            from gunicorn.asgi.access import log_exchange

            if not status:
                return  # the client left before any answer: nothing was exchanged

            log_exchange(protocol.session, request, scope, status, headers, sent, started)

        return done

    # -- stopping ---------------------------------------------------------------------------

    def check_deadlines(self) -> None:
        now = self.loop.time()
        for protocol in list(self.connections):
            protocol.check_deadline(now)

    def shutdown_connections(self, websockets: bool = False) -> None:
        """Graceful stop: idle connections close, HTTP/2 ones get GOAWAY, busy ones close
        after their response; WebSockets (with ``websockets``) get a 1001 close."""
        self.draining = True
        for protocol in list(self.connections):
            protocol.shutdown(websockets)

    @property
    def active(self) -> int:
        return sum(1 for protocol in self.connections if protocol.active)

    def abort_all(self) -> None:
        for protocol in list(self.connections):
            with contextlib.suppress(Exception):
                protocol.abort()
