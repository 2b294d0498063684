"""The fault battery (``test_faults_*.py``) on the gevent worker: the same tests, the
same criteria and the same figures, in a file of their own so that a parallel run
spreads the load (a green worker takes longer to boot: it patches the standard library
first).

Two faults are left to the other worker classes: the USR2 upgrade and the TTIN/TTOU
storm are the master's process management, the same code whatever the worker class
(which they exercise only by booting and stopping workers, as the tests here do)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability import (
    test_faults_disk,
    test_faults_drain,
    test_faults_hup,
    test_faults_kill,
    test_faults_recycle,
    test_faults_socket,
    test_faults_timeout,
)

pytestmark = pytest.mark.slow

WORKER = "gevent"


def test_five_hups_under_load(tmp_path: Path) -> None:
    test_faults_hup.test_five_hups_under_load(WORKER, tmp_path)


def test_max_requests_recycling_loses_nothing() -> None:
    test_faults_recycle.test_max_requests_recycling_loses_nothing(WORKER)


def test_killed_worker_loses_only_its_own_requests() -> None:
    test_faults_kill.run_kills(WORKER)


def test_stuck_worker_is_replaced_within_timeout_plus_two(tmp_path: Path) -> None:
    test_faults_timeout.test_stuck_worker_is_replaced_within_timeout_plus_two(WORKER, tmp_path)


def test_access_log_on_dev_full() -> None:
    test_faults_disk.test_access_log_on_dev_full(WORKER)


def test_access_log_on_a_full_tmpfs(tmp_path: Path) -> None:
    with test_faults_disk.mounted_tmpfs(tmp_path) as mount:
        test_faults_disk.test_access_log_on_a_full_tmpfs(WORKER, mount)


def test_deleted_unix_socket_is_bound_again(tmp_path: Path) -> None:
    test_faults_socket.test_deleted_unix_socket_is_bound_again(WORKER, tmp_path)


def test_term_drains_requests_in_flight() -> None:
    test_faults_drain.test_term_drains_requests_in_flight(WORKER)


def test_term_refuses_new_connections_at_once() -> None:
    test_faults_drain.test_term_refuses_new_connections_at_once(WORKER)


def test_graceful_timeout_cuts_a_long_request() -> None:
    test_faults_drain.test_graceful_timeout_cuts_a_long_request(WORKER)
