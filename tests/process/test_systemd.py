"""gunicorn.systemd: socket activation variables and notify messages over a real socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gunicorn import systemd


class QuietLog:
    def __init__(self) -> None:
        self.debugs: list[str] = []

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.debugs.append(msg)


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        yield server
    finally:
        server.close()


def test_listen_fds_for_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "2")
    monkeypatch.setenv("LISTEN_FDNAMES", "a:b")
    assert systemd.listen_fds() == 2
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        assert name not in os.environ


def test_listen_fds_kept_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "1")
    assert systemd.listen_fds(unset_environment=False) == 1
    assert os.environ["LISTEN_FDS"] == "1"


def test_listen_fds_meant_for_another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTEN_PID", str(os.getpid() + 1))
    monkeypatch.setenv("LISTEN_FDS", "3")
    assert systemd.listen_fds() == 0
    assert os.environ["LISTEN_FDS"] == "3"


def test_listen_fds_without_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTEN_PID", raising=False)
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    assert systemd.listen_fds() == 0


def test_sd_notify_sends_the_state(notify_socket: socket.socket) -> None:
    assert systemd.sd_notify("READY=1\nSTATUS=Gunicorn arbiter booted", QuietLog())
    assert notify_socket.recv(1024) == b"READY=1\nSTATUS=Gunicorn arbiter booted"


def test_sd_notify_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"gunicorn-notify-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        assert systemd.sd_notify("STOPPING=1", QuietLog())
        assert server.recv(64) == b"STOPPING=1"
    finally:
        server.close()


def test_sd_notify_without_socket_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.sd_notify("READY=1", QuietLog()) is False


def test_sd_notify_failure_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody"))
    log = QuietLog()
    assert systemd.sd_notify("READY=1", log) is False
    assert log.debugs == ["Exception while invoking sd_notify()"]


def test_sd_notify_can_unset_the_variable(notify_socket: socket.socket) -> None:
    systemd.sd_notify("READY=1", QuietLog(), unset_environment=True)
    assert "NOTIFY_SOCKET" not in os.environ


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    assert systemd.watchdog_interval() == 2.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 2.0
