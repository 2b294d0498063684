"""gunicorn.sock: real sockets bound, inherited, described and closed."""

from __future__ import annotations

import errno
import os
import socket
import stat
from types import SimpleNamespace
from typing import Any

import pytest

from gunicorn import sock


class RecordingLog:
    """Collects log calls so tests can read what a user would see."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def _add(self, level: str, msg: str, *args: Any, **_: Any) -> None:
        self.lines.append((level, msg % args if args else msg))

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        self._add("error", msg, *args, **kw)

    def info(self, msg: str, *args: Any, **kw: Any) -> None:
        self._add("info", msg, *args, **kw)

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        self._add("debug", msg, *args, **kw)


def make_conf(*binds: Any, **overrides: Any) -> SimpleNamespace:
    values = {
        "address": list(binds),
        "backlog": 64,
        "reuse_port": False,
        "umask": 0,
        "uid": os.geteuid(),
        "gid": os.getegid(),
        "is_ssl": False,
        "certfile": None,
        "keyfile": None,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


@pytest.fixture
def log() -> RecordingLog:
    return RecordingLog()


def roundtrip(address: Any, family: int, listener: sock.BaseSocket) -> None:
    """Connect to ``address`` and check the listener accepts it."""
    client = socket.socket(family, socket.SOCK_STREAM)
    client.settimeout(2)
    try:
        client.connect(address)
        listener.sock.settimeout(2)
        conn, _ = listener.accept()
        conn.sendall(b"ping")
        assert client.recv(4) == b"ping"
        conn.close()
    finally:
        client.close()


def test_tcp_listener_options_and_description(log: RecordingLog) -> None:
    [listener] = sock.create_sockets(make_conf(("127.0.0.1", 0)), log)
    try:
        assert isinstance(listener, sock.TCPSocket)
        port = listener.getsockname()[1]
        assert str(listener) == f"http://127.0.0.1:{port}"
        s = listener.sock
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert not s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        assert s.getblocking() is False
        assert not os.get_inheritable(listener.fileno())
        # Unknown attributes are the socket's (asyncio's create_server needs these).
        assert listener.family == socket.AF_INET
        assert listener.type == socket.SOCK_STREAM
        roundtrip(("127.0.0.1", port), socket.AF_INET, listener)
    finally:
        sock.close_sockets([listener])


def test_tls_scheme_in_description(log: RecordingLog, tmp_path: Any) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    [listener] = sock.create_sockets(
        make_conf(("127.0.0.1", 0), is_ssl=True, certfile=str(cert)), log
    )
    try:
        assert str(listener).startswith("https://127.0.0.1:")
    finally:
        listener.close()


def test_missing_certfile_is_an_error_at_startup(log: RecordingLog, tmp_path: Any) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(sock.BindError, match="does not exist"):
        sock.create_sockets(make_conf(("127.0.0.1", 0), certfile=missing), log)


def test_reuse_port(log: RecordingLog) -> None:
    [listener] = sock.create_sockets(make_conf(("127.0.0.1", 0), reuse_port=True), log)
    try:
        assert listener.sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    finally:
        listener.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="this host has no IPv6 loopback")
def test_ipv6_listener(log: RecordingLog) -> None:
    [listener] = sock.create_sockets(make_conf(("::1", 0)), log)
    try:
        assert isinstance(listener, sock.TCP6Socket)
        port = listener.getsockname()[1]
        assert str(listener) == f"http://[::1]:{port}"
        roundtrip(("::1", port), socket.AF_INET6, listener)
    finally:
        listener.close()


def test_several_binds_in_order(log: RecordingLog, tmp_path: Any) -> None:
    path = str(tmp_path / "g.sock")
    listeners = sock.create_sockets(make_conf(("127.0.0.1", 0), path, backlog=8), log)
    try:
        assert [type(lnr) for lnr in listeners] == [sock.TCPSocket, sock.UnixSocket]
        assert str(listeners[1]) == f"unix:{path}"
    finally:
        sock.close_sockets(listeners)


def test_unix_socket_umask_and_unlink_on_close(log: RecordingLog, tmp_path: Any) -> None:
    path = str(tmp_path / "app.sock")
    before = os.umask(0o022)
    try:
        [listener] = sock.create_sockets(make_conf(path, umask=0o007), log)
        # The process umask is restored after binding.
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(before)
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o770
    roundtrip(path, socket.AF_UNIX, listener)
    sock.close_sockets([listener], unlink=True)
    assert not os.path.exists(path)


def test_unix_socket_kept_when_not_unlinking(log: RecordingLog, tmp_path: Any) -> None:
    path = str(tmp_path / "keep.sock")
    [listener] = sock.create_sockets(make_conf(path), log)
    sock.close_sockets([listener], unlink=False)
    assert stat.S_ISSOCK(os.stat(path).st_mode)


def test_stale_unix_socket_is_replaced(log: RecordingLog, tmp_path: Any) -> None:
    path = str(tmp_path / "stale.sock")
    old = socket.socket(socket.AF_UNIX)
    old.bind(path)
    old.close()  # the file stays behind, nobody listens
    [listener] = sock.create_sockets(make_conf(path), log)
    try:
        roundtrip(path, socket.AF_UNIX, listener)
    finally:
        sock.close_sockets([listener])


def test_live_unix_socket_is_not_stolen(
    log: RecordingLog, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sock, "BIND_RETRY_DELAY", 0.01)
    path = str(tmp_path / "live.sock")
    other = socket.socket(socket.AF_UNIX)
    other.bind(path)
    other.listen(1)
    try:
        with pytest.raises(sock.BindError, match="Can't connect to"):
            sock.create_sockets(make_conf(path), log)
        assert ("error", f"Connection in use: {path}") in log.lines
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    finally:
        other.close()


def test_non_socket_file_at_unix_path_is_an_error(log: RecordingLog, tmp_path: Any) -> None:
    path = tmp_path / "data.txt"
    path.write_text("precious")
    with pytest.raises(sock.BindError, match="is not a socket"):
        sock.create_sockets(make_conf(str(path)), log)
    assert path.read_text() == "precious"


def test_abstract_unix_socket(log: RecordingLog) -> None:
    name = f"\0gunicorn-test-{os.getpid()}"
    [listener] = sock.create_sockets(make_conf(name), log)
    try:
        assert str(listener) == f"unix:@gunicorn-test-{os.getpid()}"
        roundtrip(name, socket.AF_UNIX, listener)
    finally:
        sock.close_sockets([listener], unlink=True)


def test_bind_retried_then_error(log: RecordingLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sock, "BIND_RETRY_DELAY", 0.01)
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        with pytest.raises(sock.BindError) as info:
            sock.create_sockets(make_conf(("127.0.0.1", port)), log)
        assert str(info.value) == f"Can't connect to 127.0.0.1:{port}"
        in_use = [m for lvl, m in log.lines if m == f"Connection in use: 127.0.0.1:{port}"]
        assert len(in_use) == sock.BIND_ATTEMPTS == 5
    finally:
        busy.close()


def test_permanent_bind_error_is_not_retried(
    log: RecordingLog, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(sock, "BIND_RETRY_DELAY", 0.01)
    path = str(tmp_path / "no" / "such" / "dir.sock")
    with pytest.raises(sock.BindError):
        sock.create_sockets(make_conf(path), log)
    failures = [m for lvl, m in log.lines if m.startswith("connection to")]
    assert len(failures) == 1


def test_fd_bind_wraps_existing_socket(log: RecordingLog) -> None:
    raw = socket.socket()
    raw.bind(("127.0.0.1", 0))
    raw.listen(4)
    fd = raw.detach()
    [listener] = sock.create_sockets(make_conf(fd), log)
    try:
        assert listener.fileno() == fd
        port = listener.getsockname()[1]
        assert str(listener) == f"http://127.0.0.1:{port}"
        roundtrip(("127.0.0.1", port), socket.AF_INET, listener)
    finally:
        sock.close_sockets([listener])


def test_inherited_fds_replace_the_configured_binds(log: RecordingLog, tmp_path: Any) -> None:
    path = str(tmp_path / "inherited.sock")
    raw = socket.socket(socket.AF_UNIX)
    raw.bind(path)
    raw.listen(4)
    fd = raw.detach()
    listeners = sock.create_sockets(make_conf(("127.0.0.1", 0)), log, fds=[fd])
    try:
        assert [str(lnr) for lnr in listeners] == [f"unix:{path}"]
        roundtrip(path, socket.AF_UNIX, listeners[0])
    finally:
        sock.close_sockets(listeners, unlink=True)
    assert not os.path.exists(path)  # a re-exec'd master's own socket is still ours


def test_systemd_sockets_are_not_listened_again_nor_unlinked(
    log: RecordingLog, tmp_path: Any
) -> None:
    path = str(tmp_path / "systemd.sock")
    raw = socket.socket(socket.AF_UNIX)
    raw.bind(path)  # bound, deliberately not listening
    fd = raw.detach()
    [listener] = sock.create_sockets(make_conf(), log, fds=[fd], systemd=True)
    client = socket.socket(socket.AF_UNIX)
    try:
        with pytest.raises(OSError) as info:
            client.connect(path)
        assert info.value.errno == errno.ECONNREFUSED
    finally:
        client.close()
        sock.close_sockets([listener], unlink=True)
    assert os.path.exists(path)


def test_close_logs_instead_of_raising(log: RecordingLog) -> None:
    [listener] = sock.create_sockets(make_conf(("127.0.0.1", 0)), log)
    listener.close()
    listener.close()
    assert listener.sock.fileno() == -1
