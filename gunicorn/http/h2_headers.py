"""HTTP/2 request and trailer fields -> the core's ``Request`` (RFC 9113 §8.2, §8.3).

One pass over the decoded field block applies the HTTP/2 rules together with the
header policy HTTP/1 applies (underscores, duplicate Host/Content-Type, the method
token rule, limits). Errors raised here are ``ProtocolError`` subclasses; the
connection answers those whose status a client can act on (``ANSWERED_STATUSES``)
with a response and resets the stream (PROTOCOL_ERROR) for all others.
"""

from __future__ import annotations

import re

from gunicorn.http.errors import (
    ExpectationFailed,
    InvalidHeader,
    InvalidTrailer,
    LimitRequestHeaders,
    LimitRequestLine,
    ProtocolError,
)
from gunicorn.http.events import Headers, Request
from gunicorn.http.headers import (
    _KNOWN_HOSTS,
    CONNECTION_SPECIFIC,
    FORBIDDEN_FIELD_BYTE_RE,
    FORBIDDEN_TRAILERS,
    check_host,
    check_method,
    keep_underscore_field,
    lower_token,
    parse_content_length,
    valid_host,
)
from gunicorn.http.limits import Limits, Policy


class MalformedRequest(ProtocolError):
    """RFC 9113 §8.1.1: a malformed request, a stream error of type PROTOCOL_ERROR."""


class MethodNotSupported(ProtocolError):
    """CONNECT over HTTP/2 (RFC 9113 §8.5): this server does not tunnel."""

    status = 501
    reason = "Not Implemented"


# Errors answered with a response on the stream; anything else resets it.
ANSWERED_STATUSES = frozenset({414, 417, 431, 501})

_TARGET_RE = re.compile(rb"[\x21-\x7e]+")
_SCHEME_RE = re.compile(rb"[A-Za-z][A-Za-z0-9+\-.]*")
_COMMON_METHODS = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE"}
)
_SPECIAL = CONNECTION_SPECIFIC | {
    b"host",
    b"content-length",
    b"content-type",
    b"cookie",
    b"te",
    b"expect",
}
_WHITESPACE = (0x20, 0x09)
# Lowercase field names already proven to be tokens without "_". Bounded.
_KNOWN_NAMES: set[bytes] = set()
_KNOWN_NAMES_MAX = 2048
_new_event = object.__new__


def _field_name(name: bytes, policy: Policy, trusted: bool) -> bytes | None:
    """The name to keep, or None when the header policy drops the field."""
    if lower_token(name) != name:
        # RFC 9113 §8.2.1: names are lowercase tokens.
        raise MalformedRequest(f"invalid field name {name[:64]!r}")
    if b"_" in name:
        return name if keep_underscore_field(name, policy, trusted) else None
    if len(_KNOWN_NAMES) < _KNOWN_NAMES_MAX:
        _KNOWN_NAMES.add(name)
    return name


def _check_value(name: bytes, value: bytes) -> None:
    # RFC 9113 §8.2.1: no leading or trailing whitespace in a value.
    if value and (value[0] in _WHITESPACE or value[-1] in _WHITESPACE):
        raise MalformedRequest(f"whitespace around the value of {name[:64]!r}")


def build_request(
    fields: list[tuple[bytes, bytes]],
    stream_id: int,
    ended: bool,
    limits: Limits,
    policy: Policy,
    trusted: bool,
) -> Request:
    """The request a HEADERS block opens; ``ended`` when it carried END_STREAM."""
    method = scheme = path = authority = None
    headers: Headers = []
    append = headers.append
    regular = 0
    host: bytes | None = None
    content_length: int | None = None
    content_type_seen = expect_continue = False
    cookies: list[bytes] | None = None
    cookie_at = 0
    max_size = limits.max_header_field_size
    known = _KNOWN_NAMES
    for name, value in fields:
        if name[:1] == b":":
            # RFC 9113 §8.3: pseudo-header fields come first, once each.
            if regular:
                raise MalformedRequest("pseudo-header field after a regular field")
            if name == b":method" and method is None:
                method = value
            elif name == b":path" and path is None:
                path = value
            elif name == b":scheme" and scheme is None:
                scheme = value
            elif name == b":authority" and authority is None:
                authority = value
            else:
                raise MalformedRequest(f"unknown or repeated pseudo-header {name[:32]!r}")
            continue
        regular += 1
        if name not in known:
            kept = _field_name(name, policy, trusted)
            if kept is None:
                continue
        if len(name) + len(value) + 2 > max_size:
            raise LimitRequestHeaders("header field too large")
        if value and (value[0] in _WHITESPACE or value[-1] in _WHITESPACE):
            _check_value(name, value)
        if name in _SPECIAL:
            if name in CONNECTION_SPECIFIC:
                raise MalformedRequest(f"connection-specific field {name!r}")
            if name == b"te":
                if value.lower() != b"trailers":
                    raise MalformedRequest("TE other than trailers")
            elif name == b"host":
                host = check_host(value, host)
            elif name == b"content-length":
                if content_length is not None:
                    raise MalformedRequest("duplicate Content-Length header")
                content_length = parse_content_length(value)
            elif name == b"content-type":
                if content_type_seen:
                    raise InvalidHeader("duplicate Content-Type header")
                content_type_seen = True
            elif name == b"cookie":
                # RFC 9113 §8.2.3: cookie crumbs are joined with "; ".
                if cookies is None:
                    cookies = [value]
                    cookie_at = len(headers)
                else:
                    cookies.append(value)
                    continue
            elif value.lower() == b"100-continue":  # expect
                expect_continue = True
            else:
                raise ExpectationFailed(f"unsupported expectation {value[:32]!r}")
        append((name, value))
    if regular > limits.max_header_fields:
        raise LimitRequestHeaders("too many header fields")
    if cookies is not None and len(cookies) > 1:
        headers[cookie_at] = (b"cookie", b"; ".join(cookies))
    if headers and FORBIDDEN_FIELD_BYTE_RE.search(b"\t".join([v for _, v in headers])):
        raise MalformedRequest("forbidden character in a field value")

    if method is None:
        raise MalformedRequest("missing :method")
    if method == b"CONNECT":
        if scheme is not None or path is not None or not authority:
            raise MalformedRequest("CONNECT needs :authority and no :scheme nor :path")
        raise MethodNotSupported("CONNECT is not supported over HTTP/2")
    if scheme is None or not path:
        raise MalformedRequest("missing :scheme or :path")
    if _SCHEME_RE.fullmatch(scheme) is None:
        raise MalformedRequest(f"invalid :scheme {scheme[:32]!r}")
    line_limit = limits.max_request_line
    if line_limit and len(path) > line_limit:
        raise LimitRequestLine(f":path longer than {line_limit} bytes")
    if _TARGET_RE.fullmatch(path) is None or 35 in path:  # "#"
        raise MalformedRequest(f"invalid :path {path[:64]!r}")
    if path[0] == 47:  # "/"
        target_path, _, query = path.partition(b"?")
    elif path == b"*" and method == b"OPTIONS":
        target_path, query = path, b""
    else:
        raise MalformedRequest(f"invalid :path {path[:64]!r}")
    if method not in _COMMON_METHODS:
        method = check_method(method, policy)
    if authority is not None:
        if not authority or (authority not in _KNOWN_HOSTS and not valid_host(authority)):
            raise MalformedRequest(f"invalid :authority {authority[:64]!r}")
        if host is None:
            headers.insert(0, (b"host", authority))
        elif host != authority:
            # RFC 9113 §8.3.1: Host naming another origin than :authority.
            raise MalformedRequest("Host differs from :authority")
    else:
        authority = host
    if ended and content_length:
        raise MalformedRequest("Content-Length without a body")

    request: Request = _new_event(Request)
    request.stream_id = stream_id
    request.method = method
    request.target = path
    request.version = (2, 0)
    request.headers = headers
    request.path = target_path
    request.query = query
    request.fragment = b""
    request.scheme = None
    request.authority = authority
    request.content_length = content_length
    request.chunked = False
    request.keep_alive = True
    request.expect_continue = expect_continue and not ended
    request.upgrade = None
    request.has_body = not ended
    return request


def check_trailers(
    fields: list[tuple[bytes, bytes]], limits: Limits, policy: Policy, trusted: bool
) -> Headers:
    """Request trailer fields (RFC 9113 §8.1: no pseudo-headers; RFC 9110 §6.5.1)."""
    trailers: Headers = []
    if len(fields) > limits.max_header_fields:
        raise LimitRequestHeaders("too many trailer fields")
    for name, value in fields:
        if name[:1] == b":":
            raise MalformedRequest("pseudo-header field in trailers")
        kept = _field_name(name, policy, trusted)
        if kept is None:
            continue
        if len(name) + len(value) + 2 > limits.max_header_field_size:
            raise LimitRequestHeaders("trailer field too large")
        _check_value(name, value)
        if name in CONNECTION_SPECIFIC or name in FORBIDDEN_TRAILERS:
            raise InvalidTrailer(f"{name.decode('latin-1')} is not allowed as a trailer")
        trailers.append((name, value))
    if trailers and FORBIDDEN_FIELD_BYTE_RE.search(b"\t".join([v for _, v in trailers])):
        raise MalformedRequest("forbidden character in a trailer value")
    return trailers
