"""In-process peers for the HTTP/2 core: an ``h2`` client wired to the server, and a raw
frame peer (hyperframe + hpack) for what a well-behaved client never sends."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
)

from gunicorn.http.connection import NEED_DATA
from gunicorn.http.events import Event
from gunicorn.http.h2 import H2Connection
from gunicorn.http.limits import Limits, Policy
from gunicorn.http.negotiate import PREFACE

GET = [
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":path", b"/"),
    (b":authority", b"example.com"),
]


def request_fields(method: bytes = b"GET", path: bytes = b"/", *extra: tuple[bytes, bytes]):
    return [
        (b":method", method),
        (b":scheme", b"https"),
        (b":path", path),
        (b":authority", b"example.com"),
        *extra,
    ]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_server(
    limits: Limits | None = None,
    policy: Policy | None = None,
    trusted: bool = False,
    clock: FakeClock | None = None,
    **limit_fields: Any,
) -> H2Connection:
    if limit_fields:
        limits = Limits(**limit_fields)
    return H2Connection(limits, policy, clock=clock or FakeClock(), trusted_forwarder=trusted)


def drain(server: H2Connection) -> list[Event]:
    """Every event the server has, up to NEED_DATA (or the first ConnectionClosed)."""
    events: list[Event] = []
    while True:
        event = server.next_event()
        if event is NEED_DATA:
            return events
        assert isinstance(event, Event)
        events.append(event)
        if type(event).__name__ == "ConnectionClosed":
            return events


def frames_of(data: bytes) -> list[Frame]:
    """Parse whole frames out of server output."""
    frames: list[Frame] = []
    view = memoryview(data)
    while view:
        frame, length = Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        frames.append(frame)
        view = view[9 + length :]
    return frames


class Pair:
    """A server and an ``h2`` client that talk through ``exchange``."""

    def __init__(
        self,
        server: H2Connection | None = None,
        client_settings: dict[int, int] | None = None,
        **limit_fields: Any,
    ) -> None:
        self.clock = FakeClock()
        self.server = server or make_server(clock=self.clock, **limit_fields)
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.client = h2.connection.H2Connection(config)
        if client_settings:
            self.client.local_settings = h2.settings.Settings(
                client=True, initial_values=client_settings
            )
        self.client_events: list[h2.events.Event] = []
        self._acked = 0
        self.server.initiate()
        self.client.initiate_connection()
        self.exchange()

    def to_client(self, data: bytes) -> list[h2.events.Event]:
        events = self.client.receive_data(data) if data else []
        self.client_events.extend(events)
        return events

    def exchange(self) -> list[h2.events.Event]:
        """Move bytes both ways until neither side has anything to say."""
        received: list[h2.events.Event] = []
        for _ in range(50):
            data = self.client.data_to_send()
            if data:
                self.server.receive_data(data)
            out = self.server.data_to_send()
            if not data and not out:
                return received
            received.extend(self.to_client(out))
        raise AssertionError("the peers never went quiet")

    def request(
        self,
        fields: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
        end: bool = True,
    ) -> int:
        sid = self.client.get_next_available_stream_id()
        self.client.send_headers(sid, fields or GET, end_stream=end and body is None)
        if body is not None:
            step = self.client.max_outbound_frame_size
            for start in range(0, max(len(body), 1), step):
                last = start + step >= len(body)
                self.client.send_data(sid, body[start : start + step], end_stream=end and last)
        self.exchange()
        return sid

    def events(self) -> list[Event]:
        return drain(self.server)

    def of(self, kind: type, stream_id: int | None = None) -> list[Any]:
        """Client events of a type (for one stream)."""
        return [
            e
            for e in self.client_events
            if isinstance(e, kind)
            and (stream_id is None or getattr(e, "stream_id", None) == stream_id)
        ]

    def body(self, stream_id: int) -> bytes:
        return b"".join(e.data for e in self.of(h2.events.DataReceived, stream_id))

    def ack_client(self) -> None:
        """The client consumed everything it received (returns window to the server)."""
        events = self.of(h2.events.DataReceived)
        for event in events[self._acked :]:
            stream = self.client.streams.get(event.stream_id)
            if event.flow_controlled_length and stream is not None and stream.open:
                self.client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self._acked = len(events)
        self.exchange()


class RawPeer:
    """A client that writes frames by hand, for inputs ``h2`` would refuse to send."""

    def __init__(self, server: H2Connection | None = None, **limit_fields: Any) -> None:
        self.clock = FakeClock()
        self.server = server or make_server(clock=self.clock, **limit_fields)
        self.encoder = hpack.Encoder()
        self.received: list[Frame] = []
        self.server.initiate()
        self.feed(PREFACE + SettingsFrame(0).serialize())

    def feed(self, data: bytes) -> list[Frame]:
        self.server.receive_data(data)
        frames = frames_of(self.server.data_to_send())
        self.received.extend(frames)
        return frames

    def take(self) -> list[Frame]:
        """Frames the server queued on its own (after ``shutdown``, ``close``...)."""
        frames = frames_of(self.server.data_to_send())
        self.received.extend(frames)
        return frames

    def send(self, *frames: Frame) -> list[Frame]:
        return self.feed(b"".join(frame.serialize() for frame in frames))

    def headers(
        self,
        stream_id: int,
        fields: list[tuple[bytes, bytes]],
        end_stream: bool = True,
        end_headers: bool = True,
    ) -> HeadersFrame:
        frame = HeadersFrame(stream_id)
        frame.data = self.encoder.encode(fields, huffman=False)
        if end_stream:
            frame.flags.add("END_STREAM")
        if end_headers:
            frame.flags.add("END_HEADERS")
        return frame

    @staticmethod
    def data(stream_id: int, payload: bytes, end_stream: bool = False) -> DataFrame:
        frame = DataFrame(stream_id)
        frame.data = payload
        if end_stream:
            frame.flags.add("END_STREAM")
        return frame

    @staticmethod
    def rst(stream_id: int, code: int = 0x8) -> RstStreamFrame:
        frame = RstStreamFrame(stream_id)
        frame.error_code = code
        return frame

    @staticmethod
    def continuation(stream_id: int, block: bytes, end_headers: bool = False) -> ContinuationFrame:
        frame = ContinuationFrame(stream_id)
        frame.data = block
        if end_headers:
            frame.flags.add("END_HEADERS")
        return frame

    def events(self) -> list[Event]:
        return drain(self.server)

    def resets(self) -> dict[int, int]:
        """RST_STREAM frames the server sent: stream id -> error code."""
        return {f.stream_id: f.error_code for f in self.received if isinstance(f, RstStreamFrame)}

    def goaway(self) -> GoAwayFrame | None:
        frames = [f for f in self.received if isinstance(f, GoAwayFrame)]
        return frames[-1] if frames else None
