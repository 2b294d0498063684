"""The request line (RFC 9112 §3) on the general path, and the target forms other than
origin-form (§3.2.2-§3.2.4). The usual request line never comes here: the head reader
matches it with one regular expression."""

from __future__ import annotations

import re

from gunicorn.http.errors import (
    InvalidHTTPVersion,
    InvalidRequestLine,
    InvalidTarget,
    UnsupportedHTTPVersion,
)
from gunicorn.http.headers import check_method, valid_host
from gunicorn.http.limits import Policy

# Request targets: printable ASCII only (RFC 9112 §3.2, RFC 3986 §2).
_TARGET_RE = re.compile(rb"[\x21-\x7e]+")
_VERSION_RE = re.compile(rb"HTTP/([0-9])\.([0-9])")
_SCHEME_RE = re.compile(rb"[A-Za-z][A-Za-z0-9+\-.]*")
_PORT_RE = re.compile(rb"[0-9]{1,5}")

_COMMON_METHODS = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE"}
)

Target = tuple[bytes | None, bytes | None, bytes, bytes]


def parse_request_line(line: bytes, policy: Policy) -> tuple[bytes, bytes, tuple[int, int]]:
    """``method SP request-target SP HTTP-version`` -> its three parts. A line without
    a version (HTTP/0.9) is malformed."""
    parts = line.split(b" ")
    if len(parts) != 3:
        raise InvalidRequestLine(f"malformed request line {line[:64]!r}")
    method, target, vtext = parts
    if method not in _COMMON_METHODS:
        method = check_method(method, policy)
    if vtext == b"HTTP/1.1":
        version = (1, 1)
    elif vtext == b"HTTP/1.0":
        version = (1, 0)
    else:
        match = _VERSION_RE.fullmatch(vtext)
        if match is None:
            raise InvalidHTTPVersion(f"invalid HTTP version {vtext[:16]!r}")
        version = (int(match.group(1)), int(match.group(2)))
        if not policy.permit_unconventional_http_version:
            raise UnsupportedHTTPVersion(f"unsupported HTTP version {vtext!r}")
    if _TARGET_RE.fullmatch(target) is None:
        raise InvalidTarget(f"invalid request target {target[:64]!r}")
    return method, target, version


def other_target_form(method: bytes, target: bytes) -> Target:
    """``(scheme, authority, path, query)`` of a target that is not in origin-form:
    authority-form for CONNECT, asterisk-form for OPTIONS, or absolute-form."""
    if method == b"CONNECT":
        return None, authority_form(target), b"", b""
    if target == b"*":
        if method != b"OPTIONS":
            raise InvalidTarget("asterisk-form is only allowed with OPTIONS")
        return None, None, b"*", b""
    if b"://" in target:
        return absolute_form(target)
    raise InvalidTarget(f"invalid request target {target[:64]!r}")


def authority_form(target: bytes) -> bytes:
    host, colon, port = target.rpartition(b":")
    if not colon or not host or _PORT_RE.fullmatch(port) is None:
        raise InvalidTarget("CONNECT target must be host:port")
    if not valid_host(host) or b"/" in target or b"@" in target:
        raise InvalidTarget(f"invalid CONNECT target {target[:64]!r}")
    return target


def absolute_form(target: bytes) -> Target:
    scheme, _, rest = target.partition(b"://")
    if _SCHEME_RE.fullmatch(scheme) is None:
        raise InvalidTarget(f"invalid scheme in {target[:64]!r}")
    if b"#" in rest:
        raise InvalidTarget("fragment in request target")
    cut = len(rest)
    for sep in (b"/", b"?"):
        index = rest.find(sep)
        if 0 <= index < cut:
            cut = index
    authority = rest[:cut]
    if not authority or b"@" in authority or not valid_host(authority):
        raise InvalidTarget(f"invalid authority in {target[:64]!r}")
    path, _, query = rest[cut:].partition(b"?")
    return scheme.lower(), authority, path or b"/", query
