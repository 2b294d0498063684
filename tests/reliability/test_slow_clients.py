"""Slow clients (hostile-inputs §4 P11, P12): slowloris (headers dribbled), slow body
(R-U-Dead-Yet) and slow reader of a large response, made with Debian's ``slowhttptest``,
against every worker class at once, while a probe asks ``GET /`` on a new connection
every 100 ms.

Every server runs with ``--timeout 5``: the deadline that bounds a slow client (see
docs/limits.md). A class that can serve others during an attack must answer every probe;
sync serves one connection at a time, so during an attack its probe is an expected
failure, and it must answer again within ``timeout`` + 5 s once the attack ends.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.reliability.admission_clients import (
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
from tests.support import Gunicorn

WORKERS = ("sync", "gthread", "gevent", "eventlet", "asgi")
TIMEOUT = 5  # --timeout: the per-connection deadline of the slow-client paths
DURATION = 5  # seconds per attack
#: Attack connections per worker class. Slow readers are fewer: each holds what the kernel
#: buffers for it, and 500 of them at once put the host's TCP memory under pressure.
CONNECTIONS = {"slowloris": 100, "slow-body": 100, "slow-read": 20}
#: slowhttptest options per attack (each run for DURATION seconds).
ATTACKS: dict[str, list[str]] = {
    "slowloris": ["-H", "-i", "1", "-x", "10"],
    "slow-body": ["-B", "-i", "1", "-s", "65536", "-x", "10"],
    "slow-read": ["-X", "-w", "64", "-y", "256", "-n", "1", "-z", "64", "-k", "1"],
}
PROBE_P99_MS = 500  # P11/P12
PATHS = {"slowloris": "/", "slow-body": "/upload", "slow-read": "/big"}

SYNC_BY_DESIGN = (
    "sync serves one connection at a time: a slow client holds the worker for up to "
    "`timeout`, so probes wait while the attack lasts (docs/limits.md: put a buffering "
    "proxy in front of sync workers); it must recover within timeout + 5 s"
)

GTHREAD_BY_DESIGN = (
    "gthread gives a slow upload or a slow reader a thread (with stand-ins, at most "
    "threads + 2 x threads + 2 of them); more slow clients than that hold every thread "
    "until `timeout` cuts them (docs/limits.md: raise --threads, or a buffering proxy)"
)

pytestmark = pytest.mark.skipif(
    shutil.which("slowhttptest") is None, reason="slowhttptest (Debian) is not installed"
)


@dataclass
class Outcome:
    probe: ProbeStats
    recovery: float | None
    worker_alive: bool
    attack: str


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Gunicorn]]:
    raise_nofile()
    running = {w: server_for(w, "--timeout", str(TIMEOUT)) for w in WORKERS}
    try:
        start_all(running.values())
        for server in running.values():
            assert answered_within(address_of(server), 30.0) is not None, server.log
        yield running
    finally:
        stop_all(running.values())


def _attack(name: str, address: tuple[str, int]) -> subprocess.Popen[bytes]:
    url = f"http://{address[0]}:{address[1]}{PATHS[name]}"
    count = str(CONNECTIONS[name])
    command = ["slowhttptest", *ATTACKS[name], "-c", count, "-r", count]
    command += ["-l", str(DURATION), "-p", "3", "-u", url]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _run(name: str, servers: dict[str, Gunicorn]) -> dict[str, Outcome]:
    pids = {worker: server.worker_pids() for worker, server in servers.items()}
    attackers = {worker: _attack(name, address_of(s)) for worker, s in servers.items()}
    probes = {worker: Probe(address_of(s)) for worker, s in servers.items()}
    try:
        for probe in probes.values():
            probe.start()
        for attacker in attackers.values():
            attacker.wait(DURATION + 30)
    finally:
        for attacker in attackers.values():
            if attacker.poll() is None:
                attacker.kill()
                attacker.wait(5)
    stop_probes(probes.values())
    stats = {worker: probe.stats for worker, probe in probes.items()}
    outcomes = {}
    for worker, server in servers.items():
        recovery = answered_within(address_of(server), TIMEOUT + 5.0)
        alive = server.worker_pids() == pids[worker]
        outcomes[worker] = Outcome(stats[worker], recovery, alive, name)
        record(
            "slow-clients",
            worker,
            name,
            tool="slowhttptest " + " ".join(ATTACKS[name]),
            connections=CONNECTIONS[name],
            attack_s=DURATION,
            timeout_s=TIMEOUT,
            probe=stats[worker].summary(),
            recovery_s=None if recovery is None else round(recovery, 3),
            worker_survived=alive,
        )
    return outcomes


@pytest.fixture(scope="module")
def slowloris(servers: dict[str, Gunicorn]) -> dict[str, Outcome]:
    return _run("slowloris", servers)


@pytest.fixture(scope="module")
def slow_body(servers: dict[str, Gunicorn]) -> dict[str, Outcome]:
    return _run("slow-body", servers)


@pytest.fixture(scope="module")
def slow_read(servers: dict[str, Gunicorn]) -> dict[str, Outcome]:
    return _run("slow-read", servers)


def _probe_params(attack: str) -> list[Any]:
    params: list[Any] = []
    for worker in WORKERS:
        reason = SYNC_BY_DESIGN if worker == "sync" else None
        if worker == "gthread" and attack != "slowloris":
            reason = GTHREAD_BY_DESIGN
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(worker, marks=marks))
    return params


def _check_probe(outcome: Outcome) -> None:
    summary = outcome.probe.summary()
    assert outcome.probe.errors == [], summary
    assert outcome.probe.answered >= DURATION * 5, summary  # most of the asks (10 a second)
    assert summary["p99_ms"] < PROBE_P99_MS, summary


def _check_recovery(outcome: Outcome) -> None:
    assert outcome.recovery is not None, f"not answering {TIMEOUT + 5}s after {outcome.attack}"


@pytest.mark.slow
@pytest.mark.parametrize("worker", _probe_params("slowloris"))
def test_probe_answered_during_slowloris(slowloris: dict[str, Outcome], worker: str) -> None:
    _check_probe(slowloris[worker])


@pytest.mark.slow
@pytest.mark.parametrize("worker", WORKERS)
def test_recovers_after_slowloris(slowloris: dict[str, Outcome], worker: str) -> None:
    _check_recovery(slowloris[worker])


@pytest.mark.slow
@pytest.mark.parametrize("worker", _probe_params("slow-body"))
def test_probe_answered_during_slow_body(slow_body: dict[str, Outcome], worker: str) -> None:
    _check_probe(slow_body[worker])


@pytest.mark.slow
@pytest.mark.parametrize("worker", WORKERS)
def test_recovers_after_slow_body(slow_body: dict[str, Outcome], worker: str) -> None:
    _check_recovery(slow_body[worker])


@pytest.mark.slow
@pytest.mark.parametrize("worker", _probe_params("slow-read"))
def test_probe_answered_during_slow_read(slow_read: dict[str, Outcome], worker: str) -> None:
    _check_probe(slow_read[worker])


@pytest.mark.slow
@pytest.mark.parametrize("worker", WORKERS)
def test_recovers_after_slow_read(slow_read: dict[str, Outcome], worker: str) -> None:
    _check_recovery(slow_read[worker])
