"""TTIN/TTOU under load (P7) and a storm of 200 TTIN/TTOU/HUP signals in one second (P10):
the worker count follows each signal, then converges to what the master settled on (its
``nworkers_changed`` hook reports every change), nothing is lost, no zombie is left, the
master stays up and logs no traceback."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reliability.fault_harness import (
    WORKERS,
    bad_statuses,
    matrix,
    record_faults,
    start,
    zombies,
)
from tests.reliability.load import Load
from tests.support import wait_until

pytestmark = pytest.mark.slow

STORM = 200
HOOK = """
def nworkers_changed(server, new_value, old_value):
    with open({path!r}, "a") as f:
        f.write(f"{{new_value}}\\n")
"""


def _storm_signals() -> list[signal.Signals]:
    """Bursts of five TTIN then five TTOU (the count walks between 1 and 7), a HUP in
    every hundredth place."""
    sigs = []
    for i in range(STORM):
        if i % 100 == 99:
            sigs.append(signal.SIGHUP)
        else:
            sigs.append(signal.SIGTTIN if (i // 5) % 2 == 0 else signal.SIGTTOU)
    return sigs


def _converged(count: Callable[[], int], settled: Callable[[], int], timeout: float) -> int:
    """The worker count once it equals the master's settled count twice in a row, half a
    second apart (a master still working through queued signals moves both meanwhile)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        now = settled()
        current = now if count() == now else None
        if current is not None and current == last:
            return current
        last = current
        assert time.monotonic() < deadline, f"no convergence: {count()} workers, {now} settled"
        time.sleep(0.5)


@pytest.mark.parametrize("worker", matrix(*WORKERS))
def test_ttin_ttou_follow_and_a_storm_converges(worker: str, tmp_path: Path) -> None:
    counts = tmp_path / "nworkers.log"
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(HOOK.format(path=str(counts)))
    server = start(worker, "-c", str(conf))

    def settled() -> int:
        lines = counts.read_text().split()
        return int(lines[-1]) if lines else 2

    try:
        with Load(server.address, lanes=6) as load:
            load.wait_answered(20)
            for sig, expected in [
                (signal.SIGTTIN, 3),
                (signal.SIGTTOU, 2),
                (signal.SIGTTOU, 1),
            ]:
                server.send(sig)
                server.wait_workers(expected, timeout=20)
            server.send(signal.SIGTTOU)  # never below one
            server.send(signal.SIGTTIN)
            server.wait_workers(2, timeout=20)

            started = time.monotonic()
            for i, sig in enumerate(_storm_signals()):
                os.kill(server.pid, sig)
                # Spread the storm over one second (this paces the attack; it waits for
                # nothing).
                time.sleep(max(0.0, started + (i + 1) / STORM - time.monotonic()))
            storm_seconds = time.monotonic() - started
            final = _converged(lambda: len(server.worker_pids()), settled, timeout=60)
            load.wait_answered(20, since=time.monotonic())
        record_faults(worker, "TTIN/TTOU + storm of 200 signals", load, settled_workers=final)
        assert load.lost == [], [(o.lost, o.detail) for o in load.lost[:5]]
        assert bad_statuses(load) == {}
        assert storm_seconds < 2.0
        assert 1 <= final <= 2 + STORM // 2
        assert server.proc is not None and server.proc.poll() is None
        wait_until(lambda: not zombies(server.pid), timeout=10)
        assert "Traceback" not in server.log
        # Every worker asked to stop did (a TERM lost at boot left one serving until
        # graceful_timeout killed it, with the requests it held).
        assert "SIGKILL" not in server.log
        assert len(server.wait_workers(final, timeout=10)) == final
    finally:
        server.stop()
