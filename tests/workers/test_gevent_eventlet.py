"""The gevent and eventlet workers: what only green workers do.

Each test runs against a real gunicorn per green library (``GREEN``). The behaviour they
share with sync and gthread (corpus, framing, keep-alive, TLS, TERM...) is tested in
``test_every_worker``; HTTP/2 conformance runs with ``H2_EXTRA_ARGS="-k gevent"``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.certs import TestCerts, make_certs
from tests.http2.frames import H2Client
from tests.support import Gunicorn, request, wait_until
from tests.wsgi.wire import EXAMPLES_DIR, WSGI_DIR

GREEN = ("gevent", "eventlet")
REPO = Path(__file__).resolve().parents[2]
APP = "tests.workers.green_apps:app"


@pytest.fixture(params=GREEN)
def green(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("green-certs"))


def run(green: str, *args: str, app: str = APP, env: dict[str, str] | None = None) -> Gunicorn:
    return Gunicorn("-k", green, "--chdir", str(REPO), *args, app, env=env)


def address(server: Gunicorn) -> tuple[str, int]:
    assert isinstance(server.address, tuple)
    return server.address


def get_json(server: Gunicorn, path: str) -> dict[str, object]:
    status, body = request(address(server), path)
    assert status == 200, body
    result: dict[str, object] = json.loads(body)
    return result


# ------------------------------------------------------------------- concurrency


@pytest.mark.slow
def test_one_worker_serves_200_slow_requests_at_once(green: str) -> None:
    with run(green, "--worker-connections", "300", "--backlog", "512") as server:
        started = time.monotonic()
        with ThreadPoolExecutor(200) as pool:
            results = list(
                pool.map(lambda _: request(address(server), "/wait?t=1.5", timeout=30), range(200))
            )
        elapsed = time.monotonic() - started
    assert results == [(200, b"waited")] * 200
    # One at a time would take 300 s: a fifth of that (room for a loaded machine) proves
    # they were served side by side.
    assert elapsed < 60, elapsed


def test_worker_connections_caps_the_connections(green: str) -> None:
    with run(green, "--worker-connections", "2") as server, ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        results = list(
            pool.map(lambda _: request(address(server), "/wait?t=0.6", timeout=30), range(4))
        )
        elapsed = time.monotonic() - started
    assert results == [(200, b"waited")] * 4
    assert elapsed >= 1.1  # two rounds of two


@pytest.mark.slow
def test_idle_connections_are_closed_at_their_deadline(green: str) -> None:
    """``keepalive`` between requests; ``timeout`` for a connection that sends nothing."""
    with run(green, "--keep-alive", "1", "--timeout", "3") as server:
        with socket.create_connection(address(server), timeout=10) as kept:
            kept.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert kept.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
            started = time.monotonic()
            assert kept.recv(4096) == b""  # closed by the server
            assert 0.5 < time.monotonic() - started < 3.0
        with socket.create_connection(address(server), timeout=10) as silent:
            started = time.monotonic()
            assert silent.recv(4096) == b""
            assert 2.5 < time.monotonic() - started < 5.0


# ---------------------------------------------------------------- monkey-patching


def test_the_worker_is_patched_and_the_arbiter_is_not(green: str, tmp_path: Path) -> None:
    seen = tmp_path / "arbiter.txt"
    conf = tmp_path / "conf.py"
    conf.write_text(
        "import socket\n"
        "def when_ready(server):\n"
        f"    open({str(seen)!r}, 'w').write(socket.socket.__module__)\n"
    )
    with run(green, "-c", str(conf), "--preload") as server:
        worker = get_json(server, "/patched")
        wait_until(seen.exists)
        assert seen.read_text() == "socket"  # the arbiter's own socket module
        assert worker["imported_in"] == server.pid  # --preload: imported before the fork
    assert worker["socket"] != "socket" and green in str(worker["socket"])
    assert green in str(worker["ssl"])  # ssl was patched before any context was made
    assert worker["thread_ident_per_greenlet"] is True
    assert worker["multithread"] is True
    assert worker["has_gunicorn_socket"] is True
    # eventlet's patch removes select.poll: the drivers must not need it.
    assert worker["select_poll"] is (green == "gevent")


def test_preloaded_app_with_threading_keeps_working(green: str) -> None:
    with run(green, "--preload", "--graceful-timeout", "5") as server:
        with ThreadPoolExecutor(10) as pool:
            results = list(
                pool.map(lambda i: request(address(server), f"/threads?{i}", timeout=10), range(10))
            )
        assert results == [(200, f"ok {i}".encode()) for i in range(10)]
        server.send(signal.SIGTERM)
        assert server.wait(timeout=15) == 0
    assert "Traceback" not in server.log


def _slow_line_service() -> tuple[socket.socket, threading.Thread]:
    """A local TCP service that answers each connection with one line after 0.5 s."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)

    def serve() -> None:
        conns: list[socket.socket] = []
        try:
            while True:
                conn, _ = listener.accept()
                conns.append(conn)
                threading.Timer(0.5, lambda c=conn: c.sendall(b"db-row\n")).start()
        except OSError:
            pass
        finally:
            for conn in conns:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


@pytest.mark.slow
def test_psycogreen_post_fork_example(tmp_path: Path) -> None:
    """The example configuration runs psycogreen's patch in post_fork (a stand-in module
    records the call), and the application's socket calls are green: 20 requests that each
    wait 0.5 s on a local service are served together by one worker."""
    fake = tmp_path / "psycogreen"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "gevent.py").write_text(
        "import os\n"
        "def patch_psycopg():\n"
        "    open(os.environ['PSYCOGREEN_MARK'], 'a').write(f'{os.getpid()}\\n')\n"
    )
    mark = tmp_path / "patched.txt"
    listener, thread = _slow_line_service()
    port = listener.getsockname()[1]
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}", "PSYCOGREEN_MARK": str(mark)}
    conf = str(EXAMPLES_DIR / "gevent_psycogreen.conf.py")
    try:
        with Gunicorn("-c", conf, "--chdir", str(EXAMPLES_DIR), "gevent_app:app", env=env) as srv:
            started = time.monotonic()
            with ThreadPoolExecutor(20) as pool:
                results = list(
                    pool.map(lambda _: request(address(srv), f"/fetch?port={port}"), range(20))
                )
            elapsed = time.monotonic() - started
            assert results == [(200, b"db-row\n")] * 20
            assert elapsed < 5, elapsed  # one at a time: 10 s
            assert mark.read_text().split() == [str(pid) for pid in srv.worker_pids()]
            assert "psycopg made cooperative (psycogreen)" in srv.log
            assert "Using worker: gevent" in srv.log
    finally:
        listener.close()
        thread.join(5)


# ---------------------------------------------------------- a hub that is blocked


@pytest.mark.slow
def test_an_app_blocking_the_hub_is_detected_and_replaced(green: str) -> None:
    with run(green, "--timeout", "2", "--access-logfile", "-") as server:
        status, _ = request(address(server), "/block?t=30", timeout=20)
        assert status == 500  # the blocked request is answered, not cut
        log = server.wait_for(f"The {green} hub was blocked for more than 2")
        assert "WORKER TIMEOUT" in log
        assert "green_apps.py" in log.partition("hub was blocked")[2]  # where it blocked
        assert "in block" in log.partition("hub was blocked")[2]
        server.wait_for("Booting worker", count=2)
        # The new worker may still be importing (eventlet's patching is slow on a loaded
        # machine): the connection waits in the backlog for it.
        assert request(address(server), "/", timeout=20)[0] == 200


# --------------------------------------------------------------------- stopping


def test_quit_stops_at_once(green: str) -> None:
    with run(green, "--graceful-timeout", "30") as server:
        result: list[object] = []
        client = threading.Thread(
            target=lambda: result.append(_try(lambda: request(address(server), "/wait?t=20")))
        )
        client.start()
        server.wait_for("waiting 20")
        started = time.monotonic()
        server.send(signal.SIGQUIT)
        assert server.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        client.join(10)


def _try(call: object) -> object:
    try:
        return call()  # type: ignore[operator]
    except OSError as exc:
        return exc


@pytest.mark.slow
def test_max_requests_recycles_the_worker(green: str) -> None:
    with run(green, "--max-requests", "20") as server:
        (first,) = server.wait_workers(1)
        for _ in range(25):
            assert request(address(server), "/")[0] == 200
        server.wait_for("Autorestarting worker")
        wait_until(lambda: server.worker_pids() and first not in server.worker_pids())


# ---------------------------------------------------------------------- HTTP/2


@pytest.fixture
def h2_server(green: str, certs: TestCerts) -> Iterator[Gunicorn]:
    args = ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
    args += ["--http-protocols", "h2,h1", "--graceful-timeout", "10"]
    with run(green, *args) as server:
        yield server


def _h2_client(server: Gunicorn, certs: TestCerts) -> H2Client:
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.set_alpn_protocols(["h2"])
    client = H2Client.open(address(server), context, timeout=10)
    client.handshake()
    return client


def test_h2_streams_run_concurrently(h2_server: Gunicorn, certs: TestCerts) -> None:
    """gunicorn 27's gevent worker serves a connection's streams one at a time; here a slow
    stream does not hold the fast one back."""
    with _h2_client(h2_server, certs) as client:
        slow = client.send_request("/wait?t=2")
        fast = client.send_request("/")
        started = time.monotonic()
        response = client.read_response(fast, timeout=10)
        assert response.status == 200 and bytes(response.body) == b"hello"
        assert time.monotonic() - started < 1.5
        assert client.read_response(slow, timeout=10).status == 200


def test_h2_with_httpx(h2_server: Gunicorn, certs: TestCerts) -> None:
    url = f"https://localhost:{address(h2_server)[1]}"
    verify = ssl.create_default_context(cafile=str(certs.ca))
    with httpx.Client(http2=True, verify=verify) as client:
        responses = [client.get(f"{url}/?n={i}") for i in range(5)]
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert [r.text for r in responses] == ["hello"] * 5


def test_h2_term_sends_goaway_and_finishes_the_stream(
    h2_server: Gunicorn, certs: TestCerts
) -> None:
    with _h2_client(h2_server, certs) as client:
        sid = client.send_request("/wait?t=1.5")
        h2_server.wait_for("waiting 1.5")
        h2_server.send(signal.SIGTERM)
        response = client.read_response(sid, timeout=10)
        assert response.status == 200 and bytes(response.body) == b"waited"
        client.drain(1.0)
        assert client.goaway is not None
    assert h2_server.wait(timeout=15) == 0


def test_h2c_prior_knowledge_and_upgrade(green: str) -> None:
    args = ["--http-protocols", "h2,h1", "--http2-cleartext", "both"]
    with run(green, *args) as server:
        client = H2Client.open(address(server), None, timeout=10)
        with client:
            client.handshake()
            assert client.request("/").status == 200
        with socket.create_connection(address(server), timeout=10) as sock:
            sock.sendall(
                b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
            )
            assert sock.recv(4096).startswith(b"HTTP/1.1 101 Switching Protocols\r\n")


# ------------------------------------------------------------- real applications


@pytest.mark.parametrize(
    ("directory", "app", "path", "expected"),
    [
        (WSGI_DIR, "apps:validated", "/", b"Hello, World!"),
        (EXAMPLES_DIR, "flask_app:app", "/", b"Hello from Flask!\n"),
        (EXAMPLES_DIR, "django_app:application", "/", None),
    ],
    ids=["wsgiref-validate", "flask", "django"],
)
def test_real_applications(
    green: str, directory: Path, app: str, path: str, expected: bytes | None
) -> None:
    with Gunicorn("-k", green, "--chdir", str(directory), app) as server:
        for _ in range(3):
            status, body = request(address(server), path)
            assert status == 200, body
            if expected is not None:
                assert body.startswith(expected.rstrip(b"\n"))
    assert "Error handling request" not in server.log


@pytest.mark.parametrize("name", ["gevent_wsgi", "gevent_pywsgi"])
def test_the_gevent_pywsgi_names_run_the_same_worker(name: str) -> None:
    with run(name) as server:
        seen = get_json(server, "/patched")
        assert "gevent" in str(seen["socket"]) and seen["has_gunicorn_socket"] is True
    assert f"Using worker: {name}" in server.log


# --------------------------------------------------------- without the package


def test_missing_package_names_the_extra_and_exits_3(green: str) -> None:
    code = (
        f"import sys; sys.modules[{green!r}] = None; "
        f"sys.argv = ['gunicorn', '-k', {green!r}, '-b', '127.0.0.1:0', 'hello:app']; "
        "from gunicorn.app.wsgiapp import run; run()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=EXAMPLES_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"Error: Worker class '{green}' needs the {green} package: pip install 'gunicorn[{green}]'"
    ]
    assert proc.returncode == 3
