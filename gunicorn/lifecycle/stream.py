"""What the request cycle needs from a driver for one stream (HTTP/1: the connection)."""

from __future__ import annotations

from typing import Protocol

from gunicorn.http.errors import LocalProtocolError, ProtocolError
from gunicorn.wsgi.response import ResponseChannel


class StreamIO(ResponseChannel, Protocol):
    """One request/response exchange as a driver carries it.

    ``send`` (from ``ResponseChannel``) passes a response event to the protocol core and
    writes the bytes; it raises ``OSError`` when the peer is gone (then ``io_error`` holds
    that error). ``receive_body`` blocks until the next piece of the request body is
    there (``b""`` at its end) and raises ``NoMoreData`` or ``OSError`` when it cannot come.
    """

    io_error: BaseException | None
    #: The request's trailer fields, once its body was read to the end.
    request_trailers: list[tuple[bytes, bytes]]

    def receive_body(self) -> bytes:
        """The next piece of the request body, ``b""`` once it is complete."""

    def send_continue(self) -> None:
        """Send ``100 Continue`` if the request waits for it (once)."""

    def write_error(self, exc: ProtocolError | LocalProtocolError) -> int:
        """Answer the request with the protocol's error response for ``exc`` if no
        response head was sent; returns the error body's length (0 when none)."""

    @property
    def body_dropped(self) -> bool:
        """Whether the core dropped body bytes the response may not carry (HEAD...)."""

    def close_after_response(self) -> None:
        """Let no further request follow this one on the connection."""
