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
"""

from __future__ import annotations

from collections.abc import Iterable

import h2.config
import h2.connection
import h2.events
import h2.stream
from h2.errors import ErrorCodes, _error_code_from_int
from hpack.struct import Header
from hyperframe.frame import Frame, GoAwayFrame

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


__all__ = ["CONFIG", "ErrorCodes", "ServerEngine", "ServerStream"]
