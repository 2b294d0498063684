"""A fast asyncio HTTP/1.1 client for the soak, with exact accounting.

``soak(address, total, keepalive=...)`` sends ``total`` requests of a fixed mix and checks
every response byte for byte: the status, the number of 103 Early Hints before it, the body
(none for HEAD, exactly Content-Length bytes otherwise). Keep-alive lanes write batches of
``BATCH`` pipelined requests in one ``write`` and reconnect every ``BATCHES_PER_CONNECTION``
batches; one-shot lanes open a connection per request for the kinds that end a connection
(``Connection: close``, a bad request, an application error). Without keep-alive (the sync
worker closes after each response) every request has its own connection.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections import Counter
from dataclasses import dataclass, field

from tests.reliability.soak_apps import BODY, HINTED

Address = tuple[str, int] | str
BATCH = 20
BATCHES_PER_CONNECTION = 25
POST_BODY = bytes(range(256)) * 4  # 1 KiB


@dataclass(frozen=True)
class Kind:
    name: str
    request: bytes
    status: int
    body: bytes | None  # None: not checked (the server's own error page)
    head: bool = False
    hints: int = 0


KINDS = {
    kind.name: kind
    for kind in (
        Kind("get", b"GET /?q=1 HTTP/1.1\r\nHost: soak\r\n\r\n", 200, BODY),
        Kind("head", b"HEAD / HTTP/1.1\r\nHost: soak\r\n\r\n", 200, b"", head=True),
        Kind(
            "post",
            b"POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n%s"
            % (len(POST_BODY), POST_BODY),
            200,
            POST_BODY,
        ),
        Kind("hints", b"GET /hints HTTP/1.1\r\nHost: soak\r\n\r\n", 200, HINTED, hints=1),
        Kind("close", b"GET / HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n", 200, BODY),
        Kind("bad", b"GET / HTTP/1.1\r\nHost: soak\r\nBad Header\r\n\r\n", 400, None),
        Kind("error", b"GET /error HTTP/1.1\r\nHost: soak\r\n\r\n", 500, None),
    )
}
#: One pipelined batch (keep-alive lanes).
PIPELINED = ("get", "post", "get", "head", "hints", "get", "post", "get", "head", "get")
#: The kinds sent on a connection of their own (and, without keep-alive, all of them).
ONE_SHOT = ("close", "bad", "error")
EVERYTHING = ("get", "post", "head", "hints", "get", "close", "bad", "get", "error", "post")


@dataclass
class Tally:
    remaining: int
    sent: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def take(self, count: int) -> int:
        granted = min(count, self.remaining)
        self.remaining -= granted
        return granted

    def fail(self, message: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(message)
        else:
            self.errors[-1] = f"... and more ({message})"

    @property
    def total_answered(self) -> int:
        return sum(self.answered.values())


class Garbled(Exception):
    pass


def parse_one(buf: bytes | bytearray, pos: int, head: bool) -> tuple[int, int, bytes, int] | None:
    """(status, 1xx count, body, end) of the response at ``pos``; None when incomplete."""
    informational = 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return None
        lines = bytes(buf[pos:end]).split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 "):
            raise Garbled(f"bad status line {lines[0][:60]!r}")
        status = int(lines[0][9:12])
        pos = end + 4
        if status >= 200:
            break
        informational += 1
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        lowered = name.lower()
        if lowered == b"content-length":
            length = int(value)
        elif lowered == b"transfer-encoding":
            raise Garbled("a chunked response where Content-Length was expected")
    if head or status in (204, 304):
        return status, informational, b"", pos
    if length is None:
        raise Garbled(f"no Content-Length in a {status} response")
    if len(buf) < pos + length:
        return None
    return status, informational, bytes(buf[pos : pos + length]), pos + length


def check(kind: Kind, got: tuple[int, int, bytes, int], tally: Tally) -> None:
    status, hints, body, _ = got
    if (
        status != kind.status
        or hints != kind.hints
        or (kind.body is not None and body != kind.body)
    ):
        tally.fail(f"{kind.name}: status {status}, {hints} hints, body {body[:40]!r}")
    else:
        tally.answered[kind.name] += 1


def _socket(address: Address) -> socket.socket:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


async def _read_responses(
    sock: socket.socket, kinds: list[Kind], tally: Tally, timeout: float
) -> bool:
    """Read one response per kind, in order; False when the connection ended early."""
    loop = asyncio.get_running_loop()
    buf = bytearray()
    pos = 0
    for kind in kinds:
        while True:
            got = parse_one(buf, pos, kind.head)
            if got is not None:
                break
            data = await asyncio.wait_for(loop.sock_recv(sock, 262144), timeout)
            if not data:
                tally.fail(f"{kind.name}: the connection closed before the response")
                return False
            buf += data
        check(kind, got, tally)
        pos = got[3]
        if pos > 65536:
            del buf[:pos]
            pos = 0
    return True


async def _keepalive_lane(address: Address, tally: Tally, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    cycle = itertools.cycle(PIPELINED)
    while tally.remaining:
        with _socket(address) as sock:
            await loop.sock_connect(sock, address)
            for _ in range(BATCHES_PER_CONNECTION):
                count = tally.take(BATCH)
                if not count:
                    break
                kinds = [KINDS[next(cycle)] for _ in range(count)]
                tally.sent.update(kind.name for kind in kinds)
                await loop.sock_sendall(sock, b"".join(kind.request for kind in kinds))
                if not await _read_responses(sock, kinds, tally, timeout):
                    break


async def _one_shot_lane(
    address: Address, tally: Tally, names: tuple[str, ...], timeout: float
) -> None:
    loop = asyncio.get_running_loop()
    cycle = itertools.cycle(names)
    while tally.take(1):
        kind = KINDS[next(cycle)]
        tally.sent[kind.name] += 1
        with _socket(address) as sock:
            await loop.sock_connect(sock, address)
            await loop.sock_sendall(sock, kind.request)
            await _read_responses(sock, [kind], tally, timeout)


async def _soak(address: Address, total: int, keepalive: bool, lanes: int, timeout: float) -> Tally:
    tally = Tally(total)
    if keepalive:
        # One request in ~20 is of a kind that ends its connection.
        shots = Tally(total // 20)
        tally.remaining -= shots.remaining
        jobs = [_keepalive_lane(address, tally, timeout) for _ in range(lanes)]
        jobs += [_one_shot_lane(address, shots, ONE_SHOT, timeout) for _ in range(2)]
    else:
        shots = None
        jobs = [_one_shot_lane(address, tally, EVERYTHING, timeout) for _ in range(lanes)]
    results = await asyncio.gather(*jobs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            tally.fail(f"a lane stopped: {type(result).__name__}: {result}")
    if shots is not None:
        tally.sent.update(shots.sent)
        tally.answered.update(shots.answered)
        for error in shots.errors:
            tally.fail(error)
    return tally


def soak(
    address: Address, total: int, *, keepalive: bool, lanes: int = 8, timeout: float = 30.0
) -> Tally:
    """Send ``total`` requests of the mix (see the module docstring); return the tally."""
    return asyncio.run(_soak(address, total, keepalive, lanes, timeout))
