"""CPU time a gunicorn worker spends per request under wrk.

    taskset -c 0 gunicorn -k gthread --threads 4 -b 127.0.0.1:8000 apps:hello &
    python benchmarks/worker_cpu.py MASTER_PID 8000

Reads the worker's user and system time (psutil) around one ``wrk -t1 -c64 -d6s`` run
pinned to core 1, and divides by the requests served.
"""

from __future__ import annotations

import subprocess
import sys
import time

import psutil


def main(master_pid: int, port: int, seconds: int = 6) -> str:
    worker = psutil.Process(master_pid).children()[0]
    before, started = worker.cpu_times(), time.monotonic()
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    after, elapsed = worker.cpu_times(), time.monotonic() - started
    rate = float(next(line for line in out.splitlines() if "Requests/sec" in line).split()[-1])
    served = rate * elapsed
    user = (after.user - before.user) / served * 1e6
    system = (after.system - before.system) / served * 1e6
    busy = (after.user - before.user + after.system - before.system) / elapsed * 100
    return (
        f"{rate:,.0f} req/s | user {user:.1f} us/request | system {system:.1f} us"
        f" | busy {busy:.0f}%"
    )


if __name__ == "__main__":
    print(main(int(sys.argv[1]), int(sys.argv[2])))
