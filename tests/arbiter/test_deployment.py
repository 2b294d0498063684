"""Deployment settings of a real server: systemd notify, daemon mode, users, preload, rebind."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from support import kill_pids, request, wait_until

from .conftest import APPS_DIR


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(5)
    try:
        yield sock
    finally:
        sock.close()


def _messages(sock: socket.socket, until: str, limit: int = 50) -> list[str]:
    seen = []
    for _ in range(limit):
        seen.append(sock.recv(4096).decode())
        if seen[-1].startswith(until):
            return seen
    raise AssertionError(f"no {until!r} in {seen}")


def test_systemd_notify_ready_watchdog_stopping(
    gunicorn: Any, notify_socket: socket.socket
) -> None:
    env = {"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "400000"}
    server = gunicorn("proc_apps:app", env=env)
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=Gunicorn arbiter booted"
    assert _messages(notify_socket, "WATCHDOG=1")[-1] == "WATCHDOG=1"
    assert _messages(notify_socket, "WATCHDOG=1")[-1] == "WATCHDOG=1"
    server.send(signal.SIGTERM)
    assert "STOPPING=1" in _messages(notify_socket, "STOPPING=1")
    assert server.wait() == 0


def test_daemon_mode_and_winch(gunicorn: Any, tmp_path: Path) -> None:
    pidfile, errlog, path = tmp_path / "d.pid", tmp_path / "d.log", tmp_path / "d.sock"
    launcher = gunicorn(
        "-D",
        "-w",
        "2",
        "--pid",
        str(pidfile),
        "--error-logfile",
        str(errlog),
        "-b",
        f"unix:{path}",
        "proc_apps:app",
        ready=None,
    )
    assert launcher.wait() == 0  # the command returns, the server lives on
    master = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip()))
    try:
        assert master != launcher.pid
        assert psutil.Process(master).ppid() != launcher.pid
        workers = wait_until(lambda: len(_children(master)) == 2 and _children(master))
        assert request(str(path))[0] == 200
        os.kill(master, signal.SIGWINCH)  # an upgraded-away master: stop its workers
        wait_until(lambda: not _children(master))
        assert "graceful stop of workers" in errlog.read_text()
        os.kill(master, signal.SIGHUP)  # rollback: workers again
        assert set(wait_until(lambda: len(_children(master)) == 2 and _children(master)))
        assert not set(workers) & set(_children(master))
        os.kill(master, signal.SIGTERM)
        wait_until(lambda: not psutil.pid_exists(master) or _is_zombie(master))
        assert not pidfile.exists() and not path.exists()
    finally:
        kill_pids([master, *_children(master)])


def _children(pid: int) -> list[int]:
    try:
        procs = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    return sorted(p.pid for p in procs if not _is_zombie(p.pid))


def _is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_workers_run_as_the_configured_user(gunicorn: Any, tmp_path: Path) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    tmp_path.chmod(0o755)
    path = tmp_path / "u.sock"
    server = gunicorn(
        "--user", "nobody", "--group", str(nobody.pw_gid), "-b", f"unix:{path}",
        "--umask", "007", "proc_apps:app",
    )  # fmt: skip
    [worker] = server.wait_workers(1)
    assert psutil.Process(server.pid).uids().real == 0
    # Just forked, the worker is still root for a moment: it switches before it serves.
    wait_until(lambda: psutil.Process(worker).uids().effective == nobody.pw_uid, timeout=20)
    assert psutil.Process(worker).gids().effective == nobody.pw_gid
    st = path.stat()
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert request(str(path))[0] == 200  # the heartbeat file is writable: no timeout kill


def test_preload_imports_in_the_master(gunicorn: Any) -> None:
    server = gunicorn("--preload", "-w", "2", "proc_apps:app")
    server.wait_workers(2)
    assert request(server.address, "/import-pid")[1] == str(server.pid).encode()
    lazy = gunicorn("proc_apps:app")
    [worker] = lazy.wait_workers(1)
    assert request(lazy.address, "/import-pid")[1] == str(worker).encode()


def test_hup_rebinds_when_bind_changes(gunicorn: Any, tmp_path: Path) -> None:
    first, second = tmp_path / "first.sock", tmp_path / "second.sock"
    conf = tmp_path / "conf.py"
    conf.write_text(f"bind = ['unix:{first}']\n")
    server = gunicorn("-c", str(conf), "proc_apps:app", default_bind=False)
    assert server.address == str(first)
    conf.write_text(f"bind = ['unix:{second}']\n")
    server.send(signal.SIGHUP)
    server.wait_for(f"Listening at: unix:{second}")
    wait_until(lambda: not first.exists())
    time.sleep(1.2)  # the old generation retires
    assert request(str(second))[0] == 200


def test_third_party_worker_on_the_base_class(gunicorn: Any) -> None:
    env = {"PYTHONPATH": APPS_DIR}
    server = gunicorn(
        "-k", "proc_worker.PlainWorker", "--max-requests", "2", "proc_apps:app", env=env
    )
    assert "Using worker: proc_worker.PlainWorker" in server.log
    [first] = server.wait_workers(1)
    assert [int(request(server.address)[1]) for _ in range(2)] == [first, first]
    server.wait_for("Autorestarting worker after current request.")
    server.wait_workers(1, exclude=[first])
    server.send(signal.SIGTERM)
    assert server.wait() == 0
