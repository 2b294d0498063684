"""gevent and eventlet workers: this checkout against upstream gunicorn's green workers.

* hello world over keep-alive, ``wrk -t1 -c64`` pinned to core 1, each server pinned to
  core 0, one worker process, interleaved rounds (the order rotates each round); the table
  gives the median requests/s and the median p99 latency. Compared: ``-k gevent`` against
  gunicorn 27.0.1 ``-k gevent``, and ``-k eventlet`` against gunicorn 25.3.0 (the last
  release with the eventlet worker).
* idle connections: 1,000 kept-alive connections held open (each served one request),
  the worker's RSS before and after (per connection), then the same wrk load beside them.

Upstream releases are installed by this script into their own virtualenvs under /tmp
(never the project's). Run: ``.venv/bin/python benchmarks/green.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server as bench  # the HTTP/1 benchmark: its launcher and wrk helpers

VENVS = {
    "gevent": (Path("/tmp/gunicorn-bench-27.0.1-gevent"), ("gunicorn==27.0.1", "gevent")),
    "eventlet": (Path("/tmp/gunicorn-bench-25.3.0-eventlet"), ("gunicorn==25.3.0", "eventlet")),
}
UPSTREAM_NAMES = {"gevent": "gunicorn 27.0.1", "eventlet": "gunicorn 25.3.0"}
CONNECTIONS = 64
IDLE = 1000


@dataclass
class Series:
    rps: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    errors: int = 0
    cpu_us: list[float] = field(default_factory=list)


def ensure_venv(library: str) -> Path:
    """The upstream virtualenv for ``library``, created with pip if missing."""
    venv, packages = VENVS[library]
    gunicorn = venv / "bin" / "gunicorn"
    if not gunicorn.exists():
        bench.run_checked([sys.executable, "-m", "venv", "--clear", str(venv)], timeout=300)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        bench.run_checked([*pip, *packages, "packaging"], timeout=900)
    return gunicorn


def argv(gunicorn: Path, library: str, port: int) -> list[str]:
    return [
        str(gunicorn),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--worker-class",
        library,
        "--worker-connections",
        str(IDLE * 2),
        "--keep-alive",
        "120",
        "--log-level",
        "warning",
        "--graceful-timeout",
        "3",
        "apps:hello",
    ]


def wrk(port: int, duration: int) -> bench.WrkRun:
    scenario = bench.Scenario("green", 1, "hello", True, duration, CONNECTIONS)
    return bench.run_wrk(scenario, port, duration, None)


@contextlib.contextmanager
def serving(name: str, gunicorn: Path, library: str, log_dir: Path) -> Iterator[int]:
    port = bench.free_port()
    log = log_dir / f"{name.replace(' ', '-')}.log"
    with bench.launched(name, argv(gunicorn, library, port), port, log):
        yield port


def worker_process(port: int) -> psutil.Process:
    """The worker (the only child of a gunicorn master) listening on ``port``."""
    for proc in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error):
            if proc.children():
                continue
            for conn in proc.net_connections("tcp"):
                if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN":
                    parent = proc.parent()
                    if parent is not None and "gunicorn" in " ".join(parent.cmdline()):
                        return proc
    raise bench.BenchError("worker process not found")


def worker_rss(port: int) -> int:
    return int(worker_process(port).memory_info().rss)


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def open_idle(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that each had one response and stay open (keep-alive)."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        socks.append(sock)
    for sock in socks:
        data = b""
        while not data.endswith(b"Hello, World!"):
            chunk = sock.recv(4096)
            if not chunk:
                raise bench.BenchError("an idle connection was closed")
            data += chunk
    return socks


def measure(
    name: str, gunicorn: Path, library: str, log_dir: Path, duration: int
) -> tuple[bench.WrkRun, float]:
    """One run: wrk's figures and the worker's CPU time per request (µs)."""
    with serving(name, gunicorn, library, log_dir) as port:
        bench.check_response(bench.Scenario("green", 1, "hello", True, 1, 1), port)
        wrk(port, bench.WARMUP_SECONDS)
        worker = worker_process(port)
        before = cpu_seconds(worker)
        run = wrk(port, duration)
        used = cpu_seconds(worker) - before
    return run, used / max(run.rps * duration, 1.0) * 1e6


def measure_idle(
    gunicorn: Path, library: str, log_dir: Path, duration: int
) -> tuple[float, bench.WrkRun]:
    with serving(f"idle {library}", gunicorn, library, log_dir) as port:
        wrk(port, bench.WARMUP_SECONDS)
        before = worker_rss(port)
        socks = open_idle(port, IDLE)
        try:
            time.sleep(1.0)  # let the worker settle (no fixed sleeps in tests; this is not one)
            after = worker_rss(port)
            run = wrk(port, duration)
        finally:
            for sock in socks:
                sock.close()
    return (after - before) / IDLE / 1024, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--libraries", default="gevent,eventlet")
    parser.add_argument("--no-idle", action="store_true", help="skip the idle-connection run")
    args = parser.parse_args()
    bench.require_tools()
    log_dir = Path(f"/tmp/gunicorn-bench-green-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    log_dir.mkdir(parents=True)
    ours = bench.OURS_VENV / "bin" / "gunicorn"
    servers: list[tuple[str, Path, str]] = []
    for library in args.libraries.split(","):
        servers.append((f"ours {library}", ours, library))
        servers.append((f"{UPSTREAM_NAMES[library]} {library}", ensure_venv(library), library))
    results = {name: Series() for name, _, _ in servers}
    for round_no in range(args.rounds):
        offset = round_no % len(servers)
        for name, gunicorn, library in servers[offset:] + servers[:offset]:
            try:
                run, cpu_us = measure(name, gunicorn, library, log_dir, args.duration)
            except (bench.BenchError, subprocess.SubprocessError) as exc:
                print(f"round {round_no + 1}: {name}: FAILED {exc}", file=sys.stderr)
                continue
            series = results[name]
            series.rps.append(run.rps)
            series.p99_ms.append(run.p99_ms)
            series.errors += run.errors
            series.cpu_us.append(cpu_us)
            print(
                f"round {round_no + 1}: {name}: {run.rps:,.0f} req/s, p99 {run.p99_ms:.1f} ms, "
                f"worker CPU {cpu_us:.0f} µs/request",
                file=sys.stderr,
                flush=True,
            )
    idle: dict[str, tuple[float, bench.WrkRun]] = {}
    if not args.no_idle:
        for name, gunicorn, library in servers:
            try:
                idle[name] = measure_idle(gunicorn, library, log_dir, args.duration)
            except (bench.BenchError, OSError) as exc:
                print(f"idle: {name}: FAILED {exc}", file=sys.stderr)
    print(render(results, idle, args))
    return 0


def render(
    results: dict[str, Series],
    idle: dict[str, tuple[float, bench.WrkRun]],
    args: argparse.Namespace,
) -> str:
    lines = [
        f"{bench.machine_line()}; {args.rounds} interleaved rounds of wrk -t1 -c{CONNECTIONS} "
        f"-d{args.duration}s, hello world, keep-alive",
        "",
        "| server | req/s (median) | p99 ms (median) | worker CPU µs/request | errors "
        "| 1,000 idle: KiB/conn | req/s, p99 ms beside them |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, series in results.items():
        rps = statistics.median(series.rps) if series.rps else 0.0
        p99 = statistics.median(series.p99_ms) if series.p99_ms else 0.0
        cpu = statistics.median(series.cpu_us) if series.cpu_us else 0.0
        per_conn, loaded = idle.get(name, (0.0, None))
        beside = f"{loaded.rps:,.0f}, {loaded.p99_ms:.1f}" if loaded is not None else ""
        lines.append(
            f"| {name} | {rps:,.0f} | {p99:.1f} | {cpu:.0f} | {series.errors} | {per_conn:.1f} "
            f"| {beside} |"
        )
    lines.append("")
    for library in args.libraries.split(","):
        ours = results.get(f"ours {library}")
        theirs = results.get(f"{UPSTREAM_NAMES[library]} {library}")
        if ours and theirs and ours.rps and theirs.rps:
            ratio = statistics.median(ours.rps) / statistics.median(theirs.rps)
            cpu_ratio = statistics.median(theirs.cpu_us) / statistics.median(ours.cpu_us)
            lines.append(
                f"- {library}: ours / {UPSTREAM_NAMES[library]}: req/s {ratio:.2f}x, "
                f"worker CPU per request {cpu_ratio:.2f}x less"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
