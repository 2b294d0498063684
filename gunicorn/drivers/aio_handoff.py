"""The asyncio driver's hand-offs: an HTTP/1.1 connection that turns out to speak HTTP/2
(the prior-knowledge preface, or ``Upgrade: h2c``) or that upgrades to a WebSocket. Each
function takes the connection's ``HTTPProtocol``, which from then on passes its bytes to
the new handler (its ``sink``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gunicorn.asgi.scope import http_scope
from gunicorn.http.events import Request

if TYPE_CHECKING:
    from gunicorn.drivers.aio import HTTPProtocol


def sniff(self: HTTPProtocol, data: bytes, eof: bool = False, give_up: bool = False) -> bytes:
    """h2c prior knowledge: the first bytes say whether the client speaks HTTP/2."""
    from gunicorn.http import negotiate
    from gunicorn.http.errors import InvalidRequestLine

    sniffed = (self._sniffed or b"") + data
    verdict = negotiate.sniff_preface(sniffed) if sniffed else None
    if verdict is None and not eof and not give_up:
        self._sniffed = sniffed
        if sniffed:
            self.deadline = min(self.deadline or 1e18, self.loop.time() + negotiate.PREFACE_TIMEOUT)
        return b""
    self._sniffed = None
    if verdict:
        switch_to_h2(self, sniffed, None)
        return b""
    if not self.session.allow_upgrade:
        self._reject(InvalidRequestLine("expected the HTTP/2 connection preface"))
        return b""
    if give_up:
        self.conn.receive_data(sniffed)
        self._next_request()
        return b""
    return sniffed


def switch_to_h2(self: HTTPProtocol, data: bytes, upgrade: Any) -> None:
    from gunicorn.drivers.aio_h2 import H2Handler

    self.http_version = "2"
    self.deadline = None
    handler = H2Handler(self, upgrade)
    self.sink = handler
    handler.start(data)


def upgrade_to_h2(self: HTTPProtocol, request: Request, settings: bytes) -> None:
    from gunicorn.http.events import InformationalResponse

    switching = InformationalResponse(101, [(b"Connection", b"Upgrade"), (b"Upgrade", b"h2c")])
    self.transport.write(self.conn.send(switching))
    rest, _eof = self.conn.trailing_data
    switch_to_h2(self, rest, (request, settings))


def start_websocket(self: HTTPProtocol, request: Request) -> None:
    from gunicorn.asgi.websocket import WebSocketCycle

    server = self.server
    scope = http_scope(self.scope_base, request)
    cycle = WebSocketCycle(
        server.app,
        scope,
        request,
        self.conn,
        self,
        server.websocket_config,
        self.session.log,
        server.websocket_done(self, request, scope),
    )
    self.sink = cycle
    cycle.start()
