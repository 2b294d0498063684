"""Field rules of RFC 9110 §5 and the header policy of gunicorn 27.

Everything here works on bytes. Request-side checks raise ``ProtocolError``
subclasses; response-side checks (what an application gives us) raise
``LocalProtocolError`` subclasses, answered with 500.
"""

from __future__ import annotations

import re

from gunicorn.http.errors import (
    InvalidContentLength,
    InvalidHeader,
    InvalidHeaderName,
    InvalidRequestMethod,
    InvalidResponseHeader,
    InvalidResponseStatus,
    InvalidSchemeHeaders,
)
from gunicorn.http.events import Headers
from gunicorn.http.limits import Policy

# RFC 9110 §5.6.2: token = 1*tchar (tchar is these and "_")
_TCHARS_BUT_UNDERSCORE = rb"!#$%&'*+\-.^`|~0-9A-Za-z"
TOKEN_RE = re.compile(rb"[_" + _TCHARS_BUT_UNDERSCORE + rb"]+")
# RFC 9110 §5.5: field-value characters are HTAB, SP, VCHAR and obs-text; anything else
# (NUL, CR, LF and the other controls, DEL) is refused. Searched over a whole head at once.
FORBIDDEN_FIELD_BYTE_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 3986 §3.2.2 host plus optional port, as allowed in a Host field.
HOST_RE = re.compile(rb"[A-Za-z0-9\-._~%!$&'()*+,;=:\[\]]*")
# RFC 9110 §15: reason-phrase = *( HTAB / SP / VCHAR / obs-text )
REASON_RE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")

OWS = b" \t"

# Trailer fields a client may not send (RFC 9110 §6.5.1: framing, routing, authentication).
FORBIDDEN_TRAILERS = frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"trailer", b"authorization", b"te"}
)

# Hop-by-hop fields an application may not set: the server owns connection management.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authorization",
    }
)

# Raw field name -> lowercase name, for names already proven to be tokens. Bounded so a
# client cannot grow it without limit.
_NAME_CACHE: dict[bytes, bytes] = {}
_NAME_CACHE_MAX = 2048


def lower_token(name: bytes) -> bytes | None:
    """The lowercased name if ``name`` is a valid token, else None."""
    lowered = _NAME_CACHE.get(name)
    if lowered is not None:
        return lowered
    if TOKEN_RE.fullmatch(name) is None:
        return None
    lowered = name.lower()
    if len(_NAME_CACHE) < _NAME_CACHE_MAX:
        _NAME_CACHE[name] = lowered
    return lowered


# Request field names proven to be tokens without "_" (header_map decides about those),
# raw -> lowercase: a hit needs no other check. Bounded like _NAME_CACHE.
FIELD_NAMES: dict[bytes, bytes] = {}
_FIELD_NAME_RE = re.compile(rb"[" + _TCHARS_BUT_UNDERSCORE + rb"]+")


def lower_field_names(pairs: list[tuple[bytes, bytes]]) -> Headers | None:
    """``pairs`` with their names lowercased, or None when a name is not a token or
    holds "_" (the caller then takes its general path)."""
    cache = FIELD_NAMES
    headers: Headers = []
    for name, value in pairs:
        lowered = cache.get(name)
        if lowered is None:
            if _FIELD_NAME_RE.fullmatch(name) is None:
                return None
            lowered = name.lower()
            if len(cache) < _NAME_CACHE_MAX:
                cache[name] = lowered
        headers.append((lowered, value))
    return headers


def is_token(value: bytes) -> bool:
    return TOKEN_RE.fullmatch(value) is not None


# Host values already proven valid (a few per server, usually). Bounded like _NAME_CACHE.
_KNOWN_HOSTS: set[bytes] = set()
_KNOWN_HOSTS_MAX = 256


def valid_host(value: bytes) -> bool:
    if HOST_RE.fullmatch(value) is None:
        return False
    if len(_KNOWN_HOSTS) < _KNOWN_HOSTS_MAX:
        _KNOWN_HOSTS.add(value)
    return True


def check_host(value: bytes, previous: bytes | None) -> bytes:
    """One Host field (or ``:authority``): refused when it repeats or is not a valid
    host (RFC 9110 §7.2, RFC 9112 §3.2); returns it."""
    if previous is not None:
        raise InvalidHeader("duplicate Host header")
    if value not in _KNOWN_HOSTS and not valid_host(value):
        raise InvalidHeader(f"invalid Host header {value[:64]!r}")
    return value


def split_list(value: bytes) -> list[bytes]:
    """Split a comma-separated field value (RFC 9110 §5.6.1), keeping empty members."""
    return [item.strip(OWS) for item in value.split(b",")]


def connection_tokens(headers: Headers) -> set[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(item.lower() for item in split_list(value) if item)
    return tokens


def validate_response_status(status: int, reason: bytes) -> None:
    if not 100 <= status <= 999:
        raise InvalidResponseStatus(f"invalid status code {status!r}")
    if REASON_RE.fullmatch(reason) is None:
        raise InvalidResponseStatus(f"invalid reason phrase {reason!r}")


def validate_response_header(name: bytes, value: bytes) -> bytes:
    """Check one application header; returns its lowercased name."""
    lowered = lower_token(name)
    if lowered is None:
        raise InvalidResponseHeader(f"invalid header name {name!r}")
    if FORBIDDEN_FIELD_BYTE_RE.search(value) is not None:
        raise InvalidResponseHeader(f"invalid value for header {name!r}")
    return lowered


def scheme_from_headers(
    headers: Headers, secure_scheme_headers: dict[bytes, bytes]
) -> bytes | None:
    """The scheme the trusted proxy headers announce: b"https", b"http" or None.

    ``secure_scheme_headers`` maps lowercase header names to the value that means https
    (gunicorn's setting, e.g. ``x-forwarded-proto: https``). Headers that disagree are
    refused, as gunicorn does.
    """
    scheme: bytes | None = None
    for name, value in headers:
        secure_value = secure_scheme_headers.get(name)
        if secure_value is None:
            continue
        this = b"https" if value.lower() == secure_value.lower() else b"http"
        if scheme is not None and scheme != this:
            raise InvalidSchemeHeaders("conflicting scheme headers")
        scheme = this
    return scheme


def check_header_name(raw_name: bytes, strip_spaces: bool) -> bytes:
    """Validate a request field name; returns it lowercased."""
    lowered = lower_token(raw_name)
    if lowered is not None:
        return lowered
    if strip_spaces:
        stripped = raw_name.rstrip(OWS)
        lowered = lower_token(stripped) if stripped else None
        if lowered is not None:
            return lowered
    if raw_name[-1:] in (b" ", b"\t"):
        raise InvalidHeaderName(f"whitespace before the colon in {raw_name[:64]!r}")
    raise InvalidHeaderName(f"invalid header name {raw_name[:64]!r}")


def check_field_bytes(block: bytes) -> None:
    """Refuse NUL and control characters anywhere in a header block."""
    match = FORBIDDEN_FIELD_BYTE_RE.search(block)
    if match is not None:
        raise InvalidHeader(f"invalid character {match.group()!r} in header section")


# RFC 9113 §8.2.2: connection-specific fields are malformed in HTTP/2 requests and are
# never sent in HTTP/2 responses ("te" is allowed in requests with the value "trailers").
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
MAX_CONTENT_LENGTH_DIGITS = 19


def check_method(method: bytes, policy: Policy) -> bytes:
    """The method token rule of gunicorn 27 for methods outside the common set: a token;
    unless ``permit_unconventional_http_method``, 3-20 uppercase characters without "#";
    then ``casefold_http_method`` uppercases it. Returns the method to use."""
    if lower_token(method) is None:
        raise InvalidRequestMethod(f"invalid method {method[:32]!r}")
    if not policy.permit_unconventional_http_method and (
        not 3 <= len(method) <= 20 or method.upper() != method or b"#" in method
    ):
        raise InvalidRequestMethod(f"unconventional method {method[:32]!r}")
    if policy.casefold_http_method:
        method = method.upper()
    return method


def keep_underscore_field(name: bytes, policy: Policy, trusted: bool) -> bool:
    """``header_map`` for a field name holding "_": keep it ("dangerous", or a trusted
    forwarder's name listed in ``forwarder_headers``), drop it ("drop"), or refuse the
    request ("refuse", raises ``InvalidHeaderName``)."""
    header_map = policy.header_map
    if header_map == "dangerous" or (trusted and name in policy.forwarder_headers):
        return True
    if header_map == "refuse":
        raise InvalidHeaderName(f"underscore in header name {name[:64]!r}")
    return False


def parse_content_length(value: bytes) -> int:
    """RFC 9110 §8.6: Content-Length = 1*DIGIT (bounded to 19 digits)."""
    if not value.isdigit() or len(value) > MAX_CONTENT_LENGTH_DIGITS:
        raise InvalidContentLength(f"invalid Content-Length {value[:32]!r}")
    return int(value)


def response_content_length(value: bytes) -> int:
    """An application's Content-Length value (surrounding whitespace allowed)."""
    if not value.isdigit():
        value = value.strip(OWS)
    if not value.isdigit() or len(value) > MAX_CONTENT_LENGTH_DIGITS:
        raise InvalidResponseHeader(f"invalid Content-Length {value[:32]!r}")
    return int(value)
