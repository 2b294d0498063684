"""What the fault tests share: the worker matrix, the server command line, process probes
(connections a worker holds, fd counts, zombies) and the figures they publish.

A lost request is excused only when the test proves it was on the worker the fault hit:
:func:`held_connections` lists the client ports of the TCP connections a worker holds
while it is frozen (SIGSTOP: it accepts nothing more), and
:func:`tests.reliability.load.on_connections` keeps the lost requests whose connection
was open at that moment on one of those ports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.reliability import figures
from tests.reliability.load import Load, Outcome
from tests.support import Gunicorn, request, wait_until

REPO = Path(__file__).resolve().parents[2]

#: The worker classes every fault test file runs on; gevent and eventlet run the same
#: tests from files of their own (test_faults_gevent.py, test_faults_eventlet.py).
WORKERS = ("sync", "gthread", "asgi")


def app_for(worker: str) -> str:
    name = "asgi_app" if worker == "asgi" else "app"
    return f"tests.reliability.fault_apps:{name}"


def server_args(worker: str, *extra: str, workers: int = 2) -> list[str]:
    """The command line of a fault test's server (the application last)."""
    args = ["-k", worker, "--chdir", str(REPO), "-w", str(workers)]
    if worker == "gthread":
        args += ["--threads", "4"]
    return [*args, *extra, app_for(worker)]


def start(
    worker: str, *extra: str, workers: int = 2, probe: bool = True, **kwargs: Any
) -> Gunicorn:
    """Start a server for ``worker``; wait until it runs ``workers`` workers and (with
    ``probe``) until one of them has answered a request, so that a fault test's load
    begins on a server that serves, not on workers still booting on a loaded machine."""
    server = Gunicorn(*server_args(worker, *extra, workers=workers), **kwargs).start()
    try:
        server.wait_workers(workers, timeout=20)
        if probe:
            serving(server)
    except BaseException:
        server.stop()
        raise
    return server


def serving(server: Gunicorn, timeout: float = 30.0) -> int:
    """Wait until the server answers ``GET /``; the pid of the worker that did."""

    def answered() -> int | None:
        try:
            status, body = request(server.address, "/", timeout=timeout)
        except OSError:
            return None
        return int(body) if status == 200 else None

    return int(wait_until(answered, timeout=timeout))


def port_of(server: Gunicorn) -> int:
    assert isinstance(server.address, tuple)
    return server.address[1]


def held_connections(pid: int, port: int) -> set[int]:
    """Client ports of the connections worker ``pid`` holds on the listener ``port``.

    Read straight from /proc: the worker's socket inodes, then only the lines of the
    kernel's TCP tables that carry one of them. (psutil parses every line of those tables;
    with the thousands of TIME_WAIT entries a loaded test run leaves, that took longer
    than a stuck worker lives, and the look came back empty.)
    """
    inodes = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        raise psutil.NoSuchProcess(pid) from None
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as f:
            text = f.read()
        for line in text.splitlines()[1:]:
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if local_port == port and remote_port:
                    ports.add(remote_port)
    return ports


def wait_stopped(pid: int, timeout: float = 10.0) -> None:
    wait_until(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED, timeout)


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP ``pid`` for the block (it accepts and answers nothing meanwhile)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_stopped(pid)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def zombies(pid: int) -> list[int]:
    """Children of ``pid`` that died and were not reaped."""
    found = []
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() == psutil.STATUS_ZOMBIE:
                found.append(child.pid)
    return found


def pids_seen(load: Load) -> set[int]:
    return {o.pid for o in load.answered if o.pid is not None}


def record_faults(worker: str, item: str, load: Load, **extra: Any) -> dict[str, Any]:
    """Publish the accounting of one fault run; returns it."""
    values = {**load.summary(), **extra}
    figures.record("faults", worker, item, **values)
    return values


def spread(samples_ms: list[float]) -> dict[str, float]:
    """p50 and max of a list of milliseconds."""
    return {
        "p50_ms": round(statistics.median(samples_ms), 1),
        "max_ms": round(max(samples_ms), 1),
        "samples": len(samples_ms),
    }


def bad_statuses(load: Load) -> dict[int, int]:
    """Answers other than 200 and a 503 the server chose (there should be none)."""
    return {s: n for s, n in load.statuses().items() if s not in (200, 503)}


def matrix(*classes: str, xfail: dict[str, str] | None = None) -> list[Any]:
    """``pytest.param`` per worker class; ``xfail`` maps a class to the reason it cannot
    pass (a strict xfail: the day it passes, the mark must go)."""
    reasons = xfail or {}
    return [
        pytest.param(
            worker,
            id=worker,
            marks=[pytest.mark.xfail(strict=True, reason=reasons[worker])]
            if worker in reasons
            else [],
        )
        for worker in classes
    ]


def xfail_known(worker: str, lost: list[Outcome], reason: str) -> None:
    if worker != "asgi" or not lost:
        return
    if all(o.lost in ("eof", "reset") for o in lost):
        pytest.xfail(f"{reason} ({len(lost)} lost)")
