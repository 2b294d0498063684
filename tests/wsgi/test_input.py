"""wsgi.input: reading a body streamed from the core, in any piece sizes."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsgi_harness import make_request, run_wsgi

from gunicorn.http.errors import InvalidChunkSize, NoMoreData
from gunicorn.wsgi import WSGIInput

BODY = b"first line\nsecond line\n\nfourth line without newline"


def pieces_input(pieces: list[bytes], on_first_read: Any = None) -> WSGIInput:
    queue = list(pieces)

    def receive() -> bytes:
        return queue.pop(0) if queue else b""

    return WSGIInput(receive, on_first_read)


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("piece", [1, 3, 7, 64, 4096])
@pytest.mark.parametrize("step", [1, 2, 5, 13, 100])
def test_read_in_steps_returns_the_whole_body(piece: int, step: int) -> None:
    body = pieces_input(split(BODY, piece))
    got = []
    while True:
        data = body.read(step)
        assert len(data) <= step
        if not data:
            break
        got.append(data)
    assert b"".join(got) == BODY
    # Only the last read may be short.
    assert all(len(chunk) == step for chunk in got[:-1])


@pytest.mark.parametrize("piece", [1, 4, 4096])
def test_read_all_and_read_none(piece: int) -> None:
    assert pieces_input(split(BODY, piece)).read() == BODY
    assert pieces_input(split(BODY, piece)).read(None) == BODY
    body = pieces_input(split(BODY, piece))
    assert body.read(5) == b"first"
    assert body.read(-1) == BODY[5:]
    assert body.read() == b""
    assert body.read(0) == b""


@pytest.mark.parametrize("piece", [1, 2, 5, 4096])
def test_readline_and_limits(piece: int) -> None:
    body = pieces_input(split(BODY, piece))
    assert body.readline() == b"first line\n"
    assert body.readline(3) == b"sec"
    assert body.readline(100) == b"ond line\n"
    assert body.readline(0) == b""
    assert body.readline() == b"\n"
    assert body.readline(None) == b"fourth line without newline"
    assert body.readline() == b""


@pytest.mark.parametrize("piece", [1, 6, 4096])
def test_readlines_and_hint(piece: int) -> None:
    assert pieces_input(split(BODY, piece)).readlines() == [
        b"first line\n",
        b"second line\n",
        b"\n",
        b"fourth line without newline",
    ]
    assert pieces_input(split(BODY, piece)).readlines(5) == [b"first line\n"]
    assert pieces_input(split(BODY, piece)).readlines(12) == [b"first line\n", b"second line\n"]


@pytest.mark.parametrize("piece", [1, 9, 4096])
def test_iteration_yields_lines(piece: int) -> None:
    assert list(pieces_input(split(BODY, piece))) == BODY.splitlines(keepends=True)


def test_mixed_calls() -> None:
    body = pieces_input(split(BODY, 4))
    assert body.read(3) == b"fir"
    assert body.readline() == b"st line\n"
    assert next(body) == b"second line\n"
    assert body.read(2) == b"\nf"
    assert body.readlines() == [b"ourth line without newline"]


def test_nothing_is_received_before_the_application_reads() -> None:
    calls: list[str] = []

    def receive() -> bytes:
        calls.append("receive")
        return b""

    body = WSGIInput(receive, lambda: calls.append("continue"))
    assert calls == []
    assert not body.started
    assert body.read(10) == b""
    assert calls == ["continue", "receive"]
    assert body.started
    body.read()
    assert calls.count("continue") == 1


def test_empty_body_never_receives() -> None:
    def receive() -> bytes:
        raise AssertionError("must not be called")

    body = WSGIInput(receive, lambda: None, empty=True)
    assert body.read() == b""
    assert body.readline() == b""
    assert list(body) == []


def test_receive_errors_are_kept_for_the_server() -> None:
    def receive() -> bytes:
        raise NoMoreData("gone")

    body = WSGIInput(receive)
    with pytest.raises(NoMoreData):
        body.read()
    assert isinstance(body.error, NoMoreData)
    assert body.read() == b""


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=300),
    sizes=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=40),
    calls=st.lists(st.sampled_from(["read", "readline", "next"]), min_size=1, max_size=40),
    steps=st.lists(st.integers(min_value=-1, max_value=60), min_size=1, max_size=40),
)
def test_any_pieces_and_any_calls_give_back_the_body(
    data: bytes, sizes: list[int], calls: list[str], steps: list[int]
) -> None:
    pieces = []
    pos = 0
    index = 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        pieces.append(data[pos : pos + size])
        pos += size
        index += 1
    body = pieces_input(pieces)
    out = bytearray()
    for index, call in enumerate(calls * 10):
        step = steps[index % len(steps)]
        if call == "read":
            chunk = body.read(step)
            if step >= 0:
                assert len(chunk) <= step
        elif call == "readline":
            chunk = body.readline(step)
            if step > 0:
                assert len(chunk) <= step
            if chunk and (step <= 0 or len(chunk) < step):
                assert chunk.endswith(b"\n") or bytes(out) + chunk == data
        else:
            chunk = next(body, b"")
        out += chunk
    out += body.read()
    assert bytes(out) == data


# --- over the real core ----------------------------------------------------------------


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    data = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", str(len(data)))])
    return [data]


@pytest.mark.parametrize("piece", [1, 7, 100000])
def test_chunked_request_body_streams_to_the_app(piece: int) -> None:
    raw = make_request("POST", "/", [("Transfer-Encoding", "chunked")]) + (
        b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    result = run_wsgi(echo_app, split(raw, piece))
    assert result.status == 200
    assert result.body == b"hello world"
    assert result.environ.get("CONTENT_LENGTH") is None
    assert result.feeder.trailers == [(b"x-trailer", b"t")]


def test_large_body_is_read_in_pieces_not_whole() -> None:
    payload = bytes(range(256)) * 1024
    seen: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        total = 0
        while True:
            chunk = environ["wsgi.input"].read(1000)
            if not chunk:
                break
            total += len(chunk)
            seen.append(len(chunk))
        start_response("200 OK", [("Content-Length", str(len(str(total))))])
        return [str(total).encode()]

    raw = make_request("POST", "/", body=payload)
    result = run_wsgi(app, split(raw, 8192))
    assert result.body == str(len(payload)).encode()
    assert max(seen) == 1000


def test_100_continue_is_sent_on_first_read_only() -> None:
    raw = make_request("POST", "/", [("Expect", "100-continue")], body=b"abc")

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"]
        first = body.read(1)
        second = body.read()
        start_response("200 OK", [("Content-Length", "3")])
        return [first + second]

    result = run_wsgi(app, raw)
    assert result.raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert result.raw.count(b"100 Continue") == 1
    assert result.body == b"abc"


def test_no_100_continue_when_the_app_does_not_read() -> None:
    raw = make_request("POST", "/", [("Expect", "100-continue")], body=b"abc")

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("403 Forbidden", [("Content-Length", "0")])
        return []

    result = run_wsgi(app, raw)
    assert b"100 Continue" not in result.raw
    assert result.status == 403
    assert result.feeder.receive_calls == 0


def test_broken_chunked_body_raises_a_protocol_error_to_the_server() -> None:
    raw = make_request("POST", "/", [("Transfer-Encoding", "chunked")]) + b"zz\r\nhello\r\n"

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with contextlib.suppress(Exception):  # an application that swallows errors
            environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"ignored"]

    result = run_wsgi(app, raw)
    body = result.environ["wsgi.input"]
    assert isinstance(body.error, InvalidChunkSize)
    assert body.error.status == 400
