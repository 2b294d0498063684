"""Suite-wide test ordering for the parallel run.

``pytest -n 3 --dist loadfile`` hands each process a whole test file at a time, in the
order of the collection. The files that take longest go first (longest first is
near-optimal for filling the processes), so that the run does not end with one process
busy on a long file while the others wait. The list is the files of 8 s or more,
longest first, from ``pytest --durations=0`` (summed per file); a file missing from it
only runs later than it could, so the list needs a refresh only when the suite's tail
grows.
"""

from __future__ import annotations

import pytest

LONGEST_FIRST = (
    "tests/workers/test_gevent_eventlet.py",
    "tests/reliability/test_faults_eventlet.py",
    "tests/reliability/test_faults_gevent.py",
    "tests/http2/test_floods.py",
    "tests/workers/test_every_worker.py",
    "tests/deploy/test_docker.py",
    "tests/reliability/test_proxies.py",
    "tests/http2/test_conformance.py",
    "tests/workers/test_gthread_h2.py",
    "tests/workers/test_gthread.py",
    "tests/ctl/test_commands.py",
    "tests/http2/test_clients.py",
    "tests/arbiter/test_boot_failures.py",
    "tests/deploy/test_examples.py",
    "tests/asgi/test_worker_process.py",
    "tests/reliability/test_faults_drain.py",
    "tests/reliability/test_slow_clients.py",
    "tests/reliability/test_faults_upgrade.py",
    "tests/reliability/test_faults_scale.py",
    "tests/workers/test_sync_lifecycle.py",
    "tests/reliability/test_soak_gevent.py",
    "tests/dirty/test_server.py",
    "tests/workers/test_timeouts.py",
    "tests/arbiter/test_reload_upgrade.py",
    "tests/metrics/test_metrics.py",
    "tests/reliability/test_idle_flood.py",
    "tests/asgi/test_frameworks.py",
    "tests/reliability/test_soak_asgi.py",
    "tests/reliability/test_faults_timeout.py",
    "tests/reliability/test_fuzz_h1.py",
    "tests/tls/test_tls_workers.py",
    "tests/reliability/test_faults_recycle.py",
    "tests/reliability/test_soak_sync.py",
    "tests/reliability/test_faults_hup.py",
    "tests/reliability/test_soak_eventlet.py",
    "tests/arbiter/test_lifecycle.py",
    "tests/reliability/test_soak_gthread.py",
    "tests/reliability/test_faults_kill.py",
    "tests/arbiter/test_workers.py",
    "tests/reliability/test_faults_socket.py",
    "tests/dirty/test_client.py",
    "tests/ctl/test_socket_path.py",
    "tests/workers/test_gthread_apps.py",
    "tests/dirty/test_signals.py",
    "tests/dirty/test_worker_classes.py",
    "tests/docs/test_samples.py",
    "tests/reliability/test_faults_disk.py",
    "tests/reliability/test_emfile.py",
    "tests/reliability/test_faults_kill_green.py",
)
_RANK = {path: rank for rank, path in enumerate(LONGEST_FIRST)}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    last = len(_RANK)
    items.sort(key=lambda item: _RANK.get(item.nodeid.partition("::")[0], last))
