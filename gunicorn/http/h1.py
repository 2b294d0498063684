"""HTTP/1.x server connection: an incremental request reader and a response writer.

Theory of operation
-------------------
A connection has two halves, each with a small state machine:

* the *request* half (what the client sends): IDLE -> BODY -> DONE, where IDLE waits
  for a request head (RFC 9112 §2-§5), BODY delivers the content framed by
  Content-Length or chunked coding (§6, §7), and DONE holds any pipelined bytes until
  the response is complete;
* the *response* half (what we send): IDLE -> SEND_BODY -> DONE, driven by the events
  the adapter passes to ``send``; the allowed transitions are the table
  ``_SEND_TRANSITIONS``, anything else is an error.

When both halves are DONE and the connection may be kept alive, ``start_next_cycle``
resets them for the next request. A request whose body the application left unread is
drained (up to ``Limits.max_body_drain`` bytes) before the next request is parsed, or
the response closes the connection, so no body byte is ever taken for a request.

Framing decisions for responses live in ``framing.py``; field rules in ``headers.py``.
The reader never trusts a partial message: limits are checked as bytes arrive, so an
overlong request line or header section is refused without waiting for its end.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from http import HTTPStatus

from gunicorn.http import framing
from gunicorn.http.errors import (
    ChunkMissingTerminator,
    ExpectationFailed,
    InvalidChunkExtension,
    InvalidChunkSize,
    InvalidContentLength,
    InvalidHeader,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidRequestLine,
    InvalidRequestMethod,
    InvalidResponseHeader,
    InvalidTarget,
    InvalidTrailer,
    InvalidTransferEncoding,
    LimitRequestHeaders,
    LimitRequestLine,
    LocalProtocolError,
    MissingHost,
    NoMoreData,
    ObsoleteFolding,
    ProtocolError,
    ResponseStateError,
    UnsupportedHTTPVersion,
    UnsupportedTransferCoding,
)
from gunicorn.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Headers,
    InformationalResponse,
    Request,
    Response,
    Trailers,
)
from gunicorn.http.headers import (
    _KNOWN_HOSTS,
    _NAME_CACHE,
    FIELD_NAMES,
    FORBIDDEN_FIELD_BYTE_RE,
    FORBIDDEN_TRAILERS,
    HOP_BY_HOP,
    OWS,
    check_header_name,
    lower_field_names,
    lower_token,
    split_list,
    valid_host,
    validate_response_header,
    validate_response_status,
)
from gunicorn.http.limits import MAX_REQUEST_LINE, Limits, Policy


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Sentinel("NEED_DATA")
"""``next_event`` needs more bytes (``receive_data``) before it can say more."""
PAUSED = _Sentinel("PAUSED")
"""The request is complete; nothing more is read until the response is done."""

NextEvent = Event | _Sentinel

# Request-half states
IDLE = "IDLE"
BODY = "BODY"
DONE = "DONE"
CLOSED = "CLOSED"
ERROR = "ERROR"
SWITCHED = "SWITCHED"
# Response-half state (besides IDLE, DONE, ERROR, SWITCHED)
SEND_BODY = "SEND_BODY"

_SEND_TRANSITIONS: dict[tuple[str, type[Event]], str] = {
    (IDLE, InformationalResponse): IDLE,
    (IDLE, Response): SEND_BODY,
    (SEND_BODY, Data): SEND_BODY,
    (SEND_BODY, Trailers): SEND_BODY,
    (SEND_BODY, EndOfMessage): DONE,
    # Early hints once the final response has started are silently not sent.
    (SEND_BODY, InformationalResponse): SEND_BODY,
    (DONE, InformationalResponse): DONE,
    # After 101 or a 2xx to CONNECT the bytes belong to another protocol; an adapter
    # closing its (empty) HTTP body is harmless.
    (SWITCHED, EndOfMessage): SWITCHED,
}

# Request targets: printable ASCII only (RFC 9112 §3.2, RFC 3986 §2).
_TARGET_RE = re.compile(rb"[\x21-\x7e]+")
_VERSION_RE = re.compile(rb"HTTP/([0-9])\.([0-9])")
_SCHEME_RE = re.compile(rb"[A-Za-z][A-Za-z0-9+\-.]*")
_PORT_RE = re.compile(rb"[0-9]{1,5}")
_HEX_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")
# RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
_CHUNK_EXT_RE = re.compile(
    rb"(?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb"(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb'|"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"))?)*'
)
# Regular header lines, found all at once: each match starts at the LF that ends the
# previous line and ends at a CR followed by LF. Names are taken loosely (a single-byte
# scan is much cheaper than a character class) and proven by FIELD_NAMES, which only
# holds tokens without "_" (header_map applies to those, on the general path). Values
# with trailing whitespace (rare) do not match; the general path strips it.
_FIELD_LINE_RE = re.compile(rb"\n([^:]+):[ \t]*([^\r]*)(?<![ \t])\r(?=\n)")
# The usual request line: a common method, an origin-form target, HTTP/1.0 or 1.1.
# Anything else (absolute-form, CONNECT, other versions, errors) takes the slow path.
_FAST_LINE_RE = re.compile(rb"([A-Z]+) (/[!-~]*) HTTP/1\.([01])\r\n")
_FAST_METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"})
_VERSIONS = {b"0": (1, 0), b"1": (1, 1)}
# Bytes a field line may hold (RFC 9110 §5.5), for bytes.translate.
_FIELD_TEXT = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
# Controls other than HTAB inside a head whose CR and LF were already proven to pair up.
_HEAD_CTL_RE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_FORBIDDEN_VALUE_RE = FORBIDDEN_FIELD_BYTE_RE
_RESPONSE_SPECIAL = HOP_BY_HOP | {b"content-length", b"date", b"server"}

_CHUNKED = framing.CHUNKED
_LENGTH = framing.LENGTH
_CLOSE = framing.CLOSE
_NO_BODY = framing.NONE
_response_framing = framing.response_framing
_content_length_allowed = framing.content_length_allowed
_new_event = object.__new__

_NO_TOKENS: frozenset[bytes] = frozenset()


_NO_TRAILERS: Headers = []  # shared and never mutated (replaced when trailers are set)
# Connection values seen on nearly every request, mapped to their token sets.
_SIMPLE_CONNECTION: dict[bytes, frozenset[bytes]] = {
    value: frozenset({value.lower()})
    for value in (b"keep-alive", b"Keep-Alive", b"close", b"Close", b"upgrade", b"Upgrade")
}

_COMMON_METHODS = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE"}
)
_SPECIAL_FIELDS = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"content-type",
        b"connection",
        b"expect",
        b"upgrade",
    }
)
# Codings a server may see before "chunked"; we pass them to the application undecoded.
_KNOWN_CODINGS = frozenset({b"chunked", b"gzip", b"x-gzip", b"deflate", b"compress", b"identity"})
_MAX_CONTENT_LENGTH_DIGITS = 19
_LEADING_EMPTY_LINES = 16

_REASONS: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
_STATUS_LINES_11: dict[int, bytes] = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, phrase) for code, phrase in _REASONS.items()
}

_WEEKDAYS = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTHS = (
    b"Jan",
    b"Feb",
    b"Mar",
    b"Apr",
    b"May",
    b"Jun",
    b"Jul",
    b"Aug",
    b"Sep",
    b"Oct",
    b"Nov",
    b"Dec",
)
# "Server: ..." lines by the server_header they were built for (one or two per process).
_SERVER_LINES: dict[bytes, bytes] = {}

_date_second = -1
_date_value = b""
_date_line = b""
_line_second = -1.0


def http_date(now: float) -> bytes:
    """The IMF-fixdate (RFC 9110 §5.6.7) for the time ``now``, formatted once per second."""
    global _date_second, _date_value
    second = int(now)
    if second != _date_second:
        t = time.gmtime(second)
        _date_value = b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
            _WEEKDAYS[t.tm_wday],
            t.tm_mday,
            _MONTHS[t.tm_mon - 1],
            t.tm_year,
            t.tm_hour,
            t.tm_min,
            t.tm_sec,
        )
        _date_second = second
    return _date_value


def date_line(now: float) -> bytes:
    """``Date: <IMF-fixdate>`` and CRLF for ``now``, built once per second."""
    global _line_second, _date_line
    if not 0.0 <= now - _line_second < 1.0:
        second = int(now)
        _date_line = b"Date: " + http_date(second) + b"\r\n"
        _line_second = float(second)
    return _date_line


class H1Connection:
    """The server side of one HTTP/1.0 or HTTP/1.1 connection."""

    __slots__ = (
        "_buf",
        "_chunk_ext_bytes",
        "_chunk_remaining",
        "_chunk_state",
        "_chunked_responses",
        "_clock",
        "_close_requested",
        "_continue_sent",
        "_crlf_count",
        "_crlf_next",
        "_discarding",
        "_drained",
        "_empty_lines",
        "_eof",
        "_error",
        "_first_crlf",
        "_framing",
        "_keep_alive",
        "_last_crlf",
        "_limits",
        "_line_limit",
        "_our_state",
        "_policy",
        "_pos",
        "_remaining",
        "_request",
        "_resp_remaining",
        "_resp_trailers",
        "_scan_from",
        "_server_line",
        "_their_state",
        "_trusted",
        "body_dropped",
        "body_sent",
    )

    def __init__(
        self,
        limits: Limits | None = None,
        policy: Policy | None = None,
        *,
        clock: Callable[[], float],
        trusted_forwarder: bool = False,
        server_header: bytes = b"gunicorn",
        chunked_responses: bool = True,
    ) -> None:
        self._limits = limits if limits is not None else Limits()
        self._policy = policy if policy is not None else Policy()
        self._line_limit = self._limits.max_request_line or MAX_REQUEST_LINE * 16
        self._clock = clock
        self._trusted = trusted_forwarder
        line = _SERVER_LINES.get(server_header)
        if line is None:
            line = b"Server: %s\r\n" % server_header if server_header else b""
            if len(_SERVER_LINES) < 16:
                _SERVER_LINES[server_header] = line
        self._server_line = line
        self._chunked_responses = chunked_responses
        # Unread bytes are self._buf[self._pos:]. Offsets kept while an incomplete head
        # or section is scanned (_scan_from, _crlf_*) are relative to self._pos, so each
        # read is scanned once however small the reads are.
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._eof = False
        self._reset_scan()
        self._error: ProtocolError | None = None
        self._close_requested = False
        self._drained = 0
        self._reset_cycle()

    def _reset_cycle(self) -> None:
        self._their_state = IDLE
        self._our_state = IDLE
        self._empty_lines = 0
        self._request: Request | None = None
        self._remaining = 0
        self._chunk_state = ""
        self._chunk_remaining = 0
        self._chunk_ext_bytes = 0
        self._continue_sent = False
        self._discarding = False
        self._framing = _NO_BODY
        self._keep_alive = True
        self._resp_remaining = 0
        self._resp_trailers: Headers = _NO_TRAILERS
        self.body_dropped = False
        self.body_sent = 0

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the peer; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
            return
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            self._buf = data
            self._pos = 0
        elif type(buf) is bytes:
            joined = bytearray(memoryview(buf)[pos:])
            joined += data
            self._buf = joined
            self._pos = 0
        else:
            assert isinstance(buf, bytearray)
            if pos > 65536 and pos * 2 > len(buf):
                del buf[:pos]
                self._pos = 0
            buf += data

    @property
    def request(self) -> Request | None:
        """The request being answered, if any."""
        return self._request

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """Bytes received but not parsed, and whether the peer closed: for hand-offs
        after an Upgrade or CONNECT, and for HTTP/2 prior-knowledge detection."""
        return self._unread(), self._eof

    def _unread(self) -> bytes:
        return bytes(memoryview(self._buf)[self._pos :])

    def _take(self, end: int) -> bytes:
        """Consume and return the unread bytes up to absolute offset ``end``."""
        buf = self._buf
        pos = self._pos
        if end >= len(buf):
            self._buf = b""
            self._pos = 0
            if pos == 0 and type(buf) is bytes:
                return buf
        else:
            self._pos = end
        if type(buf) is bytes:
            return buf[pos:end]
        return bytes(memoryview(buf)[pos:end])

    def _skip_to(self, end: int) -> None:
        if end >= len(self._buf):
            self._buf = b""
            self._pos = 0
        else:
            self._pos = end

    def _reset_scan(self) -> None:
        self._scan_from = 0
        self._crlf_count = 0
        self._crlf_next = 0
        self._first_crlf = -1
        self._last_crlf = -1

    def next_event(self) -> NextEvent:
        """The next event from the peer, ``NEED_DATA`` or ``PAUSED``."""
        state = self._their_state
        if state is IDLE:
            if self._pos >= len(self._buf) and not self._eof:
                return NEED_DATA  # nothing buffered: nothing to scan
            try:
                request = self._take_head()
            except ProtocolError as exc:
                raise self._fail(exc) from None
            if request is None:
                if self._their_state is CLOSED:
                    return ConnectionClosed()
                return NEED_DATA
            self._request = request
            self._their_state = BODY
            if request.chunked:
                self._chunk_state = "size"
            else:
                # With nothing to read, EndOfMessage comes next.
                self._remaining = request.content_length or 0
            return request
        if state is BODY:
            if self._discarding:
                return self._discard_body()
            if self._remaining or self._chunk_state:
                return self._read_body()
            self._their_state = DONE
            end: EndOfMessage = _new_event(EndOfMessage)
            end.stream_id = 1
            end.trailers = []
            return end
        if state is DONE or state is SWITCHED:
            return PAUSED
        if state is CLOSED:
            return ConnectionClosed()
        assert self._error is not None
        raise self._error

    # -------------------------------------------------------------- the head

    def _fail(self, exc: ProtocolError) -> ProtocolError:
        self._their_state = ERROR
        self._error = exc
        self._keep_alive = False
        return exc

    def _take_head(self) -> Request | None:
        """Parse a complete request head out of the buffer; None when more bytes are
        needed (or the peer closed between requests, leaving the state CLOSED).
        Subclasses for other wire formats (uwsgi) replace this method."""
        buf = self._buf
        pos = self._pos
        scanned = self._scan_from
        if scanned:
            # Resume the search where the last call stopped (minus a partial CRLFCRLF).
            end = buf.find(b"\r\n\r\n", pos + scanned - 3 if scanned > 3 else pos)
        else:
            # RFC 9112 §2.2: ignore empty lines received before a request line.
            if pos < len(buf) and buf[pos] == 13 and buf.startswith(b"\r\n", pos):
                skip = pos + 2
                while buf.startswith(b"\r\n", skip):
                    skip += 2
                self._empty_lines += (skip - pos) // 2
                if self._empty_lines > _LEADING_EMPTY_LINES:
                    raise InvalidRequestLine("too many empty lines before the request line")
                self._skip_to(skip)
                buf = self._buf
                pos = self._pos
            end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            if self._eof:
                if pos >= len(buf):
                    self._their_state = CLOSED
                    return None
                raise NoMoreData("connection closed in the request head")
            self._check_partial_head()
            return None
        # The head keeps the CRLF of its last line, so every line ends with CRLF.
        if end + 4 == len(buf) and not pos and buf.__class__ is bytes:
            head = buf[: end + 2]  # the usual case: one read held exactly one head
            self._buf = b""
        else:
            head = self._take(end + 2)
            self._skip_to(end + 4)
        if scanned or self._crlf_count:
            self._reset_scan()
        return self._parse_head(head)

    def _scan_partial(self, request_line: bool) -> None:
        """Scan the bytes of an incomplete head (or trailer section) received since the
        last call: refuse bare CR and LF, and note where lines end."""
        buf = self._buf
        pos = self._pos
        size = len(buf)
        start = pos + self._scan_from
        found = buf.find(b"\r\n", max(start, pos + self._crlf_next))
        while found >= 0:
            relative = found - pos
            if self._first_crlf < 0:
                self._first_crlf = relative
            self._last_crlf = relative
            self._crlf_count += 1
            self._crlf_next = relative + 2
            found = buf.find(b"\r\n", found + 2)
        found = buf.find(b"\n", start)
        while found >= 0:
            if found == pos or buf[found - 1] != 13:
                self._refuse_bare(request_line, found - pos, "LF")
            found = buf.find(b"\n", found + 1)
        found = buf.find(b"\r", start)
        while 0 <= found < size - 1:
            if buf[found + 1] != 10:
                self._refuse_bare(request_line, found - pos, "CR")
            found = buf.find(b"\r", found + 1)
        self._scan_from = max(size - pos - 1, 0)

    def _refuse_bare(self, request_line: bool, offset: int, what: str) -> None:
        if request_line and (self._first_crlf < 0 or offset < self._first_crlf):
            raise InvalidRequestLine(f"bare {what} in the request line")
        raise InvalidHeader(f"bare {what} in the header section")

    def _check_partial_head(self) -> None:
        """Refuse an incomplete head as soon as it breaks a rule or a limit."""
        self._scan_partial(True)
        size = len(self._buf) - self._pos
        limits = self._limits
        first_end = self._first_crlf
        if first_end < 0:
            if size >= self._line_limit + 2:
                raise LimitRequestLine(f"request line longer than {self._line_limit} bytes")
            return
        if first_end > self._line_limit:
            raise LimitRequestLine(f"request line longer than {self._line_limit} bytes")
        if size - first_end > limits.max_header_section:
            raise LimitRequestHeaders("header section too large")
        if size - self._last_crlf - 2 > limits.max_header_field_size + 1:
            raise LimitRequestHeaders("header field too large")
        if self._crlf_count > limits.max_header_fields + 1 and not (
            self._policy.permit_obsolete_folding
        ):
            raise LimitRequestHeaders("too many header fields")

    def _parse_head(self, head: bytes) -> Request:
        """Parse a request head whose every line ends with CRLF."""
        match = _FAST_LINE_RE.match(head)
        if match is not None:
            method, target, minor = match.groups()
            start = match.end() - 1  # the LF that ends the request line
            # Other methods, an overlong line and a "#" (refused by _build_request, with
            # its message) take the general path.
            if method not in _FAST_METHODS or start - 1 > self._line_limit or 35 in target:
                match = None
        if match is not None:
            version = _VERSIONS[minor]
        else:
            line_end = head.find(b"\r\n")
            line = head[:line_end]
            if len(line) > self._line_limit:
                raise LimitRequestLine(f"request line longer than {self._line_limit} bytes")
            if 10 in line or 13 in line:
                self._raise_bare_cr_lf(head)
            method, target, version = self._parse_request_line(line)
            start = line_end + 1
        if start + 1 == len(head):
            return self._build_request(method, target, version, [])
        limits = self._limits
        # Fast path. One translate pass keeps only the bytes outside the field-value set
        # (the request line has none); when those are exactly one CRLF per line, CRs
        # and LFs alternate and no other byte is out of place. Every match starts at an
        # LF and ends at a CR that an LF follows, so as many matches as header lines
        # means each match is exactly one line: "name: value", no bare CR, no trailing
        # space. Names are then proven by the FIELD_NAMES cache (or lower_field_names).
        # The size check means no line can be too long. Anything else takes the
        # general path, which also gives the precise error.
        pairs = _FIELD_LINE_RE.findall(head, start)
        count = len(pairs)
        headers: Headers | None = None
        if (
            count <= limits.max_header_fields
            and len(head) - start <= limits.max_header_field_size
            and head.translate(None, _FIELD_TEXT) == b"\r\n" * (count + 1)
        ):
            try:
                headers = [(FIELD_NAMES[name], value) for name, value in pairs]
            except KeyError:
                headers = lower_field_names(pairs)
        if headers is None:
            crlf = head.count(b"\r\n")
            if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
                self._raise_bare_cr_lf(head)
            block = head[start + 1 :]
            headers = self._parse_fields(block[:-2].split(b"\r\n"), 0, block)
        return self._build_request(method, target, version, headers)

    @staticmethod
    def _raise_bare_cr_lf(head: bytes) -> None:
        line = head.split(b"\r\n", 1)[0]
        if b"\n" in line:
            raise InvalidRequestLine("bare LF in the request line")
        if b"\r" in line:
            raise InvalidRequestLine("bare CR in the request line")
        if b"\n" in head.replace(b"\r\n", b""):
            raise InvalidHeader("bare LF in the header section")
        raise InvalidHeader("bare CR in the header section")

    def _parse_request_line(self, line: bytes) -> tuple[bytes, bytes, tuple[int, int]]:
        parts = line.split(b" ")
        if len(parts) != 3:
            raise InvalidRequestLine(f"malformed request line {line[:64]!r}")
        method, target, vtext = parts
        if method not in _COMMON_METHODS:
            method = self._check_method(method)
        if vtext == b"HTTP/1.1":
            version = (1, 1)
        elif vtext == b"HTTP/1.0":
            version = (1, 0)
        else:
            match = _VERSION_RE.fullmatch(vtext)
            if match is None:
                raise InvalidHTTPVersion(f"invalid HTTP version {vtext[:16]!r}")
            version = (int(match.group(1)), int(match.group(2)))
            if not self._policy.permit_unconventional_http_version:
                raise UnsupportedHTTPVersion(f"unsupported HTTP version {vtext!r}")
        if _TARGET_RE.fullmatch(target) is None:
            raise InvalidTarget(f"invalid request target {target[:64]!r}")
        return method, target, version

    def _check_method(self, method: bytes) -> bytes:
        policy = self._policy
        if lower_token(method) is None:
            raise InvalidRequestMethod(f"invalid method {method[:32]!r}")
        # As gunicorn: lowercase is refused unless unconventional methods are permitted;
        # casefolding then applies to what was accepted.
        if not policy.permit_unconventional_http_method and (
            not 3 <= len(method) <= 20 or method.upper() != method or b"#" in method
        ):
            raise InvalidRequestMethod(f"unconventional method {method[:32]!r}")
        if policy.casefold_http_method:
            method = method.upper()
        return method

    def _parse_fields(self, lines: list[bytes], start: int, block: bytes) -> Headers:
        """Header (or trailer) lines -> (lowercase name, value) pairs."""
        limits = self._limits
        policy = self._policy
        if _HEAD_CTL_RE.search(block) is not None:
            raise InvalidHeader("control character in the header section")
        if len(lines) - start > limits.max_header_fields and not policy.permit_obsolete_folding:
            raise LimitRequestHeaders("too many header fields")
        max_size = limits.max_header_field_size
        headers: Headers = []
        append = headers.append
        for index in range(start, len(lines)):
            line = lines[index]
            if len(line) > max_size:
                raise LimitRequestHeaders("header field too large")
            first = line[:1]
            if first == b" " or first == b"\t":
                # RFC 9112 §5.2: obs-fold; only a continuation of a previous field.
                if not headers:
                    raise InvalidHeader("whitespace before the first header field")
                if not policy.permit_obsolete_folding:
                    raise ObsoleteFolding("obsolete line folding")
                name, value = headers[-1]
                headers[-1] = (name, (value + b" " + line.strip(OWS)).strip(OWS))
                continue
            raw_name, colon, value = line.partition(b":")
            if not colon:
                raise InvalidHeader(f"header line without a colon {line[:64]!r}")
            lowered = lower_token(raw_name)
            if lowered is None:
                if not raw_name:
                    raise InvalidHeaderName("empty header name")
                lowered = check_header_name(raw_name, policy.strip_header_spaces)
            name = lowered
            if b"_" in name:
                header_map = policy.header_map
                if header_map != "dangerous" and not (
                    self._trusted and name in policy.forwarder_headers
                ):
                    if header_map == "refuse":
                        raise InvalidHeaderName(f"underscore in header name {raw_name[:64]!r}")
                    continue
            append((name, value.strip(OWS)))
        if len(headers) > limits.max_header_fields:
            raise LimitRequestHeaders("too many header fields")
        return headers

    def _build_request(
        self, method: bytes, target: bytes, version: tuple[int, int], headers: Headers
    ) -> Request:
        scheme: bytes | None = None
        authority: bytes | None = None
        query = b""
        if target[0] == 47:  # "/": origin-form
            if 35 in target:  # "#"
                raise InvalidTarget("fragment in request target")
            path, _, query = target.partition(b"?")
            if method == b"CONNECT":
                raise InvalidTarget("CONNECT needs an authority-form target")
        elif method == b"CONNECT":
            authority = self._authority_form(target)
            path = b""
        elif target == b"*":
            if method != b"OPTIONS":
                raise InvalidTarget("asterisk-form is only allowed with OPTIONS")
            path = b"*"
        elif b"://" in target:
            scheme, authority, path, query = self._absolute_form(target)
        else:
            raise InvalidTarget(f"invalid request target {target[:64]!r}")

        content_length: int | None = None
        codings: list[bytes] | None = None
        host: bytes | None = None
        content_type_seen = False
        connection: frozenset[bytes] | set[bytes] = _NO_TOKENS
        expect_continue = False
        upgrade: bytes | None = None
        special = _SPECIAL_FIELDS
        for name, value in headers:
            if name not in special:
                continue
            if name == b"host":
                if host is not None:
                    raise InvalidHeader("duplicate Host header")
                if value not in _KNOWN_HOSTS and not valid_host(value):
                    raise InvalidHeader(f"invalid Host header {value[:64]!r}")
                host = value
            elif name == b"connection":
                simple = _SIMPLE_CONNECTION.get(value)
                tokens = (
                    simple
                    if simple is not None
                    else {item.lower() for item in split_list(value) if item}
                )
                connection = connection | tokens if connection else tokens
            elif name == b"content-length":
                if content_length is not None:
                    raise InvalidContentLength("duplicate Content-Length header")
                if not value.isdigit() or len(value) > _MAX_CONTENT_LENGTH_DIGITS:
                    raise InvalidContentLength(f"invalid Content-Length {value[:32]!r}")
                content_length = int(value)
            elif name == b"content-type":
                if content_type_seen:
                    raise InvalidHeader("duplicate Content-Type header")
                content_type_seen = True
            elif name == b"transfer-encoding":
                if codings is None:
                    codings = []
                codings.extend(item.lower() for item in split_list(value))
            elif name == b"expect":
                if version >= (1, 1):
                    if value.lower() != b"100-continue":
                        raise ExpectationFailed(f"unsupported expectation {value[:32]!r}")
                    expect_continue = True
            elif upgrade is None:  # upgrade
                offered = [item for item in split_list(value) if item]
                upgrade = offered[0].lower() if offered else b""

        if version >= (1, 1):
            if host is None:
                raise MissingHost("missing Host header")
            keep_alive = b"close" not in connection
        else:
            keep_alive = b"keep-alive" in connection
        if authority is None:
            authority = host

        chunked = False
        if codings is not None:
            chunked = self._check_codings(codings, version, content_length)
            if len(codings) > 1:
                # Codings before chunked reach the application undecoded, and the
                # connection is not reused after such a message.
                keep_alive = False
        if method == b"CONNECT":
            keep_alive = False
        if b"upgrade" not in connection:
            upgrade = None
        if not (content_length or chunked):
            expect_continue = False
        # Set field by field: the keyword call of Request(...) costs more than the rest
        # of this function's bookkeeping. Every slot is set.
        request: Request = _new_event(Request)
        request.stream_id = 1
        request.method = method
        request.target = target
        request.version = version
        request.headers = headers
        request.path = path
        request.query = query
        request.fragment = b""
        request.scheme = scheme
        request.authority = authority
        request.content_length = None if chunked else content_length
        request.chunked = chunked
        request.keep_alive = keep_alive
        request.expect_continue = expect_continue
        request.upgrade = upgrade
        return request

    @staticmethod
    def _check_codings(
        codings: list[bytes], version: tuple[int, int], content_length: int | None
    ) -> bool:
        # RFC 9112 §6.1 and §6.3: chunked must be the final coding, once; a message
        # with both framings is refused (a smuggling vector); 1.0 has no chunked coding.
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

    @staticmethod
    def _authority_form(target: bytes) -> bytes:
        host, colon, port = target.rpartition(b":")
        if not colon or not host or _PORT_RE.fullmatch(port) is None:
            raise InvalidTarget("CONNECT target must be host:port")
        if not valid_host(host) or b"/" in target or b"@" in target:
            raise InvalidTarget(f"invalid CONNECT target {target[:64]!r}")
        return target

    @staticmethod
    def _absolute_form(target: bytes) -> tuple[bytes, bytes, bytes, bytes]:
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

    # -------------------------------------------------------------- the body

    def _read_body(self) -> NextEvent:
        if self._chunk_state:
            try:
                return self._read_chunked()
            except ProtocolError as exc:
                raise self._fail(exc) from None
        remaining = self._remaining
        if not remaining:
            self._their_state = DONE
            return EndOfMessage()
        available = len(self._buf) - self._pos
        if not available:
            if self._eof:
                raise self._fail(NoMoreData("connection closed in the request body"))
            return NEED_DATA
        data = self._take(self._pos + min(available, remaining))
        self._remaining = remaining - len(data)
        return Data(data)

    def _read_chunked(self) -> NextEvent:
        limits = self._limits
        while True:
            buf = self._buf
            pos = self._pos
            available = len(buf) - pos
            state = self._chunk_state
            if state == "data":
                if not available:
                    break
                remaining = self._chunk_remaining
                data = self._take(pos + min(available, remaining))
                self._chunk_remaining = remaining - len(data)
                if not self._chunk_remaining:
                    self._chunk_state = "data-end"
                return Data(data)
            if state == "size":
                end = buf.find(b"\r\n", pos + self._scan_from)
                if end < 0:
                    lf = buf.find(b"\n", pos + self._scan_from)
                    if lf >= 0:
                        self._refuse_chunk_line(buf[pos:lf], "bare LF")
                    if available > limits.max_header_field_size:
                        self._refuse_chunk_line(buf[pos:], "too long")
                    self._scan_from = max(available - 1, 0)
                    break
                self._scan_from = 0
                line = self._take(end)
                self._skip_to(end + 2)
                if len(line) > limits.max_header_field_size:
                    self._refuse_chunk_line(line, "too long")
                self._chunk_state = self._parse_chunk_size(line)
                continue
            if state == "data-end":
                if available < 2:
                    if available and buf[pos] != 13:
                        raise ChunkMissingTerminator("chunk data longer than its size")
                    break
                if buf[pos] != 13 or buf[pos + 1] != 10:
                    raise ChunkMissingTerminator("chunk data not followed by CRLF")
                self._skip_to(pos + 2)
                self._chunk_state = "size"
                continue
            # trailers (RFC 9112 §7.1.2)
            if not self._scan_from and buf.startswith(b"\r\n", pos):
                self._skip_to(pos + 2)
                return self._end_chunked([])
            end = buf.find(b"\r\n\r\n", pos + max(self._scan_from - 3, 0))
            if end < 0:
                self._scan_partial(False)
                if available > limits.max_header_section:
                    raise LimitRequestHeaders("trailer section too large")
                break
            self._reset_scan()
            block = self._take(end + 2)
            self._skip_to(end + 4)
            crlf = block.count(b"\r\n")
            if block.count(b"\n") != crlf or block.count(b"\r") != crlf:
                raise InvalidHeader("bare CR or LF in the trailer section")
            trailers = self._parse_fields(block[:-2].split(b"\r\n"), 0, block)
            for name, _ in trailers:
                if name in FORBIDDEN_TRAILERS:
                    raise InvalidTrailer(f"{name.decode('latin-1')} is not allowed as a trailer")
            return self._end_chunked(trailers)
        if self._eof:
            raise ChunkMissingTerminator("connection closed in a chunked body")
        return NEED_DATA

    @staticmethod
    def _refuse_chunk_line(line: bytes | bytearray, why: str) -> None:
        if b";" in line:
            raise InvalidChunkExtension(f"chunk extension: {why}")
        raise InvalidChunkSize(f"chunk size line: {why}")

    def _parse_chunk_size(self, line: bytes) -> str:
        size_text, semi, ext = line.partition(b";")
        if semi:
            size_text = size_text.rstrip(OWS)
            if b"\r" in ext or b"\n" in ext:
                raise InvalidChunkExtension("bare CR or LF in chunk extension")
            self._chunk_ext_bytes += len(ext) + 1
            if self._chunk_ext_bytes > self._limits.max_chunk_extensions:
                raise InvalidChunkExtension("chunk extensions too large")
            if _CHUNK_EXT_RE.fullmatch(b";" + ext) is None:
                raise InvalidChunkExtension(f"invalid chunk extension {ext[:32]!r}")
        if _HEX_RE.fullmatch(size_text) is None:
            raise InvalidChunkSize(f"invalid chunk size {size_text[:32]!r}")
        size = int(size_text, 16)
        if size == 0:
            return "trailers"
        self._chunk_remaining = size
        return "data"

    def _end_chunked(self, trailers: Headers) -> EndOfMessage:
        self._chunk_state = ""
        self._their_state = DONE
        return EndOfMessage(trailers)

    def _discard_body(self) -> NextEvent:
        """Read and drop the rest of a body the application did not read."""
        while True:
            event = self._read_body()
            if type(event) is Data:
                self._drained += len(event.data)
                if self._drained > self._limits.max_body_drain:
                    self._their_state = CLOSED
                    return ConnectionClosed()
                continue
            if type(event) is EndOfMessage:
                self._reset_cycle()
                return self.next_event()
            return event

    # ---------------------------------------------------------------- output

    @property
    def keep_alive(self) -> bool:
        """Whether the connection will carry another request after this response."""
        if self._close_requested or self._their_state is ERROR:
            return False
        if self._our_state is IDLE:
            request = self._request
            return request is not None and request.keep_alive
        return self._keep_alive

    @property
    def response_started(self) -> bool:
        return self._our_state is not IDLE

    @property
    def response_complete(self) -> bool:
        return self._our_state is DONE

    def close_after_response(self) -> None:
        """The server will close once this response is done (Connection: close)."""
        self._close_requested = True

    def send_continue(self) -> bytes:
        """``100 Continue`` for a request that waits for it, once; else nothing."""
        request = self._request
        if (
            request is None
            or not request.expect_continue
            or self._continue_sent
            or self._our_state is not IDLE
            or self._their_state is not BODY
        ):
            return b""
        self._continue_sent = True
        return b"HTTP/1.1 100 Continue\r\n\r\n"

    def send(self, event: Event) -> bytes:
        """Bytes to write for a response event (framing rules applied)."""
        kind = type(event)
        state = self._our_state
        # The usual sequence first: Response in IDLE, Data and EndOfMessage in SEND_BODY.
        if state is SEND_BODY:
            if kind is Data:
                return self._send_data(event.data)  # type: ignore[attr-defined]
            if kind is EndOfMessage:
                return self._send_end(event.trailers or self._resp_trailers)  # type: ignore[attr-defined]
        elif kind is Response and state is IDLE and self._request is not None:
            return self._send_head(event)  # type: ignore[arg-type]
        if (state, kind) not in _SEND_TRANSITIONS or self._request is None:
            raise ResponseStateError(f"cannot send {kind.__name__} in state {state}")
        if kind is Data:
            return self._send_data(event.data)  # type: ignore[attr-defined]
        if kind is Response:
            return self._send_head(event)  # type: ignore[arg-type]
        if kind is EndOfMessage:
            if state is SWITCHED:
                return b""
            return self._send_end(event.trailers or self._resp_trailers)  # type: ignore[attr-defined]
        if kind is Trailers:
            self._resp_trailers = self._checked_trailers(event.headers)  # type: ignore[attr-defined]
            return b""
        if state is not IDLE:
            return b""
        return self._send_informational(event)  # type: ignore[arg-type]

    def _status_line(self, status: int, reason: bytes, version: tuple[int, int]) -> bytes:
        if version == (1, 0):
            return b"HTTP/1.0 %d %s\r\n" % (status, reason or _REASONS.get(status, b""))
        if not reason:
            line = _STATUS_LINES_11.get(status)
            if line is not None:
                return line
        return b"HTTP/1.1 %d %s\r\n" % (status, reason or _REASONS.get(status, b""))

    def _send_informational(self, event: InformationalResponse) -> bytes:
        request = self._request
        assert request is not None
        status = event.status
        if not 100 <= status < 200:
            raise ResponseStateError(f"informational status must be 1xx, not {status}")
        if status == 101:
            return self._send_head(Response(101, event.headers, event.reason))
        validate_response_status(status, event.reason)
        lines = [self._status_line(status, event.reason, (1, 1))]
        for name, value in event.headers:
            lowered = validate_response_header(name, value)
            if lowered in HOP_BY_HOP or lowered == b"content-length":
                continue
            lines.append(b"%s: %s\r\n" % (name, value.strip(OWS)))
        if not framing.early_hints_allowed(request.version, False):
            return b""
        lines.append(b"\r\n")
        return b"".join(lines)

    def _send_head(self, event: Response) -> bytes:
        request = self._request
        assert request is not None
        status = event.status
        reason = event.reason
        if reason or status not in _REASONS:
            validate_response_status(status, reason)
        method = request.method
        version = request.version
        # parts[0:4] are the status line and our own fields, filled in once known.
        parts = [b"", b"", b"", b""]
        add = parts.extend
        content_length: int | None = None
        length_at = 0
        has_date = has_server = False
        cache = _NAME_CACHE
        forbidden = _FORBIDDEN_VALUE_RE.search
        for name, value in event.headers:
            lowered = cache.get(name)
            if lowered is None:
                lowered = validate_response_header(name, value)
            elif forbidden(value) is not None:
                raise InvalidResponseHeader(f"invalid value for header {name!r}")
            if lowered in _RESPONSE_SPECIAL:
                if lowered == b"content-length":
                    if not value.isdigit():
                        value = value.strip(OWS)
                        if not value.isdigit():
                            raise InvalidResponseHeader(f"invalid Content-Length {value[:32]!r}")
                    if len(value) > _MAX_CONTENT_LENGTH_DIGITS:
                        raise InvalidResponseHeader(f"invalid Content-Length {value[:32]!r}")
                    length = int(value)
                    if content_length is not None:
                        if content_length != length:
                            raise InvalidResponseHeader("conflicting Content-Length headers")
                        continue
                    content_length = length
                    length_at = len(parts)
                elif lowered == b"date":
                    has_date = True
                elif lowered == b"server":
                    has_server = True
                elif status != 101 or (lowered != b"upgrade" and lowered != b"connection"):
                    continue  # hop-by-hop: the server manages the connection
            add((name, b": ", value, b"\r\n"))

        body_framing, keep_alive = _response_framing(
            method,
            status,
            version,
            content_length,
            self._chunked_responses,
            request.keep_alive and not self._close_requested,
        )
        if keep_alive and self._their_state is BODY and not self._discarding:
            keep_alive = self._can_drain(request)
        self._keep_alive = keep_alive
        self._framing = body_framing
        self._resp_remaining = content_length or 0
        if length_at and body_framing is _NO_BODY and not _content_length_allowed(method, status):
            parts[length_at : length_at + 4] = ()

        line = None if reason or version != (1, 1) else _STATUS_LINES_11.get(status)
        parts[0] = line if line is not None else self._status_line(status, reason, version)
        if not has_server:
            parts[1] = self._server_line
        if not has_date:
            parts[2] = date_line(self._clock())
        if status == 101:
            self._our_state = SWITCHED
            self._their_state = SWITCHED
        else:
            parts[3] = b"Connection: keep-alive\r\n" if keep_alive else b"Connection: close\r\n"
            if body_framing is _CHUNKED:
                parts.append(b"Transfer-Encoding: chunked\r\n")
            self._our_state = SEND_BODY
            if method == b"CONNECT" and 200 <= status < 300:
                # A tunnel: the response has no body and the client's next bytes are
                # not HTTP (trailing_data hands them over).
                self._their_state = SWITCHED
        parts.append(b"\r\n")
        return b"".join(parts)

    def _can_drain(self, request: Request) -> bool:
        """Before answering a request whose body is unread: can we skip the rest of it?"""
        if request.expect_continue and not self._continue_sent:
            return False  # the client may be waiting for us and never send it
        if request.chunked:
            return True  # drained up to max_body_drain, else the connection closes
        return self._remaining <= self._limits.max_body_drain

    def _send_data(self, data: bytes) -> bytes:
        if not data:
            return b""
        body_framing = self._framing
        if body_framing is _CHUNKED:
            self.body_sent += len(data)
            return b"%x\r\n%b\r\n" % (len(data), data)
        if body_framing is _LENGTH:
            remaining = self._resp_remaining
            if len(data) > remaining:
                # Never write past the declared length; the framing is now wrong.
                data = data[:remaining]
                self._keep_alive = False
            self._resp_remaining = remaining - len(data)
            self.body_sent += len(data)
            return data
        if body_framing is _CLOSE:
            self.body_sent += len(data)
            return data
        self.body_dropped = True
        return b""

    def file_segment(self, count: int) -> tuple[bytes, int, bytes]:
        """Framing for ``count`` body bytes a driver writes itself (sendfile): the bytes
        to write before them, how many of them may be written, and the bytes after.
        Counts toward Content-Length like ``send(Data(...))`` would."""
        if self._our_state is not SEND_BODY:
            raise ResponseStateError(f"cannot send a body in state {self._our_state}")
        body_framing = self._framing
        if count <= 0:
            return b"", 0, b""
        if body_framing is _CHUNKED:
            self.body_sent += count
            return framing.chunk_header(count), count, framing.CHUNK_END
        if body_framing is _LENGTH:
            remaining = self._resp_remaining
            if count > remaining:
                count = remaining
                self._keep_alive = False
            self._resp_remaining = remaining - count
            self.body_sent += count
            return b"", count, b""
        if body_framing is _CLOSE:
            self.body_sent += count
            return b"", count, b""
        self.body_dropped = True
        return b"", 0, b""

    def _checked_trailers(self, trailers: Headers) -> Headers:
        checked: Headers = []
        for name, value in trailers:
            lowered = validate_response_header(name, value)
            if lowered in FORBIDDEN_TRAILERS or lowered in HOP_BY_HOP:
                raise InvalidResponseHeader(f"{name!r} is not allowed as a trailer")
            checked.append((name, value.strip(OWS)))
        return checked

    def _send_end(self, trailers: Headers) -> bytes:
        self._our_state = DONE
        body_framing = self._framing
        if body_framing is _CHUNKED:
            if not trailers:
                return framing.LAST_CHUNK
            lines = [b"0\r\n"]
            lines.extend(b"%s: %s\r\n" % pair for pair in self._checked_trailers(trailers))
            lines.append(b"\r\n")
            return b"".join(lines)
        if body_framing is _LENGTH and self._resp_remaining:
            self._keep_alive = False  # the body was shorter than announced
        return b""

    def error_response(self, exc: ProtocolError | LocalProtocolError) -> bytes:
        """A complete error response that closes the connection (b"" once a response
        has started: then the only thing left to do is to close)."""
        self._keep_alive = False
        self._close_requested = True
        if self._our_state is not IDLE:
            return b""
        self._our_state = DONE
        status = exc.status
        reason = exc.reason.encode("latin-1")
        # A client error says what was wrong with the request; a server error says
        # nothing about the server (its details go to the error log).
        detail = str(exc) if status < 500 else ""
        detail = detail.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = (
            b"<!DOCTYPE html><html><head><title>%d %s</title></head>"
            b"<body><h1>%d %s</h1><p>%s</p></body></html>\n"
            % (status, reason, status, reason, detail.encode("ascii", "backslashreplace"))
        )
        head = [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            self._server_line,
            date_line(self._clock()),
            b"Connection: close\r\n",
            b"Content-Type: text/html; charset=utf-8\r\n",
            b"Content-Length: %d\r\n\r\n" % len(body),
        ]
        request = self._request
        if request is not None and request.method == b"HEAD":
            body = b""
        return b"".join(head) + body

    def start_next_cycle(self) -> None:
        """Get ready for the next request once the response is complete."""
        if self._our_state is not DONE:
            raise ResponseStateError("the response is not complete")
        # As the keep_alive property, once the response is done.
        if not self._keep_alive or self._close_requested or self._their_state is ERROR:
            raise ResponseStateError("the connection is not reusable")
        if self._their_state is DONE or (
            self._their_state is BODY and not self._remaining and not self._chunk_state
        ):
            self._reset_cycle()  # complete, or a request without a body
            return
        # The application did not read the whole body: skip it before the next head.
        self._our_state = IDLE
        self._discarding = True
        self._drained = 0
