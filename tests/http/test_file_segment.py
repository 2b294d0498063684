"""Body bytes a driver writes itself (sendfile) are framed and counted by the core."""

from __future__ import annotations

import pytest

from gunicorn.http.errors import ResponseStateError
from gunicorn.http.events import EndOfMessage, Response
from gunicorn.http.h1 import H1Connection


def answering(method: bytes = b"GET", version: bytes = b"HTTP/1.1") -> H1Connection:
    conn = H1Connection(clock=lambda: 0.0)
    conn.receive_data(method + b" /f " + version + b"\r\nHost: a\r\n\r\n")
    conn.next_event()
    conn.next_event()
    return conn


def test_a_length_framed_file_counts_toward_content_length_and_keeps_alive() -> None:
    conn = answering()
    conn.send(Response(200, [(b"Content-Length", b"10")]))
    assert conn.file_segment(6) == (b"", 6, b"")
    assert conn.file_segment(4) == (b"", 4, b"")
    assert conn.send(EndOfMessage()) == b""
    assert conn.keep_alive


def test_a_file_longer_than_content_length_is_cut_and_closes() -> None:
    conn = answering()
    conn.send(Response(200, [(b"Content-Length", b"10")]))
    assert conn.file_segment(25) == (b"", 10, b"")
    conn.send(EndOfMessage())
    assert not conn.keep_alive


def test_a_chunked_file_segment_is_wrapped_in_one_chunk() -> None:
    conn = answering()
    conn.send(Response(200, []))
    assert conn.file_segment(4096) == (b"1000\r\n", 4096, b"\r\n")
    assert conn.send(EndOfMessage()) == b"0\r\n\r\n"
    assert conn.keep_alive


def test_a_file_for_head_is_not_sent_and_reported_as_dropped() -> None:
    conn = answering(b"HEAD")
    conn.send(Response(200, [(b"Content-Length", b"10")]))
    assert conn.file_segment(10) == (b"", 0, b"")
    assert conn.body_dropped


def test_a_file_segment_before_the_head_is_refused() -> None:
    conn = answering()
    with pytest.raises(ResponseStateError):
        conn.file_segment(10)
