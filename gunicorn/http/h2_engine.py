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
"""

from __future__ import annotations

from collections.abc import Iterable

import h2.config
import h2.connection
import h2.events
import h2.stream
from h2.errors import ErrorCodes, _error_code_from_int
from h2.exceptions import FrameTooLargeError, ProtocolError
from h2.frame_buffer import FrameBuffer
from hpack import Decoder
from hpack.exceptions import HPACKError, OversizedHeaderListError
from hpack.struct import Header, HeaderTuple
from hyperframe.frame import Frame, GoAwayFrame, SettingsFrame

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


class CompressionError(ProtocolError):
    """A field block that HPACK cannot decode (RFC 9113 §4.3)."""

    error_code = ErrorCodes.COMPRESSION_ERROR


class ServerDecoder(Decoder):
    """An HPACK decoder whose decoding errors end the connection with COMPRESSION_ERROR.

    ``h2`` turns every ``hpack`` error into a PROTOCOL_ERROR; an ``h2`` ``ProtocolError``
    raised here passes through its handler and keeps its code. An oversized header list
    is left to ``h2`` (a header list bomb: ENHANCE_YOUR_CALM)."""

    def decode(self, data: bytes, raw: bool = False) -> Iterable[HeaderTuple]:
        try:
            return super().decode(data, raw)
        except OversizedHeaderListError:
            raise
        except (HPACKError, IndexError, TypeError, UnicodeDecodeError) as exc:
            raise CompressionError(f"undecodable field block: {exc}") from exc


class ServerFrameBuffer(FrameBuffer):
    """``h2``'s frame buffer, checking the first frame and SETTINGS ACK payloads.

    ``_validate_frame_length`` runs once per frame, when the whole frame has arrived and
    its 9-byte header still leads the buffer: the checks ride on it at no extra call."""

    def __init__(self) -> None:
        super().__init__(server=True)
        self._settings_seen = False

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
        if not end_stream and self.state_machine.headers_received:
            # Trailers must end the stream. The stream is taken as ended here and
            # the server resets it at once (the peer's view never matters again).
            self.malformed_trailers = True
            end_stream = True
        return super().receive_headers(headers, end_stream, header_encoding)


class ServerEngine(h2.connection.H2Connection):
    def __init__(self) -> None:
        super().__init__(config=CONFIG)
        self.incoming_buffer = ServerFrameBuffer()
        decoder = ServerDecoder()
        decoder.max_header_list_size = self.decoder.max_header_list_size
        self.decoder = decoder

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
    "CompressionError",
    "ErrorCodes",
    "ServerDecoder",
    "ServerEngine",
    "ServerFrameBuffer",
    "ServerStream",
]
