"""The uwsgi binary protocol (nginx ``uwsgi_pass``): packets -> the same Request event as HTTP/1.

A packet is a 4-byte header (modifier1, little-endian 16-bit size of the vars block,
modifier2) followed by the vars block: CGI-style variables, each a little-endian 16-bit
key length, the key, a 16-bit value length and the value. The request body, if any,
follows the packet and is CONTENT_LENGTH bytes long. Responses are plain HTTP/1.x
responses that are never chunk-framed (the front server frames them for its client).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from urllib.parse import quote_from_bytes

from gunicorn.http.errors import (
    InvalidUWSGIHeader,
    LimitRequestHeaders,
    LimitRequestLine,
    NoMoreData,
)
from gunicorn.http.events import Headers, InformationalResponse, Request
from gunicorn.http.h1 import H1Connection
from gunicorn.http.limits import Limits, Policy

HEADER_SIZE = 4
MAX_VARS = 1000
# Digits allowed in CONTENT_LENGTH (keeps int() cheap and bounded).
MAX_CONTENT_LENGTH_DIGITS = 19

_HEADER = struct.Struct("<BHB")
_LENGTH = struct.Struct("<H")

# Byte sets for ``bytes.translate(None, allowed)``: anything left over is invalid.
_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FIELD_VALUE = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
_TARGET = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))
# PATH_INFO is decoded by the front server; these stay literal when re-encoding it.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def parse_uwsgi_packet(
    buf: bytes | bytearray,
) -> tuple[Request, int, dict[bytes, bytes]] | None:
    """Parse one uwsgi request packet at the start of ``buf``.

    Returns None when more bytes are needed, else ``(request, consumed, vars)`` where
    ``vars`` holds every variable as sent (a repeated name keeps its last value).
    Raises InvalidUWSGIHeader for a malformed packet.
    """
    if len(buf) < HEADER_SIZE:
        if buf[:1] not in (b"", b"\x00"):
            raise InvalidUWSGIHeader(f"unsupported uwsgi modifier1 {buf[0]}")
        return None
    modifier1, size, _modifier2 = _HEADER.unpack_from(buf)
    if modifier1 != 0:
        raise InvalidUWSGIHeader(f"unsupported uwsgi modifier1 {modifier1}")
    end = HEADER_SIZE + size
    if len(buf) < end:
        return None
    pairs = _parse_vars(bytes(buf[HEADER_SIZE:end]))
    return _build_request(pairs), end, dict(pairs)


def _parse_vars(block: bytes) -> list[tuple[bytes, bytes]]:
    pairs: list[tuple[bytes, bytes]] = []
    offset = 0
    end = len(block)
    while offset < end:
        if len(pairs) == MAX_VARS:
            raise InvalidUWSGIHeader(f"more than {MAX_VARS} uwsgi vars")
        key, offset = _read_string(block, offset, "key")
        value, offset = _read_string(block, offset, "value")
        if not key:
            raise InvalidUWSGIHeader("empty uwsgi var name")
        pairs.append((key, value))
    return pairs


def _read_string(block: bytes, offset: int, what: str) -> tuple[bytes, int]:
    if len(block) - offset < _LENGTH.size:
        raise InvalidUWSGIHeader(f"truncated uwsgi var {what} length")
    (size,) = _LENGTH.unpack_from(block, offset)
    start = offset + _LENGTH.size
    if start + size > len(block):
        raise InvalidUWSGIHeader(f"uwsgi var {what} runs past the vars block")
    return block[start : start + size], start + size


def _build_request(pairs: list[tuple[bytes, bytes]]) -> Request:
    cgi: dict[bytes, bytes] = {}
    headers: Headers = []
    lengths: set[bytes] = set()
    content_type: bytes | None = None
    header_content_type: bytes | None = None
    for key, value in pairs:
        if not key.startswith(b"HTTP_"):
            if b"\r" in value or b"\n" in value or b"\x00" in value:
                raise InvalidUWSGIHeader(f"control character in uwsgi var {key!r}")
            cgi[key] = value
            if key == b"CONTENT_LENGTH" and value:
                lengths.add(value)
            elif key == b"CONTENT_TYPE" and value:
                content_type = value
            continue
        name = key[5:].lower().replace(b"_", b"-")
        if not name or name.translate(None, _TOKEN):
            raise InvalidUWSGIHeader(f"invalid uwsgi header var {key!r}")
        if value.translate(None, _FIELD_VALUE):
            raise InvalidUWSGIHeader(f"control character in uwsgi var {key!r}")
        value = value.strip(b" \t")
        # Servers may pass Content-Length/Content-Type both as CGI vars and as HTTP_*;
        # the CGI vars are authoritative and each becomes a single header below.
        if name == b"content-length":
            if value:
                lengths.add(value)
        elif name == b"content-type":
            if header_content_type is None:
                header_content_type = value
        else:
            headers.append((name, value))

    if len(lengths) > 1:
        raise InvalidUWSGIHeader("conflicting uwsgi content lengths")
    content_length = 0
    if lengths:
        raw_length = lengths.pop()
        if not raw_length.isdigit() or len(raw_length) > MAX_CONTENT_LENGTH_DIGITS:
            raise InvalidUWSGIHeader(f"invalid uwsgi CONTENT_LENGTH {raw_length!r}")
        content_length = int(raw_length)
        headers.append((b"content-length", raw_length))
    if content_type is None:
        content_type = header_content_type
    if content_type:
        headers.append((b"content-type", content_type))

    method = cgi.get(b"REQUEST_METHOD", b"")
    if not method or method.translate(None, _TOKEN):
        raise InvalidUWSGIHeader(f"invalid uwsgi REQUEST_METHOD {method!r}")
    target = _target(cgi)
    rest, _, fragment = target.partition(b"#")
    path, _, query = rest.partition(b"?")
    return Request(
        method,
        target,
        _version(cgi.get(b"SERVER_PROTOCOL", b"")),
        headers,
        path=path,
        query=query,
        fragment=fragment,
        scheme=b"https" if _is_https(cgi) else b"http",
        authority=_first_header(headers, b"host"),
        content_length=content_length,
        keep_alive=not _asks_close(headers),
        stream_id=1,
    )


def _target(cgi: dict[bytes, bytes]) -> bytes:
    target = cgi.get(b"REQUEST_URI", b"")
    if not target:
        path_info = cgi.get(b"PATH_INFO", b"")
        if not path_info:
            raise InvalidUWSGIHeader("uwsgi packet has neither REQUEST_URI nor PATH_INFO")
        target = quote_from_bytes(path_info, safe=_PATH_SAFE).encode("ascii")
        query = cgi.get(b"QUERY_STRING", b"")
        if query:
            target += b"?" + query
    if target.translate(None, _TARGET):
        raise InvalidUWSGIHeader(f"invalid uwsgi request target {target!r}")
    return target


def _version(raw: bytes) -> tuple[int, int]:
    """``HTTP/1.1`` -> (1, 1); ``HTTP/2`` -> (2, 0); empty -> (1, 1)."""
    if not raw:
        return (1, 1)
    name, _, number = raw.partition(b"/")
    major, dot, minor = number.partition(b".")
    valid = (
        name == b"HTTP"
        and len(major) == 1
        and major.isdigit()
        and (not dot or (len(minor) == 1 and minor.isdigit()))
    )
    if not valid:
        raise InvalidUWSGIHeader(f"invalid uwsgi SERVER_PROTOCOL {raw!r}")
    return (int(major), int(minor) if dot else 0)


def _is_https(cgi: dict[bytes, bytes]) -> bool:
    if cgi.get(b"HTTPS", b"").lower() in (b"on", b"1"):
        return True
    return any(
        cgi.get(key, b"").lower() == b"https"
        for key in (b"UWSGI_SCHEME", b"wsgi.url_scheme", b"REQUEST_SCHEME")
    )


def _first_header(headers: Headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _asks_close(headers: Headers) -> bool:
    return any(
        token.strip().lower() == b"close"
        for key, value in headers
        if key == b"connection"
        for token in value.split(b",")
    )


class UWSGIConnection(H1Connection):
    """One uwsgi connection from a front server, with H1Connection's interface.

    Requests arrive as uwsgi packets; the body reader, response writer, keep-alive and
    pipelining rules are HTTP/1's, except that responses without Content-Length are
    delimited by closing (never chunked) and 1xx responses are not sent (the front
    server would take them for the final response). ``uwsgi_vars`` holds the variables
    of the current request as sent.
    """

    __slots__ = ("uwsgi_vars",)

    def __init__(
        self,
        limits: Limits | None = None,
        policy: Policy | None = None,
        *,
        clock: Callable[[], float],
        trusted_forwarder: bool = False,
        server_header: bytes = b"gunicorn",
    ) -> None:
        self.uwsgi_vars: dict[bytes, bytes] = {}
        super().__init__(
            limits,
            policy,
            clock=clock,
            trusted_forwarder=trusted_forwarder,
            server_header=server_header,
            chunked_responses=False,
        )

    def _take_head(self) -> Request | None:
        buf = self._unread()
        parsed = parse_uwsgi_packet(buf)
        if parsed is None:
            if not self._eof:
                return None
            if not buf:
                self._peer_closed()
                return None
            raise NoMoreData("connection closed in a uwsgi packet")
        request, consumed, self.uwsgi_vars = parsed
        self._check_limits(request)
        self._skip_to(self._pos + consumed)
        return request

    def _check_limits(self, request: Request) -> None:
        """The request line and header limits, measured as if the request were HTTP/1."""
        limits = self._limits
        line = len(request.method) + len(request.target) + len(b"  HTTP/1.1")
        if limits.max_request_line and line > limits.max_request_line:
            raise LimitRequestLine(f"request line longer than {limits.max_request_line} bytes")
        if len(request.headers) > limits.max_header_fields:
            raise LimitRequestHeaders("too many header fields")
        for name, value in request.headers:
            # "name: value" and CRLF, as an HTTP/1 field line counts.
            if len(name) + len(value) + 4 > limits.max_header_field_size:
                raise LimitRequestHeaders("header field too large")

    def _send_informational(self, event: InformationalResponse) -> bytes:
        return b""
