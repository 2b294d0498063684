"""Dirty arbiters: calls per second and added latency, this checkout against gunicorn 27.0.1.

One gthread HTTP worker (4 threads) runs the calls in-process and times them, so the
numbers are the dirty round trip alone (no HTTP in the timed part):

- ``noop x1``: one thread calls ``execute()`` of a no-op action N times in a row
  (calls/s and microseconds per call: the latency a call adds to a request);
- ``noop x4``: four HTTP requests at once, each doing the same loop (aggregate calls/s);
- ``stream 1 MiB``: ``stream()`` of 1 MiB in 64 KiB and in 4 KiB chunks (MiB/s).

Both servers run with ``--dirty-workers 2`` and the same apps, in interleaved rounds; the
table gives medians. Upstream runs from its own virtualenv (``--upstream-venv``, default
``/tmp/gu27``; create it with ``python3 -m venv /tmp/gu27 && /tmp/gu27/bin/pip install
gunicorn==27.0.1``).

    .venv/bin/python benchmarks/dirty.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DIRTY_APP = """
from gunicorn.dirty import DirtyApp


class Bench(DirtyApp):
    def noop(self):
        return None

    def blob(self, total, size):
        chunk = b"x" * size
        sent = 0
        while sent < total:
            yield chunk if total - sent >= size else chunk[: total - sent]
            sent += size
"""

WEB_APP = """
import json
import time
import urllib.parse

from gunicorn.dirty import get_dirty_client

APP = "bench_dirty_apps:Bench"


def app(environ, start_response):
    query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    client = get_dirty_client(timeout=60)
    n = int(query.get("n", "1"))
    started = time.perf_counter()
    if environ["PATH_INFO"] == "/stream":
        total, size = int(query["total"]), int(query["size"])
        for _ in range(n):
            got = sum(len(c) for c in client.stream(APP, "blob", total, size))
            assert got == total, got
    else:
        for _ in range(n):
            client.execute(APP, "noop")
    body = json.dumps({"elapsed": time.perf_counter() - started, "n": n}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=120) as response:
        data: dict[str, float] = json.loads(response.read())
        return data


class Server:
    def __init__(self, name: str, gunicorn: str, workdir: str) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [
            gunicorn,
            "-b", f"127.0.0.1:{self.port}",
            "-k", "gthread", "-w", "1", "--threads", "4",
            "--dirty-workers", "2", "--dirty-app", "bench_dirty_apps:Bench",
            "--no-control-socket",
            "--log-level", "warning",
            "bench_dirty_web:app",
        ]  # fmt: skip
        self.log = open(os.path.join(workdir, f"{name}.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(args, cwd=workdir, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                get(f"{self.base}/noop?n=1")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def measure(server: Server, calls: int, stream_reps: int) -> dict[str, float]:
    base = server.base
    get(f"{base}/noop?n={calls // 5}")  # warm up
    result: dict[str, float] = {}
    one = get(f"{base}/noop?n={calls}")
    result["noop x1 calls/s"] = calls / one["elapsed"]
    result["noop x1 us/call"] = one["elapsed"] / calls * 1e6
    spans: list[float] = []

    def loop() -> None:
        spans.append(get(f"{base}/noop?n={calls // 2}")["elapsed"])

    started = time.perf_counter()
    threads = [threading.Thread(target=loop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    result["noop x4 calls/s"] = 4 * (calls // 2) / max(max(spans), 1e-9)
    result["noop x4 wall calls/s"] = 4 * (calls // 2) / wall
    for size in (65536, 4096):
        data = get(f"{base}/stream?n={stream_reps}&total={1 << 20}&size={size}")
        result[f"stream 1 MiB / {size // 1024} KiB chunks MiB/s"] = stream_reps / data["elapsed"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--stream-reps", type=int, default=20)
    parser.add_argument("--upstream-venv", default="/tmp/gu27")
    args = parser.parse_args()
    impls = {
        "ours": str(ROOT / ".venv" / "bin" / "gunicorn"),
        "upstream": os.path.join(args.upstream_venv, "bin", "gunicorn"),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in impls}
    with tempfile.TemporaryDirectory(prefix="bench-dirty-") as workdir:
        Path(workdir, "bench_dirty_apps.py").write_text(DIRTY_APP)
        Path(workdir, "bench_dirty_web.py").write_text(WEB_APP)
        for round_no in range(args.rounds):
            for name, gunicorn in impls.items():
                server = Server(name, gunicorn, workdir)
                try:
                    results[name].append(measure(server, args.calls, args.stream_reps))
                finally:
                    server.stop()
                print(f"round {round_no + 1} {name}: {results[name][-1]}", file=sys.stderr)
    keys = list(results["ours"][0])
    print("| measure | ours | upstream 27.0.1 | ours/upstream |")
    print("|---|---:|---:|---:|")
    for key in keys:
        ours = statistics.median(r[key] for r in results["ours"])
        upstream = statistics.median(r[key] for r in results["upstream"])
        print(f"| {key} | {ours:,.1f} | {upstream:,.1f} | {ours / upstream:.2f}x |")


if __name__ == "__main__":
    main()
