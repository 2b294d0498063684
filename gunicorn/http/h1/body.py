"""Request content: Content-Length (RFC 9112 §6.2) and chunked coding with its trailer
section (§7.1). Body bytes are handed out as they arrive, never buffered whole."""

from __future__ import annotations

import re

from gunicorn.http.connection import NEED_DATA, NextEvent
from gunicorn.http.errors import (
    ChunkMissingTerminator,
    InvalidChunkExtension,
    InvalidChunkSize,
    InvalidHeader,
    InvalidTrailer,
    LimitRequestHeaders,
    NoMoreData,
    ProtocolError,
)
from gunicorn.http.events import Data, EndOfMessage, Headers
from gunicorn.http.h1.reader import HeadReader
from gunicorn.http.h1.states import BODY, RECEIVE_TRANSITIONS
from gunicorn.http.headers import FORBIDDEN_TRAILERS, OWS

_HEX_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")
# RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
_CHUNK_EXT_RE = re.compile(
    rb"(?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb"(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb'|"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"))?)*'
)

_BODY_READ = RECEIVE_TRANSITIONS[BODY, EndOfMessage]


class BodyReader(HeadReader):
    """Reads the content of the current request (state BODY)."""

    __slots__ = ()

    def _read_body(self) -> NextEvent:
        if self._chunk_state:
            try:
                return self._read_chunked()
            except ProtocolError as exc:
                raise self._fail(exc) from None
        remaining = self._remaining
        if not remaining:
            self._their_state = _BODY_READ
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
            trailers = self._parse_fields(block)
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
        self._their_state = _BODY_READ
        return EndOfMessage(trailers)
