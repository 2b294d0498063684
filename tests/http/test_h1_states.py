"""The state tables of ``gunicorn.http.h1.states`` are the connection's behaviour: every
state change seen while the corpus and a few hand-offs are served is a pair of a table.
(The hot transitions are resolved from the tables once, at import; this proves the
code around them follows the tables too.)"""

from __future__ import annotations

import pytest
from corpus import FEED_MODES, Case, drive, load_cases, pieces

from gunicorn.http.connection import NextEvent, Sentinel
from gunicorn.http.errors import LocalProtocolError, ProtocolError
from gunicorn.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
)
from gunicorn.http.h1 import H1Connection
from gunicorn.http.h1.states import (
    BODY,
    DISCARD,
    DONE,
    ERROR,
    ERROR_PAGE,
    IDLE,
    NEXT_CYCLE,
    PROTOCOL_ERROR,
    RECEIVE_TRANSITIONS,
    SEND_TRANSITIONS,
    SWITCH,
    receive_transition,
)
from gunicorn.http.limits import Limits


class TableChecked(H1Connection):
    """An H1Connection that asserts each of its state changes is in a table."""

    __slots__ = ()

    def next_event(self) -> NextEvent:
        before = self._their_state
        try:
            event = super().next_event()
        except ProtocolError:
            if before is not ERROR:  # else the stored error is raised again
                assert RECEIVE_TRANSITIONS[before, PROTOCOL_ERROR] == self._their_state
            raise
        after = self._their_state
        if before is DISCARD:
            # Dropped body bytes, then the next cycle (checked by the nested call).
            assert after is DISCARD or RECEIVE_TRANSITIONS[DISCARD, EndOfMessage] == DONE
            if isinstance(event, ConnectionClosed):
                assert RECEIVE_TRANSITIONS[DISCARD, ConnectionClosed] == after
        elif isinstance(event, Sentinel):
            assert after is before, (before, event, after)
        else:
            assert RECEIVE_TRANSITIONS[before, type(event)] == after, (before, event, after)
        return event

    def send(self, event: Event) -> bytes:
        before = self._our_state
        their_before = self._their_state
        data = super().send(event)
        after = self._our_state
        status = getattr(event, "status", None)
        if status == 101:
            assert SEND_TRANSITIONS[before, SWITCH] == after
            assert RECEIVE_TRANSITIONS[their_before, SWITCH] == self._their_state
        elif isinstance(event, InformationalResponse):
            assert SEND_TRANSITIONS[before, InformationalResponse] == after
        else:
            assert SEND_TRANSITIONS[before, type(event)] == after, (before, event, after)
        if self._their_state is not their_before:
            # Only a tunnel (a 2xx to CONNECT) changes the request half from here.
            assert RECEIVE_TRANSITIONS[their_before, SWITCH] == self._their_state
        return data

    def error_response(self, exc: ProtocolError | LocalProtocolError, stream_id: int = 1) -> bytes:
        before = self._our_state
        data = super().error_response(exc, stream_id)
        if before is IDLE:
            assert SEND_TRANSITIONS[IDLE, ERROR_PAGE] == self._our_state
        return data

    def start_next_cycle(self) -> None:
        before = self._their_state
        super().start_next_cycle()
        after = self._their_state
        if before is BODY and after is IDLE:
            before = DONE  # a body with nothing left to read counts as read
        assert RECEIVE_TRANSITIONS[before, NEXT_CYCLE] == after


def checked(limits: Limits | None = None) -> TableChecked:
    return TableChecked(limits, clock=lambda: 0.0)


CASES = load_cases("valid") + load_cases("invalid")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_serving_the_corpus_follows_the_tables(case: Case) -> None:
    for mode in ("whole", FEED_MODES[-1]):
        conn = TableChecked(
            case.limits, case.policy, clock=lambda: 0.0, trusted_forwarder=case.trusted_forwarder
        )
        drive(conn, pieces(case.raw, mode))


def test_a_drained_body_and_the_next_request_follow_the_tables() -> None:
    conn = checked()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234")
    assert isinstance(conn.next_event(), Request)
    conn.send(Response(204))
    conn.send(EndOfMessage())
    conn.start_next_cycle()
    conn.receive_data(b"56789GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    request = conn.next_event()
    assert isinstance(request, Request) and request.target == b"/next"


def test_a_body_too_long_to_drain_closes_by_the_tables() -> None:
    conn = checked(Limits(max_body_drain=4))
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert isinstance(conn.next_event(), Request)
    conn.send(Response(204))
    conn.send(EndOfMessage())
    conn.start_next_cycle()
    conn.receive_data(b"a\r\n0123456789\r\n")
    assert isinstance(conn.next_event(), ConnectionClosed)


def test_switching_protocols_follows_the_tables() -> None:
    conn = checked()
    conn.receive_data(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    assert isinstance(conn.next_event(), Request)
    conn.send(InformationalResponse(101, [(b"upgrade", b"websocket")]))
    conn.send(EndOfMessage())

    tunnel = checked()
    tunnel.receive_data(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n")
    assert isinstance(tunnel.next_event(), Request)
    tunnel.send(Response(200))
    tunnel.send(Data(b"ignored"))
    tunnel.send(EndOfMessage())


def test_a_pair_missing_from_the_request_table_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no request-half transition from DONE on Data"):
        receive_transition(DONE, Data)
    assert receive_transition(IDLE, Request) == BODY
