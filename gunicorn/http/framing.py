"""Response framing: the only place these rules are written.

RFC 9112 §6 and RFC 9110 §6.4.1, §15.2, §15.3.5, §15.4.5:

1. A response to HEAD, any 1xx, 204 and 304 has no content, and neither has a 2xx
   response to CONNECT (the connection becomes a tunnel). Bytes an application yields
   for such a response are dropped; the caller is told so it can warn once.
2. 1xx, 204 and 2xx-to-CONNECT never carry Content-Length; HEAD and 304 may keep the one
   the application set, since it describes the representation (RFC 9110 §8.6).
3. Otherwise an application's Content-Length frames the body; the server never writes
   past it, and writing less leaves the connection unusable.
4. Without Content-Length, HTTP/1.1 clients get chunked coding (unless the transport
   forbids it, as uwsgi does); HTTP/1.0 clients get a body delimited by closing.
5. 103 Early Hints go only to HTTP/1.1+ clients, and only before the final response.
"""

from __future__ import annotations

from enum import Enum


class BodyFraming(Enum):
    NONE = "none"  # no content may follow the head
    LENGTH = "length"  # Content-Length bytes follow
    CHUNKED = "chunked"  # chunked transfer coding
    CLOSE = "close"  # content ends when the connection closes


def body_allowed(method: bytes, status: int) -> bool:
    if method == b"HEAD" or status < 200 or status == 204 or status == 304:
        return False
    return not (method == b"CONNECT" and status < 300)


def content_length_allowed(method: bytes, status: int) -> bool:
    """May the head carry Content-Length at all (rule 2)."""
    if status < 200 or status == 204:
        return False
    return not (method == b"CONNECT" and status < 300)


def choose_body_framing(
    method: bytes,
    status: int,
    version: tuple[int, int],
    content_length: int | None,
    chunked_allowed: bool = True,
) -> BodyFraming:
    """Rules 1, 3 and 4: how the body of this response is delimited."""
    if not body_allowed(method, status):
        return BodyFraming.NONE
    if content_length is not None:
        return BodyFraming.LENGTH
    if version >= (1, 1) and chunked_allowed:
        return BodyFraming.CHUNKED
    return BodyFraming.CLOSE


def keep_alive_after(
    request_keep_alive: bool,
    framing: BodyFraming,
    status: int,
    server_wants_close: bool,
) -> bool:
    """Whether the connection can carry another request once this response is done."""
    if server_wants_close or not request_keep_alive:
        return False
    if framing is BodyFraming.CLOSE:
        return False
    return status != 101


def early_hints_allowed(version: tuple[int, int], final_started: bool) -> bool:
    """Rule 5 (RFC 8297 §3: HTTP/1.0 clients may not understand 1xx)."""
    return version >= (1, 1) and not final_started


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def chunk_header(size: int) -> bytes:
    """The bytes that precede ``size`` bytes of chunk data (for sendfile)."""
    return b"%x\r\n" % size


CHUNK_END = b"\r\n"
LAST_CHUNK = b"0\r\n\r\n"
