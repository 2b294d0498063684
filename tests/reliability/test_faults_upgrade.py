"""USR2 binary upgrade under load, then TERM to the old master (P6): no connection refused,
nothing lost, and the pidfile layout of gunicorn 27: the old master keeps ``<pidfile>``
while the new one writes ``<pidfile>.2``; once the old master is gone the new one is
promoted and renames ``<pidfile>.2`` to ``<pidfile>``. The listener is the same socket
(same inode) in both masters."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from tests.reliability.fault_harness import (
    WORKERS,
    bad_statuses,
    matrix,
    record_faults,
    start,
)
from tests.reliability.load import Load, Outcome
from tests.support import wait_until

pytestmark = pytest.mark.slow


def _live_children(pid: int, n: int) -> list[int] | None:
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return None
    pids = [c.pid for c in children if c.status() != psutil.STATUS_ZOMBIE]
    return sorted(pids) if len(pids) == n else None


def _listener_inodes(pid: int) -> set[int]:
    """Inodes of the listening TCP sockets ``pid`` holds."""
    listening = {
        c.fd for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN
    }
    return {os.stat(f"/proc/{pid}/fd/{fd}").st_ino for fd in listening if fd >= 0}


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("worker", matrix(*WORKERS))
def test_usr2_upgrade_then_term_old_master(worker: str, tmp_path: Path) -> None:
    pidfile = tmp_path / "app.pid"
    second = Path(f"{pidfile}.2")
    server = start(worker, "--pid", str(pidfile))
    old_master = server.pid
    new_master = 0
    try:
        old_workers = server.worker_pids()
        with Load(server.address, lanes=6) as load:
            load.wait_answered(20)
            server.send(signal.SIGUSR2)
            wait_until(lambda: second.exists() and second.read_text().strip(), timeout=20)
            new_master = int(second.read_text())
            server.adopt(new_master)
            assert pidfile.read_text() == f"{old_master}\n"
            new_workers = wait_until(lambda: _live_children(new_master, 2), timeout=20)
            for pid in new_workers:
                server.adopt(pid)
            assert _listener_inodes(new_master) == _listener_inodes(old_master)

            def from_new(o: Outcome) -> bool:
                return o.pid in new_workers

            load.first_answer(from_new, timeout=20)  # the new generation serves
            server.send(signal.SIGTERM)
            assert server.wait(timeout=40) == 0
            server.wait_for("Master has been promoted.", master_exits=True, timeout=10)
            # The old master removed its pidfile on the way out; the new one renames its
            # own to that name when it notices (its loop wakes up every second).
            wait_until(lambda: _pid_in(pidfile) == new_master, timeout=10)
            load.wait_answered(20, since=time.monotonic())
        record_faults(worker, "USR2 upgrade + TERM old master", load)
        assert load.lost == [], [(o.lost, o.detail) for o in load.lost[:5]]
        assert bad_statuses(load) == {}
        assert not second.exists()
        assert {o.pid for o in load.answered} <= {*old_workers, *new_workers}
        os.kill(new_master, signal.SIGTERM)
        wait_until(lambda: _gone(new_master), timeout=40)
        assert not pidfile.exists()
    finally:
        if new_master:
            wait_until(lambda: _gone(new_master) or os.kill(new_master, signal.SIGKILL), 10)
        server.stop()
