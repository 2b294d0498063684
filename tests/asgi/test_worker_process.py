"""The asgi worker as a process: settings, lifespan, signals, TLS and HTTP/2, front-end
protocols (PROXY, uwsgi), hooks, and the heartbeat that catches a blocked loop."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import threading
from pathlib import Path

import httpx
import pytest

from tests.asgi.client import RawClient, exchange
from tests.certs import make_certs
from tests.support import Gunicorn, _unchunk, wait_until
from tests.workers.test_sync_proxy import uwsgi_packet

REPO = Path(__file__).resolve().parents[2]
APP = "tests.asgi.apps:app"


def asgi(*args: str, record: Path | None = None, env: dict[str, str] | None = None) -> Gunicorn:
    environment = dict(env or {})
    if record is not None:
        environment["ASGI_TEST_RECORD"] = str(record)
    return Gunicorn("-k", "asgi", *args, cwd=REPO, env=environment)


def get_json(server: Gunicorn, raw: bytes) -> dict[str, object]:
    reply = exchange(server.address, raw)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"200", reply
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return json.loads(body)  # type: ignore[no-any-return]


# -- lifespan -------------------------------------------------------------------------------


def test_lifespan_shutdown_runs_on_term(tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    with asgi(APP, record=record) as server:
        wait_until(lambda: record.exists() and "startup" in record.read_text())
        assert exchange(server.address, b"GET /state HTTP/1.0\r\n\r\n").endswith(
            b'{"greeting": "from lifespan"}'
        )
        assert server.stop() == 0
    assert record.read_text().splitlines() == ["startup", "shutdown"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_quick_stop_skips_lifespan_shutdown(tmp_path: Path, sig: int) -> None:
    record = tmp_path / "record.txt"
    with asgi(APP, record=record) as server:
        wait_until(lambda: record.exists() and "startup" in record.read_text())
        server.send(sig)
        server.wait()
    assert record.read_text().splitlines() == ["startup"]


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_failure_stops_the_server_with_exit_3(mode: str) -> None:
    server = asgi("--asgi-lifespan", mode, APP, env={"ASGI_LIFESPAN": "fail"})
    server.ready = None
    with server:
        code = server.wait()
        log = server.log
    assert code == 3
    lines = [line for line in log.splitlines() if "startup failed" in line]
    assert len(lines) == 1
    assert lines[0].endswith("Application startup failed: database unreachable")
    assert "Traceback" not in log


def test_lifespan_auto_tolerates_an_app_without_it() -> None:
    with asgi("--asgi-lifespan", "auto", APP, env={"ASGI_LIFESPAN": "raise"}) as server:
        assert exchange(server.address, b"GET / HTTP/1.0\r\n\r\n").endswith(b"hello")
        server.wait_for("lifespan' protocol appears unsupported")


def test_lifespan_on_requires_the_app_to_support_it() -> None:
    server = asgi("--asgi-lifespan", "on", APP, env={"ASGI_LIFESPAN": "raise"})
    server.ready = None
    with server:
        assert server.wait() == 3
    assert "does not support lifespan" in server.log


def test_lifespan_off_never_calls_it(tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    record.touch()
    with asgi("--asgi-lifespan", "off", APP, record=record) as server:
        assert exchange(server.address, b"GET /state HTTP/1.0\r\n\r\n").endswith(b"{}")
    assert record.read_text() == ""


# -- loops ------------------------------------------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "auto"])
def test_every_loop_serves(loop: str) -> None:
    with asgi("--asgi-loop", loop, APP) as server:
        assert exchange(server.address, b"GET / HTTP/1.0\r\n\r\n").endswith(b"hello")


def test_uvloop_without_the_package_is_one_clear_error(tmp_path: Path) -> None:
    # A site directory whose sitecustomize hides uvloop from the import system.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['uvloop'] = None\n")
    server = asgi("--asgi-loop", "uvloop", APP, env={"PYTHONPATH": f"{site}:{REPO}"})
    server.ready = None
    with server:
        code = server.wait()
    assert code != 0
    assert "uvloop is not installed" in server.log
    assert "Traceback" not in server.log


# -- the heartbeat ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_blocked_loop_is_detected_and_named() -> None:
    with asgi("--timeout", "2", APP) as server:
        first = server.wait_workers(1)
        sock = socket.create_connection(server.address, timeout=5)  # type: ignore[arg-type]
        try:
            sock.sendall(b"GET /block?s=60 HTTP/1.1\r\nHost: t\r\n\r\n")
            server.wait_for("WORKER TIMEOUT", timeout=20)
            log = server.wait_for("blocked for more than 2", timeout=10)
            assert "while serving GET /block?s=60" in log
            assert "time.sleep" in log or "apps.py" in log
            server.wait_workers(1, exclude=first, timeout=20)
        finally:
            sock.close()
        assert exchange(server.address, b"GET / HTTP/1.0\r\n\r\n").endswith(b"hello")


def test_max_requests_recycles_the_worker() -> None:
    with asgi("--max-requests", "3", APP) as server:
        first = server.wait_workers(1)
        for _ in range(3):
            assert exchange(server.address, b"GET / HTTP/1.0\r\n\r\n").endswith(b"hello")
        server.wait_for("Autorestarting worker after current request")
        server.wait_workers(1, exclude=first, timeout=15)
        assert exchange(server.address, b"GET / HTTP/1.0\r\n\r\n").endswith(b"hello")


def test_term_lets_requests_in_flight_finish(tmp_path: Path) -> None:
    with asgi("--graceful-timeout", "10", APP) as server:
        results: list[bytes] = []

        def held() -> None:
            results.append(
                exchange(
                    server.address,
                    f"GET /gate?dir={tmp_path} HTTP/1.0\r\n\r\n".encode(),
                    timeout=30,
                )
            )

        thread = threading.Thread(target=held)
        thread.start()
        # The request is inside the app and stays there until the test releases it.
        wait_until(lambda: (tmp_path / "entered").exists(), timeout=30)
        server.send(signal.SIGTERM)
        server.wait_for("Handling signal: term")
        (tmp_path / "release").touch()
        thread.join(30)
        assert server.wait() == 0
    assert results and results[0].endswith(b"released")


def test_keepalive_timeout_closes_idle_connections() -> None:
    with asgi("--keep-alive", "1", APP) as server, RawClient(server.address) as client:
        client.request("GET", "/")
        assert client.read_answer().body == b"hello"
        assert client.closed_by_server(timeout=10)


# -- TLS and HTTP/2 -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_certs(tmp_path_factory.mktemp("certs"))


def test_tls_scope_and_tls_extension(certs) -> None:  # type: ignore[no-untyped-def]
    args = ["--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key)]
    with asgi(*args, APP) as server:
        _host, port = server.address  # type: ignore[misc]
        with httpx.Client(verify=ssl.create_default_context(cafile=str(certs.ca))) as client:
            scope = client.get(f"https://localhost:{port}/scope").json()
    assert scope["scheme"] == "https"
    assert "tls" in scope["extensions"]
    assert scope["tls"]["tls_version"] in (0x0303, 0x0304)
    assert isinstance(scope["tls"]["cipher_suite"], int)
    assert scope["tls"]["chain_length"] == 0


def test_tls_client_certificate_in_the_tls_extension(certs) -> None:  # type: ignore[no-untyped-def]
    args = [
        "--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key),
        "--ca-certs", str(certs.ca), "--cert-reqs", "2",
    ]  # fmt: skip
    with asgi(*args, APP) as server:
        _host, port = server.address  # type: ignore[misc]
        context = ssl.create_default_context(cafile=str(certs.ca))
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
        with httpx.Client(verify=context) as client:
            scope = client.get(f"https://localhost:{port}/scope").json()
    assert scope["tls"]["chain_length"] == 1
    assert scope["tls"]["client_cert_name"] == "CN=test client"


def test_http2_over_tls_serves_streams_concurrently(certs) -> None:  # type: ignore[no-untyped-def]
    args = [
        "--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key),
        "--http-protocols", "h2,h1",
    ]  # fmt: skip
    with asgi(*args, APP) as server:
        _host, port = server.address  # type: ignore[misc]
        base = f"https://localhost:{port}"
        verify = ssl.create_default_context(cafile=str(certs.ca))
        with httpx.Client(http2=True, verify=verify) as client:
            scope = client.get(f"{base}/scope").json()
            assert scope["http_version"] == "2"
            assert "http.response.trailers" in scope["extensions"]
            assert ["host", f"localhost:{port}"] in scope["headers"]
            body = bytes(range(256)) * 4096
            echoed = client.post(f"{base}/echo", content=body)
            assert echoed.http_version == "HTTP/2"
            assert echoed.content == body
            # /hold answers then waits for /release; a second stream on the same
            # connection must be served meanwhile.
            assert client.get(f"{base}/hold").content == b"held"
            assert client.get(f"{base}/release").content == b"released"
            assert client.get(f"{base}/big?n=3000000").content == b"x" * 3000000


def test_h2c_prior_knowledge() -> None:
    args = ["--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge"]
    with asgi(*args, APP) as server:
        host, port = server.address  # type: ignore[misc]
        with httpx.Client(http1=False, http2=True) as client:
            response = client.get(f"http://{host}:{port}/stream?n=3")
    assert response.http_version == "HTTP/2"
    assert response.content == b"chunk0;chunk1;chunk2;"


# -- front ends and trust ------------------------------------------------------------------------


def test_proxy_protocol_sets_the_client() -> None:
    with asgi("--proxy-protocol", "v1", "--proxy-allow-from", "127.0.0.1", APP) as server:
        scope = get_json(
            server,
            b"PROXY TCP4 203.0.113.9 198.51.100.2 51000 443\r\n"
            b"GET /scope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
    assert scope["client"] == ["203.0.113.9", 51000]


def test_uwsgi_protocol() -> None:
    with asgi("--protocol", "uwsgi", APP) as server:
        packet = uwsgi_packet(
            [
                ("REQUEST_METHOD", "GET"),
                ("REQUEST_URI", "/scope?a=1"),
                ("PATH_INFO", "/scope"),
                ("QUERY_STRING", "a=1"),
                ("SERVER_PROTOCOL", "HTTP/1.1"),
                ("HTTP_HOST", "example.org"),
                ("REMOTE_ADDR", "203.0.113.7"),
                ("REMOTE_PORT", "40000"),
                ("REQUEST_SCHEME", "https"),
            ]
        )
        reply = exchange(server.address, packet)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    scope = json.loads(body)
    assert scope["path"] == "/scope"
    assert scope["query_string"] == "a=1"
    assert scope["client"] == ["203.0.113.7", 40000]
    assert scope["scheme"] == "https"


def test_secure_scheme_headers_from_a_trusted_proxy() -> None:
    with asgi("--forwarded-allow-ips", "127.0.0.1", APP) as server:
        scope = get_json(
            server,
            b"GET /scope HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: https\r\n"
            b"Connection: close\r\n\r\n",
        )
    assert scope["scheme"] == "https"


def test_secure_scheme_headers_ignored_from_untrusted_peers() -> None:
    with asgi("--forwarded-allow-ips", "10.9.9.9", APP) as server:
        scope = get_json(
            server,
            b"GET /scope HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: https\r\n"
            b"Connection: close\r\n\r\n",
        )
    assert scope["scheme"] == "http"


def test_root_path_prefixes_path() -> None:
    with asgi("--root-path", "/api", APP) as server:
        scope = get_json(server, b"GET /scope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope"
    assert scope["raw_path"] == "/api/scope"


def test_header_map_drops_underscore_headers() -> None:
    with asgi(APP) as server:
        scope = get_json(
            server,
            b"GET /scope HTTP/1.1\r\nHost: t\r\nX_Secret: 1\r\nConnection: close\r\n\r\n",
        )
    assert not [h for h in scope["headers"] if h[0] == "x_secret"]  # type: ignore[index,union-attr]


def test_request_hooks_see_every_request(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.txt"
    config = tmp_path / "conf.py"
    config.write_text(
        "def pre_request(worker, req):\n"
        f"    open({str(hooks)!r}, 'a').write('pre ' + req.method + ' ' + req.path + '\\n')\n"
        "def post_request(worker, req, environ, resp):\n"
        f"    open({str(hooks)!r}, 'a').write(f'post {{req.path}} {{resp.status_code}}\\n')\n"
    )
    with asgi("-c", str(config), APP) as server:
        assert exchange(server.address, b"GET /x?y=1 HTTP/1.0\r\n\r\n").endswith(b"hello")
        wait_until(lambda: hooks.exists() and "post" in hooks.read_text())
    assert hooks.read_text().splitlines() == ["pre GET /x", "post /x 200"]


def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "asgi.sock"
    server = Gunicorn("-k", "asgi", "-b", f"unix:{path}", APP, cwd=REPO)
    with server:
        scope = get_json(server, b"GET /scope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert scope["client"] is None
    assert scope["server"][0] == str(path)  # type: ignore[index]


def test_worker_connections_admits_a_new_client_by_closing_an_idle_one() -> None:
    with asgi("--worker-connections", "2", "--keep-alive", "30", APP) as server:
        idle = [RawClient(server.address), RawClient(server.address)]
        try:
            for client in idle:
                client.request("GET", "/")
                assert client.read_answer().body == b"hello"
            # A third client is served: the server closes the oldest idle connection.
            with RawClient(server.address) as third:
                third.request("GET", "/")
                assert third.read_answer().body == b"hello"
            assert any(client.closed_by_server(timeout=5) for client in idle)
        finally:
            for client in idle:
                client.sock.close()


def test_statsd_sees_asgi_requests() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    port = receiver.getsockname()[1]
    try:
        with asgi("--statsd-host", f"127.0.0.1:{port}", APP) as server:
            assert exchange(server.address, b"GET / HTTP/1.0\r\n\r\n").endswith(b"hello")
            packets: list[bytes] = []

            def counted() -> bool:
                return any(
                    b"gunicorn.request.status.200" in p or b"gunicorn.requests:1|c" in p
                    for p in packets
                )

            # The request's metrics may come in several packets, in any order: read until
            # one counts it (each recv waits up to the receiver's 10 s timeout).
            while not counted():
                packets.append(receiver.recv(4096))
    finally:
        receiver.close()
    assert counted()


SLOW_BOOT = """
import os
import pathlib
import time

pathlib.Path(os.environ["LOADING_MARK"]).write_text("loading")
time.sleep(3)


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"served"})
"""


def test_term_while_the_app_loads_serves_nothing_new(tmp_path: Path) -> None:
    """A TERM that reaches the worker while it imports the application: the worker
    never starts serving (its inherited listener queues what connects meanwhile, and
    that is reset, as for any connection after TERM), and it leaves at once."""
    (tmp_path / "slowboot.py").write_text(SLOW_BOOT)
    mark = tmp_path / "loading"
    server = Gunicorn(
        "-k",
        "asgi",
        "--graceful-timeout",
        "20",
        "slowboot:app",
        cwd=tmp_path,
        env={"LOADING_MARK": str(mark)},
    )
    with server:
        wait_until(mark.exists, timeout=15)
        server.send(signal.SIGTERM)
        replies: list[bytes | str] = []

        def late() -> None:
            try:
                replies.append(exchange(server.address, b"GET / HTTP/1.0\r\n\r\n"))
            except OSError as exc:
                replies.append(type(exc).__name__)

        thread = threading.Thread(target=late)
        thread.start()
        assert server.wait(timeout=15) == 0
        thread.join(15)
        log = server.log
    assert not any(isinstance(r, bytes) and b"served" in r for r in replies), replies
    assert "SIGKILL" not in log, log


# A TERM that reaches the worker the moment its loop's signal handlers are registered,
# before the loop runs: injected by wrapping ``add_signal_handler`` from a hook (once, so
# that the replacement worker serves).
TERM_AT_REGISTRATION = """
import os
import signal


def post_worker_init(worker):
    mark = os.environ["TERMED_MARK"]
    if os.path.exists(mark):
        return
    loop = worker.loop
    register = loop.add_signal_handler

    def add_signal_handler(sig, callback, *args):
        register(sig, callback, *args)
        if sig == signal.SIGTERM and not os.path.exists(mark):
            with open(mark, "w") as f:
                f.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGTERM)

    loop.add_signal_handler = add_signal_handler
"""


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_term_as_the_loop_takes_its_signals_stops_the_worker(tmp_path: Path, loop: str) -> None:
    """The TERM is not lost between the handlers' registration and the loop's start
    (uvloop only listens for signals while it runs): the worker leaves, the master
    replaces it, and the new worker serves."""
    conf = tmp_path / "conf.py"
    conf.write_text(TERM_AT_REGISTRATION)
    mark = tmp_path / "termed"
    args = ("-c", str(conf), "--asgi-loop", loop, "--graceful-timeout", "30", APP)
    with asgi(*args, env={"TERMED_MARK": str(mark)}) as server:
        wait_until(mark.exists, timeout=15)
        first = int(wait_until(mark.read_text, timeout=5))
        server.wait_for(rf"Worker exiting \(pid: {first}\)", timeout=15)
        server.wait_workers(1, exclude=[first], timeout=15)
        assert exchange(server.address, b"GET / HTTP/1.0\r\n\r\n").endswith(b"hello")
