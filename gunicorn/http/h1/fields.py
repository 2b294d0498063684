"""Header and trailer sections on the general path (RFC 9112 §5, RFC 9110 §5), and the
Transfer-Encoding rules of RFC 9112 §6.1. The head reader's fast path hands every head
it cannot prove simple to ``parse_fields``, which also gives the precise error."""

from __future__ import annotations

import re

from gunicorn.http.errors import (
    InvalidHeader,
    InvalidHeaderName,
    InvalidTransferEncoding,
    LimitRequestHeaders,
    ObsoleteFolding,
    UnsupportedTransferCoding,
)
from gunicorn.http.events import Headers
from gunicorn.http.headers import OWS, check_header_name, keep_underscore_field, lower_token
from gunicorn.http.limits import Limits, Policy

# Controls other than HTAB inside a head whose CR and LF were already proven to pair up.
_HEAD_CTL_RE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Codings a server may see before "chunked"; we pass them to the application undecoded.
_KNOWN_CODINGS = frozenset({b"chunked", b"gzip", b"x-gzip", b"deflate", b"compress", b"identity"})


def parse_fields(
    lines: list[bytes], block: bytes, limits: Limits, policy: Policy, trusted: bool
) -> Headers:
    """Header (or trailer) ``lines`` of ``block``, without their CRLF, -> (lowercase
    name, value) pairs.

    As gunicorn, a field counts against ``max_header_field_size`` with the CRLF of each
    of its lines (a folded field with all of its lines): 8188 bytes and CRLF pass the
    default 8190, 8189 bytes and CRLF do not."""
    if _HEAD_CTL_RE.search(block) is not None:
        raise InvalidHeader("control character in the header section")
    if len(lines) > limits.max_header_fields and not policy.permit_obsolete_folding:
        raise LimitRequestHeaders("too many header fields")
    max_size = limits.max_header_field_size
    headers: Headers = []
    append = headers.append
    size = 0  # of the current field, with its folded lines
    dropped = False  # the current field is not passed on (header_map "drop")
    for line in lines:
        line_size = len(line) + 2
        if line_size > max_size:
            raise LimitRequestHeaders("header field too large")
        first = line[:1]
        if first == b" " or first == b"\t":
            # RFC 9112 §5.2: obs-fold; only a continuation of a previous field.
            if not size:
                raise InvalidHeader("whitespace before the first header field")
            if not policy.permit_obsolete_folding:
                raise ObsoleteFolding("obsolete line folding")
            size += line_size
            if size > max_size:
                raise LimitRequestHeaders("header field too large")
            if dropped:
                continue
            name, value = headers[-1]
            headers[-1] = (name, (value + b" " + line.strip(OWS)).strip(OWS))
            continue
        size = line_size
        dropped = False
        raw_name, colon, value = line.partition(b":")
        if not colon:
            raise InvalidHeader(f"header line without a colon {line[:64]!r}")
        lowered = lower_token(raw_name)
        if lowered is None:
            if not raw_name:
                raise InvalidHeaderName("empty header name")
            lowered = check_header_name(raw_name, policy.strip_header_spaces)
        name = lowered
        if b"_" in name and not keep_underscore_field(name, policy, trusted):
            dropped = True
            continue
        append((name, value.strip(OWS)))
    if len(headers) > limits.max_header_fields:
        raise LimitRequestHeaders("too many header fields")
    return headers


def check_codings(
    codings: list[bytes], version: tuple[int, int], content_length: int | None
) -> bool:
    """Refuse a Transfer-Encoding a server may not accept; True: the body is chunked."""
    # RFC 9112 §6.1 and §6.3: chunked must be the final coding, once; a message with
    # both framings is refused (a smuggling vector); 1.0 has no chunked coding.
    if version < (1, 1):
        raise InvalidTransferEncoding("Transfer-Encoding on an HTTP/1.0 request")
    for coding in codings:
        if not coding:
            raise InvalidTransferEncoding("empty transfer coding")
        if coding not in _KNOWN_CODINGS:
            if lower_token(coding) is None:
                raise InvalidTransferEncoding(f"invalid transfer coding {coding[:32]!r}")
            raise UnsupportedTransferCoding(f"unsupported transfer coding {coding[:32]!r}")
    if codings[-1] != b"chunked":
        raise InvalidTransferEncoding("chunked is not the final transfer coding")
    if codings.count(b"chunked") > 1:
        raise InvalidTransferEncoding("chunked applied more than once")
    if content_length is not None:
        raise InvalidTransferEncoding("both Content-Length and Transfer-Encoding")
    return True
