"""What the ASGI HTTP cycle needs from the stream it answers (HTTP/1.1 or HTTP/2).

The asyncio driver implements it once per protocol: the HTTP/1.1 connection is its own
stream; each HTTP/2 stream is one. The cycle never sees a transport, a socket or the
protocol connection of the core: events go in with ``send``, body pieces come out of
``receive_body``.
"""

from __future__ import annotations

from typing import Protocol

from gunicorn.http.errors import LocalProtocolError, ProtocolError
from gunicorn.http.events import Event


class HTTPStream(Protocol):
    """One request's stream, as ``gunicorn.asgi.http.HTTPCycle`` uses it."""

    #: "1.1" (HTTP/1.x and uwsgi) or "2".
    http_version: str
    #: The client is gone (connection lost, stream reset): sends are ignored.
    disconnected: bool
    #: The client's write buffer is above its high-water mark: ``await drain()``.
    write_paused: bool

    def send(self, event: Event) -> None:
        """Frame a response event (the core's rules) and queue its bytes. A ``Response``
        head may wait for the first body bytes so both leave in one write."""

    def finish(self, body: bytes) -> None:
        """The last body bytes and the end of the response, in one write (with the head
        if it is still waiting)."""

    async def drain(self) -> None:
        """Wait until the client took enough of what was queued (or is gone)."""

    async def receive_body(self) -> tuple[bytes, bool] | None:
        """The next piece of the request body and whether more follows; None when the
        client is gone. Raises a ``ProtocolError`` for a malformed body."""

    async def wait_disconnect(self) -> None:
        """Return once the client is gone or the response is complete."""

    def send_continue(self) -> None:
        """``100 Continue`` if the client waits for it (once)."""

    def write_error(self, exc: ProtocolError | LocalProtocolError) -> int:
        """Answer with the protocol's error response (nothing once a response started);
        returns the length of the error page's body."""

    def response_complete(self) -> None:
        """The whole response was sent: the connection may serve its next request."""

    def cycle_finished(self, must_close: bool) -> None:
        """The application returned (``must_close``: the response is broken or
        incomplete and the connection cannot be reused)."""

    def body_sent(self) -> int:
        """Response body bytes framed so far."""

    def trailers_allowed(self) -> bool:
        """Whether response trailers can reach the client (HTTP/2, or HTTP/1.1 chunked
        to a client that sent ``TE: trailers``)."""

    async def send_file(self, path: str) -> bool:
        """Send the file at ``path`` as the whole remaining body (sendfile where the
        transport allows it); False when this stream cannot (the caller copies)."""
