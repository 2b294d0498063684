"""Pidfile and listener set-up of a real server: unix sockets, fd://, systemd activation."""

from __future__ import annotations

import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import GUNICORN, request


@pytest.fixture
def other_process() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_pidfile_written_and_removed(gunicorn: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "g.pid"
    server = gunicorn("--pid", str(pidfile), "proc_apps:app")
    assert pidfile.read_text() == f"{server.pid}\n"
    assert stat.S_IMODE(pidfile.stat().st_mode) == 0o644
    server.send(signal.SIGTERM)
    assert server.wait() == 0
    assert not pidfile.exists()


def test_stale_pidfile_is_replaced(gunicorn: Any, tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pidfile = tmp_path / "g.pid"
    pidfile.write_text(f"{dead.pid}\n")
    server = gunicorn("--pid", str(pidfile), "proc_apps:app")
    assert pidfile.read_text() == f"{server.pid}\n"


def test_live_pidfile_refuses_to_start(gunicorn: Any, tmp_path: Path, other_process: int) -> None:
    pidfile = tmp_path / "g.pid"
    pidfile.write_text(f"{other_process}\n")
    server = gunicorn("--pid", str(pidfile), "proc_apps:app", ready=None)
    assert server.wait() == 1
    assert f"Already running on PID {other_process} (or pid file '{pidfile}' is stale)" in (
        server.log
    )
    assert pidfile.read_text() == f"{other_process}\n"
    assert "Booting worker" not in server.log


def test_unix_socket_with_umask_and_stale_file(gunicorn: Any, tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    server = gunicorn("-b", f"unix:{path}", "--umask", "007", "proc_apps:app")
    assert server.address == str(path)
    assert f"Listening at: unix:{path} ({server.pid})" in server.log
    mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o770
    assert request(str(path))[0] == 200
    server.send(signal.SIGTERM)
    assert server.wait() == 0
    assert not path.exists()


def test_non_socket_file_at_bind_path_is_an_error(gunicorn: Any, tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("keep me")
    server = gunicorn("-b", f"unix:{path}", "proc_apps:app", ready=None)
    assert server.wait() == 1
    assert "is not a socket" in server.log
    assert path.read_text() == "keep me"


def test_several_binds(gunicorn: Any, tmp_path: Path) -> None:
    path = tmp_path / "second.sock"
    server = gunicorn("-b", "127.0.0.1:0", "-b", f"unix:{path}", "proc_apps:app")
    assert server.url is not None and server.url.startswith("http://127.0.0.1:")
    assert f",unix:{path} (" in server.log
    assert request(server.address)[0] == 200
    assert request(str(path))[0] == 200


def _listening_socket() -> socket.socket:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener


def test_fd_bind_uses_the_passed_socket(gunicorn: Any) -> None:
    listener = _listening_socket()
    port = listener.getsockname()[1]
    fd = listener.fileno()
    try:
        server = gunicorn("-b", f"fd://{fd}", "proc_apps:app", pass_fds=[fd])
        assert server.address == ("127.0.0.1", port)
    finally:
        listener.close()  # gunicorn holds its own copy
    assert request(("127.0.0.1", port))[0] == 200


def test_systemd_socket_activation(gunicorn: Any, tmp_path: Path) -> None:
    path = tmp_path / "activated.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(16)
    fd = listener.fileno()
    # systemd passes the sockets from fd 3 and names the pid that may use them.
    launcher = (
        "import os, sys\n"
        "fd = int(sys.argv[1])\n"
        "if fd != 3:\n"
        "    os.dup2(fd, 3)\n"
        "    os.close(fd)\n"
        "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1')\n"
        "os.execv(sys.argv[2], sys.argv[2:])\n"
    )
    try:
        server = gunicorn(
            "proc_apps:app",
            command=[sys.executable, "-c", launcher, str(fd), GUNICORN],
            pass_fds=[fd],
            env={"LISTEN_FDS": "", "LISTEN_PID": ""},
        )
    finally:
        listener.close()
    assert server.address == str(path)
    assert request(str(path))[0] == 200
    worker_env = request(str(path), "/env/LISTEN_FDS")[1]
    assert worker_env in (b"-", b"")  # the variables are not passed on to workers
    server.send(signal.SIGTERM)
    assert server.wait() == 0
    assert path.exists()  # systemd owns the socket file
