"""Drive a ``WebSocketCycle`` without a network: a fake ``Channel`` records what the
server writes, the HTTP/1.1 core parses a real handshake request, and a wsproto client
connection plays the browser, frame by frame."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from wsproto.connection import Connection, ConnectionType
from wsproto.events import Event
from wsproto.extensions import PerMessageDeflate

from gunicorn.asgi.websocket import WebSocketConfig, WebSocketCycle
from gunicorn.http.h1.connection import H1Connection

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example key
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # ... and its Sec-WebSocket-Accept

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def handshake(
    *extra: tuple[bytes, bytes], version: bytes | None = b"13", key: bytes | None = KEY
) -> bytes:
    lines = [b"GET /chat?room=1 HTTP/1.1", b"Host: example.com", b"Upgrade: websocket"]
    lines.append(b"Connection: Upgrade")
    if key is not None:
        lines.append(b"Sec-WebSocket-Key: " + key)
    if version is not None:
        lines.append(b"Sec-WebSocket-Version: " + version)
    lines.extend(name + b": " + value for name, value in extra)
    return b"\r\n".join(lines) + b"\r\n\r\n"


class FakeChannel:
    """What the driver gives a cycle, recording every call."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.out = bytearray()
        self.paused = False
        self.pauses = 0
        self.resumes = 0
        self.closed_by_server = False
        self.aborted = False
        self.drain_gate: asyncio.Event | None = None
        self.drains = 0

    def write(self, data: bytes) -> None:
        assert not self.aborted, "write after abort"
        self.out += data

    async def drain(self) -> None:
        self.drains += 1
        if self.drain_gate is not None:
            await self.drain_gate.wait()

    def pause_reading(self) -> None:
        assert not self.paused
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        assert self.paused
        self.paused = False
        self.resumes += 1

    def close(self) -> None:
        self.closed_by_server = True

    def abort(self) -> None:
        self.aborted = True

    @property
    def closed(self) -> bool:
        return self.closed_by_server or self.aborted

    def extra(self, name: str) -> Any:
        return None


class RecordingLog:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def _record(self, level: str, msg: object, *args: Any, **kwargs: Any) -> None:
        self.records.append((level, str(msg) % args if args else str(msg)))

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._record("exception", msg, *args)

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._record("error", msg, *args)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._record("debug", msg, *args)

    def levels(self) -> list[str]:
        return [level for level, _ in self.records]


def http_scope(scheme: str = "http") -> dict[str, Any]:
    """An HTTP scope as the driver builds it for the handshake request."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": scheme,
        "path": "/chat",
        "raw_path": b"/chat",
        "query_string": b"room=1",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {"db": "ready"},
        "extensions": {"http.response.trailers": {}},
    }


class Harness:
    """One handshake request handed to a ``WebSocketCycle``, and a client for it."""

    def __init__(
        self,
        app: App,
        request: bytes | None = None,
        config: WebSocketConfig | None = None,
        scheme: str = "http",
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.core = H1Connection(clock=time.time)
        self.core.receive_data(request if request is not None else handshake())
        event = self.core.next_event()
        self.request = event
        self.channel = FakeChannel(self.loop)
        self.log = RecordingLog()
        self.done: list[tuple[int, list[tuple[bytes, bytes]], int]] = []
        self.cycle = WebSocketCycle(
            app,
            http_scope(scheme),
            event,  # type: ignore[arg-type]
            self.core,
            self.channel,
            config or WebSocketConfig(close_timeout=0.5),
            self.log,
            lambda status, headers, sent: self.done.append((status, headers, sent)),
        )
        self.task = self.cycle.start()
        self._read = 0
        self.client: Connection | None = None
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""

    # -- the server's answer ----------------------------------------------------------------

    async def response(self) -> int:
        """Wait for the answer's head; for a 101 start the wsproto client."""
        await until(lambda: b"\r\n\r\n" in self.channel.out)
        head, _, _rest = bytes(self.channel.out).partition(b"\r\n\r\n")
        self._read = len(head) + 4
        status_line, *fields = head.split(b"\r\n")
        self.status = int(status_line.split(b" ")[1])
        self.headers = [
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(b":") for line in fields)
        ]
        if self.status == 101:
            extensions = []
            agreed = self.header(b"sec-websocket-extensions")
            if agreed is not None:
                deflate = PerMessageDeflate()
                deflate.finalize(agreed.decode())
                extensions.append(deflate)
            self.client = Connection(ConnectionType.CLIENT, extensions=extensions)
        return self.status

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def http_body(self) -> bytes:
        """The rest of a non-101 answer once the server closed the connection."""
        await until(lambda: self.channel.closed)
        self.body = bytes(self.channel.out[self._read :])
        return self.body

    # -- frames ------------------------------------------------------------------------------

    def send(self, event: Event) -> None:
        assert self.client is not None
        self.cycle.data_received(self.client.send(event))

    def send_raw(self, data: bytes) -> None:
        self.cycle.data_received(data)

    def new_output(self) -> bytes:
        data = bytes(self.channel.out[self._read :])
        self._read = len(self.channel.out)
        return data

    def events(self) -> list[Event]:
        assert self.client is not None
        data = self.new_output()
        if data:
            self.client.receive_data(data)
        return list(self.client.events())

    async def next_events(self, count: int = 1) -> list[Event]:
        """Wait until the server sent at least ``count`` events."""
        got: list[Event] = []

        def arrived() -> bool:
            got.extend(self.events())
            return len(got) >= count

        await until(arrived)
        return got

    async def finished(self) -> None:
        await until(lambda: self.task.done())
        self.task.result()


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Let the loop run until ``condition()`` holds (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.001)


def run(coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def masked_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    """A client frame built by hand (for what wsproto's client refuses to send)."""
    mask = b"\x01\x02\x03\x04"
    first = (0x80 if fin else 0) | rsv | opcode
    length = len(payload)
    if length < 126:
        head = bytes([first, 0x80 | length])
    elif length < 65536:
        head = bytes([first, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + length.to_bytes(8, "big")
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + body


def random_key() -> bytes:
    return base64.b64encode(b"0123456789abcdef")
