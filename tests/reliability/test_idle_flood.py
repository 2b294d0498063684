"""Idle-connection flood (issue 15): 3,000 connections that never send a byte, held for
10 s against one worker with the default ``worker_connections`` (1000), while probes (a
new connection per GET, and one kept-alive connection) keep asking.

At the cap a worker closes the oldest connections that have not begun a request, so a
real client is always admitted (``gunicorn.drivers.admission``; the asgi worker's
``AsyncServer.admit``). The holder opens a new connection for each one closed (at most
``REOPEN_RATE`` a second), so the flood stays at 3,000 for the whole hold. Each worker is
answering before its flood starts, and the floods start together.

Every worker class is flooded at the same time (one holder process each), once per module;
the tests then check each class's figures. sync serves one connection at a time by design:
each silent connection holds it for up to ``timeout``, so its probe is an expected failure;
it must still survive the flood and serve again once the flood ends. gthread, gevent and
eventlet close connections that never sent a byte before kept-alive ones, so their
kept-alive probe keeps its connection.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from tests.reliability.admission_clients import (
    Holder,
    Probe,
    ProbeStats,
    address_of,
    answered_within,
    raise_nofile,
    server_for,
    start_all,
    stop_all,
    stop_probes,
)
from tests.reliability.figures import record

WORKERS = ("sync", "gthread", "gevent", "eventlet", "asgi")
FLOOD = 3000
HOLD = 10.0
REOPEN_RATE = 200  # new connections a second for those the server closed
WORKER_CONNECTIONS = 1000  # the default
#: Descriptors a worker holds besides its client connections (listener, pipes, log...).
OWN_FDS = 64
#: How long after the flood ends a worker must answer again (generous: a loaded machine).
RECOVERY = 10.0

SYNC_BY_DESIGN = (
    "sync serves one connection at a time: each silent connection holds the worker for up "
    "to `timeout` (30 s), so no probe is answered while the flood lasts (documented in "
    "docs/limits.md: put a buffering proxy in front of sync workers)"
)


@dataclass
class Outcome:
    fresh: ProbeStats
    kept: ProbeStats
    holder: dict[str, Any]
    worker_pid: int
    worker_alive: bool = False
    peak_fds: int = 0
    recovery: float | None = None


def _worker_fds(pid: int) -> int:
    with contextlib.suppress(psutil.Error):
        return int(psutil.Process(pid).num_fds())
    return 0


@pytest.fixture(scope="module")
def flood() -> Iterator[dict[str, Outcome]]:
    raise_nofile()
    servers = {worker: server_for(worker) for worker in WORKERS}
    holders: dict[str, Holder] = {}
    try:
        start_all(servers.values())
        pids = {worker: server.wait_workers(1)[0] for worker, server in servers.items()}
        for server in servers.values():  # booted: the worker answers
            assert answered_within(address_of(server), 30.0) is not None, server.log
        for worker, server in servers.items():
            holders[worker] = Holder(address_of(server), FLOOD, HOLD, REOPEN_RATE)
        for holder in holders.values():
            holder.wait_ready()
        for holder in holders.values():
            holder.go()
        probes = {
            worker: (Probe(address_of(server)), Probe(address_of(server), keepalive=True))
            for worker, server in servers.items()
        }
        for pair in probes.values():
            for probe in pair:
                probe.start()
        peak = dict.fromkeys(WORKERS, 0)
        # Sample the workers' descriptors until the holders are done.
        deadline = time.monotonic() + HOLD + 30.0
        while any(holder.proc.poll() is None for holder in holders.values()):
            assert time.monotonic() < deadline, "the holders did not end"
            for worker in WORKERS:
                peak[worker] = max(peak[worker], _worker_fds(pids[worker]))
            time.sleep(0.2)
        stop_probes(probe for pair in probes.values() for probe in pair)
        outcomes: dict[str, Outcome] = {}
        for worker in WORKERS:
            fresh, kept = (probe.stats for probe in probes[worker])
            outcomes[worker] = Outcome(fresh, kept, holders[worker].result(10), pids[worker])
            outcomes[worker].peak_fds = peak[worker]
        for worker, server in servers.items():
            outcome = outcomes[worker]
            outcome.recovery = answered_within(address_of(server), RECOVERY)
            outcome.worker_alive = server.worker_pids() == [outcome.worker_pid]
        for worker, outcome in outcomes.items():
            record(
                "idle-flood",
                worker,
                "idle-flood",
                connections=FLOOD,
                hold_s=HOLD,
                reopen_rate=REOPEN_RATE,
                worker_connections=WORKER_CONNECTIONS,
                probe_new=outcome.fresh.summary(),
                probe_keepalive=outcome.kept.summary(),
                closed_by_server=outcome.holder["closed_by_server"],
                held_at_end=outcome.holder["held_at_end"],
                pending_at_end=outcome.holder["pending_at_end"],
                worker_peak_fds=outcome.peak_fds,
                recovery_s=None if outcome.recovery is None else round(outcome.recovery, 3),
                worker_survived=outcome.worker_alive,
            )
        yield outcomes
    finally:
        for holder in holders.values():
            holder.kill()
        stop_all(servers.values())


def _probe_param(worker: str) -> Any:
    if worker == "sync":
        return pytest.param(worker, marks=pytest.mark.xfail(strict=True, reason=SYNC_BY_DESIGN))
    return worker


@pytest.mark.slow
@pytest.mark.parametrize("worker", [_probe_param(w) for w in WORKERS])
def test_probes_answered_during_flood(flood: dict[str, Outcome], worker: str) -> None:
    outcome = flood[worker]
    for stats in (outcome.fresh, outcome.kept):
        assert stats.errors == [], stats.summary()
        # Asked every 100 ms (or when the last answer came) over 10 s, each ask answered:
        # at least one a second, on a loaded machine too.
        assert stats.answered >= HOLD, stats.summary()
        assert max(stats.latencies) < 5.0, stats.summary()
    # The flood really was there all along: the worker closed thousands for the probes.
    assert outcome.holder["closed_by_server"] >= FLOOD - WORKER_CONNECTIONS


@pytest.mark.slow
@pytest.mark.parametrize("worker", WORKERS)
def test_worker_survives_and_serves_after_flood(flood: dict[str, Outcome], worker: str) -> None:
    outcome = flood[worker]
    assert outcome.worker_alive, "the worker was replaced during the flood"
    assert outcome.recovery is not None, f"no answer within {RECOVERY}s after the flood"
    # Descriptors stay bounded by worker_connections (sync holds one connection).
    assert outcome.peak_fds <= WORKER_CONNECTIONS + OWN_FDS


def test_keepalive_client_keeps_its_connection(flood: dict[str, Outcome]) -> None:
    """gthread, gevent and eventlet close connections that never sent a byte before
    kept-alive ones: the kept-alive probe is never cut (asgi closes the oldest idle one
    of either kind: its probe may have to reconnect, which RFC 9112 §9.3.1 allows)."""
    for worker in ("gthread", "gevent", "eventlet"):
        assert flood[worker].kept.reconnects == 0, (worker, flood[worker].kept.summary())
