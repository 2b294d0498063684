"""Differential fuzzing helpers: our HTTP/1.1 reader (``H1Connection``) against ``h11``.

``parse_ours`` and ``parse_h11`` read the first request of some bytes, fed in pieces and
then ended (EOF), and return the same ``Parsed`` shape, or the name of the error. The
hypothesis strategies build requests from parts (``RequestParts``), so a disagreement
can be classified from what the request holds (``DIFFERENCES`` in ``test_fuzz_h1``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import h11
from hypothesis import strategies as st

from gunicorn.http.errors import ProtocolError
from gunicorn.http.events import ConnectionClosed, Data, EndOfMessage, Request
from gunicorn.http.h1 import NEED_DATA, PAUSED, H1Connection
from gunicorn.http.limits import Limits, Policy


@dataclass(frozen=True)
class Parsed:
    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


@dataclass(frozen=True)
class Outcome:
    parsed: Parsed | None  # the first request, if it was read complete
    error: str | None  # the error class name, if the reader refused the input


def parse_ours(pieces: Iterable[bytes]) -> Outcome:
    conn = H1Connection(Limits(), Policy(), clock=lambda: 0.0)
    feed = iter(pieces)
    request: Request | None = None
    body = b""
    for _ in range(1_000_000):
        try:
            event = conn.next_event()
        except ProtocolError as exc:
            return Outcome(None, type(exc).__name__)
        if event is NEED_DATA:
            conn.receive_data(next(feed, b""))
        elif isinstance(event, Request):
            request = event
        elif isinstance(event, Data):
            body += event.data
        elif isinstance(event, EndOfMessage) or event is PAUSED:
            assert request is not None
            headers = tuple((name.lower(), value) for name, value in request.headers)
            return Outcome(Parsed(request.method, request.target, headers, body), None)
        elif isinstance(event, ConnectionClosed):
            return Outcome(None, "ConnectionClosed")
    raise AssertionError("the reader never settled")


def parse_h11(pieces: Iterable[bytes]) -> Outcome:
    conn = h11.Connection(h11.SERVER)
    feed = iter(pieces)
    request: h11.Request | None = None
    body = b""
    for _ in range(1_000_000):
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            return Outcome(None, f"h11: {exc}")
        if event is h11.NEED_DATA:
            conn.receive_data(next(feed, b""))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            headers = tuple((bytes(n), bytes(v)) for n, v in request.headers)
            return Outcome(Parsed(request.method, request.target, headers, body), None)
        elif isinstance(event, h11.ConnectionClosed):
            return Outcome(None, "ConnectionClosed")
        elif event is h11.PAUSED:
            return Outcome(None, "PAUSED")
    raise AssertionError("h11 never settled")


# ------------------------------------------------------------------------ strategies

#: Bytes that have broken HTTP/1.1 parsers (RFC 9110 §5.5 CTLs, obs-text, separators).
HOSTILE = b'\x00\t\n\x0b\x0c\r\x1b\x1f "(),/:;<=>?@[\\]{}\x7f\x80\x85\xa0\xff'
TCHARS = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALNUM = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHARS = bytes(range(0x21, 0x7F))
#: RFC 3986 characters of a path and query (unreserved, sub-delims, ":@/?%").
TARGET_CHARS = ALNUM + b"-._~!$&'()*+,;=:@/?%"
VALUE_CHARS = VCHARS + b" \t\x80\xfe"

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONVENTIONAL_METHOD = re.compile(rb"[A-Z]{3,20}")
_HOST = re.compile(rb"[A-Za-z0-9.\-]*(:[0-9]+)?")
_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_ORIGIN_FORM = re.compile(rb"/[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")


def _bytes_from(alphabet: bytes, min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(alphabet), min_size=min_size, max_size=max_size).map(bytes)


@dataclass(frozen=True)
class RequestParts:
    """A request built from parts; ``tags()`` names what is unusual about it."""

    method: bytes
    target: bytes
    version: bytes
    headers: tuple[tuple[bytes, bytes, bytes], ...]  # (name, separator, value)
    body: bytes
    line_end: bytes = b"\r\n"
    body_tags: frozenset[str] = field(default_factory=frozenset)

    def raw(self) -> bytes:
        end = self.line_end
        lines = [self.method + b" " + self.target + b" " + self.version]
        lines += [name + sep + value for name, sep, value in self.headers]
        return end.join(lines) + end + end + self.body

    def values(self, name: bytes) -> list[bytes]:
        return [v.strip(b" \t") for n, _, v in self.headers if n.lower() == name]

    def tags(self) -> frozenset[str]:
        tags = set(self.body_tags)
        if not _CONVENTIONAL_METHOD.fullmatch(self.method):
            valid = _TOKEN.fullmatch(self.method)
            tags.add("method-unconventional" if valid else "method-invalid")
        target = self.target
        if target.startswith(b"http://"):
            tags.add("target-absolute")
        elif not target.startswith(b"/"):
            tags.add("target-form")
        elif not _ORIGIN_FORM.fullmatch(target):
            tags.add("target-fragment" if b"#" in target else "target-chars")
        if self.version != b"HTTP/1.1":
            tags.add("version-1.0" if self.version == b"HTTP/1.0" else "version-other")
        if self.line_end == b"\n":
            tags.add("bare-lf")
        for name, sep, value in self.headers:
            if not name and sep.startswith((b" ", b"\t")):
                tags.add("obs-fold")  # a line that starts with whitespace continues the last
            elif not _TOKEN.fullmatch(name):
                tags.add("name-invalid")
            elif b"_" in name:
                tags.add("name-underscore")
            if sep.startswith((b" ", b"\t")):
                tags.add("space-before-colon")
            if b"\n" in sep:
                tags.add("obs-fold" if b"\r\n" in sep else "bare-lf")
            if _CTL.search(value):
                tags.add("value-ctl")
        hosts = self.values(b"host")
        if len(hosts) > 1:
            tags.add("dup-host")
        if any(not _HOST.fullmatch(h) for h in hosts):
            tags.add("host-invalid")
        if not hosts and self.version == b"HTTP/1.1":
            tags.add("no-host")
        if len(self.values(b"content-type")) > 1:
            tags.add("dup-content-type")
        if any(v.lower() != b"100-continue" for v in self.values(b"expect")):
            tags.add("expect-other")
        lengths = self.values(b"content-length")
        codings = self.values(b"transfer-encoding")
        if len(lengths) > 1 or any(not v.isdigit() for v in lengths):
            tags.add("cl-invalid")
        if lengths and codings:
            tags.add("cl-te")
        if codings and [c.lower() for c in codings] != [b"chunked"]:
            tags.add("te-not-chunked")
        if codings and self.version == b"HTTP/1.0":
            tags.add("te-http10")
        return frozenset(tags)


def _mostly(
    normal: st.SearchStrategy[bytes], odd: st.SearchStrategy[bytes]
) -> st.SearchStrategy[bytes]:
    """``normal`` nine times in ten."""
    return st.integers(0, 9).flatmap(lambda n: odd if n == 0 else normal)


METHODS = _mostly(
    st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"DELETE", b"PATCH"]),
    st.one_of(_bytes_from(TCHARS, 1, 8), _bytes_from(HOSTILE + TCHARS, 0, 6)),
)
TARGETS = _mostly(
    _bytes_from(TARGET_CHARS, 0, 16).map(lambda path: b"/" + path),
    st.one_of(
        st.sampled_from([b"*", b"example.com:443", b"http://a/b?c", b"foo/bar", b"/a#f"]),
        _bytes_from(HOSTILE + VCHARS, 0, 12).map(lambda path: b"/" + path),
    ),
)
VERSIONS = _mostly(
    st.just(b"HTTP/1.1"),
    st.sampled_from([b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"http/1.1", b"HTTP/1.10", b""]),
)
NAMES = _mostly(
    st.one_of(
        st.sampled_from([b"X-A", b"Accept", b"Content-Type", b"Expect", b"Connection", b"TE"]),
        _bytes_from(ALNUM + b"-", 1, 10),
    ),
    _bytes_from(HOSTILE + TCHARS, 0, 8),
)
VALUES = _mostly(_bytes_from(VALUE_CHARS, 0, 16), _bytes_from(HOSTILE + VALUE_CHARS, 0, 12))
SEPARATORS = _mostly(
    st.sampled_from([b": ", b":", b":\t"]),
    st.sampled_from([b" : ", b"\t:", b": \r\n ", b":\r\n\t", b":\n "]),
)
CHUNK_SIZES = [b"0x%x", b"+%x", b" %x", b"%x ", b"%x\t", b"-%x", b"%x_"]
CHUNK_EXTENSIONS = [b";a=b", b";a", b' ;a="q"', b";\x00", b";a\nb", b";=", b";a=\x7f"]
TRAILERS = [b"Content-Length: 5\r\n", b"Host: b\r\n", b"Transfer-Encoding: x\r\n"]


@st.composite
def chunked_body(draw: st.DrawFn, data: bytes) -> tuple[bytes, set[str]]:
    """``data`` in chunks, with an odd size, extension or trailer now and then."""
    tags: set[str] = set()
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if b > a]
    out = b""
    for piece in pieces:
        size = b"%x" % len(piece)
        if not draw(st.integers(0, 14)):
            size = draw(st.sampled_from(CHUNK_SIZES)) % len(piece)
            tags.add("chunk-size")
        ext = b""
        if not draw(st.integers(0, 9)):
            ext = draw(st.sampled_from(CHUNK_EXTENSIONS))
            tags.add("chunk-extension")
        out += size + ext + b"\r\n" + piece + b"\r\n"
    out += b"0\r\n"
    if not draw(st.integers(0, 9)):
        out += draw(st.sampled_from([b"X-T: 1\r\n", *TRAILERS]))
        tags.add("trailer")
    return out + b"\r\n", tags


@st.composite
def requests(draw: st.DrawFn) -> RequestParts:
    method, target, version = draw(METHODS), draw(TARGETS), draw(VERSIONS)
    headers: list[tuple[bytes, bytes, bytes]] = []
    if draw(st.integers(0, 19)):
        host = draw(
            _mostly(st.sampled_from([b"a", b"a:80"]), st.sampled_from([b"a b", b"", b"a@b"]))
        )
        headers.append((b"Host", b": ", host))
    for _ in range(draw(st.integers(0, 3))):
        headers.append((draw(NAMES), draw(SEPARATORS), draw(VALUES)))
    data = draw(_bytes_from(bytes(range(256)), 0, 20))
    framing = draw(st.sampled_from(["none", "cl", "cl", "chunked", "chunked", "odd"]))
    body, tags = b"", set()
    if framing == "cl":
        headers.append((b"Content-Length", b": ", b"%d" % len(data)))
        body = data
    elif framing == "chunked":
        headers.append((b"Transfer-Encoding", b": ", b"chunked"))
        body, tags = draw(chunked_body(data))
    elif framing == "odd":
        odd = draw(
            st.sampled_from(
                [
                    b"+%d",
                    b"%d, %d",
                    b"0x%x",
                    b"%d%d",
                    b"chunked",
                    b"gzip, chunked",
                    b"Chunked",
                    b"chunked, ",
                ]
            )
        )
        if b"%" in odd:
            headers.append((b"Content-Length", b": ", odd % ((len(data),) * odd.count(b"%"))))
            body = data
        else:
            headers.append((b"Transfer-Encoding", b": ", odd))
            body, tags = draw(chunked_body(data))
            if draw(st.booleans()):
                headers.append((b"Content-Length", b": ", b"%d" % len(body)))
    headers = draw(st.permutations(headers))
    line_end = draw(_mostly(st.just(b"\r\n"), st.just(b"\n")))
    return RequestParts(method, target, version, tuple(headers), body, line_end, frozenset(tags))


@st.composite
def splits(draw: st.DrawFn, raw: bytes) -> list[bytes]:
    """``raw`` cut at a few random points."""
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(raw) - 1)), max_size=6))))
    bounds = [0, *cuts, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds) if b > a]
