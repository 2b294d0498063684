"""FastAPI, Starlette, Django, Quart and Litestar applications served by ``gunicorn -k asgi``.

Each framework's app (``tests/asgi/frameworks/``, one route contract described in
``frameworks/common.py``) runs in a real server with ``--http-protocols h2,h1
--http2-cleartext both``; most tests run twice, over HTTP/1.1 (``h1``) and over
HTTP/2 (``h2``: httpx with prior knowledge). One more FastAPI server (``fastapi-tls``)
serves TLS, where httpx picks the protocol by ALPN. One server per app is shared by the
module's tests; a test that needs only some of them says so with ``@on(...)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.certs import TestCerts, make_certs
from tests.support import Gunicorn

# Six servers, each importing a framework: tens of seconds on a busy machine.
pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent / "frameworks"
APPS = {
    "starlette": "starlette_app:app",
    "fastapi": "fastapi_app:app",
    "django": "django_app.asgi:app",
    "quart": "quart_app:app",
    "litestar": "litestar_app:app",
}
SERVERS = [*APPS, "fastapi-tls"]
UPLOAD_SIZE = 3 * 1024 * 1024
# asgi_disconnect_grace_period, seconds: long, so that an application that heard the
# disconnect (it stops within GRACE / 2, even on a loaded machine) is told apart from one
# cancelled when the grace period ends.
GRACE = 20

F = TypeVar("F", bound=Callable[..., Any])


def on(*servers: str) -> Callable[[F], F]:
    """Run the decorated test against these servers only (default: all of ``SERVERS``)."""

    def mark(function: F) -> F:
        function.servers = list(servers)  # type: ignore[attr-defined]
        return function

    return mark


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "served" in metafunc.fixturenames:
        servers = getattr(metafunc.function, "servers", SERVERS)
        metafunc.parametrize("served", servers, indirect=True, scope="module")


@dataclass
class Served:
    """One running server and how to reach it."""

    name: str
    server: Gunicorn
    url: str
    cafile: str | None
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def tls(self) -> ssl.SSLContext | None:
        """A new client context (httpx sets ALPN on the one it is given)."""
        if self.cafile is None:
            return None
        return ssl.create_default_context(cafile=self.cafile)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def client(self, http: str = "h1") -> httpx.Client:
        """The module's client for this server and HTTP version (its connections are kept
        alive from one test to the next)."""
        client = self.clients.get(http)
        if client is None:
            client = self.clients[http] = httpx.Client(
                base_url=self.url,
                http1=http == "h1",
                http2=http == "h2",
                verify=self.tls() or True,
                timeout=10.0,
            )
        return client


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("framework-certs"))


@pytest.fixture(scope="module")
def served(request: pytest.FixtureRequest, certs: TestCerts) -> Iterator[Served]:
    name, _, tls = request.param.partition("-")
    args = ["-k", "asgi", "--chdir", str(HERE), "--graceful-timeout", "5"]
    # Long enough that an application which stops after a client left heard of it
    # itself, rather than being cancelled by the server.
    args += ["--asgi-disconnect-grace-period", str(GRACE)]
    args += ["--http-protocols", "h2,h1"]
    cafile = None
    if tls:
        args += ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
        cafile = str(certs.ca)
    else:
        args += ["--http2-cleartext", "both"]
    with Gunicorn(*args, APPS[name]) as server:
        server.wait_for(rf"\[app\] {name} lifespan startup")
        assert server.address is not None and not isinstance(server.address, str)
        host = "localhost" if cafile else "127.0.0.1"
        url = f"{'https' if cafile else 'http'}://{host}:{server.address[1]}"
        served = Served(name, server, url, cafile)
        yield served
        for client in served.clients.values():
            client.close()


@pytest.fixture(params=["h1", "h2"])
def http(request: pytest.FixtureRequest) -> str:
    """The HTTP version the client speaks."""
    return str(request.param)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def stream_piece(index: int) -> bytes:
    """Mirrors ``frameworks/common.py`` (the tests do not import the apps' modules)."""
    return f"piece {index:05d} ".encode() + b"." * 200 + b"\n"


# -- routes -------------------------------------------------------------------------------


def test_get_json(served: Served, http: str) -> None:
    client = served.client(http)
    reply = client.get("/json")
    assert reply.status_code == 200
    assert reply.http_version == {"h1": "HTTP/1.1", "h2": "HTTP/2"}[http]
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == {"framework": served.name, "message": "hello"}


def test_head_on_a_get_route_has_the_head_and_no_body(served: Served, http: str) -> None:
    client = served.client(http)
    got = client.get("/json")
    head = client.head("/json")
    again = client.get("/json")  # the same connection: no stray body bytes in between
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    if "content-length" in head.headers:
        assert int(head.headers["content-length"]) == len(got.content)
    assert again.json() == got.json()


def test_path_and_query_parameters(served: Served, http: str) -> None:
    client = served.client(http)
    item = client.get("/items/42")
    query = client.get("/query", params={"q": "caf\u00e9 & co", "n": "7"})
    assert item.status_code == 200 and item.json() == {"item_id": 42}
    assert query.status_code == 200 and query.json() == {"q": "caf\u00e9 & co", "n": 7}


def test_post_json_form_and_raw_body(served: Served, http: str) -> None:
    document = {"list": [1, 2, 3], "text": "\u00e9t\u00e9", "nested": {"ok": True}}
    raw = bytes(range(256)) * 16
    client = served.client(http)
    as_json = client.post("/echo/json", json=document)
    as_form = client.post("/echo/form", data={"name": "Ada Lovelace", "lang": "en&fr"})
    as_body = client.post(
        "/echo/body", content=raw, headers={"content-type": "application/octet-stream"}
    )
    assert as_json.status_code == 200 and as_json.json() == {"received": document}
    assert as_form.status_code == 200
    assert as_form.json() == {"fields": {"name": "Ada Lovelace", "lang": "en&fr"}}
    assert as_body.status_code == 200 and as_body.content == raw


def test_large_request_body_read_in_pieces(served: Served, http: str) -> None:
    payload = os.urandom(UPLOAD_SIZE)
    expected = {"size": UPLOAD_SIZE, "sha256": hashlib.sha256(payload).hexdigest()}

    def pieces() -> Iterator[bytes]:  # no Content-Length: chunked on HTTP/1.1
        view = memoryview(payload)
        for start in range(0, len(payload), 256 * 1024):
            yield bytes(view[start : start + 256 * 1024])

    client = served.client(http)
    streamed = client.post("/upload", content=pieces())
    assert streamed.status_code == 200 and streamed.json() == expected
    if http == "h1":  # on HTTP/2 only the content-length header would differ
        sized = client.post("/upload", content=payload)
        assert sized.status_code == 200 and sized.json() == expected


def test_streaming_response_in_many_pieces(served: Served, http: str) -> None:
    count = 400
    with served.client(http).stream("GET", "/stream", params={"n": count}) as reply:
        received = [piece for piece in reply.iter_raw() if piece]
        headers = reply.headers
    assert reply.status_code == 200
    assert b"".join(received) == b"".join(stream_piece(i) for i in range(count))
    if http == "h1":
        assert headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in headers


def test_file_response(served: Served, http: str) -> None:
    expected = (HERE / "common.py").read_bytes()
    client = served.client(http)
    reply = client.get("/file")
    after = client.get("/json")  # the connection is still in step
    assert reply.status_code == 200
    assert reply.content == expected
    assert int(reply.headers["content-length"]) == len(expected)
    assert after.status_code == 200


def test_background_task_runs_after_the_response(served: Served) -> None:
    key = uuid.uuid4().hex
    client = served.client()
    started = client.post(f"/tasks/{key}")
    assert started.status_code == 202
    assert started.json() == {"scheduled": key}
    wait_until(lambda: client.get(f"/tasks/{key}").json()["done"], "the background task")


def test_lifespan_state_reaches_the_routes(served: Served) -> None:
    client = served.client()
    reply = client.get("/state")
    assert reply.status_code == 200
    assert reply.json()["token"] == f"{served.name}-ready"
    assert reply.json()["pid"] in served.server.worker_pids()


def test_unknown_route_is_404(served: Served, http: str) -> None:
    client = served.client(http)
    reply = client.get("/no/such/route")
    assert reply.status_code == 404


def test_exception_in_a_route_is_500_and_the_server_carries_on(served: Served, http: str) -> None:
    client = served.client(http)
    failed = client.get("/error")
    after = client.get("/json")
    assert failed.status_code == 500
    assert after.status_code == 200
    assert after.json()["framework"] == served.name


def test_websocket_echo(served: Served) -> None:
    big = "x" * 200_000
    with ws_connect(served.ws_url, ssl=served.tls(), open_timeout=20, close_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(timeout=15) == "hello"
        ws.send(b"\x00\x01binary\xff")
        assert ws.recv(timeout=15) == b"\x00\x01binary\xff"
        ws.send(big)
        assert ws.recv(timeout=15) == big
    assert ws.close_code == 1000


@on(*APPS)
def test_an_endless_stream_stops_soon_after_the_client_leaves(
    served: Served, request: pytest.FixtureRequest
) -> None:
    # Under ASGI spec 2.4 Starlette's StreamingResponse does not watch for http.disconnect:
    # it stops when send() raises OSError once the client is gone (the others listen).
    server = served.server
    stopped = rf"\[app\] {served.name} endless stream stopped"
    before = server.count(stopped)
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    # Well before the grace period would end with the server cancelling the application.
    server.wait_for(stopped, count=before + 1, timeout=GRACE / 2)


def socket_inodes(pid: int) -> set[str]:
    """The sockets a process holds open (Linux: its ``/proc/<pid>/fd`` links)."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


@on("django", "quart", "litestar")
def test_a_client_that_left_mid_stream_is_let_go(served: Served) -> None:
    """The application heard of the disconnect and returned without completing its
    response: the worker closes that connection (it does not keep the socket)."""
    server = served.server
    (worker,) = server.worker_pids()
    stopped = rf"\[app\] {served.name} endless stream stopped"
    before = server.count(stopped)
    held = socket_inodes(worker)
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"GET /endless HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert socket_inodes(worker) - held  # the worker's side of this connection
    server.wait_for(stopped, count=before + 1, timeout=GRACE / 2)
    wait_until(lambda: not socket_inodes(worker) - held, "the worker to close the socket", 3)


# -- Django: a client that leaves cancels the view and request_finished fires -------------

FINISHED = r"\[app\] django request_finished"
STARTED = r"\[app\] django slow view started"
CANCELLED = r"\[app\] django slow view cancelled"


@on("django")
def test_django_request_finished_fires_when_an_http1_client_leaves(served: Served) -> None:
    server = served.server
    started, finished = server.count(STARTED), server.count(FINISHED)
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n")
        server.wait_for(STARTED, count=started + 1)
    # The disconnect reached Django (http.disconnect), which cancelled its view and sent
    # request_finished itself; a cancellation by the server, at the end of the grace
    # period, would cancel Django's handler before it sends the signal.
    server.wait_for(CANCELLED, count=started + 1, timeout=GRACE / 2)
    server.wait_for(FINISHED, count=finished + 1, timeout=GRACE / 2)


@on("django")
def test_django_request_finished_fires_when_an_http2_stream_is_reset(served: Served) -> None:
    server = served.server
    started, finished = server.count(STARTED), server.count(FINISHED)
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        fields = [(":method", "GET"), (":scheme", "http"), (":authority", "localhost")]
        conn.send_headers(1, [*fields, (":path", "/slow")], end_stream=True)
        sock.sendall(conn.data_to_send())
        server.wait_for(STARTED, count=started + 1)
        conn.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
        sock.sendall(conn.data_to_send())
        server.wait_for(CANCELLED, count=started + 1, timeout=GRACE / 2)
        server.wait_for(FINISHED, count=finished + 1, timeout=GRACE / 2)
        # The connection itself is still good for another request.
        conn.send_headers(3, [*fields, (":path", "/json")], end_stream=True)
        sock.sendall(conn.data_to_send())
        body = b""
        deadline = time.monotonic() + 5
        ended = False
        while not ended and time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived) and event.stream_id == 3:
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, 3)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == 3:
                    ended = True
            sock.sendall(conn.data_to_send())
    assert ended, "no answer on stream 3"
    assert json.loads(body) == {"framework": "django", "message": "hello"}


@on(*APPS)
def test_lifespan_shutdown_runs_when_the_worker_stops_gracefully(served: Served) -> None:
    """HUP replaces the worker: the old one stops gracefully (lifespan shutdown), the new
    one runs startup again and serves."""
    server = served.server
    with httpx.Client(base_url=served.url, timeout=10.0) as client:
        old_pid = client.get("/state").json()["pid"]
        server.send(signal.SIGHUP)
        # Within graceful_timeout (5 s) plus the new worker's boot.
        shutdown = rf"\[app\] {served.name} lifespan shutdown pid={old_pid}\b"
        server.wait_for(shutdown, timeout=20)

        def replaced() -> bool:
            try:
                reply = client.get("/state")
            except httpx.TransportError:
                return False
            return bool(reply.json()["pid"] != old_pid)

        wait_until(replaced, "the new worker")
        assert client.get("/state").json()["token"] == f"{served.name}-ready"
