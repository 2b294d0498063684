"""HTTP/2 response field blocks built from the core's response events (RFC 9113 §8.3.2).

Names are lowercased, connection-specific fields dropped (RFC 9113 §8.2.2), values
checked like HTTP/1 responses (``headers.validate_response_header``) and trimmed
(§8.2.1 forbids whitespace around a value). Whether a body and a Content-Length may
follow is decided by ``framing``, the one home of those rules.
"""

from __future__ import annotations

from gunicorn.http import framing
from gunicorn.http.errors import (
    InvalidResponseHeader,
    LocalProtocolError,
    ProtocolError,
    ResponseStateError,
)
from gunicorn.http.events import Headers, InformationalResponse, Response
from gunicorn.http.headers import (
    CONNECTION_SPECIFIC,
    FORBIDDEN_TRAILERS,
    OWS,
    response_content_length,
    validate_response_header,
    validate_response_status,
)

Fields = list[tuple[bytes, bytes]]

_DROPPED = CONNECTION_SPECIFIC | {b"te"}
_SPECIAL = _DROPPED | {b"content-length", b"date", b"server"}
_STATUS = {code: b"%d" % code for code in range(100, 600)}


def status_field(status: int) -> tuple[bytes, bytes]:
    return (b":status", _STATUS.get(status) or b"%d" % status)


class ResponseHead:
    """A final response head: its fields, the body's declared length and whether a
    body may follow at all."""

    __slots__ = ("body_allowed", "content_length", "fields")

    def __init__(self, fields: Fields, content_length: int | None, body_allowed: bool) -> None:
        self.fields = fields
        self.content_length = content_length
        self.body_allowed = body_allowed


def response_head(
    event: Response, method: bytes, server_header: bytes, date: bytes
) -> ResponseHead:
    status = event.status
    if event.reason or not 200 <= status <= 999:
        validate_response_status(status, event.reason)
    if status < 200:
        raise ResponseStateError(f"a final response needs a status >= 200, not {status}")
    fields: Fields = [status_field(status)]
    append = fields.append
    content_length: int | None = None
    length_at = 0
    has_date = has_server = False
    for name, value in event.headers:
        lowered = validate_response_header(name, value)
        value = value.strip(OWS)
        if lowered in _SPECIAL:
            if lowered == b"content-length":
                length = response_content_length(value)
                if content_length is not None:
                    if length != content_length:
                        raise InvalidResponseHeader("conflicting Content-Length headers")
                    continue
                content_length = length
                length_at = len(fields)
            elif lowered == b"date":
                has_date = True
            elif lowered == b"server":
                has_server = True
            else:
                continue  # connection-specific: meaningless in HTTP/2
        append((lowered, value))
    body_allowed = framing.body_allowed(method, status)
    if length_at and not body_allowed and not framing.content_length_allowed(method, status):
        del fields[length_at]
        content_length = None
    if not has_server and server_header:
        append((b"server", server_header))
    if not has_date:
        append((b"date", date))
    return ResponseHead(fields, content_length if body_allowed else None, body_allowed)


def informational_fields(event: InformationalResponse) -> Fields:
    """The field block of a 1xx response (validated even when it is not sent)."""
    status = event.status
    if not 100 <= status < 200:
        raise ResponseStateError(f"informational status must be 1xx, not {status}")
    validate_response_status(status, event.reason)
    fields: Fields = [status_field(status)]
    for name, value in event.headers:
        lowered = validate_response_header(name, value)
        if lowered in _DROPPED or lowered == b"content-length":
            continue
        fields.append((lowered, value.strip(OWS)))
    return fields


def trailer_fields(trailers: Headers) -> Fields:
    """Response trailers: no framing, routing or connection fields (RFC 9110 §6.5.1)."""
    fields: Fields = []
    for name, value in trailers:
        lowered = validate_response_header(name, value)
        if lowered in FORBIDDEN_TRAILERS or lowered in _DROPPED:
            raise InvalidResponseHeader(f"{name!r} is not allowed as a trailer")
        fields.append((lowered, value.strip(OWS)))
    return fields


def error_head(
    exc: ProtocolError | LocalProtocolError, length: int, server_header: bytes, date: bytes
) -> Fields:
    fields: Fields = [
        status_field(exc.status),
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", b"%d" % length),
    ]
    if server_header:
        fields.append((b"server", server_header))
    fields.append((b"date", date))
    return fields
