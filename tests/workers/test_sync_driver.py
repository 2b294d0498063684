"""The blocking driver and its options, over a socket pair (no worker process)."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from gunicorn.config import Config
from gunicorn.drivers.blocking import CLOSED, NEED_DATA, REQUEST_READY, BlockingHTTPConnection
from gunicorn.http.limits import MAX_HEADER_FIELDS, Limits
from gunicorn.lifecycle.options import DriverOptions, Networks, core_options, is_trusted
from tests.wsgi.wire import parse_replies, read_all, request_bytes


class RecordingLog:
    """Stands in for the worker's logger: records every call."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.accesses: list[tuple[Any, Any, dict[str, Any]]] = []
        self.error_log = None

    def _record(self, level: str, msg: str, *args: Any, **kwargs: Any) -> None:
        self.lines.append((level, msg % args if args else msg))

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._record("debug", msg, *args)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._record("info", msg, *args)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._record("warning", msg, *args)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._record("error", msg, *args)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._record("exception", msg, *args)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        self.accesses.append((resp, req, environ))

    def messages(self, level: str) -> list[str]:
        return [text for lvl, text in self.lines if lvl == level]


class FakeWorker:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.log = RecordingLog()
        self.alive = True
        self.nr = 0
        self.max_requests = sys.maxsize

    def count_request(self) -> None:
        self.nr += 1
        if self.nr >= self.max_requests:
            self.alive = False


class Listener:
    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 8000)


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read() or environ["PATH_INFO"].encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    client.settimeout(5)
    try:
        yield server, client
    finally:
        server.close()
        client.close()


def make(
    server: socket.socket, *settings: tuple[str, Any], peer: Any = ("127.0.0.1", 5555)
) -> tuple[BlockingHTTPConnection, FakeWorker]:
    cfg = Config()
    for name, value in settings:
        cfg.set(name, value)
    worker = FakeWorker(cfg)
    conn = BlockingHTTPConnection(server, peer, Listener(), app, worker)
    return conn, worker


def test_keep_alive_serves_requests_in_turn(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn, worker = make(server)
    client.sendall(request_bytes("GET", "/one") + request_bytes("GET", "/two"))
    assert conn.serve_one() is True
    assert conn.has_pending_request
    assert conn.serve_one() is True
    assert not conn.has_pending_request
    client.sendall(request_bytes("GET", "/three", [("Connection", "close")]))
    assert conn.serve_one() is False
    assert conn.closed
    replies = parse_replies(read_all(client))
    assert [reply.body for reply in replies] == [b"/one", b"/two", b"/three"]
    assert [reply.header("connection") for reply in replies] == [
        b"keep-alive",
        b"keep-alive",
        b"close",
    ]
    assert worker.nr == 3
    assert [access[0].status_code for access in worker.log.accesses] == [200, 200, 200]


def test_close_after_response(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn, _ = make(server)
    conn.close_after_response()
    client.sendall(request_bytes("GET", "/") * 2)
    assert conn.serve_one() is False
    replies = parse_replies(read_all(client))
    assert len(replies) == 1
    assert replies[0].header("connection") == b"close"


def test_max_requests_closes_after_the_response(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn, worker = make(server)
    worker.max_requests = 1
    client.sendall(request_bytes("GET", "/"))
    assert conn.serve_one() is False
    assert parse_replies(read_all(client))[0].header("connection") == b"close"


def test_receive_request_does_not_block(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn, _ = make(server)
    assert conn.receive_request() == NEED_DATA
    assert not conn.head_started
    client.sendall(b"GET /x HTTP/1.1\r\nHo")
    assert conn.receive_request() == NEED_DATA
    assert conn.head_started
    assert conn.waiting_head_since is not None
    client.sendall(b"st: a\r\nConnection: close\r\n\r\n")
    assert conn.receive_request() == REQUEST_READY
    assert conn.serve_one() is False
    assert parse_replies(read_all(client))[0].body == b"/x"
    assert conn.served == 1


def test_receive_request_answers_a_bad_request(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn, worker = make(server)
    client.sendall(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n")
    client.shutdown(socket.SHUT_WR)  # lets the server's lingering close end at once
    assert conn.receive_request() == CLOSED
    replies = parse_replies(read_all(client))
    assert [reply.status for reply in replies] == [400]
    assert worker.log.messages("info")[0].startswith("Invalid request from ip=127.0.0.1")


def test_receive_request_sees_the_peer_close(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    conn, _ = make(server)
    client.shutdown(socket.SHUT_WR)
    assert conn.receive_request() == CLOSED
    assert conn.closed


def test_invalid_pipelined_request_after_a_good_one(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    conn, _ = make(server)
    client.sendall(request_bytes("GET", "/ok") + b"Invalid\r\n\r\n")
    client.shutdown(socket.SHUT_WR)
    assert conn.serve_one() is True
    assert conn.has_pending_request
    assert conn.serve_one() is False
    replies = parse_replies(read_all(client))
    assert [reply.status for reply in replies] == [200, 400]
    assert replies[1].header("connection") == b"close"


def test_unread_body_is_skipped_on_keep_alive(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    cfg_app_calls: list[str] = []

    def ignoring(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        cfg_app_calls.append(environ["PATH_INFO"])
        start_response("204 No Content", [])
        return []

    conn, _ = make(server)
    conn.app = ignoring
    client.sendall(
        request_bytes("POST", "/first", body=b"x" * 1000)
        + request_bytes("GET", "/second", [("Connection", "close")])
    )
    assert conn.serve_one() is True
    assert conn.serve_one() is False
    assert cfg_app_calls == ["/first", "/second"]
    assert [reply.status for reply in parse_replies(read_all(client))] == [204, 204]


def test_app_error_is_a_500_and_is_logged(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair

    def failing(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise ValueError("secret detail")

    conn, worker = make(server)
    conn.app = failing
    client.sendall(request_bytes("GET", "/boom"))
    client.shutdown(socket.SHUT_WR)
    assert conn.serve_one() is False
    raw = read_all(client)
    assert parse_replies(raw)[0].status == 500
    assert b"secret detail" not in raw
    assert worker.log.messages("exception") == ["Error handling request /boom"]
    (access,) = worker.log.accesses
    assert access[0].status_code == 500
    assert access[2]["PATH_INFO"] == "/boom"


def test_hooks_get_the_request_and_response(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    seen: list[tuple[str, Any]] = []

    def pre_request(worker: Any, req: Any) -> None:
        seen.append(("pre", (req.method, req.path, req.query, req.version, req.headers)))

    def post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
        seen.append(("post", (resp.status, resp.status_code, resp.sent, environ["RAW_URI"])))

    conn, _ = make(server, ("pre_request", pre_request), ("post_request", post_request))
    client.sendall(request_bytes("GET", "/p?q=1", [("X-A", "b"), ("Connection", "close")]))
    conn.serve_one()
    assert seen == [
        (
            "pre",
            (
                "GET",
                "/p",
                "q=1",
                (1, 1),
                [("HOST", "localhost"), ("X-A", "b"), ("CONNECTION", "close")],
            ),
        ),
        ("post", ("200 OK", 200, 2, "/p?q=1")),
    ]


@pytest.mark.parametrize(("peer", "scheme"), [("192.0.2.1", b"http"), ("10.1.2.3", b"https")])
def test_forwarded_headers_follow_forwarded_allow_ips(
    pair: tuple[socket.socket, socket.socket], peer: str, scheme: bytes
) -> None:
    server, client = pair

    def show_scheme(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.url_scheme"].encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    conn, _ = make(server, ("forwarded_allow_ips", "10.0.0.0/8"), peer=(peer, 1))
    conn.app = show_scheme
    client.sendall(
        request_bytes("GET", "/", [("X-Forwarded-Proto", "https"), ("Connection", "close")])
    )
    conn.serve_one()
    assert parse_replies(read_all(client))[0].body == scheme


# --- options ---------------------------------------------------------------------------


def test_core_options_follow_gunicorn_semantics() -> None:
    cfg = Config()
    cfg.set("limit_request_line", 0)
    cfg.set("limit_request_fields", 0)
    cfg.set("limit_request_field_size", 0)
    cfg.set("casefold_http_method", True)
    cfg.set("header_map", "refuse")
    cfg.set("forwarder_headers", "SCRIPT_NAME,REMOTE_USER")
    limits, policy = core_options(cfg)
    assert limits == Limits(
        max_request_line=0, max_header_fields=MAX_HEADER_FIELDS, max_header_field_size=8190
    )
    assert policy.casefold_http_method is True
    assert policy.header_map == "refuse"
    assert policy.forwarder_headers == frozenset({b"script_name", b"remote_user"})


def test_default_options() -> None:
    options = DriverOptions.from_config(Config())
    assert options.limits == Limits()
    assert options.proxy_mode is None
    assert options.uwsgi is False
    assert options.sendfile is True
    assert options.environ.secure_scheme_headers == {
        b"x-forwarded-protocol": b"ssl",
        b"x-forwarded-proto": b"https",
        b"x-forwarded-ssl": b"on",
    }


def test_options_for_proxy_uwsgi_and_sendfile() -> None:
    cfg = Config()
    cfg.set("proxy_protocol", "v2")
    cfg.set("protocol", "uwsgi")
    cfg.set("sendfile", False)
    cfg.set("workers", 3)
    options = DriverOptions.from_config(cfg, multithread=True)
    assert options.proxy_mode == "v2"
    assert options.uwsgi is True
    assert options.sendfile is False
    assert options.environ.multiprocess is True
    assert options.environ.multithread is True


@pytest.mark.parametrize(
    ("peer", "allowed", "expected"),
    [
        (("127.0.0.1", 1), ["127.0.0.1", "::1"], True),
        (("127.0.0.2", 1), ["127.0.0.1", "::1"], False),
        (("10.9.8.7", 1), ["10.0.0.0/8"], True),
        (("11.0.0.1", 1), ["10.0.0.0/8"], False),
        (("::1", 1, 0, 0), ["127.0.0.1", "::1"], True),
        (("::ffff:10.0.0.1", 1, 0, 0), ["10.0.0.0/8"], True),
        (("fe80::1%eth0", 1, 0, 2), ["fe80::/10"], True),
        (("203.0.113.1", 1), ["*"], True),
        (("203.0.113.1", 1), [], False),
        ("", [], True),  # unix socket peers are always trusted
        (b"", ["10.0.0.0/8"], True),
    ],
)
def test_is_trusted(peer: Any, allowed: list[str], expected: bool) -> None:
    assert is_trusted(peer, allowed) is expected
    assert is_trusted(peer, Networks.parse(allowed)) is expected


def test_networks_accept_network_objects_and_comma_strings() -> None:
    nets = Networks.parse([ipaddress.ip_network("192.0.2.0/24")])
    assert "192.0.2.5" in nets
    assert "not-an-ip" not in nets
    assert "198.51.100.1" in Networks.parse("10.0.0.1, 198.51.100.0/24")
