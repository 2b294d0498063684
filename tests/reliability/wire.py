"""A raw-socket HTTP/1.1 client for the hostile-input battery: bytes out, bytes back.

Stdlib sockets driven by asyncio's ``loop.sock_*`` calls (no HTTP library), so that
hundreds of exchanges run at once. ``pieces_for`` cuts a request into the pieces of a
feed mode; ``exchange`` sends them, optionally half-closes, and reads until the server
closes; ``parse_replies`` splits what came back into responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.support import Address

#: The feed modes: the request whole, byte by byte, in random splits (fixed seed), and
#: whole but for its last byte, which follows after a pause.
MODES = ("whole", "bytes", "random", "pause")
#: A pause is a client's pacing, not a wait for a condition: the server must read the
#: request in two parts and wait for the second.
PAUSE_SECONDS = 0.15
#: Large inputs are sent byte by byte only this far, then in 1 KiB pieces up to
#: ``SMALL_PIECES_UP_TO`` (past every default limit: 4094 for the request line, 8190 for
#: a field; random splits stay small that far), then in big pieces.
BYTES_UP_TO = 1024
SMALL_PIECES_UP_TO = 9 * 1024
MEDIUM_PIECE = 1024
BIG_PIECE = 64 * 1024
RANDOM_SEED = 15

PAUSE = b""  # the marker of the pause in a piece list (a real piece is never empty)


def _big(raw: bytes, start: int) -> Iterator[bytes]:
    for index in range(start, len(raw), BIG_PIECE):
        yield raw[index : index + BIG_PIECE]


def pieces_for(raw: bytes, mode: str) -> Iterator[bytes]:
    """``raw`` cut as ``mode`` says; ``PAUSE`` marks where the sender waits."""
    if mode == "whole":
        yield raw
    elif mode == "pause":
        yield raw[:-1]
        yield PAUSE
        yield raw[-1:]
    elif mode == "bytes":
        small = min(len(raw), BYTES_UP_TO)
        for index in range(small):
            yield raw[index : index + 1]
        medium = max(small, min(len(raw), SMALL_PIECES_UP_TO))
        for index in range(small, medium, MEDIUM_PIECE):
            yield raw[index : min(index + MEDIUM_PIECE, medium)]
        yield from _big(raw, medium)
    elif mode == "random":
        rng = random.Random(RANDOM_SEED + len(raw))
        start = 0
        while start < min(len(raw), SMALL_PIECES_UP_TO):
            size = rng.choice((1, 2, 3, rng.randint(1, 16), rng.randint(1, 256)))
            yield raw[start : start + size]
            start += size
        yield from _big(raw, start)
    else:
        raise ValueError(mode)


@dataclass
class Exchange:
    """What one connection brought back."""

    data: bytes = b""
    #: How the server ended the connection: "fin", "reset" or "timeout" (it did not).
    ended: str = "timeout"
    #: The sender stopped early because the server closed (a refused request).
    send_failed: bool = False


def _socket(address: Address) -> socket.socket:
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # One segment per piece: the server sees the splits as far as the kernel allows.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


async def exchange(
    address: Address,
    pieces: Iterator[bytes],
    *,
    half_close: bool,
    timeout: float,
) -> Exchange:
    """Send ``pieces`` (``half_close``: then shut the write side) while reading until the
    server closes the connection or ``timeout`` seconds pass."""
    loop = asyncio.get_running_loop()
    result = Exchange()
    sock = _socket(address)

    async def send() -> None:
        try:
            for piece in pieces:
                if piece is PAUSE:
                    await asyncio.sleep(PAUSE_SECONDS)
                else:
                    await loop.sock_sendall(sock, piece)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            result.send_failed = True

    async def receive() -> None:
        chunks = []
        try:
            while True:
                chunk = await loop.sock_recv(sock, 65536)
                if not chunk:
                    result.ended = "fin"
                    break
                chunks.append(chunk)
        except ConnectionResetError:
            result.ended = "reset"
        finally:
            result.data = b"".join(chunks)

    try:
        await asyncio.wait_for(loop.sock_connect(sock, address), timeout)
        sender = asyncio.ensure_future(send())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(receive(), timeout)
        if not sender.done():
            sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    finally:
        sock.close()
    return result


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        values = [value for key, value in self.headers if key == name]
        return values[-1] if values else None


class Garbled(Exception):
    """The bytes are not a sequence of well-framed responses."""


def _read_chunked(raw: bytes) -> tuple[bytes, bytes]:
    body = bytearray()
    while True:
        size_line, sep, raw = raw.partition(b"\r\n")
        if not sep:
            raise Garbled("incomplete chunked body")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            _, sep, raw = raw.partition(b"\r\n")
            if not sep:
                raise Garbled("incomplete chunked body end")
            return bytes(body), raw
        if len(raw) < size + 2:
            raise Garbled("incomplete chunk")
        body += raw[:size]
        raw = raw[size + 2 :]


def parse_replies(raw: bytes, methods: list[bytes]) -> list[Reply]:
    """The responses in ``raw`` (1xx included), bodies framed by the requests' methods
    (``methods[i]`` for the i-th final response; ``GET`` past the end of the list)."""
    replies: list[Reply] = []
    finals = 0
    while raw:
        head, sep, raw = raw.partition(b"\r\n\r\n")
        if not sep:
            raise Garbled(f"incomplete response head: {head[:200]!r}")
        status_line, *lines = head.split(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise Garbled(f"not a status line: {status_line[:200]!r}")
        reply = Reply(int(parts[1]))
        for line in lines:
            name, _, value = line.partition(b":")
            reply.headers.append((name.strip().lower(), value.strip()))
        replies.append(reply)
        if reply.status < 200:
            continue
        method = methods[finals] if finals < len(methods) else b"GET"
        finals += 1
        if method == b"HEAD" or reply.status in (204, 304):
            continue
        if method == b"CONNECT" and reply.status < 300:
            reply.body, raw = raw, b""  # a tunnel follows (RFC 9110 §9.3.6)
            continue
        length = reply.header(b"content-length")
        if reply.header(b"transfer-encoding") == b"chunked":
            reply.body, raw = _read_chunked(raw)
        elif length is not None:
            size = int(length)
            if len(raw) < size:
                raise Garbled("incomplete response body")
            reply.body, raw = raw[:size], raw[size:]
        else:
            reply.body, raw = raw, b""
    return replies
