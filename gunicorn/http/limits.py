"""Size limits and rule switches for the core, built once from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

MAX_REQUEST_LINE = 8190
MAX_HEADER_FIELDS = 32768
DEFAULT_FIELD_SIZE = 8190


@dataclass(frozen=True, slots=True)
class Limits:
    """Request size limits with gunicorn's names and meanings.

    ``max_request_line`` 0 means unlimited (internally bounded by ``MAX_REQUEST_LINE``
    only when a positive value above it is given, which is capped, as gunicorn does).
    """

    max_request_line: int = 4094
    max_header_fields: int = 100
    max_header_field_size: int = DEFAULT_FIELD_SIZE
    max_chunk_extensions: int = 16384
    max_body_drain: int = 65536
    # HTTP/2 SETTINGS advertised to the peer.
    h2_max_concurrent_streams: int = 100
    h2_initial_window_size: int = 65535
    h2_max_frame_size: int = 16384
    h2_max_header_list_size: int = 65536
    # HTTP/2 abuse guards. Past any of them the connection ends with
    # GOAWAY(ENHANCE_YOUR_CALM). Windowed counters count over h2_flood_window seconds.
    h2_flood_window: int = 10
    # Stream resets by the peer or caused by it (malformed requests, refused streams,
    # frames on closed streams): rapid reset CVE-2023-44487, MadeYouReset CVE-2025-8671.
    h2_max_resets_per_window: int = 200
    # PING and SETTINGS frames (CVE-2019-9512, CVE-2019-9515).
    h2_max_control_frames_per_window: int = 1000
    # PING/SETTINGS answers queued and not yet taken by data_to_send().
    h2_max_queued_control_frames: int = 1000
    # DATA frames without payload nor END_STREAM, empty HEADERS blocks (CVE-2019-9518/9516).
    h2_max_empty_frames_per_window: int = 100
    # PRIORITY frames per stream opened, over the connection's life (CVE-2019-9513).
    h2_max_priority_frames_per_stream: int = 100
    # WINDOW_UPDATE frames per DATA frame sent, past an allowance (CVE-2019-9517, -9511).
    h2_max_window_updates_per_data_frame: int = 10

    @classmethod
    def from_settings(
        cls,
        limit_request_line: int = 4094,
        limit_request_fields: int = 100,
        limit_request_field_size: int = DEFAULT_FIELD_SIZE,
        **h2: int,
    ) -> Limits:
        """Apply gunicorn 27's semantics: line 0 = unlimited and capped at 8190; fields
        <= 0 or above 32768 become 32768; field size 0 becomes 8190."""
        line = limit_request_line
        if line < 0:
            line = 0
        elif line > MAX_REQUEST_LINE:
            line = MAX_REQUEST_LINE
        fields = limit_request_fields
        if fields <= 0 or fields > MAX_HEADER_FIELDS:
            fields = MAX_HEADER_FIELDS
        size = limit_request_field_size
        if size <= 0:
            size = DEFAULT_FIELD_SIZE
        return cls(
            max_request_line=line,
            max_header_fields=fields,
            max_header_field_size=size,
            **h2,
        )

    @property
    def max_header_section(self) -> int:
        """Bytes a header section may take before its final empty line."""
        return self.max_header_fields * (self.max_header_field_size + 2) + 4


@dataclass(frozen=True, slots=True)
class Policy:
    """Rule switches for request parsing (gunicorn 27 settings of the same names)."""

    permit_obsolete_folding: bool = False
    casefold_http_method: bool = False
    permit_unconventional_http_method: bool = False
    permit_unconventional_http_version: bool = False
    header_map: str = "drop"  # "drop" | "refuse" | "dangerous"
    strip_header_spaces: bool = False
    # Underscore header names a trusted forwarder may send (lowercase, "-" form kept).
    forwarder_headers: frozenset[bytes] = frozenset()
