"""The ``h2`` package's connection, adjusted for a server that answers stream errors
with stream resets.

``h2`` (4.4.1) treats a few stream-level faults as connection errors, and it stops
all sending once the peer sends GOAWAY. RFC 9113 asks for less, so this subclass
changes four narrow things (each overrides one ``h2`` method; the rest is ``h2``):

* MAX_CONCURRENT_STREAMS: ``h2`` ends the connection when the peer opens one stream
  too many; the server refuses that stream instead (RFC 9113 §5.1.2 allows
  REFUSED_STREAM), counting its own streams (``open_inbound_streams`` reports 0).
* Content-Length: ``h2`` ends the connection on a bad or mismatched value; the
  server's own validation resets only that stream (RFC 9113 §8.1.1).
* Trailers without END_STREAM are malformed (RFC 9113 §8.1): the stream is marked
  (``malformed_trailers``) and reset by the server instead of ending the connection.
* A graceful GOAWAY (NO_ERROR) from the peer leaves the streams it already opened
  running (RFC 9113 §6.8); ``h2`` would refuse to send their responses.

And it is stricter than ``h2`` in three places, each a connection error with the code
RFC 9113 names (``h2`` would send PROTOCOL_ERROR or answer the frame):

* The client preface ends with a SETTINGS frame (§3.4): any other first frame, a
  SETTINGS ACK included, is PROTOCOL_ERROR (``ServerFrameBuffer``).
* A SETTINGS frame with the ACK flag and a payload is FRAME_SIZE_ERROR (§6.5).
* A field block HPACK cannot decode is COMPRESSION_ERROR (§4.3; ``ServerDecoder``).

The rest is speed, with ``h2``'s behaviour kept: HPACK is ``h2_hpack``'s (a stateless
encoder with cached blocks, a decoder that remembers repeated blocks); the frame buffer
builds frame classes whose repr is cheap (``h2`` formats ``repr(frame)`` for a trace log
on every frame it receives); and the server's own HEADERS and DATA frames go through the
stream and connection state machines and the flow-control windows straight to bytes,
without ``h2``'s generic preparation of fields (text, validation flags) nor frame
objects (``ServerEngine.send_headers``, ``send_data``; ``ServerStream.receive_headers``
likewise hands the decoded fields over as they are). Measured with
``benchmarks/h2_core_path.py``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, cast

import h2.config
import h2.connection
import h2.events
import h2.stream
from h2.connection import ConnectionInputs
from h2.errors import ErrorCodes, _error_code_from_int
from h2.exceptions import (
    FlowControlError,
    FrameDataMissingError,
    FrameTooLargeError,
    ProtocolError,
)
from h2.frame_buffer import FrameBuffer
from h2.stream import StreamInputs
from h2.utilities import is_informational_response
from hpack import Encoder
from hpack.struct import Header, HeaderWeaklyTyped
from hyperframe.exceptions import InvalidDataError, InvalidFrameError
from hyperframe.frame import (
    FRAMES,
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    SettingsFrame,
)

from gunicorn.http.h2_hpack import CompressionError, ServerDecoder, ServerEncoder

CONFIG = h2.config.H2Configuration(
    client_side=False,
    header_encoding=None,
    # The server checks request fields itself in one pass (h2_headers) and builds
    # valid response fields (h2_response): h2's own passes would repeat the work.
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)


_SETTINGS = SettingsFrame.type
_ACK = 0x1

# RFC 9113 §4.1: length (24 bits) and type in one word, flags, stream id.
_FRAME_HEAD = struct.Struct(">LBL")
_DATA = DataFrame.type
_HEADERS = HeadersFrame.type
_CONTINUATION = ContinuationFrame.type
_END_STREAM = 0x1
_END_HEADERS = 0x4


def _quiet_class(base: type[Frame]) -> type[Frame]:
    def __repr__(self: Frame) -> str:
        return f"<{base.__name__} stream {self.stream_id}>"

    return type(base.__name__, (base,), {"__slots__": (), "__repr__": __repr__})


# h2 logs every received frame at trace level, formatting ``repr(frame)`` first even when
# the log goes nowhere; hyperframe's repr formats the whole frame. The frame buffer hands
# out these subclasses instead, whose repr only names the frame.
QUIET_FRAMES: dict[type[Frame], type[Frame]] = {
    base: _quiet_class(base) for base in (*FRAMES.values(), ExtensionFrame)
}
_QUIET_BY_TYPE = {kind: QUIET_FRAMES[base] for kind, base in FRAMES.items()}
_QUIET_EXTENSION = cast("type[ExtensionFrame]", QUIET_FRAMES[ExtensionFrame])


class ServerFrameBuffer(FrameBuffer):
    """``h2``'s frame buffer, checking the first frame and SETTINGS ACK payloads.

    ``_validate_frame_length`` runs once per frame, when the whole frame has arrived and
    its 9-byte header still leads the buffer: the checks ride on it at no extra call."""

    def __init__(self) -> None:
        super().__init__(server=True)
        self._settings_seen = False

    def __next__(self) -> Frame:
        # A frame's header is checked as soon as it arrives, its length when the whole
        # frame has; a HEADERS block split over CONTINUATION frames comes out whole
        # (h2's _update_header_buffer). The same steps and errors as h2's buffer, with
        # the quiet frame classes built directly and no copies of the header.
        while True:
            data = self._data
            if len(data) < 9:
                raise StopIteration
            word, flags, stream_id = _FRAME_HEAD.unpack_from(data)
            kind = word & 0xFF
            stream_id &= 0x7FFFFFFF
            frame: Frame
            try:
                known = _QUIET_BY_TYPE.get(kind)
                if known is None:
                    frame = _QUIET_EXTENSION(type=kind, stream_id=stream_id)
                else:
                    frame = known(stream_id)
                frame.parse_flags(flags)
            except (InvalidDataError, InvalidFrameError) as exc:
                raise ProtocolError(f"invalid frame header: {exc}") from exc
            length = word >> 8
            if len(data) < length + 9:
                raise StopIteration
            self._validate_frame_length(length)
            try:
                frame.parse_body(memoryview(data[9 : 9 + length]))
            except InvalidDataError as exc:
                raise ProtocolError(f"invalid frame payload: {exc}") from exc
            except InvalidFrameError as exc:
                raise FrameDataMissingError(f"truncated frame payload: {exc}") from exc
            del data[: 9 + length]
            whole = self._update_header_buffer(frame)
            if whole is not None:
                return whole

    def _validate_frame_length(self, length: int) -> None:
        if length > self.max_frame_size:
            raise FrameTooLargeError(f"frame of {length} bytes over {self.max_frame_size}")
        header = self._data
        if header[3] == _SETTINGS:
            if header[4] & _ACK:
                if length:
                    raise FrameTooLargeError("SETTINGS ACK with a payload")  # RFC 9113 §6.5
                if not self._settings_seen:
                    raise ProtocolError("the client preface must end with SETTINGS, not an ACK")
            self._settings_seen = True
        elif not self._settings_seen:
            raise ProtocolError("the client preface must end with a SETTINGS frame")


class ServerStream(h2.stream.H2Stream):
    """An ``h2`` stream that leaves Content-Length to the server and marks trailers
    sent without END_STREAM instead of failing the connection."""

    malformed_trailers = False

    def _initialize_content_length(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        pass

    def _track_content_length(self, length: int, end_stream: bool) -> None:
        pass

    def receive_headers(
        self,
        headers: Iterable[Header],
        end_stream: bool,
        header_encoding: bool | str | None,
    ) -> tuple[list[Frame], list[h2.events.Event]]:
        machine = self.state_machine
        if not end_stream and machine.headers_received:
            # Trailers must end the stream. The stream is taken as ended here and
            # the server resets it at once (the peer's view never matters again).
            self.malformed_trailers = True
            end_stream = True
        if header_encoding or is_informational_response(headers):
            return super().receive_headers(headers, end_stream, header_encoding)
        # h2's own path, less what CONFIG turns off (validation, normalisation, text
        # fields, Content-Length tracking): the decoder's list is handed over as is.
        events = machine.process_input(StreamInputs.RECV_HEADERS)
        event = cast("h2.events.RequestReceived | h2.events.TrailersReceived", events[0])
        if end_stream:
            ended = machine.process_input(StreamInputs.RECV_END_STREAM)
            event.stream_ended = cast("h2.events.StreamEnded", ended[0])
            events += ended
        event.headers = headers if type(headers) is list else list(headers)
        return [], events

    def headers_frames(self, fields: list[Header], encoder: Encoder, end_stream: bool) -> bytes:
        """The wire bytes of a field block of the server's own (bytes fields, ``:status``
        first), through the stream's state machine like ``send_headers``, without its
        generic preparation (text fields, validation flags) and frame objects."""
        first = fields[0] if fields else None
        informational = first is not None and first[0] == b":status" and first[1][:1] == b"1"
        machine = self.state_machine
        if informational:
            if end_stream:
                raise ProtocolError("an informational response cannot end the stream")
            machine.process_input(StreamInputs.SEND_INFORMATIONAL_HEADERS)
        else:
            machine.process_input(StreamInputs.SEND_HEADERS)
        block = encoder.encode(fields)
        if end_stream:
            machine.process_input(StreamInputs.SEND_END_STREAM)
        elif machine.trailers_sent:
            raise ProtocolError("trailers must end the stream")
        max_frame = self.max_outbound_frame_size or 16384
        return header_frames(self.stream_id, block, max_frame, end_stream)

    def data_frame_head(self, size: int, end_stream: bool) -> bytes:
        """The 9-byte head of a DATA frame of ``size`` bytes, through the state machine
        and the stream's send window like ``send_data`` (flow control checked by the
        caller)."""
        machine = self.state_machine
        machine.process_input(StreamInputs.SEND_DATA)
        flags = 0
        if end_stream:
            machine.process_input(StreamInputs.SEND_END_STREAM)
            flags = _END_STREAM
        self.outbound_flow_control_window -= size
        return _FRAME_HEAD.pack(size << 8 | _DATA, flags, self.stream_id)


def header_frames(stream_id: int, block: bytes, max_frame: int, end_stream: bool) -> bytes:
    """A HEADERS frame with ``block``, split over CONTINUATION frames past ``max_frame``
    bytes (RFC 9113 §6.2, §6.10: END_STREAM goes on the HEADERS frame, END_HEADERS on
    the last one)."""
    flags = _END_STREAM if end_stream else 0
    size = len(block)
    if size <= max_frame:
        return _FRAME_HEAD.pack(size << 8 | _HEADERS, flags | _END_HEADERS, stream_id) + block
    parts = []
    kind = _HEADERS
    for start in range(0, size, max_frame):
        chunk = block[start : start + max_frame]
        if start + max_frame >= size:
            flags |= _END_HEADERS
        parts.append(_FRAME_HEAD.pack(len(chunk) << 8 | kind, flags, stream_id))
        parts.append(chunk)
        kind = _CONTINUATION
        flags = 0
    return b"".join(parts)


class ServerEngine(h2.connection.H2Connection):
    def __init__(self) -> None:
        super().__init__(config=CONFIG)
        self.incoming_buffer = ServerFrameBuffer()
        decoder = ServerDecoder()
        decoder.max_header_list_size = self.decoder.max_header_list_size
        self.decoder = decoder
        self.encoder = ServerEncoder()
        table = self._frame_dispatch_table
        for base, quiet in QUIET_FRAMES.items():
            if base in table:
                table[quiet] = table[base]

    def send_headers(
        self,
        stream_id: int,
        headers: Iterable[HeaderWeaklyTyped],
        end_stream: bool = False,
        priority_weight: int | None = None,
        priority_depends_on: int | None = None,
        priority_exclusive: bool | None = None,
    ) -> None:
        stream = self.streams.get(stream_id)
        if (
            not isinstance(stream, ServerStream)
            or priority_weight is not None
            or priority_depends_on is not None
            or priority_exclusive is not None
        ):
            super().send_headers(
                stream_id,
                headers,
                end_stream,
                priority_weight,
                priority_depends_on,
                priority_exclusive,
            )
            return
        self.state_machine.process_input(ConnectionInputs.SEND_HEADERS)
        fields = headers if type(headers) is list else list(headers)
        self._data_to_send += stream.headers_frames(fields, self.encoder, end_stream)  # type: ignore[arg-type]

    def send_data(
        self,
        stream_id: int,
        data: bytes | memoryview,
        end_stream: bool = False,
        pad_length: Any = None,
    ) -> None:
        stream = self.streams.get(stream_id)
        if not isinstance(stream, ServerStream) or pad_length is not None:
            super().send_data(stream_id, data, end_stream, pad_length)
            return
        size = len(data)
        if size and (
            size > self.outbound_flow_control_window or size > stream.outbound_flow_control_window
        ):
            raise FlowControlError(f"{size} bytes over the flow-control window")
        if size > self.max_outbound_frame_size:
            raise FrameTooLargeError(f"a DATA frame of {size} bytes is over the peer's maximum")
        self.state_machine.process_input(ConnectionInputs.SEND_DATA)
        out = self._data_to_send
        out += stream.data_frame_head(size, end_stream)
        out += data
        self.outbound_flow_control_window -= size

    @property
    def open_inbound_streams(self) -> int:
        # Still let h2 forget the streams that closed, then report none: the server
        # enforces MAX_CONCURRENT_STREAMS itself, with REFUSED_STREAM.
        super().open_inbound_streams  # noqa: B018
        return 0

    def _begin_new_stream(
        self, stream_id: int, allowed_ids: h2.connection.AllowedStreamIDs
    ) -> h2.stream.H2Stream:
        stream = super()._begin_new_stream(stream_id, allowed_ids)
        stream.__class__ = ServerStream
        return stream

    def _receive_goaway_frame(
        self, frame: GoAwayFrame
    ) -> tuple[list[Frame], list[h2.events.Event]]:
        if frame.error_code:
            return super()._receive_goaway_frame(frame)
        event = h2.events.ConnectionTerminated()
        event.error_code = _error_code_from_int(frame.error_code)
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


__all__ = [
    "CONFIG",
    "QUIET_FRAMES",
    "CompressionError",
    "ErrorCodes",
    "ServerDecoder",
    "ServerEncoder",
    "ServerEngine",
    "ServerFrameBuffer",
    "ServerStream",
]
