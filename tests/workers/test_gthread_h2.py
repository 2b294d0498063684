"""HTTP/2 in the gthread worker, as a real ``gunicorn -k gthread`` process: concurrent
streams, flow control that never pins a thread, GOAWAY on the ways a connection ends,
h2c (prior knowledge and Upgrade), ALPN, and the sync worker's refusal."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest

from tests.certs import make_certs
from tests.support import Gunicorn, wait_until
from tests.wsgi.wire import WSGI_DIR

APP = "tests.http2.apps:app"
ROOT = str(Path(__file__).resolve().parents[2])
H2C = ["-k", "gthread", "--http-protocols", "h2,h1", "--http2-cleartext", "both", "--chdir", ROOT]


class Client:
    """A small blocking HTTP/2 client on the ``h2`` package (cleartext, prior knowledge)."""

    def __init__(self, address: Any, *, window: int = 65535, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config)
        self.conn.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
        )
        self.conn.initiate_connection()
        self.flush()
        self.responses: dict[int, dict[str, Any]] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False
        self._buffer = bytearray()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def get(self, path: str, end: bool = True) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "t")]
        self.conn.send_headers(stream_id, headers, end_stream=end)
        self.flush()
        self.responses[stream_id] = {"status": None, "body": bytearray(), "ended": False}
        return stream_id

    def pump(self, *, ack: bool = True) -> None:
        """Read once (blocking up to the socket timeout) and handle the events."""
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            return
        self._buffer += data
        while len(self._buffer) >= 9:
            size = 9 + int.from_bytes(self._buffer[:3], "big")
            if len(self._buffer) < size:
                break
            frame, self._buffer = bytes(self._buffer[:size]), self._buffer[size:]
            self._handle(frame, ack)
        self.flush()

    def _handle(self, frame: bytes, ack: bool) -> None:
        # Frame by frame: the h2 package closes its connection on a GOAWAY (python-hyper/h2
        # issue 1181) although streams up to its last stream id may still complete
        # (RFC 9113 §6.8); this client keeps reading them, as browsers and curl do.
        if self.goaway is not None:
            self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        for event in self.conn.receive_data(frame):
            if isinstance(event, h2.events.ResponseReceived):
                self.responses[event.stream_id]["status"] = int(dict(event.headers)[":status"])
            elif isinstance(event, h2.events.DataReceived):
                self.responses[event.stream_id]["body"] += event.data
                if ack:
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
            elif isinstance(event, h2.events.StreamEnded):
                self.responses[event.stream_id]["ended"] = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = event

    def wait(self, predicate: Any, timeout: float = 10.0, *, ack: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            assert not self.closed, "the server closed the connection"
            self.pump(ack=ack)

    def ended(self, stream_id: int) -> bool:
        return bool(self.responses[stream_id]["ended"])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Gunicorn]:
    with Gunicorn(*H2C, "--threads", "1", "--keep-alive", "30", APP) as running:
        yield running


def test_prior_knowledge_with_httpx(server: Gunicorn) -> None:
    with httpx.Client(http1=False, http2=True, base_url=server.url or "") as client:
        replies = [client.get("/hello") for _ in range(5)]
        echo = client.post("/echo", content=b"x" * 100_000)
    assert {reply.http_version for reply in replies} == {"HTTP/2"}
    assert replies[0].text.startswith("hello")
    assert replies[0].headers["server"] == "gunicorn"
    assert "date" in replies[0].headers
    assert echo.content.endswith(b"x" * 100_000) or len(echo.content) >= 100_000


def test_upgrade_from_http11(server: Gunicorn) -> None:
    result = subprocess.run(
        ["curl", "-s", "--http2", "-w", "\n%{http_version}", f"{server.url}/hello"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    body, _, version = result.stdout.rpartition("\n")
    assert version == "2"
    assert body.startswith("hello")


def test_plain_http11_still_served(server: Gunicorn) -> None:
    reply = httpx.get(f"{server.url}/hello", timeout=10)
    assert reply.http_version == "HTTP/1.1"
    assert reply.status_code == 200


def test_a_stream_waiting_for_window_releases_the_only_thread(server: Gunicorn) -> None:
    client = Client(server.address)
    try:
        # 200 KiB does not fit the client's 64 KiB window, but fits the stream buffer:
        # the thread is free again while the rest waits for WINDOW_UPDATE.
        big = client.get("/large?n=204800")
        client.wait(lambda: len(client.responses[big]["body"]) >= 65535, ack=False)
        # Open the connection's window (not the stream's) so another stream can send.
        client.conn.increment_flow_control_window(1 << 20)
        fast = client.get("/hello")
        client.wait(lambda: client.ended(fast), ack=False)
        assert client.responses[fast]["status"] == 200
        assert not client.ended(big)
        client.conn.acknowledge_received_data(len(client.responses[big]["body"]), big)
        client.flush()
        client.wait(lambda: client.ended(big))
        assert len(client.responses[big]["body"]) == 204800
    finally:
        client.close()


def test_streams_of_one_connection_run_concurrently() -> None:
    with Gunicorn(*H2C, "--threads", "4", APP) as server:
        client = Client(server.address)
        try:
            started = time.monotonic()
            slow = [client.get("/slow?delay=1") for _ in range(3)]
            client.wait(lambda: all(client.ended(s) for s in slow), timeout=15)
            elapsed = time.monotonic() - started
        finally:
            client.close()
    # Served one at a time they would take 3 s.
    assert elapsed < 2.5
    assert all(client.responses[s]["status"] == 200 for s in slow)


def test_graceful_stop_sends_goaway_and_finishes_streams(tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    calls.touch()
    env = {"H2_TEST_CALLS": str(calls)}
    with Gunicorn(*H2C, "--threads", "2", APP, env=env) as server:
        client = Client(server.address)
        try:
            slow = client.get("/slow?delay=1")
            wait_until(lambda: "/slow" in calls.read_text())
            server.send(signal.SIGTERM)
            client.wait(lambda: client.goaway is not None and client.ended(slow), timeout=15)
        finally:
            client.close()
    assert client.goaway is not None
    assert client.goaway.error_code == 0
    assert client.goaway.last_stream_id == slow
    assert client.responses[slow]["status"] == 200


def test_max_requests_ends_with_goaway() -> None:
    with Gunicorn(*H2C, "--threads", "1", "--max-requests", "3", APP) as server:
        client = Client(server.address)
        try:
            streams = [client.get("/hello") for _ in range(3)]
            client.wait(lambda: client.goaway is not None, timeout=15)
            client.wait(lambda: all(client.ended(s) for s in streams), timeout=15)
        finally:
            client.close()
    assert client.goaway is not None and client.goaway.error_code == 0


@pytest.mark.parametrize("path", ["/hello", "/slow?delay=0.5"])
def test_idle_connection_gets_goaway_after_keepalive(path: str) -> None:
    """Keep-alive counts from the end of the last stream, also when that stream ended
    after the connection was parked (a slow one: parked with the request timeout)."""
    with Gunicorn(*H2C, "--threads", "1", "--keep-alive", "1", APP) as server:
        client = Client(server.address, timeout=20)
        try:
            stream = client.get(path)
            client.wait(lambda: client.ended(stream))
            ended = time.monotonic()
            client.wait(lambda: client.goaway is not None or client.closed, timeout=20)
            idle_for = time.monotonic() - ended
        finally:
            client.close()
    assert client.goaway is not None and client.goaway.error_code == 0
    assert idle_for < 15  # the request timeout (30 s) is not the bound


def test_tls_alpn_h2_with_httpx(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    args = ["-k", "gthread", "--http-protocols", "h2,h1", "--chdir", ROOT]
    tls = ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
    with Gunicorn(*args, *tls, "--threads", "1", APP) as server:
        context = ssl.create_default_context(cafile=str(certs.ca))
        url = f"https://localhost:{server.address[1]}"  # type: ignore[index]
        with httpx.Client(http2=True, verify=context) as client:
            reply = client.get(f"{url}/headers")
        assert reply.http_version == "HTTP/2"
        assert reply.json()["wsgi.url_scheme"] == "https"


def test_sync_worker_warns_and_serves_http11(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    tls = ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
    args = ["-k", "sync", "--http-protocols", "h2,h1", "--chdir", ROOT, *tls, APP]
    with Gunicorn(*args) as server:
        context = ssl.create_default_context(cafile=str(certs.ca))
        url = f"https://localhost:{server.address[1]}/hello"  # type: ignore[index]
        with httpx.Client(http2=True, verify=context) as client:
            reply = client.get(url)
        assert reply.http_version == "HTTP/1.1"
        assert server.log.count("sync worker cannot keep connections open") == 1


def test_h2_without_the_package_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['h2'] = None\n")
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}"}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--http-protocols", "h2", "-b", "127.0.0.1:0", APP],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **env},
    )
    assert "pip install 'gunicorn[http2]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.returncode == 1


def test_file_wrapper_head_and_no_body_statuses_over_h2(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    (tmp_path / "data.bin").write_bytes(data)
    env = {"TEST_DATA_FILE": str(tmp_path / "data.bin")}
    args = ["-k", "gthread", "--http-protocols", "h2,h1", "--http2-cleartext", "both"]
    with Gunicorn(*args, "--chdir", str(WSGI_DIR), "apps:app", env=env) as server:
        client = httpx.Client(http1=False, http2=True, base_url=server.url or "")
        with client:
            whole = client.get("/file")
            unsized = client.get("/file?length=0&offset=1000")
            head = client.head("/file")
            no_content = client.get("/status/204")
            not_modified = client.get("/status/304")
    assert whole.http_version == "HTTP/2"
    assert whole.content == data
    assert unsized.content == data[1000:]
    assert head.content == b"" and head.headers["content-length"] == str(len(data))
    assert no_content.status_code == 204 and no_content.content == b""
    assert "content-length" not in no_content.headers
    assert not_modified.status_code == 304 and not_modified.content == b""


def test_tls_streams_on_many_threads_under_h2load(tmp_path: Path) -> None:
    # Several pool threads read and write one TLS connection: OpenSSL allows one at a
    # time, and the driver makes them take turns (without it h2load saw broken streams).
    certs = make_certs(tmp_path)
    tls = ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
    args = ["-k", "gthread", "--threads", "4", "--http-protocols", "h2,h1", "--chdir", ROOT]
    with Gunicorn(*args, *tls, APP) as server:
        url = f"https://127.0.0.1:{server.address[1]}/hello"  # type: ignore[index]
        result = subprocess.run(
            ["h2load", "-n", "12000", "-c", "4", "-m", "16", url],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    assert "12000 succeeded, 0 failed, 0 errored" in result.stdout, result.stdout[-1500:]
