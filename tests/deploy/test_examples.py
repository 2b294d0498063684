"""Every example in examples/ starts as its docstring says and answers a request.

Apps run under a real gunicorn on 127.0.0.1:0 (or a unix socket); the nginx and haproxy
configurations run with this test's ports and paths substituted, and a request goes through
them to gunicorn; the Kubernetes manifest's probes are asked of the app it names.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from certs import make_certs
from support import Address, Gunicorn, connect, request, wait_until
from websockets.sync.client import connect as ws_connect

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def serve(*args: str, **kwargs: Any) -> Gunicorn:
    """gunicorn ARGS run from the repository root with ``--chdir examples`` (run from
    examples/, ``./gunicorn.conf.py``, the sample configuration, would be loaded too)."""
    chdir = ["--chdir", str(EXAMPLES), "--no-control-socket"]
    return Gunicorn(*chdir, *args, cwd=EXAMPLES.parent, **kwargs)


def get(address: Address, path: str) -> tuple[int, bytes]:
    """GET ``path``; generous with time: the first request may wait for a worker that is
    still importing a framework on a busy machine."""
    return request(address, path, timeout=30)


def get_json(address: Address, path: str) -> object:
    status, body = get(address, path)
    assert status == 200, body
    return json.loads(body)


def raw_exchange(address: Address, path: str) -> bytes:
    """Everything the server sends for one ``Connection: close`` GET (1xx heads included)."""
    sock = connect(address, timeout=30)
    try:
        head = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        sock.sendall(head.encode())
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    finally:
        sock.close()
    return b"".join(chunks)


# -- WSGI ------------------------------------------------------------------------------


def test_hello() -> None:
    with serve("hello:app") as server:
        assert server.address is not None
        assert get(server.address, "/") == (200, b"Hello, World!\n")


def test_flask() -> None:
    with serve("-k", "gthread", "flask_app:app") as server:
        assert server.address is not None
        assert get(server.address, "/") == (200, b"Hello from Flask!\n")
        assert get_json(server.address, "/json?a=1") == {
            "method": "GET",
            "path": "/json",
            "args": {"a": "1"},
        }


def test_django() -> None:
    with serve("django_app:application") as server:
        assert server.address is not None
        assert get(server.address, "/") == (200, b"Hello from Django!\n")
        info = get_json(server.address, "/info")
        assert info == {"path": "/info", "scheme": "http", "host": "localhost"}


def test_streaming() -> None:
    with serve("streaming:app") as server:
        assert server.address is not None
        status, body = get(server.address, "/?count=3&delay=0")
        assert (status, body) == (200, b"line 1 of 3\nline 2 of 3\nline 3 of 3\n")


def test_file_wrapper() -> None:
    with serve("file_wrapper:app") as server:
        assert server.address is not None
        status, body = get(server.address, "/?path=hello.py")
        assert (status, body) == (200, (EXAMPLES / "hello.py").read_bytes())
        assert get(server.address, "/?path=../pyproject.toml")[0] == 404


@pytest.mark.parametrize(
    ("worker", "app"), [("sync", "early_hints:app"), ("asgi", "early_hints_asgi:app")]
)
def test_early_hints(worker: str, app: str) -> None:
    with serve("-k", worker, app) as server:
        assert server.address is not None
        raw = raw_exchange(server.address, "/")
        assert raw.startswith(b"HTTP/1.1 103 Early Hints\r\n")
        hints, _, final = raw.partition(b"\r\n\r\n")
        assert b"</style.css>; rel=preload; as=style" in hints
        assert final.startswith(b"HTTP/1.1 200 OK\r\n")
        assert final.endswith(b"</body></html>\n")
        assert get(server.address, "/style.css")[0] == 200


def test_gevent_app() -> None:
    """One green worker serves three 2-second waits at once (one after the other: 6 s)."""
    pytest.importorskip("gevent")
    with serve("-k", "gevent", "-w", "1", "gevent_app:app") as server:
        address = server.address
        assert address is not None
        status, body = request(address, "/", timeout=30)
        assert (status, body) == (200, b"socket module in use: gevent._socket3\n")
        answers: list[tuple[int, bytes]] = []

        def wait() -> None:
            answers.append(request(address, "/wait?seconds=2", timeout=30))

        clients = [threading.Thread(target=wait) for _ in range(3)]
        started = time.monotonic()
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=10)
        assert answers == [(200, b"waited\n")] * 3
        assert time.monotonic() - started < 5


def test_config_file_hooks() -> None:
    args = ["-c", "gunicorn.conf.py", "-b", "127.0.0.1:0", "--no-control-socket", "hello:app"]
    with Gunicorn(*args, cwd=EXAMPLES) as server:
        assert server.address is not None
        assert get(server.address, "/")[0] == 200
        log = server.wait_for("post_request", count=1)
        for hook in ("on_starting", "when_ready", "pre_fork", "post_fork", "pre_request"):
            assert hook in log, hook


def test_gevent_psycogreen_config(tmp_path: Path) -> None:
    """post_fork installs psycogreen's wait callback in each gevent worker.

    A stand-in ``psycogreen`` package records the call (psycopg is not needed here).
    """
    pytest.importorskip("gevent")
    package = tmp_path / "psycogreen"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "gevent.py").write_text(
        "import os\n\ndef patch_psycopg():\n    print('patched in', os.getpid(), flush=True)\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(EXAMPLES)])}
    args = ["-c", str(EXAMPLES / "gevent_psycogreen.conf.py"), "-w", "2", "hello:app"]
    with serve(*args, env=env) as server:
        assert server.address is not None
        log = server.wait_for("psycopg made cooperative", count=2)
        pids = set(server.wait_workers(2))
        assert {int(pid) for pid in re.findall(r"patched in (\d+)", log)} == pids
        assert "Using worker: gevent" in log
        assert get(server.address, "/")[0] == 200


def test_dirty_model_server() -> None:
    args = ["-k", "gthread", "-w", "1", "--dirty-workers", "1"]
    args += ["--dirty-app", "dirty_app:SentimentModel", "dirty_app:app"]
    with serve(*args) as server:
        assert server.address is not None
        server.wait_for(r"Dirty worker \d+ ready")
        result = get_json(server.address, "/predict?text=a+good+day")
        assert isinstance(result, dict) and result["score"] == 1.0


# -- ASGI ------------------------------------------------------------------------------


def test_fastapi() -> None:
    pytest.importorskip("fastapi")
    with serve("-k", "asgi", "fastapi_app:app") as server:
        assert server.address is not None
        assert get_json(server.address, "/") == {"message": "Hello from FastAPI!"}
        assert get_json(server.address, "/items/7?q=x") == {"item_id": 7, "q": "x"}
        assert get_json(server.address, "/readyz") == {"ready": True}


def test_starlette() -> None:
    pytest.importorskip("starlette")
    with serve("-k", "asgi", "starlette_app:app") as server:
        assert server.address is not None
        assert get(server.address, "/") == (200, b"Hello from Starlette!\n")
        assert get(server.address, "/countdown?n=2") == (200, b"2\n1\nliftoff\n")
        with ws_connect(ws_url(server.address, "/echo"), open_timeout=20) as ws:
            ws.send("ping")
            assert ws.recv(timeout=15) == "ping"


def ws_url(address: Address, path: str) -> str:
    assert isinstance(address, tuple)
    host, port = address
    return f"ws://{host}:{port}{path}"


def _chat(uri: str, context: ssl.SSLContext | None = None) -> None:
    """Two clients in the room: each sees the other's message (and its own)."""
    with (
        ws_connect(uri, open_timeout=20, ssl=context) as alice,
        ws_connect(uri, open_timeout=20, ssl=context) as bob,
    ):
        alice.send(json.dumps({"name": "alice", "text": "hi bob"}))
        assert json.loads(bob.recv(timeout=15)) == {"name": "alice", "text": "hi bob"}
        assert json.loads(alice.recv(timeout=15)) == {"name": "alice", "text": "hi bob"}
        bob.send(json.dumps({"name": "bob", "text": "hello alice"}))
        assert json.loads(alice.recv(timeout=15)) == {"name": "bob", "text": "hello alice"}
        assert json.loads(bob.recv(timeout=15)) == {"name": "bob", "text": "hello alice"}


def test_websocket_chat() -> None:
    with serve("-k", "asgi", "-w", "1", "websocket_chat:app") as server:
        assert server.address is not None
        status, page = get(server.address, "/")
        assert status == 200 and b"new WebSocket" in page
        _chat(ws_url(server.address, "/ws"))


# -- proxies in front --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture
def run_proxy() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _start(procs: list[subprocess.Popen[bytes]], command: list[str], log: Path, port: int) -> None:
    """Start a proxy (stopped by the ``run_proxy`` fixture); wait until ``port`` accepts."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    procs.append(proc)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{command[0]} exited {proc.returncode}:\n{log.read_text()}")
        return _accepts(port)

    wait_until(up, timeout=15)


def _status(port: int, path: str) -> int | None:
    try:
        return request(("127.0.0.1", port), path, timeout=30)[0]
    except OSError:
        return None


def test_nginx_config(tmp_path: Path, run_proxy: list[subprocess.Popen[bytes]]) -> None:
    """examples/nginx/nginx.conf: redirect, TLS, static files and WebSockets to gunicorn."""
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx is not installed")
    certs = make_certs(tmp_path)
    static = tmp_path / "static"
    static.mkdir()
    (static / "site.css").write_text("body { margin: 0; }\n")
    sock = tmp_path / "gunicorn.sock"
    http_port, https_port = _free_port(), _free_port()
    conf = (EXAMPLES / "nginx" / "nginx.conf").read_text()
    replacements = {
        "user www-data;": "user root;" if os.geteuid() == 0 else "",
        "/var/log/nginx/": f"{tmp_path}/",
        "/run/nginx.pid": f"{tmp_path}/nginx.pid",
        "unix:/run/gunicorn.sock": f"unix:{sock}",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ": f"listen 127.0.0.1:{https_port} ",
        "/etc/ssl/certs/example.com.pem": str(certs.server_cert),
        "/etc/ssl/private/example.com.key": str(certs.server_key),
        "/srv/myapp/static/": f"{static}/",
        "http {": "http {\n"
        + "".join(
            f"    {kind}_temp_path {tmp_path}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
    }
    for old, new in replacements.items():
        assert old in conf, old
        conf = conf.replace(old, new)
    (tmp_path / "nginx.conf").write_text(conf)
    args = ["-k", "asgi", "-w", "1", "-b", f"unix:{sock}", "websocket_chat:app"]
    with serve(*args) as server:
        cmd = [nginx, "-g", "daemon off;", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
        _start(run_proxy, cmd, tmp_path / "nginx.out", https_port)
        status, _ = request(("127.0.0.1", http_port), "/", timeout=30)
        assert status == 301
        base = f"https://localhost:{https_port}"
        # httpx sets ALPN (h2) on its context: the WebSocket client gets its own below.
        h2_context = ssl.create_default_context(cafile=str(certs.ca))
        with httpx.Client(verify=h2_context, timeout=30, http2=True) as client:
            page = client.get(f"{base}/")
            assert page.status_code == 200 and "new WebSocket" in page.text
            assert page.http_version == "HTTP/2"  # nginx speaks HTTP/2 to the client
            css = client.get(f"{base}/static/site.css")
            assert css.text == "body { margin: 0; }\n"
        _chat(f"wss://localhost:{https_port}/ws", ssl.create_default_context(cafile=str(certs.ca)))
        # The page came from gunicorn, the stylesheet did not.
        assert '"GET /static/' not in server.log


def test_haproxy_config(tmp_path: Path, run_proxy: list[subprocess.Popen[bytes]]) -> None:
    """examples/haproxy/haproxy.cfg: PROXY protocol v2 and health checks to gunicorn."""
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed")
    pytest.importorskip("fastapi")
    backend, front = _free_port(), _free_port()
    conf = (EXAMPLES / "haproxy" / "haproxy.cfg").read_text()
    header = conf.split("\nglobal", 1)[0]
    command = re.search(r"#\s+(gunicorn .+)", header)
    assert command is not None
    args = shlex.split(command.group(1))[1:]
    assert args[args.index("--bind") + 1] == "127.0.0.1:8000"
    args[args.index("--bind") + 1] = f"127.0.0.1:{backend}"
    for old, new in {
        "127.0.0.1:8000": f"127.0.0.1:{backend}",
        "bind :80": f"bind 127.0.0.1:{front}",
        "inter 2s": "inter 200ms",
    }.items():
        assert old in conf, old
        conf = conf.replace(old, new)
    (tmp_path / "haproxy.cfg").write_text(conf)
    with serve("--access-logfile", "-", *args, default_bind=False) as server:
        cmd = [haproxy, "-db", "-f", str(tmp_path / "haproxy.cfg")]
        _start(run_proxy, cmd, tmp_path / "haproxy.out", front)
        # haproxy's health check (with its own PROXY header) reaches /healthz.
        server.wait_for(r'"GET /healthz HTTP/1\.[01]" 200')
        # The server is UP in haproxy once its check passed (503 until then).
        wait_until(lambda: _status(front, "/healthz") == 200, timeout=30)
        info = get_json(("127.0.0.1", front), "/whoami")
        assert info == {"client": "127.0.0.1", "scheme": "http", "forwarded_for": "127.0.0.1"}
        assert "Invalid PROXY" not in server.log and "400" not in server.log


def test_kubernetes_probes_are_served() -> None:
    """The manifest's probe paths, asked of the app its container runs, answer 200."""
    pytest.importorskip("fastapi")
    documents = list(yaml.safe_load_all((EXAMPLES / "kubernetes" / "deployment.yaml").read_text()))
    deployment = next(doc for doc in documents if doc["kind"] == "Deployment")
    service = next(doc for doc in documents if doc["kind"] == "Service")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    env = {item["name"]: item["value"] for item in container.get("env", [])}
    assert ports["http"] == int(env["PORT"])  # the image binds 0.0.0.0:$PORT
    assert service["spec"]["ports"][0]["targetPort"] in ports
    # TERM waits for graceful_timeout (30 s) after the preStop hook: both fit in the grace.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > 30 + int(pre_stop[1])
    probes = [container["readinessProbe"], container["livenessProbe"]]
    assert {probe["httpGet"]["port"] for probe in probes} <= set(ports)
    app = container["args"][-1]
    assert (EXAMPLES / f"{app.split(':')[0]}.py").exists()
    with serve(*container["args"]) as server:
        assert server.address is not None
        for probe in probes:
            status, body = get(server.address, probe["httpGet"]["path"])
            assert status == 200, body
