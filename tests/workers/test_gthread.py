"""The gthread worker, run as a real ``gunicorn -k gthread`` process on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.tls.server_process import GunicornProcess

APP = """
import json, os, threading, time

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
    if path == "/hang":
        threading.Event().wait()
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    info = {
        "path": path,
        "pid": os.getpid(),
        "port": environ.get("REMOTE_PORT"),
        "scheme": environ["wsgi.url_scheme"],
        "multithread": environ["wsgi.multithread"],
    }
    body = json.dumps(info).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


def gthread(tmp_path: Path, *args: str, app: str = APP) -> GunicornProcess:
    return GunicornProcess(tmp_path, app, "-k", "gthread", "--threads", "4", *args)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornProcess]:
    with gthread(tmp_path_factory.mktemp("gthread"), "--keep-alive", "5") as proc:
        yield proc


def request(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode()


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[bytes, dict[str, str], bytes]:
    """One Content-Length framed response from ``sock`` (extra bytes stay in ``buffer``)."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed before a response")
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed in a body")
        rest += data
    buffer[:] = rest[length:]
    return lines[0].encode(), headers, rest[:length]


def is_closed(sock: socket.socket, timeout: float) -> bool:
    """True when the server closes ``sock`` within ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# ------------------------------------------------------------------------- keep-alive


def test_keep_alive_serves_many_requests_on_one_connection(server: GunicornProcess) -> None:
    with server.connect() as sock:
        buffer = bytearray()
        ports = set()
        for i in range(50):
            sock.sendall(request(f"/n{i}"))
            status, headers, body = read_response(sock, buffer)
            assert status == b"HTTP/1.1 200 OK"
            assert headers["connection"] == "keep-alive"
            info = json.loads(body)
            assert info["path"] == f"/n{i}"
            assert info["multithread"] is True
            ports.add(info["port"])
        assert ports == {str(sock.getsockname()[1])}


def test_httpx_client_reuses_its_connection(server: GunicornProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        ports = {client.get(f"/c{i}").json()["port"] for i in range(20)}
    assert len(ports) == 1


def test_one_hundred_pipelined_requests_answered_in_order(server: GunicornProcess) -> None:
    with server.connect() as sock:
        sock.sendall(b"".join(request(f"/p{i}") for i in range(100)))
        buffer = bytearray()
        paths = [json.loads(read_response(sock, buffer)[2])["path"] for _ in range(100)]
    assert paths == [f"/p{i}" for i in range(100)]


def test_pipelined_posts_with_bodies(server: GunicornProcess) -> None:
    bodies = [bytes([65 + i % 26]) * (i * 97) for i in range(30)]
    with server.connect() as sock:
        sock.sendall(
            b"".join(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b)
                for b in bodies
            )
        )
        buffer = bytearray()
        echoed = [read_response(sock, buffer)[2] for _ in bodies]
    assert echoed == bodies


def test_request_split_in_many_small_writes(server: GunicornProcess) -> None:
    data = request("/split", "User-Agent: trickle\r\n")
    with server.connect() as sock:
        for i in range(0, len(data), 3):
            sock.sendall(data[i : i + 3])
            time.sleep(0.002)
        status, _, body = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK"
    assert json.loads(body)["path"] == "/split"


def test_http10_connection_is_closed_after_the_response(server: GunicornProcess) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        status, headers, _ = read_response(sock, bytearray())
        assert status == b"HTTP/1.0 200 OK"
        assert headers["connection"] == "close"
        assert is_closed(sock, 5)


def test_bad_request_gets_400_and_close(server: GunicornProcess) -> None:
    with server.connect() as sock:
        sock.sendall(request("/ok") + b"Invalid\r\n\r\n")
        buffer = bytearray()
        assert read_response(sock, buffer)[0] == b"HTTP/1.1 200 OK"
        status, headers, _ = read_response(sock, buffer)
        assert status.startswith(b"HTTP/1.1 400")
        assert headers["connection"] == "close"
        assert is_closed(sock, 5)


# --------------------------------------------------------------------------- timeouts


def test_idle_keep_alive_connection_is_closed(tmp_path: Path) -> None:
    with gthread(tmp_path, "--keep-alive", "1") as proc, proc.connect() as sock:
        sock.sendall(request("/once"))
        read_response(sock, bytearray())
        assert is_closed(sock, 10)


def test_silent_and_half_sent_connections_are_closed_without_pinning_threads(
    tmp_path: Path,
) -> None:
    # One thread only: if a silent or trickling client held it, the probe would starve.
    with gthread(tmp_path, "--threads", "1", "--timeout", "2") as proc:
        silent = proc.connect()
        half = proc.connect()
        half.sendall(b"GET /half HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        with httpx.Client(base_url=proc.url, timeout=5) as client:
            assert client.get("/probe").json()["path"] == "/probe"
        assert is_closed(silent, 10)
        assert is_closed(half, 10)
        silent.close()
        half.close()


def test_slowloris_does_not_starve_a_probe(tmp_path: Path) -> None:
    with gthread(tmp_path, "--keep-alive", "30", "--timeout", "30") as proc:
        attackers: list[socket.socket] = []
        stop = threading.Event()
        try:
            for i in range(500):
                sock = proc.connect()
                if i % 2:
                    sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
                attackers.append(sock)

            def trickle() -> None:
                while not stop.wait(0.2):
                    for sock in attackers[1::2]:
                        with contextlib.suppress(OSError):
                            sock.send(b"X-a: b\r\n")

            thread = threading.Thread(target=trickle, daemon=True)
            thread.start()
            with httpx.Client(base_url=proc.url, timeout=5) as client:
                for i in range(20):
                    assert client.get(f"/probe{i}").status_code == 200
            stop.set()
            thread.join(5)
        finally:
            stop.set()
            for sock in attackers:
                sock.close()


# ------------------------------------------------------------------ capacity and limits


def test_worker_connections_caps_busy_connections_and_makes_room_from_idle_ones(
    tmp_path: Path,
) -> None:
    with gthread(tmp_path, "--worker-connections", "2", "--keep-alive", "30") as proc:
        first, second = proc.connect(), proc.connect()
        head = request("/hold")
        for sock in (first, second):
            sock.sendall(head[:-2])  # a request begun: never closed to make room
        third = proc.connect()  # accepted by the kernel, not by the worker
        third.sendall(request("/third"))
        third.settimeout(0.5)
        with pytest.raises(TimeoutError):
            third.recv(1)
        # The first request ends; its connection, now idle between requests, is the
        # one closed to admit the third client (nginx's reusable connections).
        first.sendall(head[-2:])
        first.settimeout(5)
        read_response(first, bytearray())
        third.settimeout(5)
        _, _, body = read_response(third, bytearray())
        assert json.loads(body)["path"] == "/third"
        assert is_closed(first, 5)
        for sock in (first, second, third):
            sock.close()


def test_max_requests_counts_requests_not_connections(tmp_path: Path) -> None:
    with gthread(tmp_path, "--max-requests", "5") as proc:
        first_pid = proc.worker_pids()[0]
        with proc.connect() as sock:
            buffer = bytearray()
            for i in range(5):
                sock.sendall(request(f"/m{i}"))
                _, headers, body = read_response(sock, buffer)
                assert json.loads(body)["pid"] == first_pid
            assert headers["connection"] == "close"
            assert is_closed(sock, 5)
        proc.wait_for(r"Autorestarting worker after current request")
        proc.wait_for(rf"Booting worker with pid: (?!{first_pid}\b)\d+")


# ------------------------------------------------------------------ graceful shutdown


def test_graceful_shutdown_closes_idle_and_finishes_busy(tmp_path: Path) -> None:
    with gthread(tmp_path, "--graceful-timeout", "20", "--keep-alive", "30") as proc:
        idle = proc.connect()
        idle.sendall(request("/idle"))
        read_response(idle, bytearray())
        busy = proc.connect(timeout=15)
        busy.sendall(request("/sleep?1.5"))
        time.sleep(0.3)  # the request is in the app
        proc.signal(signal.SIGTERM)
        assert is_closed(idle, 5)  # at once, not after the graceful timeout
        status, headers, _ = read_response(busy, bytearray())
        assert status == b"HTTP/1.1 200 OK"
        assert headers["connection"] == "close"
        assert proc.wait(15) == 0
        idle.close()
        busy.close()


def test_graceful_timeout_bounds_a_stuck_request(tmp_path: Path) -> None:
    with gthread(tmp_path, "--graceful-timeout", "1") as proc:
        stuck = proc.connect(timeout=15)
        stuck.sendall(request("/hang"))
        time.sleep(0.3)
        proc.signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert is_closed(stuck, 5)
        stuck.close()


# ------------------------------------------------------------------------- heartbeat


@pytest.mark.slow
def test_worker_with_every_thread_stuck_is_replaced(tmp_path: Path) -> None:
    with gthread(tmp_path, "--threads", "2", "--timeout", "2") as proc:
        first_pid = proc.worker_pids()[0]
        stuck = [proc.connect(timeout=20) for _ in range(2)]
        for sock in stuck:
            sock.sendall(request("/hang"))
        proc.wait_for(r"WORKER TIMEOUT", timeout=20)
        proc.wait_for(rf"Booting worker with pid: (?!{first_pid}\b)\d+", timeout=20)
        with httpx.Client(base_url=proc.url, timeout=5) as client:
            assert client.get("/after").json()["pid"] != first_pid
        for sock in stuck:
            sock.close()


@pytest.mark.slow
def test_one_stuck_thread_does_not_stop_the_worker_serving(tmp_path: Path) -> None:
    # The stuck request is answered with 500 once it outlives --timeout; the worker is
    # then retired gracefully to get its thread back. Other clients never notice, and the
    # arbiter never has to kill the worker for silence.
    with gthread(tmp_path, "--threads", "2", "--timeout", "1", "--graceful-timeout", "1") as proc:
        stuck = proc.connect(timeout=20)
        stuck.sendall(request("/hang"))
        with httpx.Client(base_url=proc.url, timeout=5) as client:
            for _ in range(12):
                assert client.get("/alive").status_code == 200
                time.sleep(0.25)
        status, _, _ = read_response(stuck, bytearray())
        assert status == b"HTTP/1.1 500 Internal Server Error"
        assert "WORKER TIMEOUT" not in proc.log()
        stuck.close()
