"""An asyncio HTTP/1.1 load generator with exact accounting, for the fault tests.

``Load(address, lanes=8)`` runs ``lanes`` closed-loop clients on an event loop in a
background thread until ``stop()``. Each request carries a unique id (``?id=N``) and
ends as exactly one :class:`Outcome`: *answered* (a complete response: status,
``X-Pid`` of the worker that served it) or *lost* (``refused``, ``reset``, ``eof`` or
``truncated`` before a complete response, ``timeout``). The client's own port and the
times the request was opened and ended are kept, so a test can prove which lost
requests were on a worker it killed (see :func:`on_connections`).

With ``keepalive=True`` a lane reuses its connection. The one retry allowed (RFC 9112
§9.3.1, the keep-alive rule of the fault tests): a request that found its *reused*
idle connection closed before any byte of the response came back is sent again on a
fresh connection (``retried`` counts them); any other failure is lost. By default every
request has its own connection (``Connection: close``), the strict mode: every error
counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Address = tuple[str, int] | str

#: What a lost request ran into.
LOST_KINDS = ("refused", "reset", "eof", "truncated", "timeout")


@dataclass
class Outcome:
    """How one request ended."""

    id: int
    opened: float  # monotonic: connection opened (or reused) for this request
    ended: float = 0.0
    status: int | None = None
    pid: int | None = None
    lost: str | None = None  # one of LOST_KINDS when the request was lost
    detail: str = ""
    port: int | None = None  # the client's local TCP port
    retried: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.status is not None


class _Lost(Exception):
    def __init__(self, kind: str, detail: str, response_bytes: int = 0) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.response_bytes = response_bytes


class Load:
    """Closed-loop lanes of requests against ``address`` until :meth:`stop`."""

    def __init__(
        self,
        address: Address | None,
        *,
        lanes: int = 8,
        path: str = "/",
        keepalive: bool = False,
        timeout: float = 10.0,
        max_seconds: float = 120.0,
    ) -> None:
        assert address is not None, "no address to send to"
        self.address: Address = address
        self.lanes = lanes
        self.path = path
        self.keepalive = keepalive
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.outcomes: list[Outcome] = []
        self.retried = 0
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- control --------------------------------------------------------------------------

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._thread_main, name="load", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> Load:
        """Stop sending; every request already sent ends (answered or lost) first."""
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(self.timeout + 10)
            assert not self._thread.is_alive(), "load generator did not stop"
        if self._error is not None:
            raise self._error
        return self

    # -- figures --------------------------------------------------------------------------

    @property
    def answered(self) -> list[Outcome]:
        return [o for o in list(self.outcomes) if o.answered]

    @property
    def lost(self) -> list[Outcome]:
        return [o for o in list(self.outcomes) if not o.answered]

    def statuses(self) -> dict[int, int]:
        return dict(Counter(o.status for o in self.answered if o.status is not None))

    def summary(self) -> dict[str, Any]:
        """``sent``, ``answered``, ``lost``, ``503s``, ``retried`` and lost kinds."""
        outcomes = list(self.outcomes)
        lost = [o for o in outcomes if not o.answered]
        return {
            "sent": len(outcomes),
            "answered": len(outcomes) - len(lost),
            "lost": len(lost),
            "503s": sum(1 for o in outcomes if o.status == 503),
            "retried": self.retried,
            "lost_kinds": dict(Counter(o.lost for o in lost)),
        }

    def wait_answered(self, count: int, timeout: float = 15.0, since: float = 0.0) -> None:
        """Wait until ``count`` requests that ended after ``since`` were answered."""
        deadline = time.monotonic() + timeout
        while sum(1 for o in list(self.outcomes) if o.answered and o.ended > since) < count:
            if self._error is not None:
                raise self._error
            assert time.monotonic() < deadline, f"fewer than {count} answers: {self.summary()}"
            time.sleep(0.02)

    def first_answer(self, accept: Callable[[Outcome], bool], timeout: float = 15.0) -> Outcome:
        """The earliest-ending answered outcome for which ``accept`` holds (waits for one)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [o for o in list(self.outcomes) if o.answered and accept(o)]
            if found:
                return min(found, key=lambda o: o.ended)
            assert time.monotonic() < deadline, f"no matching answer: {self.summary()}"
            time.sleep(0.02)

    # -- the loop ----------------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by stop()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        ends = time.monotonic() + self.max_seconds
        lanes = [asyncio.create_task(self._lane(ends)) for _ in range(self.lanes)]
        await asyncio.gather(*lanes)

    async def _lane(self, ends: float) -> None:
        assert self._stopping is not None
        conn: _Conn | None = None
        while not self._stopping.is_set() and time.monotonic() < ends:
            outcome = Outcome(id=next(self._ids), opened=time.monotonic())
            self.outcomes.append(outcome)
            reused = conn is not None
            try:
                if conn is None:
                    conn = await self._connect(outcome)
                outcome.port = conn.port
                await self._exchange(conn, outcome)
            except _Lost as lost:
                if conn is not None:
                    conn.close()
                    conn = None
                if reused and lost.kind in ("eof", "reset") and lost.response_bytes == 0:
                    # A reused idle connection was closed under us: one retry on a new one.
                    self.retried += 1
                    outcome.retried = True
                    outcome.opened = time.monotonic()
                    try:
                        conn = await self._connect(outcome)
                        outcome.port = conn.port
                        await self._exchange(conn, outcome)
                    except _Lost as again:
                        self._mark_lost(outcome, again)
                        if conn is not None:
                            conn.close()
                            conn = None
                else:
                    self._mark_lost(outcome, lost)
            outcome.ended = time.monotonic()
            if conn is not None and (not self.keepalive or conn.closing):
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    @staticmethod
    def _mark_lost(outcome: Outcome, lost: _Lost) -> None:
        outcome.status = None
        outcome.lost = lost.kind
        outcome.detail = lost.detail

    async def _connect(self, outcome: Outcome) -> _Conn:
        try:
            if isinstance(self.address, str):
                opening = asyncio.open_unix_connection(self.address)
            else:
                opening = asyncio.open_connection(*self.address)
            reader, writer = await asyncio.wait_for(opening, self.timeout)
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            raise _Lost("refused", repr(exc)) from None
        except TimeoutError:
            raise _Lost("timeout", "connect timed out") from None
        except OSError as exc:
            raise _Lost("reset", repr(exc)) from None
        port = None
        name = writer.get_extra_info("sockname")
        if isinstance(name, tuple):
            port = int(name[1])
        return _Conn(reader, writer, port)

    async def _exchange(self, conn: _Conn, outcome: Outcome) -> None:
        connection = "keep-alive" if self.keepalive else "close"
        sep = "&" if "?" in self.path else "?"
        head = (
            f"GET {self.path}{sep}id={outcome.id} HTTP/1.1\r\nHost: localhost\r\n"
            f"Connection: {connection}\r\n\r\n"
        )
        conn.received = 0
        try:
            conn.writer.write(head.encode())
            await asyncio.wait_for(conn.writer.drain(), self.timeout)
            await asyncio.wait_for(self._read_response(conn, outcome), self.timeout)
        except TimeoutError:
            raise _Lost("timeout", f"no complete response in {self.timeout}s", 1) from None
        except (ConnectionError, OSError) as exc:
            raise _Lost("reset", repr(exc), conn.received) from None

    async def _read_response(self, conn: _Conn, outcome: Outcome) -> None:
        head = await conn.read_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise _Lost("truncated", f"bad status line {lines[0]!r}", conn.received) from None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await conn.read_exactly(int(headers["content-length"]))
        else:
            body = await conn.read_to_eof()
        del body
        if headers.get("connection", "").lower() == "close" or not self.keepalive:
            conn.closing = True
        outcome.status = status
        outcome.headers = headers
        pid = headers.get("x-pid")
        outcome.pid = int(pid) if pid and pid.isdigit() else None


class _Conn:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int | None
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.port = port
        self.received = 0
        self.closing = False

    async def read_until(self, marker: bytes) -> bytes:
        try:
            data = await self.reader.readuntil(marker)
        except asyncio.IncompleteReadError as exc:
            self.received += len(exc.partial)
            kind = "truncated" if exc.partial else "eof"
            raise _Lost(kind, f"closed after {self.received} bytes", self.received) from None
        except asyncio.LimitOverrunError:
            raise _Lost("truncated", "response head too long", self.received) from None
        self.received += len(data)
        return data[: -len(marker)]

    async def read_exactly(self, size: int) -> bytes:
        try:
            data = await self.reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            self.received += len(exc.partial)
            raise _Lost("truncated", f"body cut after {len(exc.partial)} bytes", 1) from None
        self.received += len(data)
        return data

    async def read_to_eof(self) -> bytes:
        data = await self.reader.read()
        self.received += len(data)
        self.closing = True
        return data

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def on_connections(lost: Iterable[Outcome], ports: set[int], at: float) -> list[Outcome]:
    """The lost requests proven to have been on a worker: their connection was open at
    ``at`` (opened before, ended after) and its client port is one the worker held then."""
    return [o for o in lost if o.port in ports and o.opened <= at <= o.ended]
