"""One client connection as the lifecycle sees it: who the peer is, what it may do, and
which protocol connection of the core serves it."""

from __future__ import annotations

import time
from typing import Any

from gunicorn.http.connection import ServerConnection
from gunicorn.http.errors import ForbiddenProxyRequest, ForbiddenUWSGIRequest, InvalidProxyLine
from gunicorn.http.events import Request
from gunicorn.http.h1 import H1Connection
from gunicorn.http.proxy import ProxyInfo, parse_proxy_header, proxy_environ
from gunicorn.lifecycle.logs import peer_name
from gunicorn.lifecycle.options import DriverOptions, is_trusted
from gunicorn.wsgi.environ import ConnectionEnviron, connection_environ

# Body bytes an h2c Upgrade request may carry; a larger one is answered as HTTP/1.1.
H2C_UPGRADE_MAX_BODY = 65536


class Session:
    """The non-I/O state of one accepted connection.

    ``feed`` takes what the socket read and returns what the protocol core should get:
    a PROXY protocol header, when one is expected, is consumed first (and refused from
    peers outside ``proxy_allow_ips``); ``check_peer`` applies ``uwsgi_allow_ips``.
    """

    def __init__(
        self,
        sock: Any,
        client_addr: Any,
        listener: Any,
        worker: Any,
        options: DriverOptions,
        *,
        is_ssl: bool,
        alpn: str | None = None,
    ) -> None:
        self.sock = sock
        self.client_addr = client_addr
        self.listener = listener
        self.worker = worker
        self.log = worker.log
        self.options = options
        self.is_ssl = is_ssl
        self.alpn = alpn
        self.trusted = is_trusted(client_addr, options.forwarded_allow)
        self.served = 0
        self.proxy_info: ProxyInfo | None = None
        self._proxy_buf: bytearray | None = bytearray() if options.proxy_mode else None
        self._peer_checked = not options.uwsgi
        self._environ_base: ConnectionEnviron | None = None
        self.scheme = "https" if is_ssl else "http"
        self.remote_addr = client_addr
        # Which protocol: "h1", "h2", or "sniff" (h2c prior knowledge: the first bytes
        # tell); and whether an HTTP/1.1 request may switch to h2c with Upgrade.
        self.mode = "h1"
        self.allow_upgrade = False
        if options.h2_enabled and not options.uwsgi:
            if is_ssl:
                self.mode = "h2" if alpn == "h2" else "h1"
            elif self.trusted:
                cleartext = options.http2_cleartext
                if cleartext in ("prior-knowledge", "both"):
                    self.mode = "sniff"
                self.allow_upgrade = cleartext in ("upgrade", "both")

    # -- the bytes before the protocol ----------------------------------------------------

    @property
    def prefix_pending(self) -> bool:
        """Whether a PROXY protocol header is still expected."""
        return self._proxy_buf is not None

    def feed(self, data: bytes) -> bytes | None:
        """What the core should get of ``data``: None while a PROXY header is incomplete
        and when nothing followed it yet (clients often send the header in a segment of
        its own); ``b""`` only passes the end of the stream on."""
        buf = self._proxy_buf
        if buf is None:
            return data
        if not data:
            self._proxy_buf = None
            return bytes(buf)
        buf += data
        options = self.options
        assert options.proxy_mode is not None
        allowed = is_trusted(self.client_addr, options.proxy_allow)
        try:
            result = parse_proxy_header(buf, options.proxy_mode)
        except InvalidProxyLine:
            if not allowed:
                raise ForbiddenProxyRequest(f"PROXY header from {self.peer}") from None
            raise
        if result is None:
            return None
        info, consumed = result
        if consumed and not allowed:
            raise ForbiddenProxyRequest(f"PROXY header from {self.peer}")
        self._proxy_buf = None
        if info is not None:
            self.proxy_info = info
            if info.src_addr is not None:
                self.remote_addr = (info.src_addr, info.src_port)
        rest = bytes(buf[consumed:])
        return rest if rest else None

    def check_peer(self) -> None:
        """Refuse uwsgi requests from peers outside ``uwsgi_allow_ips``."""
        if not self._peer_checked:
            if not is_trusted(self.client_addr, self.options.uwsgi_allow):
                raise ForbiddenUWSGIRequest(f"uwsgi request from {self.peer}")
            self._peer_checked = True

    @property
    def peer(self) -> str:
        return peer_name(self.client_addr)

    # -- protocol connections -------------------------------------------------------------

    def h1_connection(self) -> H1Connection:
        options = self.options
        if options.uwsgi:
            from gunicorn.http.uwsgi import UWSGIConnection

            return UWSGIConnection(
                options.limits, options.policy, clock=time.time, trusted_forwarder=self.trusted
            )
        return H1Connection(
            options.limits,
            options.policy,
            clock=time.time,
            trusted_forwarder=self.trusted,
            server_header=options.server_header,
        )

    def h2_connection(self) -> ServerConnection:
        from gunicorn.http.h2 import H2Connection

        options = self.options
        return H2Connection(
            options.limits,
            options.policy,
            clock=time.time,
            trusted_forwarder=self.trusted,
            server_header=options.server_header,
        )

    def h2c_upgrade(self, request: Request) -> bytes | None:
        """The HTTP2-Settings of an HTTP/1.1 request that may switch to h2c, else None."""
        if not self.allow_upgrade or request.upgrade != b"h2c":
            return None
        if request.chunked or (request.content_length or 0) > H2C_UPGRADE_MAX_BODY:
            return None
        from gunicorn.http import negotiate

        return negotiate.upgrade_settings(request)

    # -- per request -----------------------------------------------------------------------

    def connection_environ(self) -> ConnectionEnviron:
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
                extra=proxy_environ(self.proxy_info),
            )
        return base

    def proxy_dict(self) -> dict[str, Any] | None:
        info = self.proxy_info
        if info is None:
            return None
        return {
            "proxy_protocol": info.family,
            "client_addr": info.src_addr,
            "client_port": info.src_port,
            "proxy_addr": info.dst_addr,
            "proxy_port": info.dst_port,
        }
