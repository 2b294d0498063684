"""The sync worker as a real ``gunicorn -k sync`` process, over TCP and a unix socket."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.support import Gunicorn, connect
from tests.wsgi.wire import WSGI_DIR, exchange, one, parse_replies, read_all, request_bytes

ARGS = ["-k", "sync", "--chdir", str(WSGI_DIR), "--access-logfile", "-", "apps:app"]


@pytest.fixture(scope="module")
def tcp_server() -> Iterator[Gunicorn]:
    with Gunicorn(*ARGS) as running:
        yield running


@pytest.fixture(scope="module")
def unix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    path = tmp_path_factory.mktemp("sock") / "g.sock"
    with Gunicorn("-b", f"unix:{path}", *ARGS) as running:
        yield running


@pytest.fixture(params=["tcp", "unix"])
def server(request: pytest.FixtureRequest) -> Gunicorn:
    return request.getfixturevalue(f"{request.param}_server")  # type: ignore[no-any-return]


def test_hello_world(server: Gunicorn) -> None:
    reply = one(server.address, request_bytes("GET", "/"))
    assert reply.status == 200
    assert reply.body == b"Hello, World!\n"
    assert reply.header("connection") == b"close"
    assert reply.header("server") == b"gunicorn"
    assert reply.header("date") is not None


def test_access_log_line(tcp_server: Gunicorn) -> None:
    one(tcp_server.address, request_bytes("GET", "/?from=access-log", [("User-Agent", "ua/1")]))
    tcp_server.wait_for(r'"GET /\?from=access-log HTTP/1.1" 200 14 "-" "ua/1"')


def test_connection_is_closed_even_when_keep_alive_is_asked(server: Gunicorn) -> None:
    sock = connect(server.address)
    try:
        sock.sendall(request_bytes("GET", "/", [("Connection", "keep-alive")]) * 2)
        raw = read_all(sock)
    finally:
        sock.close()
    replies = parse_replies(raw)
    assert len(replies) == 1
    assert replies[0].header("connection") == b"close"


@pytest.mark.parametrize("size", [0, 1, 70000, 1 << 20])
def test_post_echo(server: Gunicorn, size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    reply = one(server.address, request_bytes("POST", "/echo", body=payload))
    assert reply.status == 200
    assert reply.body == payload


def test_chunked_request_and_response(server: Gunicorn) -> None:
    raw = request_bytes("POST", "/echo?length=0", [("Transfer-Encoding", "chunked")])
    raw += b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-T: 1\r\n\r\n"
    reply = one(server.address, raw)
    assert reply.header("transfer-encoding") == b"chunked"
    assert reply.body == b"Wikipedia"


def test_body_sent_in_pieces(server: Gunicorn) -> None:
    head = request_bytes("POST", "/lines", [("Content-Length", "13")])
    reply = one(server.address, [head, b"one\n", b"two\nthr", b"ee"], pause=0.05)
    assert json.loads(reply.body) == ["one\n", "two\n", "three"]


def test_http10_response(server: Gunicorn) -> None:
    raw = exchange(server.address, request_bytes("GET", "/stream", version="HTTP/1.0"))
    assert raw.startswith(b"HTTP/1.0 200 OK\r\n")
    reply = parse_replies(raw)[0]
    assert reply.header("transfer-encoding") is None
    assert reply.body == b"".join(f"chunk {i}\n".encode() for i in range(5))


def test_streaming_response_is_chunked_on_http11(server: Gunicorn) -> None:
    reply = one(server.address, request_bytes("GET", "/stream"))
    assert reply.header("transfer-encoding") == b"chunked"
    assert reply.body.count(b"chunk") == 5


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [("HEAD", "/", 200), ("GET", "/status/204", 204), ("GET", "/status/304", 304)],
)
def test_no_body_responses(server: Gunicorn, method: str, path: str, code: int) -> None:
    raw = exchange(server.address, request_bytes(method, path))
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {code} ".encode())
    assert rest == b""
    assert b"transfer-encoding" not in head.lower()


def test_dropped_body_is_logged_at_debug_only() -> None:
    # Django sends bodies for HEAD by design: dropping them is normal, not a warning.
    with Gunicorn(*ARGS) as quiet:
        one(quiet.address, request_bytes("GET", "/status/204"))
        one(quiet.address, request_bytes("GET", "/"))
        quiet.wait_for('"GET / HTTP/1.1" 200')
        assert "Dropped the response body" not in quiet.log
    with Gunicorn(*ARGS, "--log-level", "debug") as verbose:
        one(verbose.address, request_bytes("GET", "/status/204"))
        verbose.wait_for("Dropped the response body", count=1)


def test_head_keeps_content_length(server: Gunicorn) -> None:
    reply = one(server.address, request_bytes("HEAD", "/"))
    assert reply.header("content-length") == b"14"
    assert reply.body == b""


def test_early_hints_on_http11(server: Gunicorn) -> None:
    replies = parse_replies(exchange(server.address, request_bytes("GET", "/early-hints")))
    assert [reply.status for reply in replies] == [103, 200]
    assert replies[0].header("link") == b"</style.css>; rel=preload; as=style"
    assert replies[1].body == b"after hints"


def test_no_early_hints_on_http10(server: Gunicorn) -> None:
    raw = exchange(server.address, request_bytes("GET", "/early-hints", version="HTTP/1.0"))
    assert raw.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"103" not in raw


def test_expect_100_continue(server: Gunicorn) -> None:
    sock = connect(server.address)
    try:
        sock.sendall(
            request_bytes("POST", "/echo", [("Expect", "100-continue"), ("Content-Length", "5")])
        )
        first = sock.recv(1024)
        assert first == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        raw = read_all(sock)
    finally:
        sock.close()
    assert parse_replies(raw)[0].body == b"hello"


def test_no_100_continue_when_the_app_ignores_the_body(server: Gunicorn) -> None:
    raw = exchange(
        server.address,
        request_bytes(
            "POST", "/ignore-body", [("Expect", "100-continue"), ("Content-Length", "5")]
        ),
    )
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"100 Continue" not in raw


def test_client_half_close_still_gets_the_response(server: Gunicorn) -> None:
    reply = one(server.address, request_bytes("GET", "/"), shutdown=True)
    assert reply.status == 200


def test_environ_over_tcp(tcp_server: Gunicorn) -> None:
    reply = one(
        tcp_server.address,
        request_bytes(
            "GET",
            "/environ?a=1",
            [("X-Forwarded-Proto", "https"), ("X-Multi", "a"), ("X-Multi", "b")],
        ),
    )
    env = json.loads(reply.body)
    host, port = tcp_server.address  # type: ignore[misc]
    assert env["SERVER_NAME"] == host
    assert env["SERVER_PORT"] == str(port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"].isdigit()
    assert env["wsgi.url_scheme"] == "https"  # 127.0.0.1 is a trusted forwarder by default
    assert env["HTTP_X_MULTI"] == "a,b"
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["SERVER_SOFTWARE"].startswith("gunicorn/")
    assert env["RAW_URI"] == "/environ?a=1"
    assert env["QUERY_STRING"] == "a=1"
    assert env["has_socket"] is True


def test_environ_over_unix_socket(unix_server: Gunicorn) -> None:
    address = unix_server.address
    reply = one(address, request_bytes("GET", "/environ", [("Host", "example.org:8443")]))
    env = json.loads(reply.body)
    assert env["SERVER_NAME"] == "example.org"
    assert env["SERVER_PORT"] == "8443"
    assert env["REMOTE_ADDR"] == ""
    reply = one(address, request_bytes("GET", "/environ", [("X-Forwarded-Proto", "https")]))
    assert json.loads(reply.body)["wsgi.url_scheme"] == "https"  # unix peers are trusted


def test_wsgi_errors_reach_the_error_log(tcp_server: Gunicorn) -> None:
    one(tcp_server.address, request_bytes("GET", "/errors"))
    tcp_server.wait_for("message for wsgi.errors")


def test_httpx_client(tcp_server: Gunicorn) -> None:
    host, port = tcp_server.address  # type: ignore[misc]
    with httpx.Client(base_url=f"http://{host}:{port}") as client:
        response = client.post("/echo", content=b"through httpx")
        assert response.status_code == 200
        assert response.text == "through httpx"
        assert response.headers["connection"] == "close"
        response = client.get("/stream")
        assert response.text.count("chunk") == 5


def test_curl_client(tcp_server: Gunicorn) -> None:
    host, port = tcp_server.address  # type: ignore[misc]
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-i",
            "--max-time",
            "5",
            "--data-binary",
            "from curl",
            f"http://{host}:{port}/echo",
        ],
        capture_output=True,
        timeout=10,
        check=True,
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body == b"from curl"


def test_curl_over_unix_socket(unix_server: Gunicorn) -> None:
    path = str(unix_server.address)
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "5", "--unix-socket", path, "http://localhost/"],
        capture_output=True,
        timeout=10,
        check=True,
    )
    assert result.stdout == b"Hello, World!\n"


def test_script_name_from_the_environment() -> None:
    with Gunicorn(*ARGS, "-e", "SCRIPT_NAME=/app") as running:
        env = json.loads(one(running.address, request_bytes("GET", "/app/environ")).body)
        assert env["SCRIPT_NAME"] == "/app"
        assert env["PATH_INFO"] == "/environ"
        outside = one(running.address, request_bytes("GET", "/elsewhere"))
        assert outside.status == 500
        assert outside.header("connection") == b"close"
        running.wait_for("does not start with SCRIPT_NAME")
