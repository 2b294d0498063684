"""Refused requests and failing applications on the sync worker (a real process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Gunicorn
from tests.wsgi.wire import WSGI_DIR, exchange, one, parse_replies, request_bytes


@pytest.fixture(scope="module")
def server() -> Iterator[Gunicorn]:
    args = ["-k", "sync", "--chdir", str(WSGI_DIR), "--log-level", "debug", "apps:app"]
    with Gunicorn(*args, "--access-logfile", "-") as running:
        yield running


def app_calls(server: Gunicorn) -> int:
    return int(one(server.address, request_bytes("GET", "/__calls")).body)


def assert_rejected(raw: bytes, status: int) -> None:
    replies = parse_replies(raw)
    assert len(replies) == 1, raw
    reply = replies[0]
    assert reply.status == status, raw
    assert reply.header("connection") == b"close"
    assert reply.header("content-length") == str(len(reply.body)).encode()


BAD_REQUESTS = [
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", 400, id="space-in-name"),
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, id="missing-host"),
    pytest.param(b"GET / HTTP/1.1\nHost: a\n\n", 400, id="bare-lf"),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        400,
        id="cl-te",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        400,
        id="two-cl",
    ),
    pytest.param(b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414, id="long-line"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\n"
        + b"".join(b"X-%d: y\r\n" % i for i in range(101))
        + b"\r\n",
        431,
        id="too-many-headers",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431, id="big-header"
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n",
        501,
        id="unknown-coding",
    ),
    pytest.param(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, id="http-1.2"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n", 417, id="expectation"
    ),
]


@pytest.mark.parametrize(("raw", "status"), BAD_REQUESTS)
def test_refused_requests_never_reach_the_app(server: Gunicorn, raw: bytes, status: int) -> None:
    before = app_calls(server)
    assert_rejected(exchange(server.address, raw), status)
    assert app_calls(server) == before


def test_broken_chunked_body_read_by_the_app_gives_400(server: Gunicorn) -> None:
    # The body streams to the app, so the app runs; the broken chunk still answers 400.
    raw = request_bytes("POST", "/echo", [("Transfer-Encoding", "chunked")])
    assert_rejected(exchange(server.address, raw + b"0x5\r\nhello\r\n0\r\n\r\n"), 400)


def test_request_pipelined_after_an_invalid_one_is_never_served(server: Gunicorn) -> None:
    before = app_calls(server)
    raw = b"INVALID!!!\r\n\r\n" + request_bytes("GET", "/")
    assert_rejected(exchange(server.address, raw), 400)
    assert app_calls(server) == before


def test_invalid_requests_are_logged_once_at_info(server: Gunicorn) -> None:
    # A client's mistake is never an ERROR; HTTP/9.9 used to be one.
    exchange(server.address, b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
    server.wait_for(r"\[INFO\] Invalid request from ip=127.0.0.1: invalid header name")
    exchange(server.address, b"GET / HTTP/9.9\r\nHost: a\r\n\r\n")
    server.wait_for(r"\[INFO\] Invalid request from ip=127.0.0.1: .*HTTP/9.9")
    assert "[ERROR]" not in server.log


def test_app_exception_gives_500_and_a_traceback(server: Gunicorn) -> None:
    reply = one(server.address, request_bytes("GET", "/crash"))
    assert reply.status == 500
    assert reply.header("connection") == b"close"
    assert b"crash requested" not in reply.body
    log = server.wait_for("Error handling request /crash")
    assert "RuntimeError: crash requested by the test" in log
    server.wait_for(r'"GET /crash HTTP/1.1" 500 ')


def test_exception_after_the_head_closes_the_connection(server: Gunicorn) -> None:
    raw = exchange(server.address, request_bytes("GET", "/crash-after-head"))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"partial" in body
    assert not body.endswith(b"0\r\n\r\n")  # the chunked body is left unterminated
    server.wait_for("RuntimeError: crash after the head")


@pytest.mark.parametrize("path", ["/bad-header", "/bad-status"])
def test_invalid_response_from_the_app_gives_500(server: Gunicorn, path: str) -> None:
    raw = exchange(server.address, request_bytes("GET", path))
    reply = parse_replies(raw)[0]
    assert reply.status == 500
    assert b"X-Injected" not in raw
    assert b"never" not in raw
    server.wait_for(f"Invalid response to GET {path}")


def test_truncated_body_is_answered_with_400(server: Gunicorn) -> None:
    raw = request_bytes("POST", "/echo", [("Content-Length", "100")]) + b"only ten b"
    assert_rejected(exchange(server.address, raw, shutdown=True), 400)


def test_body_shorter_than_content_length_ends_with_close(server: Gunicorn) -> None:
    raw = exchange(server.address, request_bytes("GET", "/short-body"))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Length: 10" in head
    assert body == b"12345"  # then the connection closed


def test_body_longer_than_content_length_is_cut(server: Gunicorn) -> None:
    raw = exchange(server.address, request_bytes("GET", "/long-body"))
    assert raw.endswith(b"\r\n\r\n1234567890")
    assert b"EXTRA" not in raw


def test_pipelined_requests_get_one_response_then_close(server: Gunicorn) -> None:
    raw = exchange(server.address, request_bytes("GET", "/") * 100)
    replies = parse_replies(raw)
    assert [reply.status for reply in replies] == [200]


def test_unread_body_with_a_smuggled_request_is_never_parsed(server: Gunicorn) -> None:
    before = app_calls(server)
    smuggled = request_bytes("GET", "/crash")
    raw = request_bytes("POST", "/ignore-body", [("Content-Length", "100")]) + b"0123456789"
    replies = parse_replies(exchange(server.address, raw + smuggled))
    assert [reply.status for reply in replies] == [200]
    assert app_calls(server) == before + 1
