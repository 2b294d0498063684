"""A raw asyncio client for the proxy sandwich: send bytes, read the responses back.

``exchange()`` connects from ``127.0.0.2`` (any 127/8 address is local on Linux), so the
backend can tell the real client from the proxy (``127.0.0.1``), writes the bytes, and
reads until the response to ``until`` (a target the application echoes) has arrived, the
peer closed, or the deadline passed. Responses are framed as RFC 9112 §6.3 says for a
response to a non-HEAD request: 1xx have no body; then Transfer-Encoding chunked, then
Content-Length, else the body runs to the close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

CLIENT_HOST = "127.0.0.2"


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def seen(self) -> dict[str, Any] | None:
        """What the application said it saw (None for a proxy's or server's own page)."""
        if self.headers.get(b"content-type") != b"application/json":
            return None
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


@dataclass
class Exchanged:
    port: int  # the client's own port, as the proxy saw it
    replies: list[Reply] = field(default_factory=list)
    closed: bool = False
    garbled: str | None = None  # bytes that are not a response

    def targets(self) -> list[str]:
        return [seen["target"] for r in self.replies if (seen := r.seen) is not None]


class Garbled(Exception):
    pass


def _chunked(data: bytes) -> tuple[bytes, int] | None:
    """(body, bytes used) of a complete chunked body at the start of ``data``, else None."""
    pos, body = 0, list[bytes]()
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        try:
            size = int(data[pos:end].split(b";")[0], 16)
        except ValueError:
            raise Garbled(f"bad chunk size {data[pos:end][:40]!r}") from None
        pos = end + 2
        if size == 0:
            trailer_end = data.find(b"\r\n\r\n", pos - 2)
            return (b"".join(body), trailer_end + 4) if trailer_end >= 0 else None
        if len(data) < pos + size + 2:
            return None
        body.append(data[pos : pos + size])
        pos += size + 2


def parse(data: bytes, closed: bool) -> tuple[list[Reply], bytes]:
    """The complete responses at the start of ``data``, and what is left over."""
    replies = []
    while data:
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            if not data.startswith(b"HTTP/1."[: len(data)]):
                raise Garbled(f"not a response: {data[:60]!r}")
            break
        status_line, *lines = data[:head_end].split(b"\r\n")
        parts = status_line.split(b" ", 2)
        if not parts[0].startswith(b"HTTP/1.") or len(parts) < 2 or not parts[1].isdigit():
            raise Garbled(f"not a status line: {status_line[:60]!r}")
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        status = int(parts[1])
        rest = data[head_end + 4 :]
        if status < 200:
            data = rest
            continue
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            found = _chunked(rest)
            if found is None:
                break
            body, used = found
        elif b"content-length" in headers:
            used = int(headers[b"content-length"])
            if len(rest) < used:
                break
            body = rest[:used]
        elif closed:
            body, used = rest, len(rest)
        else:
            break
        replies.append(Reply(status, headers, body))
        data = rest[used:]
    return replies, data


async def exchange(
    route: tuple[str, int], data: bytes, until: str, timeout: float = 10.0, idle: float = 4.0
) -> Exchanged:
    """Send ``data`` on a new connection; read until the reply to ``until`` (see module),
    giving up after ``timeout`` in all or ``idle`` seconds without a byte."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(*route, local_addr=(CLIENT_HOST, 0)), timeout
    )
    result = Exchanged(port=writer.get_extra_info("sockname")[1])
    buffer = b""
    deadline = time.monotonic() + timeout
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(data)
            await writer.drain()
        while time.monotonic() < deadline:
            try:
                wait = min(idle, deadline - time.monotonic())
                chunk = await asyncio.wait_for(reader.read(65536), wait)
            except TimeoutError:
                break
            except ConnectionError:
                chunk = b""
            result.closed = not chunk
            buffer += chunk
            try:
                replies, buffer = parse(buffer, result.closed)
            except Garbled as exc:
                result.garbled = str(exc)
                break
            result.replies += replies
            if result.closed or until in result.targets():
                break
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return result
