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
6. A 101 answers only an HTTP/1.1+ request that offered an Upgrade (RFC 9110 §7.8: a
   server may not switch to a protocol the client did not ask for, and ignores
   Upgrade in an HTTP/1.0 request). HTTP/2 has no 101 at all (RFC 9113 §8.6).
"""

from __future__ import annotations

from enum import Enum


class BodyFraming(Enum):
    NONE = "none"  # no content may follow the head
    LENGTH = "length"  # Content-Length bytes follow
    CHUNKED = "chunked"  # chunked transfer coding
    CLOSE = "close"  # content ends when the connection closes


NONE = BodyFraming.NONE
LENGTH = BodyFraming.LENGTH
CHUNKED = BodyFraming.CHUNKED
CLOSE = BodyFraming.CLOSE


def body_allowed(method: bytes, status: int) -> bool:
    """Rule 1: may this response carry content at all."""
    return response_framing(method, status, (1, 1), 0)[0] is not NONE


def content_length_allowed(method: bytes, status: int) -> bool:
    """May the head carry Content-Length at all (rule 2)."""
    if status < 200 or status == 204:
        return False
    return status >= 300 or method != b"CONNECT"


def response_framing(
    method: bytes,
    status: int,
    version: tuple[int, int],
    content_length: int | None,
    chunked_allowed: bool = True,
    reusable: bool = True,
) -> tuple[BodyFraming, bool]:
    """How the body of this response is delimited (rules 1, 3 and 4), and whether the
    connection can carry another request once it is done. ``reusable`` is False when
    the client or the server already asked to close."""
    if (
        status < 200
        or status == 204
        or status == 304
        or method == b"HEAD"
        or (status < 300 and method == b"CONNECT")
    ):
        # A 101 hands the connection to another protocol.
        return NONE, reusable and status != 101
    if content_length is not None:
        return LENGTH, reusable
    if chunked_allowed and version >= (1, 1):
        return CHUNKED, reusable
    return CLOSE, False


def early_hints_allowed(version: tuple[int, int], final_started: bool) -> bool:
    """Rule 5 (RFC 8297 §3: HTTP/1.0 clients may not understand 1xx)."""
    return version >= (1, 1) and not final_started


def switching_allowed(version: tuple[int, int], offered: bytes | None) -> bool:
    """Rule 6: may a 101 answer a request of ``version`` whose Upgrade offered
    ``offered`` (None or empty: no offer)."""
    return version >= (1, 1) and bool(offered)


def encode_chunk(data: bytes) -> bytes:
    """One chunk of chunked transfer coding (RFC 9112 §7.1) holding ``data``."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def chunk_header(size: int) -> bytes:
    """The bytes that precede ``size`` bytes of chunk data (for sendfile)."""
    return b"%x\r\n" % size


CHUNK_END = b"\r\n"
LAST_CHUNK = b"0\r\n\r\n"
