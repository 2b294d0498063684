"""start_response, write(), the iterable, early hints and file_wrapper over the real core."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wsgi_harness import hello_app, make_request, run_wsgi

from gunicorn.http.errors import (
    InvalidResponseHeader,
    InvalidResponseStatus,
    LocalProtocolError,
)
from gunicorn.http.events import Data, EndOfMessage, Event, Response
from gunicorn.wsgi import FileWrapper, WSGIResponder


class ClosingIterable:
    def __init__(self, chunks: list[bytes], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise RuntimeError("boom in iteration")
            yield chunk

    def close(self) -> None:
        self.closed += 1


def test_hello() -> None:
    result = run_wsgi(hello_app, make_request())
    assert result.status == 200
    assert result.reason == b"OK"
    assert result.body == b"hello"
    assert result.header(b"content-type") == b"text/plain"
    assert result.header(b"server") == b"gunicorn"
    assert result.header(b"connection") == b"close"
    assert result.header(b"date") is not None
    resp = result.responder.response
    assert resp.status == "200 OK"
    assert resp.status_code == 200
    assert resp.sent == 5
    assert resp.headers == [("Content-Type", "text/plain"), ("Content-Length", "5")]


def test_no_content_length_on_http11_is_chunked() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"a", b"", b"bc"]

    result = run_wsgi(app, make_request())
    assert result.header(b"transfer-encoding") == b"chunked"
    assert result.body == b"abc"
    assert result.responder.response.sent == 3


def test_no_content_length_on_http10_is_delimited_by_close() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"abc"]

    result = run_wsgi(app, make_request(version="HTTP/1.0"))
    assert result.raw.startswith(b"HTTP/1.0 200 OK\r\n")
    assert result.header(b"transfer-encoding") is None
    assert result.body == b"abc"


def test_custom_reason_phrase() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("299 Custom Thing", [("Content-Length", "0")])
        return []

    result = run_wsgi(app, make_request())
    assert result.raw.startswith(b"HTTP/1.1 299 Custom Thing\r\n")


def test_write_callable_streams_before_the_iterable() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"one ")
        write(bytearray(b"two "))
        return [b"three"]

    result = run_wsgi(app, make_request())
    assert result.body == b"one two three"


def test_generator_app_may_call_start_response_late() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("201 Created", [("Content-Length", "2")])
        yield b"ok"

    result = run_wsgi(app, make_request())
    assert result.status == 201
    assert result.body == b"ok"


def test_empty_response_sends_head_at_the_end() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "0")])
        return []

    result = run_wsgi(app, make_request())
    assert result.status == 200
    assert result.body == b""


class Recorder:
    """A channel that records events instead of framing them."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def send(self, event: Event) -> None:
        self.events.append(event)

    def send_file(self, wrapper: FileWrapper, fd: int, offset: int, count: int) -> int | None:
        return None

    def body_sent(self) -> int:
        return 0


def test_headers_are_not_sent_before_the_first_body_byte() -> None:
    recorder = Recorder()
    responder = WSGIResponder(recorder)
    seen: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        seen.append(len(recorder.events))
        yield b""
        seen.append(len(recorder.events))
        yield b"x"

    responder.run(app, {})
    assert seen == [0, 0]
    assert [type(event) for event in recorder.events] == [Response, Data, EndOfMessage]
    assert responder.finished


def test_start_response_twice_without_exc_info_is_an_error() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        start_response("500 Oops", [])
        return []

    result = run_wsgi(app, make_request(), catch=True)
    assert isinstance(result.error, AssertionError)
    assert result.status == 500


def test_exc_info_before_headers_sent_replaces_the_response() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise ValueError("app failure")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Length", "4")], sys.exc_info())
        return [b"oops"]

    result = run_wsgi(app, make_request())
    assert result.status == 503
    assert result.header(b"x-first") is None
    assert result.body == b"oops"


def test_exc_info_after_headers_sent_reraises() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        try:
            raise ValueError("late failure")
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    result = run_wsgi(app, make_request(), catch=True)
    assert isinstance(result.error, ValueError)
    assert result.responder.response.headers_sent
    assert not result.responder.finished
    assert result.status == 200
    assert b"never" not in result.raw
    assert not result.conn.keep_alive


def test_write_before_start_response_is_an_error() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return [b"no start_response"]

    result = run_wsgi(app, make_request(), catch=True)
    assert isinstance(result.error, AssertionError)
    assert result.status == 500


@pytest.mark.parametrize(
    "status",
    ["200", "abc OK", "20 OK", "2000 OK", "200OK", b"200 OK", 200, "٢٠٠ OK", "200 caf\u20ac"],
)
def test_invalid_status_gives_500(status: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, [])
        return [b"x"]

    result = run_wsgi(app, make_request(), catch=True)
    if status == "200":
        assert result.status == 200  # a bare code is valid
        return
    assert isinstance(result.error, InvalidResponseStatus | InvalidResponseHeader)
    assert result.status == 500


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Bad", "a\r\nX-Injected: 1")],
        [("X-Bad", "a\nb")],
        [("X-Bad", "a\x00b")],
        [("X Bad", "a")],
        [("X-Bad\r\n", "a")],
        [("", "a")],
        [("X-Euro", "\u20ac")],
        [(b"X-Bytes", "a")],
        [("X-Int", 1)],
        [["X-List", "a"]],
        (("X-Tuple", "a"),),
    ],
)
def test_invalid_headers_give_500_and_nothing_is_split(headers: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", headers)
        return [b"body"]

    result = run_wsgi(app, make_request(), catch=True)
    assert isinstance(result.error, LocalProtocolError)
    assert result.status == 500
    assert b"X-Injected" not in result.raw
    assert result.raw.count(b"HTTP/1.1") == 1


def test_status_with_crlf_gives_500() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK\r\nX-Injected: 1", [])
        return [b"x"]

    result = run_wsgi(app, make_request(), catch=True)
    assert result.status == 500
    assert b"X-Injected" not in result.raw


def test_str_body_is_a_type_error() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[str]:
        start_response("200 OK", [])
        return ["text"]

    result = run_wsgi(app, make_request(), catch=True)
    assert isinstance(result.error, TypeError)
    assert result.status == 500


def test_iterable_close_is_called_on_success() -> None:
    body = ClosingIterable([b"a", b"b"])
    result = run_wsgi(lambda e, s: (s("200 OK", []), body)[1], make_request())
    assert result.body == b"ab"
    assert body.closed == 1


def test_iterable_close_is_called_when_iteration_fails() -> None:
    body = ClosingIterable([b"a", b"b"], fail_at=1)
    result = run_wsgi(lambda e, s: (s("200 OK", []), body)[1], make_request(), catch=True)
    assert isinstance(result.error, RuntimeError)
    assert body.closed == 1


def test_iterable_close_is_called_when_the_head_is_invalid() -> None:
    body = ClosingIterable([b"a"])
    result = run_wsgi(
        lambda e, s: (s("200 OK", [("Bad Name", "x")]), body)[1], make_request(), catch=True
    )
    assert result.status == 500
    assert body.closed == 1


def test_iterable_close_is_called_when_failing_before_any_byte() -> None:
    body = ClosingIterable([b"a"], fail_at=0)
    result = run_wsgi(lambda e, s: (s("200 OK", []), body)[1], make_request(), catch=True)
    assert result.status == 500
    assert body.closed == 1


def test_exception_in_app_call_before_anything_gives_500() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise KeyError("missing")

    result = run_wsgi(app, make_request(), catch=True)
    assert result.status == 500
    assert b"missing" not in result.body
    assert result.header(b"connection") == b"close"


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", "200 OK"), ("GET", "204 No Content"), ("GET", "304 Not Modified")],
)
def test_no_body_responses_drop_the_body(method: str, status: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain")])
        return [b"dropped body"]

    result = run_wsgi(app, make_request(method))
    assert result.raw.endswith(b"\r\n\r\n")
    assert b"dropped body" not in result.raw
    assert result.header(b"transfer-encoding") is None
    assert result.conn.body_dropped
    assert result.responder.response.sent == 0


def test_head_keeps_the_content_length() -> None:
    result = run_wsgi(hello_app, make_request("HEAD"))
    assert result.header(b"content-length") == b"5"
    assert result.raw.endswith(b"\r\n\r\n")


def test_body_longer_than_content_length_is_cut() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "3")])
        return [b"ab", b"cdef"]

    result = run_wsgi(app, make_request())
    assert result.body == b"abc"
    assert result.responder.response.sent == 3
    assert not result.conn.keep_alive


def test_early_hints_are_sent_as_103_on_http11() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload; as=style")])
        environ["wsgi.early_hints"]([("Link", "</app.js>; rel=preload; as=script")])
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    result = run_wsgi(app, make_request())
    assert result.raw.startswith(
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </app.js>; rel=preload; as=script\r\n\r\n"
        b"HTTP/1.1 200 OK\r\n"
    )
    assert result.body == b"ok"


def test_early_hints_are_not_sent_to_http10_clients() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload")])
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    result = run_wsgi(app, make_request(version="HTTP/1.0"))
    assert b"103" not in result.raw
    assert result.raw.startswith(b"HTTP/1.0 200 OK\r\n")


def test_early_hints_after_the_head_are_ignored() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"first"
        environ["wsgi.early_hints"]([("Link", "</late.css>; rel=preload")])
        yield b"second"

    result = run_wsgi(app, make_request())
    assert b"103" not in result.raw
    assert result.body == b"firstsecond"


def test_invalid_early_hints_raise_into_the_app() -> None:
    errors: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.early_hints"]([("Link", "a\r\nX-Injected: 1")])
        except LocalProtocolError as exc:
            errors.append(exc)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    result = run_wsgi(app, make_request())
    assert len(errors) == 1
    assert b"X-Injected" not in result.raw
    assert result.status == 200


# --- file_wrapper ------------------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 100)
    return path


def file_app(path: Path, *, length: bool = True, seek: int = 0, blksize: int = 8192) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the wrapper
        handle.seek(seek)
        headers = [("Content-Type", "application/octet-stream")]
        if length:
            headers.append(("Content-Length", str(path.stat().st_size - seek)))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](handle, blksize)

    return app


@pytest.mark.parametrize("sendfile", [True, False])
@pytest.mark.parametrize("length", [True, False])
def test_file_wrapper_sends_the_file(data_file: Path, sendfile: bool, length: bool) -> None:
    result = run_wsgi(file_app(data_file, length=length), make_request(), sendfile=sendfile)
    assert result.body == data_file.read_bytes()
    assert result.responder.response.sent == data_file.stat().st_size
    assert bool(result.channel.files_sent) is sendfile


def test_file_wrapper_sends_from_the_current_offset(data_file: Path) -> None:
    result = run_wsgi(file_app(data_file, seek=1000), make_request(), sendfile=True)
    assert result.body == data_file.read_bytes()[1000:]
    assert result.channel.files_sent == [(1000, data_file.stat().st_size - 1000)]


def test_file_wrapper_respects_a_shorter_content_length(data_file: Path) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "10")])
        return environ["wsgi.file_wrapper"](open(data_file, "rb"))

    result = run_wsgi(app, make_request(), sendfile=True)
    assert result.body == data_file.read_bytes()[:10]
    assert result.channel.files_sent == [(0, 10)]


def test_file_wrapper_with_head_sends_no_body(data_file: Path) -> None:
    result = run_wsgi(file_app(data_file), make_request("HEAD"), sendfile=True)
    assert result.raw.endswith(b"\r\n\r\n")
    assert result.header(b"content-length") == str(data_file.stat().st_size).encode()
    assert result.channel.files_sent == []


def test_file_wrapper_over_a_non_file_iterates_in_blocks() -> None:
    reads: list[int] = []

    class Stream(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(size if size is not None else -1)
            return super().read(size)

    stream = Stream(b"x" * 100)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](stream, 30)

    result = run_wsgi(app, make_request(), sendfile=True)
    assert result.body == b"x" * 100
    assert reads[:4] == [30, 30, 30, 30]
    assert result.channel.files_sent == []
    assert stream.closed


def test_file_wrapper_closes_the_file(data_file: Path) -> None:
    handles: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        handle = open(data_file, "rb")  # noqa: SIM115
        handles.append(handle)
        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](handle)

    run_wsgi(app, make_request(), sendfile=True)
    assert handles[0].closed


def test_file_wrapper_getitem_protocol() -> None:
    wrapper = FileWrapper(io.BytesIO(b"abcdefg"), 3)
    assert wrapper[0] == b"abc"
    assert wrapper[1] == b"def"
    assert wrapper[2] == b"g"
    with pytest.raises(IndexError):
        wrapper[3]
    assert list(FileWrapper(io.BytesIO(b"abcdefg"), 3)) == [b"abc", b"def", b"g"]
    assert FileWrapper(io.BytesIO(b"")).blksize == 8192


def test_file_wrapper_without_close_or_fileno() -> None:
    class Reader:
        def __init__(self) -> None:
            self.data = [b"ab", b""]

        def read(self, size: int) -> bytes:
            return self.data.pop(0)

    wrapper = FileWrapper(Reader())
    assert wrapper.fileno() is None
    wrapper.close()
    assert list(wrapper) == [b"ab"]
