"""WebSocket echo round trips: this checkout's ``gunicorn -k asgi`` against uvicorn 0.54
with its ``websockets`` implementation (and upstream gunicorn 27.0.1 ``-k asgi``).

Each server runs one worker pinned to core 0 and serves ``app`` below (echo every
message back). The load client (this file with ``--client``, pinned to core 1) opens N
connections and keeps one small message in flight on each: a round trip is a message
sent and its echo received. Servers run in interleaved rounds, each round a fresh
process; the table gives the median round trips per second and the median p50/p99 round
trip latency, and the server's CPU time (all its processes) per round trip, which a
busy machine disturbs less than throughput. The client speaks raw frames (pre-masked,
parsed by length only) so that it costs far less than the servers it measures.

    .venv/bin/python benchmarks/ws_echo.py                     # 1 and 64 connections
    .venv/bin/python benchmarks/ws_echo.py --connections 64 --rounds 5 --seconds 5
    .venv/bin/python benchmarks/ws_echo.py --deflate           # the client offers
                                                               # permessage-deflate

Needs ``taskset`` and 2 cores. uvicorn comes from the project venv; upstream gunicorn
from ``benchmarks/.venv-upstream`` (made by ``server.py``; skipped when missing).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OURS_BIN = ROOT / ".venv" / "bin"
UPSTREAM_BIN = BENCH_DIR / ".venv-upstream" / "bin"
SERVER_CORE = "0"
CLIENT_CORE = "1"
MESSAGE = b"0123456789abcdef0123456789abcdef"  # 32 bytes of text


# -- the application every server runs ---------------------------------------------------


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send(message | {"type": "websocket.send"})


# -- the load client ----------------------------------------------------------------------


def client_frame(payload: bytes) -> bytes:
    mask = b"\x37\xfa\x21\x3d"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


class EchoConnection(asyncio.Protocol):
    """Keeps one message in flight; counts echoes and their round-trip times."""

    def __init__(self, run: LoadRun, handshake: bytes) -> None:
        self.run = run
        self.handshake = handshake
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.open = False
        self.sent_at = 0.0
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.handshake)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.open:
            head, sep, rest = buffer.partition(b"\r\n\r\n")
            if not sep:
                self.buffer = buffer
                return
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                self.ready.set_exception(ConnectionError(head.decode("latin-1")))
                return
            self.open = True
            self.ready.set_result(None)
            buffer = rest
        run = self.run
        frames = 0
        pos = 0
        end = len(buffer)
        while end - pos >= 2:
            length = buffer[pos + 1] & 0x7F
            header = 2
            if length == 126:
                if end - pos < 4:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                header = 4
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                header = 10
            if end - pos < header + length:
                break
            pos += header + length
            frames += 1
        self.buffer = buffer[pos:]
        if frames:
            now = time.perf_counter()
            run.total += frames
            if run.measuring:
                run.count += frames
                run.latencies.append(now - self.sent_at)
            if run.sending:
                self.send(now)

    def send(self, now: float) -> None:
        assert self.transport is not None
        self.sent_at = now
        self.transport.write(self.run.frame)


class LoadRun:
    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self.count = 0
        self.total = 0
        self.latencies: list[float] = []
        self.measuring = False
        self.sending = True


async def load(
    port: int, connections: int, warmup: float, seconds: float, deflate: bool
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    run = LoadRun(client_frame(MESSAGE))
    key = base64.b64encode(os.urandom(16))
    handshake = (
        b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
        % (port, key)
    )
    if deflate:
        handshake += b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    handshake += b"\r\n"
    protocols: list[EchoConnection] = []
    for _ in range(connections):
        _transport, protocol = await loop.create_connection(
            lambda: EchoConnection(run, handshake), "127.0.0.1", port
        )
        protocols.append(protocol)
    await asyncio.gather(*(p.ready for p in protocols))
    now = time.perf_counter()
    for protocol in protocols:
        protocol.send(now)
    await asyncio.sleep(warmup)
    run.count = 0
    run.latencies = []
    run.measuring = True
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    run.measuring = False
    elapsed = time.perf_counter() - started
    run.sending = False
    for protocol in protocols:
        if protocol.transport is not None:
            protocol.transport.close()
    latencies = sorted(run.latencies)
    return {
        "round_trips_per_s": run.count / elapsed,
        "total_round_trips": run.total,
        "p50_us": percentile(latencies, 0.50) * 1e6,
        "p99_us": percentile(latencies, 0.99) * 1e6,
    }


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * fraction))]


def client_main(args: argparse.Namespace) -> int:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(load(args.port, args.connections, args.warmup, args.seconds, args.deflate))
    print(json.dumps(result))
    return 0


# -- servers ------------------------------------------------------------------------------

SERVERS = {
    "ours": "gunicorn -k asgi (this checkout)",
    "uvicorn": "uvicorn 0.54 --ws websockets",
    "upstream": "gunicorn 27.0.1 -k asgi",
}


def server_argv(name: str, port: int) -> list[str]:
    bind = f"127.0.0.1:{port}"
    if name == "ours":
        return [str(OURS_BIN / "gunicorn"), "-k", "asgi", "-w", "1", "-b", bind,
                "--chdir", str(BENCH_DIR), "ws_echo:app"]  # fmt: skip
    if name == "upstream":
        return [str(UPSTREAM_BIN / "gunicorn"), "-k", "asgi", "-w", "1", "-b", bind,
                "--chdir", str(BENCH_DIR), "ws_echo:app"]  # fmt: skip
    if name == "uvicorn":
        return [str(OURS_BIN / "uvicorn"), "--ws", "websockets", "--host", "127.0.0.1",
                "--port", str(port), "--app-dir", str(BENCH_DIR), "--no-access-log",
                "--log-level", "warning", "ws_echo:app"]  # fmt: skip
    raise ValueError(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (psutil)."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


@contextmanager
def running(name: str, log_dir: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, *server_argv(name, port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {log_dir / (name + '.log')}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.05)
        yield port, proc.pid
    finally:
        with_group = proc.pid
        try:
            os.killpg(with_group, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(with_group, signal.SIGKILL)
            proc.wait()
        log.close()


def measure(name: str, args: argparse.Namespace, connections: int, log_dir: Path) -> dict[str, Any]:
    with running(name, log_dir) as (port, pid):
        argv = ["taskset", "-c", CLIENT_CORE, sys.executable, __file__, "--client",
                "--port", str(port), "--connections", str(connections),
                "--warmup", str(args.warmup), "--seconds", str(args.seconds)]  # fmt: skip
        if args.deflate:
            argv.append("--deflate")
        cpu_before = tree_cpu_seconds(pid)
        out = subprocess.run(argv, capture_output=True, check=True, timeout=args.seconds + 60)
        cpu = tree_cpu_seconds(pid) - cpu_before
        result = dict(json.loads(out.stdout))
        result["server_cpu_us"] = cpu / max(result["total_round_trips"], 1) * 1e6
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, action="append")
    parser.add_argument("--servers", default="ours,uvicorn,upstream")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    args = parser.parse_args(argv)
    if args.client:
        args.connections = (args.connections or [1])[0]
        return client_main(args)
    servers = [s for s in args.servers.split(",") if s]
    if "upstream" in servers and not (UPSTREAM_BIN / "gunicorn").exists():
        print("upstream gunicorn not installed (run benchmarks/server.py once): skipped")
        servers.remove("upstream")
    counts = args.connections or [1, 64]
    log_dir = Path(tempfile.mkdtemp(prefix="ws-echo-"))
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for connections in counts:
        for round_no in range(args.rounds):
            order = servers[round_no % len(servers) :] + servers[: round_no % len(servers)]
            for name in order:
                result = measure(name, args, connections, log_dir)
                results.setdefault((name, connections), []).append(result)
                print(f"  round {round_no + 1} c={connections} {name}: "
                      f"{result['round_trips_per_s']:.0f} rt/s", file=sys.stderr)  # fmt: skip
    print(f"\nWebSocket echo, {len(MESSAGE)}-byte text messages, one in flight per "
          f"connection, {args.rounds} interleaved rounds of {args.seconds:g} s"
          f"{', permessage-deflate offered' if args.deflate else ''}\n")  # fmt: skip
    print(
        "| server | connections | round trips/s | p50 µs | p99 µs | server CPU µs/round trip "
        "| vs uvicorn (round trips/s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for connections in counts:
        base = results.get(("uvicorn", connections))
        base_rate = statistics.median(r["round_trips_per_s"] for r in base) if base else None
        for name in servers:
            runs = results[(name, connections)]
            rate = statistics.median(r["round_trips_per_s"] for r in runs)
            p50 = statistics.median(r["p50_us"] for r in runs)
            p99 = statistics.median(r["p99_us"] for r in runs)
            cpu = statistics.median(r["server_cpu_us"] for r in runs)
            ratio = f"{rate / base_rate:.2f}x" if base_rate else "n/a"
            cells = [SERVERS[name], str(connections), f"{rate:,.0f}", f"{p50:.0f}", f"{p99:.0f}"]
            cells += [f"{cpu:.1f}", ratio]
            print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
