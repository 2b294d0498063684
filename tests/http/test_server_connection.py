"""H1Connection and UWSGIConnection offer the one connection interface of the core
(``gunicorn.http.connection.ServerConnection``): checked by mypy on the assignments
below and at run time against the protocol's members and signatures."""

from __future__ import annotations

import inspect

import pytest

from gunicorn.http.connection import NEED_DATA, PAUSED, ServerConnection
from gunicorn.http.errors import InvalidRequestLine
from gunicorn.http.events import Data, EndOfMessage, Request, Response
from gunicorn.http.h1 import H1Connection
from gunicorn.http.uwsgi import UWSGIConnection


def _clock() -> float:
    return 0.0


def connections() -> list[ServerConnection]:
    # mypy checks that each class structurally satisfies ServerConnection here.
    h1: ServerConnection = H1Connection(clock=_clock)
    uwsgi: ServerConnection = UWSGIConnection(clock=_clock)
    return [h1, uwsgi]


def _protocol_members() -> list[str]:
    return [
        name
        for name in {**ServerConnection.__dict__, **ServerConnection.__annotations__}
        if not name.startswith("_")
    ]


def test_the_protocol_has_the_members_drivers_use() -> None:
    assert sorted(_protocol_members()) == [
        "ack_body",
        "buffered",
        "data_to_send",
        "error_response",
        "http_version",
        "next_event",
        "receive_data",
        "send",
        "send_continue",
        "send_window",
    ]


@pytest.mark.parametrize("conn", connections(), ids=lambda c: type(c).__name__)
def test_every_member_is_there_with_the_protocol_signature(conn: ServerConnection) -> None:
    for name in _protocol_members():
        assert hasattr(conn, name), name
        wanted = getattr(ServerConnection, name, None)
        if not callable(wanted):
            continue
        expected = inspect.signature(wanted).parameters
        actual = inspect.signature(getattr(type(conn), name)).parameters
        assert [(p.name, p.kind, p.default) for p in actual.values()] == [
            (p.name, p.kind, p.default) for p in expected.values()
        ], name


@pytest.mark.parametrize("conn", connections(), ids=lambda c: type(c).__name__)
def test_http1_answers_the_flow_control_questions_with_no_limit(conn: ServerConnection) -> None:
    assert conn.http_version == "1.1"
    assert conn.data_to_send() == b""
    assert conn.send_window(1) >= 2**31
    assert conn.buffered(1) == 0
    conn.ack_body(1, 10)  # nothing to give back, and no error
    assert conn.data_to_send() == b""


def test_a_driver_serves_http1_through_the_protocol_alone() -> None:
    conn: ServerConnection = H1Connection(clock=_clock)
    conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    )
    request = conn.next_event()
    assert isinstance(request, Request) and request.has_body
    assert conn.send_continue(request.stream_id) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"ok")
    assert conn.next_event() == Data(b"ok")
    conn.ack_body(request.stream_id, 2)
    assert isinstance(conn.next_event(), EndOfMessage)
    assert conn.next_event() is PAUSED
    head = conn.send(Response(200, [(b"content-length", b"0")], stream_id=request.stream_id))
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert conn.send(EndOfMessage(stream_id=request.stream_id)) == b""
    assert conn.data_to_send() == b""


def test_error_response_takes_the_stream_id() -> None:
    conn: ServerConnection = H1Connection(clock=_clock)
    conn.receive_data(b"GET /\r\n")
    with pytest.raises(InvalidRequestLine) as info:
        conn.next_event()
    page = conn.error_response(info.value, 1)
    assert page.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nConnection: close\r\n" in page
