"""The fault battery (``test_faults_*.py``) for a green worker class, written once:
``test_faults_gevent.py`` and ``test_faults_eventlet.py`` import these tests and name the
class in their ``worker`` fixture (a file each, so that a parallel run spreads the load:
a green worker takes longer to boot, it patches the standard library first).

Two faults are left to the other worker classes: the USR2 upgrade and the TTIN/TTOU
storm are the master's process management, the same code whatever the worker class
(which they exercise only by booting and stopping workers, as the tests here do)."""

from __future__ import annotations

from pathlib import Path

from tests.reliability import (
    test_faults_disk,
    test_faults_drain,
    test_faults_hup,
    test_faults_kill,
    test_faults_recycle,
    test_faults_socket,
    test_faults_timeout,
)


def test_five_hups_under_load(worker: str, tmp_path: Path) -> None:
    test_faults_hup.test_five_hups_under_load(worker, tmp_path)


def test_max_requests_recycling_loses_nothing(worker: str) -> None:
    test_faults_recycle.test_max_requests_recycling_loses_nothing(worker)


def test_killed_worker_loses_only_its_own_requests(worker: str) -> None:
    test_faults_kill.run_kills(worker)


def test_stuck_worker_is_replaced_within_timeout_plus_two(worker: str, tmp_path: Path) -> None:
    test_faults_timeout.test_stuck_worker_is_replaced_within_timeout_plus_two(worker, tmp_path)


def test_access_log_on_dev_full(worker: str) -> None:
    test_faults_disk.test_access_log_on_dev_full(worker)


def test_access_log_on_a_full_tmpfs(worker: str, tmp_path: Path) -> None:
    with test_faults_disk.mounted_tmpfs(tmp_path) as mount:
        test_faults_disk.test_access_log_on_a_full_tmpfs(worker, mount)


def test_deleted_unix_socket_is_bound_again(worker: str, tmp_path: Path) -> None:
    test_faults_socket.test_deleted_unix_socket_is_bound_again(worker, tmp_path)


def test_term_drains_requests_in_flight(worker: str) -> None:
    test_faults_drain.test_term_drains_requests_in_flight(worker)


def test_term_refuses_new_connections_at_once(worker: str) -> None:
    test_faults_drain.test_term_refuses_new_connections_at_once(worker)


def test_graceful_timeout_cuts_a_long_request(worker: str) -> None:
    test_faults_drain.test_graceful_timeout_cuts_a_long_request(worker)


# What test_faults_gevent.py and test_faults_eventlet.py import and collect.
__all__ = [
    "test_access_log_on_a_full_tmpfs",
    "test_access_log_on_dev_full",
    "test_deleted_unix_socket_is_bound_again",
    "test_five_hups_under_load",
    "test_graceful_timeout_cuts_a_long_request",
    "test_killed_worker_loses_only_its_own_requests",
    "test_max_requests_recycling_loses_nothing",
    "test_stuck_worker_is_replaced_within_timeout_plus_two",
    "test_term_drains_requests_in_flight",
    "test_term_refuses_new_connections_at_once",
]
