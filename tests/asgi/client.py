"""A raw HTTP/1.1 client for the asgi worker's tests: bytes out, h11-parsed answers in."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import h11

from tests.support import Address, connect


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    informational: list[int] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    raw_headers: list[tuple[str, str]] = field(default_factory=list)


class RawClient:
    """One connection: send raw requests, read parsed responses in order."""

    def __init__(self, address: Address, timeout: float = 10.0) -> None:
        self.sock = connect(address, timeout)
        self.h11 = h11.Connection(h11.CLIENT)
        self.heads: list[str] = []

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(
        self, method: str, path: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: test"]
        lines += [f"{k}: {v}" for k, v in headers]
        if body and not any(
            k.lower() in ("content-length", "transfer-encoding") for k, _ in headers
        ):
            lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def read_answer(self, method: str = "GET") -> Answer:
        """The next response (h11 parses it; a fresh h11 cycle per response)."""
        conn = self.h11
        if conn.our_state is h11.DONE or conn.their_state is h11.DONE:
            conn.start_next_cycle()
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "test")]))
        conn.send(h11.EndOfMessage())
        informational: list[int] = []
        status = 0
        headers: list[tuple[str, str]] = []
        body = bytearray()
        trailers: dict[str, str] = {}
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = self.sock.recv(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = [(k.decode(), v.decode()) for k, v in event.headers]
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                trailers = {k.decode(): v.decode() for k, v in event.headers}
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed before a response")
        return Answer(
            status,
            {k.lower(): v for k, v in headers},
            bytes(body),
            informational,
            trailers,
            headers,
        )

    def read_until_close(self, timeout: float = 10.0) -> bytes:
        chunks = []
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def closed_by_server(self, timeout: float = 10.0) -> bool:
        """True once the server closed (EOF or reset), reading and dropping what comes."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True


def exchange(address: Address, raw: bytes, timeout: float = 10.0) -> bytes:
    """Send ``raw`` and read everything until the server closes."""
    with RawClient(address, timeout) as client:
        client.send(raw)
        return client.read_until_close(timeout)
