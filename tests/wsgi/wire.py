"""Raw-socket clients for end-to-end tests: bytes out, parsed responses back."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import Address, connect

WSGI_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = WSGI_DIR.parent.parent / "examples"


@dataclass
class Reply:
    version: bytes
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> bytes | None:
        wanted = name.lower().encode()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def names(self) -> list[bytes]:
        return [key.lower() for key, _ in self.headers]


def exchange(
    address: Address,
    data: bytes | list[bytes],
    *,
    shutdown: bool = False,
    timeout: float = 5.0,
    pause: float = 0.0,
) -> bytes:
    """Send ``data`` (pieces with ``pause`` between them) and read until the server closes."""
    sock = connect(address, timeout)
    try:
        pieces = [data] if isinstance(data, bytes) else data
        for index, piece in enumerate(pieces):
            if index and pause:
                time.sleep(pause)
            sock.sendall(piece)
        if shutdown:
            sock.shutdown(socket.SHUT_WR)
        return read_all(sock, timeout)
    finally:
        sock.close()


def read_all(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything until EOF (a reset after some bytes counts as EOF)."""
    deadline = time.monotonic() + timeout
    chunks = []
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    else:
        raise TimeoutError("the server did not close the connection")
    return b"".join(chunks)


def parse_replies(raw: bytes, head_request: bool = False) -> list[Reply]:
    """Every response in ``raw`` (1xx ones included), bodies framed as HTTP/1.1 says."""
    replies = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError(f"incomplete response head: {raw[:200]!r}")
        lines = head.split(b"\r\n")
        version, status, *reason = lines[0].split(b" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name, value.strip()))
        reply = Reply(version, int(status), reason[0] if reason else b"", headers)
        replies.append(reply)
        code = reply.status
        if code < 200 or code in (204, 304) or head_request:
            raw = rest
            continue
        length = reply.header("content-length")
        if reply.header("transfer-encoding") == b"chunked":
            body = bytearray()
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    _, _, rest = rest.partition(b"\r\n")
                    break
                body += rest[:size]
                rest = rest[size + 2 :]
            reply.body = bytes(body)
            raw = rest
        elif length is not None:
            reply.body = rest[: int(length)]
            raw = rest[int(length) :]
        else:
            reply.body = rest
            raw = b""
    return replies


def request_bytes(
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
    host: str = "localhost",
) -> bytes:
    """A request's bytes; HTTP/1.1 gets a Host and a body its Content-Length unless given."""
    lines = [f"{method} {target} {version}"]
    names = {name.lower() for name, _ in headers or []}
    if version == "HTTP/1.1" and "host" not in names:
        lines.append(f"Host: {host}")
    lines.extend(f"{name}: {value}" for name, value in headers or [])
    if body and not names & {"content-length", "transfer-encoding"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def one(address: Address, data: bytes | list[bytes], **kwargs: object) -> Reply:
    """Send one request; return its final response (after any 1xx)."""
    first = data if isinstance(data, bytes) else data[0]
    head_request = first.startswith(b"HEAD ")
    replies = parse_replies(exchange(address, data, **kwargs), head_request)  # type: ignore[arg-type]
    finals = [reply for reply in replies if reply.status >= 200]
    assert len(finals) == 1, replies
    return finals[0]
