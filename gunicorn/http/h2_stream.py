"""The server's record of one HTTP/2 stream, and the table of response events it allows."""

from __future__ import annotations

from gunicorn.http.events import (
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Response,
    Trailers,
)

# HTTP/2 error codes (RFC 9113 §7) the server sends.
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
REFUSED_STREAM = 0x7
CANCEL = 0x8
ENHANCE_YOUR_CALM = 0xB

# Response states: before the final head, sending the body, response complete.
IDLE = "IDLE"
BODY = "BODY"
DONE = "DONE"

SEND_TRANSITIONS: dict[tuple[str, type[Event]], str] = {
    (IDLE, InformationalResponse): IDLE,
    (IDLE, Response): BODY,
    (BODY, Data): BODY,
    (BODY, Trailers): BODY,
    (BODY, EndOfMessage): DONE,
    # Early hints after the final response has started are silently not sent.
    (BODY, InformationalResponse): BODY,
    (DONE, InformationalResponse): DONE,
}

# How a response ends once its buffered bytes are out (0: not decided yet).
END = 1  # END_STREAM on the last DATA frame, or an empty one
TRAILERS = 2  # a final HEADERS frame with END_STREAM
RESET = 3  # RST_STREAM(INTERNAL_ERROR): the body broke its Content-Length


class Stream:
    """What the server keeps about a stream from its request to ``finish_stream``."""

    __slots__ = (
        "body_allowed",
        "body_dropped",
        "body_sent",
        "content_length",
        "continue_sent",
        "delivered",
        "end_action",
        "expect_continue",
        "finished",
        "method",
        "out",
        "output_done",
        "overrun",
        "priority",
        "received",
        "remaining",
        "request_ended",
        "reset",
        "send_state",
        "stream_id",
        "trailers",
        "unacked",
    )

    def __init__(self, stream_id: int, method: bytes) -> None:
        self.stream_id = stream_id
        self.method = method
        # request side
        self.delivered = False  # the driver took the Request event
        self.request_ended = False
        self.content_length: int | None = None
        self.received = 0
        self.unacked = 0  # body bytes delivered and not yet credited back
        self.expect_continue = False
        self.continue_sent = False
        self.priority: tuple[int, int] | None = None
        # response side
        self.send_state = IDLE
        self.body_allowed = True
        self.remaining = -1  # body bytes Content-Length still allows (-1: no length)
        self.overrun = False
        self.out = bytearray()  # body bytes waiting for flow-control window
        self.end_action = 0
        self.trailers: list[tuple[bytes, bytes]] = []
        self.output_done = False
        self.body_sent = 0
        self.body_dropped = False
        # either side
        self.reset = False
        self.finished = False  # finish_stream was called (or the core answered alone)
