"""Clients that misbehave on the control socket cost the server nothing."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from support import Gunicorn, request, wait_until

from ctl.helpers import control_dir, control_path, ctl_json, server
from gunicorn.ctl import protocol


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[Gunicorn, str, str]]:
    with control_dir() as runtime, server(runtime, "-w", "1") as srv:
        srv.wait_workers(1)
        yield srv, control_path(srv), runtime


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def _try_connect(path: str) -> socket.socket | None:
    try:
        return _connect(path)
    except BlockingIOError:
        return None


def _read_reply(sock: socket.socket) -> dict | None:
    """The next reply frame, or None when the server closed the connection."""
    reader = protocol.FrameReader()
    while True:
        data = sock.recv(65536)
        if not data:
            return None
        messages = reader.feed(data)
        if messages:
            assert isinstance(messages[0], dict)
            return messages[0]


def _healthy(srv: Gunicorn, path: str, runtime: str) -> None:
    started = time.monotonic()
    assert ctl_json(path, "show stats", runtime)["pid"] == srv.pid
    assert request(srv.address, "/")[0] == 200
    assert time.monotonic() - started < 5


def test_silent_clients_do_not_block_anyone(live: tuple[Gunicorn, str, str]) -> None:
    srv, path, runtime = live
    silent = [_connect(path) for _ in range(5)]
    half = _connect(path)
    half.sendall(b"\x00\x00\x01\x00{")  # a frame that never completes
    try:
        _healthy(srv, path, runtime)
        assert ctl_json(path, "worker add", runtime)["workers_target"] == 2
        srv.wait_workers(2)  # the arbiter's loop still runs
        assert ctl_json(path, "worker remove", runtime)["workers_target"] == 1
        srv.wait_workers(1)
    finally:
        for sock in [*silent, half]:
            sock.close()


def test_garbage_json_gets_an_error_and_the_connection_goes_on(
    live: tuple[Gunicorn, str, str],
) -> None:
    srv, path, runtime = live
    with _connect(path) as sock:
        for junk in (b"\x00\x01\x02 not json", b"[1,2,3]", b"\xff\xfe\xfd"):
            sock.sendall(struct.pack(">I", len(junk)) + junk)
            reply = _read_reply(sock)
            assert reply is not None and reply["status"] == "error"
        sock.sendall(protocol.encode({"id": 7, "command": "show stats", "args": []}))
        reply = _read_reply(sock)
        assert reply is not None and reply["id"] == 7 and reply["status"] == "ok"
    _healthy(srv, path, runtime)


def test_a_4_gib_length_is_refused_at_once(live: tuple[Gunicorn, str, str]) -> None:
    srv, path, runtime = live
    with _connect(path) as sock:
        sock.sendall(b"\xff\xff\xff\xff" + b"x" * 1000)
        reply = _read_reply(sock)
        assert reply is not None and reply["status"] == "error"
        assert "exceeds" in reply["error"]
        assert _read_reply(sock) is None  # then closed
    _healthy(srv, path, runtime)


def test_random_bytes_and_abrupt_disconnects(live: tuple[Gunicorn, str, str]) -> None:
    srv, path, runtime = live
    for payload in (b"GET / HTTP/1.1\r\n\r\n", bytes(range(256)) * 64, b"\x00" * 3):
        sock = _connect(path)
        sock.sendall(payload)
        sock.close()
    # a client that sends a command and leaves before the answer
    sock = _connect(path)
    sock.sendall(protocol.encode({"id": 1, "command": "show all", "args": []}))
    sock.close()
    _healthy(srv, path, runtime)


def test_more_clients_than_the_cap(live: tuple[Gunicorn, str, str]) -> None:
    srv, path, runtime = live
    crowd: list[socket.socket] = []
    try:
        for _ in range(60):
            # the listen queue may be full for a moment: wait for the master to accept
            crowd.append(wait_until(lambda: _try_connect(path), timeout=10))
        # the longest idle connections make room: a real client is still served
        _healthy(srv, path, runtime)
        closed = 0
        for sock in crowd:
            sock.settimeout(5)
            with contextlib.suppress(TimeoutError, OSError):
                closed += sock.recv(1) == b""
            if closed:
                break
        assert closed  # the oldest silent ones were dropped
    finally:
        for sock in crowd:
            sock.close()
    _healthy(srv, path, runtime)


def test_a_client_that_never_reads_its_answers(live: tuple[Gunicorn, str, str]) -> None:
    srv, path, runtime = live
    with _connect(path) as sock:
        frame = protocol.encode({"id": 1, "command": "help", "args": []})
        sock.setblocking(False)
        sent = 0
        for _ in range(2000):
            try:
                sent += sock.send(frame)
            except BlockingIOError:
                break
        assert sent > 0
        _healthy(srv, path, runtime)
    _healthy(srv, path, runtime)


def test_requests_split_byte_by_byte(live: tuple[Gunicorn, str, str]) -> None:
    _srv, path, _runtime = live
    frame = protocol.encode({"id": "abc", "command": "show", "args": ["workers"]})
    with _connect(path) as sock:
        for i in range(len(frame)):
            sock.sendall(frame[i : i + 1])
        reply = _read_reply(sock)
    assert reply is not None and reply["id"] == "abc"
    assert reply["data"]["count"] == 1
    assert json.dumps(reply)
