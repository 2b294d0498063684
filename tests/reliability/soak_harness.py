"""The soak (hostile-inputs §4 P18/P19, §7 item 8), run once per worker class by the
``test_soak_<worker>.py`` files (one file each, so that xdist runs them side by side).

One worker serves ``GUNICORN_SOAK_REQUESTS`` requests of a mixed load
(``soak_client``: keep-alive and pipelined batches, ``Connection: close``, POST bodies,
early hints, HEAD, bad requests and application errors). The first tenth warms the
server up; then the worker's and the master's open descriptors are counted and the
worker's RSS is sampled, and again at the end, once the client's connections are gone.
Pass: every request answered exactly as expected, the worker never replaced, descriptors
back to the warmed-up count (± 2) and RSS growth < 5 MiB.

In CI the default is 50,000 requests, and 10,000 for the sync worker (it closes the
connection after every response, so each of its requests costs a TCP handshake on both
sides, about 4 times the CPU of a pipelined keep-alive request): the whole suite must stay
under 10 minutes on 2 cores, and the five soaks at 100,000 took a sixth of it. The figures
published in docs/reliability.md come from a run at 100,000 (``GUNICORN_SOAK_REQUESTS``).

A longer soak is the same test with more requests, e.g.::

    GUNICORN_SOAK_REQUESTS=500000 .venv/bin/python -m pytest -p no:randomly --timeout 900 \\
        tests/reliability/test_soak_gthread.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from tests.reliability.figures import record
from tests.reliability.soak_client import Tally, soak
from tests.support import Gunicorn

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20
FD_SLACK = 2
RSS_LIMIT = 5 * MiB


def requested_total(worker: str) -> int:
    default = 10_000 if worker == "sync" else 50_000
    return int(os.environ.get("GUNICORN_SOAK_REQUESTS") or default)


def server_args(worker: str) -> list[str]:
    args = ["-k", worker, "-w", "1", "--chdir", str(REPO), "--timeout", "30"]
    args += ["--keep-alive", "10", "--max-requests", "0"]
    if worker == "gthread":
        args += ["--threads", "4"]
    app = "asgi_app" if worker == "asgi" else "app"
    return [*args, f"tests.reliability.soak_apps:{app}"]


def settled_fds(processes: list[psutil.Process], timeout: float = 15.0) -> list[int]:
    """The descriptor counts once they stop changing (closed connections take a moment
    to be reaped by the server)."""
    deadline = time.monotonic() + timeout
    last: list[int] = []
    steady = 0
    while True:
        counts = [p.num_fds() for p in processes]
        steady = steady + 1 if counts == last else 0
        last = counts
        if steady >= 4 or time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


def returned_fds(
    processes: list[psutil.Process], goal: list[int], timeout: float = 15.0
) -> list[int]:
    """Wait (bounded) until every count is back to ``goal``; the last counts."""
    deadline = time.monotonic() + timeout
    while True:
        counts = [p.num_fds() for p in processes]
        if all(c <= g for c, g in zip(counts, goal, strict=True)):
            return counts
        if time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


def summary(tally: Tally) -> str:
    return f"sent {dict(tally.sent)}, answered {dict(tally.answered)}, errors {tally.errors[:5]}"


def run_soak(worker: str) -> None:
    total = requested_total(worker)
    warmup = max(total // 10, 1000)
    keepalive = worker != "sync"
    with Gunicorn(*server_args(worker), timeout=30) as server:
        assert server.address is not None
        (worker_pid,) = server.wait_workers(1)
        master, child = psutil.Process(server.pid), psutil.Process(worker_pid)
        boot_fds = [master.num_fds(), child.num_fds()]
        started = time.monotonic()
        first = soak(server.address, warmup, keepalive=keepalive)
        warm_fds = settled_fds([master, child])
        warm_rss = child.memory_info().rss
        second = soak(server.address, total - warmup, keepalive=keepalive)
        elapsed = time.monotonic() - started
        end_fds = returned_fds([master, child], warm_fds)
        end_rss = child.memory_info().rss
        same_worker = server.worker_pids() == [worker_pid]
        answered = first.total_answered + second.total_answered
        errors = first.errors + second.errors
        record(
            "soak",
            worker,
            "mixed-requests",
            requests=total,
            answered=answered,
            errors=len(errors),
            seconds=round(elapsed, 1),
            requests_per_second=round(total / elapsed),
            fd_boot={"master": boot_fds[0], "worker": boot_fds[1]},
            fd_delta={"master": end_fds[0] - warm_fds[0], "worker": end_fds[1] - warm_fds[1]},
            rss_warmup_mib=round(warm_rss / MiB, 2),
            rss_end_mib=round(end_rss / MiB, 2),
            rss_growth_mib=round((end_rss - warm_rss) / MiB, 2),
        )
    assert not errors, f"{summary(first)}\n{summary(second)}"
    assert answered == total
    assert same_worker, "the worker was replaced during the soak"
    for name, warm, end in zip(("master", "worker"), warm_fds, end_fds, strict=True):
        assert abs(end - warm) <= FD_SLACK, (
            f"{name}: {warm} descriptors after warm-up, {end} at the end"
        )
    assert end_rss - warm_rss < RSS_LIMIT, (
        f"worker RSS grew {(end_rss - warm_rss) / MiB:.1f} MiB after warm-up"
    )
