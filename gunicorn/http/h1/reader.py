"""The incremental request-head reader (RFC 9112 §2-§5).

A head is parsed once it is complete; until then each read is scanned once, so limits
and bare CR/LF are refused as bytes arrive, without waiting for the end of an overlong
request line or header section. The request line is checked as soon as it is complete.

The usual head takes a fast path (one regular expression for the request line, one
``translate`` over the header block, a cache of field names); everything else, and
every error, goes through the general parser, which gives the same results: the corpus
tests compare both on every case.
"""

from __future__ import annotations

import re
from typing import NoReturn

from gunicorn.http.errors import (
    ExpectationFailed,
    InvalidContentLength,
    InvalidHeader,
    InvalidRequestLine,
    InvalidTarget,
    LimitRequestHeaders,
    LimitRequestLine,
    MissingHost,
    NoMoreData,
)
from gunicorn.http.events import Headers, Request
from gunicorn.http.h1.base import H1Base
from gunicorn.http.h1.fields import check_codings, parse_fields
from gunicorn.http.h1.request_line import other_target_form, parse_request_line
from gunicorn.http.headers import (
    FIELD_NAMES,
    check_host,
    lower_field_names,
    parse_content_length,
    split_list,
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

_new_event = object.__new__
_NO_TOKENS: frozenset[bytes] = frozenset()
# Connection values seen on nearly every request, mapped to their token sets.
_SIMPLE_CONNECTION: dict[bytes, frozenset[bytes]] = {
    value: frozenset({value.lower()})
    for value in (b"keep-alive", b"Keep-Alive", b"close", b"Close", b"upgrade", b"Upgrade")
}
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
_LEADING_EMPTY_LINES = 16


class HeadReader(H1Base):
    """Takes request heads out of the read buffer and turns them into ``Request``s."""

    __slots__ = ()

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
                    self._peer_closed()
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
        last call: check the request line once it is complete, refuse bare CR and LF,
        and note where lines end."""
        buf = self._buf
        pos = self._pos
        size = len(buf)
        start = pos + self._scan_from
        found = buf.find(b"\r\n", max(start, pos + self._crlf_next))
        while found >= 0:
            relative = found - pos
            if self._first_crlf < 0:
                self._first_crlf = relative
                if request_line:
                    # An HTTP/0.9 line ("GET /") or any other broken line is refused
                    # now: no header section can make it valid.
                    self._request_line(bytes(buf[pos:found]))
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
        if size - first_end > limits.max_header_section:
            raise LimitRequestHeaders("header section too large")
        # The line being received, its CR maybe included: a field line with its CRLF
        # may take max_header_field_size bytes.
        if size - self._last_crlf - 2 >= limits.max_header_field_size:
            raise LimitRequestHeaders("header field too large")
        if self._crlf_count > limits.max_header_fields + 1 and not (
            self._policy.permit_obsolete_folding
        ):
            raise LimitRequestHeaders("too many header fields")

    def _request_line(self, line: bytes) -> tuple[bytes, bytes, tuple[int, int]]:
        """The general path's checks of a complete request line (without its CRLF)."""
        if len(line) > self._line_limit:
            raise LimitRequestLine(f"request line longer than {self._line_limit} bytes")
        if 10 in line:
            raise InvalidRequestLine("bare LF in the request line")
        if 13 in line:
            raise InvalidRequestLine("bare CR in the request line")
        return parse_request_line(line, self._policy)

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
            method, target, version = self._request_line(head[:line_end])
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
        # The size check means no line with its CRLF is too long: a header block that
        # fits the field size limit whole (the usual case), else each of its lines.
        # Anything else takes the general path, which also gives the precise error.
        pairs = _FIELD_LINE_RE.findall(head, start)
        count = len(pairs)
        headers: Headers | None = None
        max_size = limits.max_header_field_size
        if (
            count <= limits.max_header_fields
            and (
                len(head) - start <= max_size
                or max(map(len, head[start + 1 :].split(b"\r\n"))) + 2 <= max_size
            )
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
            headers = self._parse_fields(head[start + 1 :])
        return self._build_request(method, target, version, headers)

    @staticmethod
    def _raise_bare_cr_lf(head: bytes) -> NoReturn:
        """A head whose CRs and LFs do not pair up (its request line is valid)."""
        if b"\n" in head.replace(b"\r\n", b""):
            raise InvalidHeader("bare LF in the header section")
        raise InvalidHeader("bare CR in the header section")

    def _parse_fields(self, block: bytes) -> Headers:
        """A header or trailer section whose every line ends with CRLF."""
        lines = block[:-2].split(b"\r\n")
        return parse_fields(lines, block, self._limits, self._policy, self._trusted)

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
        else:
            scheme, authority, path, query = other_target_form(method, target)

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
                host = check_host(value, host)
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
                content_length = parse_content_length(value)
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
        elif scheme is not None and host is not None:
            # RFC 9112 §3.2.2: with an absolute-form target the Host field is ignored
            # and the target's authority stands in for it.
            headers = [(b"host", authority) if n == b"host" else (n, v) for n, v in headers]

        chunked = False
        if codings is not None:
            chunked = check_codings(codings, version, content_length)
            if len(codings) > 1:
                # Codings before chunked reach the application undecoded, and the
                # connection is not reused after such a message.
                keep_alive = False
        if method == b"CONNECT":
            keep_alive = False
        # RFC 9110 §7.8: Upgrade counts only when Connection lists it, and a server
        # ignores it in an HTTP/1.0 request.
        if upgrade is not None and (b"upgrade" not in connection or version < (1, 1)):
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
        request.has_body = chunked or bool(content_length)
        return request
