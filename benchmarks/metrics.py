"""What the request metrics cost: in process (ns per request) and on a running server.

``--micro``: the calls one request makes (request_started, record_request,
connection_opened/closed) on a real shared-memory ``WorkerMetrics`` against the no-op
``NullMetrics``, best of several rounds, in nanoseconds per request.

Server (default): the HTTP/1 hello benchmark of ``server.py`` (wrk on core 1, one worker on
core 0) in interleaved rounds with the metrics on (as shipped) and off (a config file whose
``post_fork`` gives the worker a ``NullMetrics``): medians of req/s, p99 and the worker's
CPU time per request (user + system, psutil), which a busy machine disturbs much less than
throughput.

    .venv/bin/python benchmarks/metrics.py --micro
    .venv/bin/python benchmarks/metrics.py --worker sync --rounds 3 --duration 8
    .venv/bin/python benchmarks/metrics.py --worker gthread --threads 4
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import server as bench

from gunicorn.instrument.metrics import NullMetrics, WorkerMetrics

OFF_CONFIG = """\
from gunicorn.instrument.metrics import NullMetrics


def post_fork(server, worker):
    worker.metrics = NullMetrics()
"""


def micro(rounds: int = 7, count: int = 200_000) -> None:
    def per_request(recorder: WorkerMetrics | NullMetrics) -> float:
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(count):
                recorder.connection_opened()
                recorder.request_started(False)
                recorder.record_request(b"GET", 200, 0.0007, 0, 13, False)
                recorder.connection_closed()
            best = min(best, time.perf_counter() - started)
        return best / count * 1e9

    real = per_request(WorkerMetrics(threads=4))
    null = per_request(NullMetrics())
    print(f"WorkerMetrics: {real:.0f} ns/request, NullMetrics: {null:.0f} ns/request")
    print(f"cost of recording: {real - null:.0f} ns/request")


def _wrk(port: int, seconds: int, connections: int) -> tuple[float, int, float]:
    """req/s, requests served and p99 (ms) of one pinned wrk run."""
    argv = ["taskset", "-c", bench.CLIENT_CORE, "wrk", "-t1", f"-c{connections}"]
    argv += [f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    run = bench.parse_wrk(out)
    served = re.search(r"(\d+) requests in", out)
    if served is None:
        raise bench.BenchError(f"cannot read wrk output:\n{out}")
    return run.rps, int(served.group(1)), run.p99_ms


def measure(argv: list[str], port: int, seconds: int, connections: int) -> tuple[float, ...]:
    """Start the server pinned to the server core; (req/s, p99 ms, worker CPU µs/request)."""
    env = {**os.environ, "PYTHONPATH": str(bench.BENCH_DIR)}
    env.pop("GUNICORN_CMD_ARGS", None)
    proc = subprocess.Popen(
        ["taskset", "-c", bench.SERVER_CORE, *argv],
        cwd=bench.BENCH_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        bench.wait_listening(proc, port, bench.START_TIMEOUT)
        deadline = time.monotonic() + bench.START_TIMEOUT
        while not (children := psutil.Process(proc.pid).children()):
            if time.monotonic() > deadline:
                raise bench.BenchError("no worker started")
            time.sleep(0.05)
        worker = children[0]
        _wrk(port, bench.WARMUP_SECONDS, connections)
        before = worker.cpu_times()
        rps, served, p99 = _wrk(port, seconds, connections)
        after = worker.cpu_times()
    finally:
        bench.stop_server(proc)
    cpu = after.user - before.user + after.system - before.system
    return rps, p99, cpu / served * 1e6


def serve(args: argparse.Namespace) -> None:
    bench.require_tools()
    scenario = bench.Scenario(
        worker=args.worker,
        threads=args.threads,
        app="hello",
        keepalive=True,
        duration=args.duration,
        connections=args.connections,
    )
    results: dict[str, list[tuple[float, ...]]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        off_conf = Path(tmp) / "metrics_off.py"
        off_conf.write_text(OFF_CONFIG)
        for round_no in range(args.rounds):
            order = ["on", "off"] if round_no % 2 == 0 else ["off", "on"]
            for variant in order:
                port = bench.free_port()
                argv = bench.server_argv("ours", scenario, port)
                if variant == "off":
                    argv[1:1] = ["-c", str(off_conf)]
                rps, p99, cpu = measure(argv, port, args.duration, args.connections)
                print(
                    f"round {round_no + 1}: metrics {variant}: {rps:,.0f} req/s, "
                    f"p99 {p99:.2f} ms, worker CPU {cpu:.1f} us/request",
                    file=sys.stderr,
                    flush=True,
                )
                results[variant].append((rps, p99, cpu))
    print(f"\n{args.worker}, hello, keep-alive, -c{args.connections}, {args.rounds} rounds:\n")
    print("| metrics | req/s (median) | p99 ms (median) | worker CPU µs/request (median) |")
    print("|---|---:|---:|---:|")
    medians = {}
    for variant in ("on", "off"):
        rows = results[variant]
        medians[variant] = [statistics.median(r[i] for r in rows) for i in range(3)]
        rps, p99, cpu = medians[variant]
        print(f"| {variant} | {rps:,.0f} | {p99:.2f} | {cpu:.1f} |")
    on, off = medians["on"], medians["off"]
    print(f"\non/off: req/s {on[0] / off[0]:.3f}, CPU per request {on[2] / off[2]:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--micro", action="store_true", help="in-process cost only")
    parser.add_argument("--worker", choices=["sync", "gthread"], default="sync")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.micro:
        micro()
    else:
        serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
