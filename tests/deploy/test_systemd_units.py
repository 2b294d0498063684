"""examples/systemd: the units pass ``systemd-analyze verify``, and gunicorn speaks systemd.

End to end, against real gunicorn processes: socket activation through
``systemd-socket-activate`` (what ``gunicorn.socket`` does), and the ``sd_notify``
messages a ``Type=notify`` unit with ``WatchdogSec=`` relies on, read from a fake
``NOTIFY_SOCKET`` (a unix datagram socket in tmp_path).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import GUNICORN, Gunicorn, request

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UNITS = EXAMPLES / "systemd"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    return path


def _service_keys(text: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def _install_units(directory: Path) -> None:
    """The units in ``directory``, with /srv/myapp (and its .venv/bin/gunicorn) made real."""
    project = directory / "myapp"
    (project / ".venv" / "bin").mkdir(parents=True)
    os.symlink(GUNICORN, project / ".venv" / "bin" / "gunicorn")
    service = (UNITS / "gunicorn.service").read_text().replace("/srv/myapp", str(project))
    (directory / "gunicorn.service").write_text(service)
    shutil.copy(UNITS / "gunicorn.socket", directory / "gunicorn.socket")


def test_units_verify_cleanly(tmp_path: Path) -> None:
    """No error and no warning (unknown keys, bad values only warn), with real paths."""
    analyze = _need("systemd-analyze")
    _install_units(tmp_path)
    result = subprocess.run(
        [analyze, "verify", "gunicorn.socket", "gunicorn.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hardening_exposure_is_low(tmp_path: Path) -> None:
    """``systemd-analyze security`` rates the service "OK" (exposure at most 2.5 of 10)."""
    analyze = _need("systemd-analyze")
    _install_units(tmp_path)
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=25", "gunicorn.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    overall = re.search(
        r"Overall exposure level for gunicorn.service: ([\d.]+) (\w+)", result.stdout
    )
    assert overall is not None, result.stdout + result.stderr
    assert result.returncode == 0, overall.group(0)
    assert float(overall.group(1)) <= 2.5


def test_verify_catches_a_missing_gunicorn(tmp_path: Path) -> None:
    """The check above is a real one: the unit as shipped names a path that is not here."""
    analyze = _need("systemd-analyze")
    shutil.copy(UNITS / "gunicorn.service", tmp_path / "gunicorn.service")
    shutil.copy(UNITS / "gunicorn.socket", tmp_path / "gunicorn.socket")
    result = subprocess.run(
        [analyze, "verify", "gunicorn.socket", "gunicorn.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "/srv/myapp/.venv/bin/gunicorn" in result.stderr


def test_service_is_what_the_docs_promise() -> None:
    keys = _service_keys((UNITS / "gunicorn.service").read_text())
    assert keys["Type"] == ["notify"]
    assert keys["ExecReload"] == ["/bin/kill -s HUP $MAINPID"]
    assert keys["KillMode"] == ["mixed"]
    # graceful_timeout (30 s) must fit in the stop timeout, or workers are killed mid-request.
    assert int(keys["TimeoutStopSec"][0]) > 30
    assert keys["Requires"] == ["gunicorn.socket"]
    socket_keys = _service_keys((UNITS / "gunicorn.socket").read_text())
    assert socket_keys["ListenStream"] == ["/run/gunicorn.sock"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_socket_activation(tmp_path: Path) -> None:
    """systemd-socket-activate owns the socket; gunicorn starts on the first connection."""
    activate = _need("systemd-socket-activate")
    port = _free_port()
    env = ["-E", "PATH", "-E", "PYTHONUNBUFFERED=1", "-E", f"XDG_RUNTIME_DIR={tmp_path}"]
    command = [activate, "-l", f"127.0.0.1:{port}", *env, GUNICORN]
    args = ["--chdir", str(EXAMPLES), "-w", "2", "hello:app"]
    server = Gunicorn(*args, cwd=tmp_path, command=command, ready=None, default_bind=False)
    with server:
        server.wait_for(f"Listening on 127.0.0.1:{port}")
        assert "Starting gunicorn" not in server.log  # nothing runs before a client comes
        status, body = request(("127.0.0.1", port), "/", timeout=15)
        assert (status, body) == (200, b"Hello, World!\n")
        log = server.wait_for("Booting worker", count=2)
        assert f"Listening at: http://127.0.0.1:{port} ({server.pid})" in log
        assert request(("127.0.0.1", port), "/")[0] == 200
        # HUP (ExecReload) keeps the inherited socket: new workers answer on it.
        old = server.wait_workers(2)
        server.send(signal.SIGHUP)
        server.wait_workers(2, exclude=old)
        assert request(("127.0.0.1", port), "/")[0] == 200
        server.send(signal.SIGTERM)
        assert server.wait() == 0


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(10)
    try:
        yield sock
    finally:
        sock.close()


def _next_message(sock: socket.socket, deadline: float) -> str:
    sock.settimeout(max(deadline - time.monotonic(), 0.01))
    return sock.recv(4096).decode()


def test_notify_ready_watchdog_stopping(tmp_path: Path, notify_socket: socket.socket) -> None:
    """READY once it listens, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on TERM."""
    env = {
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "WATCHDOG_USEC": "400000",  # a ping every 0.2 s
    }
    # systemd sets WATCHDOG_PID to the main pid: a shell that execs gunicorn keeps its pid.
    shell = ["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"', GUNICORN]
    args = ["--chdir", str(EXAMPLES), "-w", "1", "hello:app"]
    with Gunicorn(*args, cwd=tmp_path, env=env, command=shell) as server:
        assert server.address is not None
        deadline = time.monotonic() + 10
        first = _next_message(notify_socket, deadline)
        assert first == "READY=1\nSTATUS=Gunicorn arbiter booted"
        # READY means "serving": a request right now is answered.
        assert request(server.address, "/")[0] == 200
        pings = 0
        while pings < 3:
            message = _next_message(notify_socket, deadline)
            assert message == "WATCHDOG=1"
            pings += 1
        server.send(signal.SIGTERM)
        while (message := _next_message(notify_socket, deadline)) == "WATCHDOG=1":
            pass
        assert message == "STOPPING=1"
        assert server.wait() == 0


def test_no_watchdog_pings_for_another_pid(tmp_path: Path, notify_socket: socket.socket) -> None:
    """WATCHDOG_PID names another process (e.g. a wrapper): gunicorn must not ping for it."""
    env = {
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "WATCHDOG_USEC": "100000",
        "WATCHDOG_PID": str(os.getpid()),
    }
    args = ["--chdir", str(EXAMPLES), "-w", "1", "hello:app"]
    with Gunicorn(*args, cwd=tmp_path, env=env) as server:
        deadline = time.monotonic() + 10
        assert _next_message(notify_socket, deadline).startswith("READY=1")
        # HUP then TERM: the arbiter's loop turns many times (each turn would ping, every
        # 0.05 s) before STOPPING=1 arrives.
        old = server.wait_workers(1)
        server.send(signal.SIGHUP)
        server.wait_workers(1, exclude=old)
        server.send(signal.SIGTERM)
        assert _next_message(notify_socket, deadline) == "STOPPING=1"
        assert server.wait() == 0


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("systemd is Linux only")
