"""The one interface every server connection of the core offers (HTTP/1.x and HTTP/2).

A driver holds a ``ServerConnection`` and does three things with it:

1. feeds it what the socket read (``receive_data``; ``b""`` when the peer closed) and
   takes events out (``next_event``) until it says ``NEED_DATA`` (read more) or
   ``PAUSED`` (HTTP/1: nothing more is read until the current response is done);
2. hands it the response events of a stream (``send``) and writes the bytes it returns;
3. writes what the core produced on its own (``data_to_send``): HTTP/2 SETTINGS and
   PING acknowledgements, WINDOW_UPDATE, GOAWAY, RST_STREAM, and body bytes that waited
   for the peer to open its flow-control window. HTTP/1 produces nothing on its own.

Every event carries the id of its stream (HTTP/1 uses 1). A ``Request`` says whether a
body follows in ``has_body``, the same way for both protocols (an HTTP/2 request body
has neither Content-Length nor chunked coding). A connection object is not
thread-safe: a driver that serves streams from several threads serialises its calls.
"""

from __future__ import annotations

from typing import Protocol

from gunicorn.http.errors import LocalProtocolError, ProtocolError
from gunicorn.http.events import Event


class Sentinel:
    """A named marker returned by ``next_event`` instead of an event."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = Sentinel("NEED_DATA")
"""``next_event`` needs more bytes (``receive_data``) before it can say more."""
PAUSED = Sentinel("PAUSED")
"""HTTP/1: the request is complete; nothing more is read until the response is done."""

NextEvent = Event | Sentinel


class ServerConnection(Protocol):
    """What drivers and the connection lifecycle need from a protocol connection."""

    #: "1.1" (HTTP/1.x, uwsgi) or "2".
    http_version: str

    def receive_data(self, data: bytes) -> None:
        """Bytes read from the peer; ``b""`` means the peer closed its side."""

    def next_event(self) -> NextEvent:
        """The next event from the peer, ``NEED_DATA`` or ``PAUSED``. Raises a
        ``ProtocolError`` (with its status) when the peer broke the protocol in a way
        that ends the connection."""

    def send(self, event: Event) -> bytes:
        """Bytes to write for a response event of ``event.stream_id`` (framing applied).
        Raises ``LocalProtocolError`` when the application's response is invalid."""

    def data_to_send(self) -> bytes:
        """Bytes the core produced on its own since the last call (b"" for HTTP/1)."""

    def send_continue(self, stream_id: int = 1) -> bytes:
        """``100 Continue`` for a request of this stream that waits for it, once."""

    def error_response(self, exc: ProtocolError | LocalProtocolError, stream_id: int = 1) -> bytes:
        """The protocol's answer to an error on this stream: an HTTP/1 error page that
        closes the connection, an HTTP/2 ``:status`` response or a stream reset."""

    def ack_body(self, stream_id: int, size: int) -> None:
        """The application consumed ``size`` body bytes of this stream (HTTP/2 returns
        flow-control credit for them; HTTP/1 needs nothing)."""

    def send_window(self, stream_id: int) -> int:
        """Body bytes of this stream that may be sent now without waiting for the peer."""

    def buffered(self, stream_id: int) -> int:
        """Body bytes accepted by ``send`` but still waiting for flow-control window."""
