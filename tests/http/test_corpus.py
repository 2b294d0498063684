"""Replay the request corpus (tests/requests) through H1Connection in every feed mode."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from corpus import (
    FEED_MODES,
    Case,
    Outcome,
    actual_view,
    drive,
    event_summary,
    expected_view,
    general_parser_only,
    load_cases,
    make_connection,
    run_case,
)

from gunicorn.http import errors
from gunicorn.http.errors import (
    InvalidSchemeHeaders,
    InvalidTransferEncoding,
    LimitRequestHeaders,
    ProtocolError,
)
from gunicorn.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Request,
    Response,
)
from gunicorn.http.h1 import NEED_DATA, PAUSED, H1Connection
from gunicorn.http.headers import scheme_from_headers

VALID = load_cases("valid")
INVALID = load_cases("invalid")

HOSTILE_IDS = (
    [f"S{i}" for i in range(1, 15)]
    + [f"C{i}" for i in range(1, 13)]
    + [f"H{i}" for i in range(1, 11)]
    + [f"L{i}" for i in range(1, 6)]
    + [f"X{i}" for i in range(1, 4)]
    + [f"K{i}" for i in range(1, 6)]
)


def _name(case: Case) -> str:
    return case.name


# ------------------------------------------------------------------ the corpus itself


def test_corpus_size() -> None:
    assert len(VALID) >= 80
    assert len(INVALID) >= 100


def test_every_hostile_input_id_is_covered() -> None:
    ids = {case.id for case in VALID + INVALID}
    assert [hid for hid in HOSTILE_IDS if hid not in ids] == []


def test_case_ids_are_hostile_ids_or_rules() -> None:
    strays = [
        case.name
        for case in VALID + INVALID
        if case.id not in HOSTILE_IDS and not case.id.startswith("rule-")
    ]
    assert strays == []


@pytest.mark.parametrize("case", INVALID, ids=_name)
def test_invalid_case_names_a_protocol_error(case: Case) -> None:
    cls = getattr(errors, case.expect["error"], None)
    assert isinstance(cls, type) and issubclass(cls, ProtocolError)
    if cls is not ProtocolError:
        assert case.expect["status"] == cls.status


# ----------------------------------------------------------------------------- replay


def check_valid(case: Case, outcome: Outcome) -> None:
    assert outcome.error is None, f"refused: {outcome.error!r}"
    expected = [expected_view(request) for request in case.expect["requests"]]
    actual = [
        actual_view(served, view.keys())
        for served, view in zip(outcome.served, expected, strict=False)
    ]
    mismatches = [
        (index, key, got.get(key), want[key])
        for index, (got, want) in enumerate(zip(actual, expected, strict=False))
        for key in want
        if got.get(key) != want[key]
    ]
    assert mismatches == [], "(request, key, actual, expected)"
    assert len(outcome.served) == len(expected), "number of requests served"
    # Every request was answered and the exchange ended cleanly: either the peer's EOF
    # was reported between requests, or the server closed after a final response.
    assert outcome.closed or outcome.stopped


def check_invalid(case: Case, outcome: Outcome) -> None:
    expect = case.expect
    assert outcome.error is not None, f"accepted: {[served.request for served in outcome.served]}"
    assert isinstance(outcome.error, getattr(errors, expect["error"])), repr(outcome.error)
    assert outcome.error.status == expect["status"]
    assert len(outcome.served) == expect.get("requests_before", 0), "requests before the error"
    response = outcome.error_response
    assert response.startswith(b"HTTP/1.1 %d " % expect["status"])
    assert b"\r\nconnection: close\r\n" in response.lower()


def replay(case: Case, check: Callable[[Case, Outcome], None]) -> None:
    """Run ``case`` in every feed mode; report the modes that fail ``check`` and those
    whose events (or error class) differ from the whole-input run."""
    problems: dict[str, str] = {}
    reference = None
    for mode in FEED_MODES:
        outcome = run_case(case, mode)
        try:
            check(case, outcome)
        except AssertionError as exc:
            problems[mode] = str(exc)
        summary = event_summary(outcome)
        if reference is None:
            reference = summary
        elif summary != reference and mode not in problems:
            problems[mode] = f"differs from the whole-input run: {summary} != {reference}"
    assert problems == {}, f"{case.id}: {case.description}"


@pytest.mark.parametrize("case", VALID, ids=_name)
def test_valid_request(case: Case) -> None:
    replay(case, check_valid)


@pytest.mark.parametrize("case", INVALID, ids=_name)
def test_invalid_request(case: Case) -> None:
    replay(case, check_invalid)


@pytest.mark.parametrize("case", VALID + INVALID, ids=_name)
def test_fast_paths_agree_with_the_general_parser(case: Case) -> None:
    """The request-line and header fast paths only ever accept what the general parser
    accepts, with the same result; with them disabled every case parses the same."""
    fast = run_case(case, "whole")
    with general_parser_only():
        slow = run_case(case, "whole")
    assert event_summary(slow) == event_summary(fast)
    assert str(slow.error) == str(fast.error)


# ------------------------------------------- hostile inputs the JSON format cannot hold


def _events_until_blocked(conn: H1Connection, data: bytes | None = None) -> list[object]:
    """Feed ``data`` (b"" is EOF) and collect events until the core blocks."""
    if data is not None:
        conn.receive_data(data)
    events = []
    while True:
        event = conn.next_event()
        events.append(event)
        if event is NEED_DATA or event is PAUSED or isinstance(event, ConnectionClosed):
            return events


def test_error_leaves_the_connection_unusable() -> None:
    conn = make_connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n")
    with pytest.raises(ProtocolError) as first:
        conn.next_event()
    with pytest.raises(ProtocolError) as again:
        conn.next_event()
    assert again.value is first.value
    assert conn.keep_alive is False
    assert conn.error_response(first.value).startswith(b"HTTP/1.1 400 ")


def test_h9_conflicting_scheme_headers_from_trusted_peer() -> None:
    """The core passes the headers; the scheme check refuses them as a whole."""
    conn = make_connection(trusted=True)
    (request, *_rest) = _events_until_blocked(
        conn,
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n",
    )
    assert isinstance(request, Request)
    secure = {b"x-forwarded-proto": b"https", b"x-forwarded-ssl": b"on"}
    with pytest.raises(InvalidSchemeHeaders):
        scheme_from_headers(request.headers, secure)
    agreeing = [(b"x-forwarded-proto", b"https"), (b"x-forwarded-ssl", b"on")]
    assert scheme_from_headers(agreeing, secure) == b"https"


def test_x1_overlong_request_line_refused_without_waiting_for_lf() -> None:
    conn = make_connection()
    fed = 0
    with pytest.raises(errors.LimitRequestLine):
        while True:
            assert conn.next_event() is NEED_DATA
            conn.receive_data(b"G" if fed == 0 else b"x")
            fed += 1
    assert fed <= 4094 + 2


def test_x2_endless_header_section_refused_early() -> None:
    conn = make_connection()
    conn.receive_data(b"GET / HTTP/1.1\r\n")
    fed = 0
    with pytest.raises(LimitRequestHeaders):
        while True:
            assert conn.next_event() is NEED_DATA
            conn.receive_data(b"X-Flood: 1\r\n")
            fed += 1
    assert fed <= 102


def test_x3_huge_content_length_is_streamed() -> None:
    conn = make_connection()
    events = _events_until_blocked(
        conn, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10737418240\r\n\r\n0123456789"
    )
    request = events[0]
    assert isinstance(request, Request)
    assert request.content_length == 10737418240
    assert events[1:] == [Data(b"0123456789"), NEED_DATA]
    assert _events_until_blocked(conn, b"abc") == [Data(b"abc"), NEED_DATA]


def test_k3_unread_body_is_never_parsed_as_a_request() -> None:
    """The app answers before reading a body; the pipelined bytes stay body bytes."""
    conn = make_connection()
    events = _events_until_blocked(
        conn,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789"
        b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    assert isinstance(events[0], Request)
    conn.send(Response(200, [(b"content-length", b"2")]))
    conn.send(Data(b"ok"))
    conn.send(EndOfMessage())
    if conn.keep_alive:
        conn.start_next_cycle()
        later = _events_until_blocked(conn)
        assert not any(isinstance(event, Request) for event in later), later
    else:
        assert conn.keep_alive is False


def test_k3_unread_body_is_drained_before_the_next_request() -> None:
    conn = make_connection()
    events = _events_until_blocked(
        conn, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234"
    )
    assert isinstance(events[0], Request)
    conn.send(Response(204))
    conn.send(EndOfMessage())
    assert conn.keep_alive
    conn.start_next_cycle()
    later = _events_until_blocked(conn, b"56789GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    requests = [event for event in later if isinstance(event, Request)]
    assert [request.target for request in requests] == [b"/next"]


def test_k4_continue_only_when_asked_and_once() -> None:
    conn = make_connection()
    _events_until_blocked(
        conn,
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    )
    assert conn.send_continue() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert conn.send_continue() == b""
    plain = make_connection()
    _events_until_blocked(plain, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n")
    assert plain.send_continue() == b""


def test_k4_no_continue_once_the_response_started() -> None:
    conn = make_connection()
    _events_until_blocked(
        conn,
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    )
    conn.send(Response(413, [(b"content-length", b"0")]))
    assert conn.send_continue() == b""
    conn.send(EndOfMessage())
    # The client may never send the body it was waiting to be asked for.
    assert conn.keep_alive is False


def test_k5_request_and_eof_in_one_read() -> None:
    """A client that shuts down its side right after the request still gets its answer."""
    conn = make_connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok")
    conn.receive_data(b"")
    outcome = drive(conn, [])
    assert [served.body for served in outcome.served] == [b"ok"]
    assert outcome.error is None
    assert outcome.closed or outcome.stopped


def test_upgrade_hand_off_keeps_the_following_bytes() -> None:
    conn = make_connection()
    events = _events_until_blocked(
        conn,
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"\x81\x05hello",
    )
    assert isinstance(events[0], Request) and events[0].upgrade == b"websocket"
    assert events[1:] == [EndOfMessage(), PAUSED]
    head = conn.send(Response(101, [(b"upgrade", b"websocket"), (b"connection", b"Upgrade")]))
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"\r\nupgrade: websocket\r\n" in head.lower()
    assert conn.trailing_data == (b"\x81\x05hello", False)
    assert conn.keep_alive is False


def test_connect_hand_off_keeps_the_following_bytes() -> None:
    conn = make_connection()
    events = _events_until_blocked(
        conn, b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n\x16\x03\x01tls"
    )
    assert isinstance(events[0], Request) and events[0].authority == b"a:443"
    head = conn.send(Response(200))
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"transfer-encoding" not in head.lower()
    assert b"content-length" not in head.lower()
    assert conn.trailing_data == (b"\x16\x03\x01tls", False)


def test_te_on_http10_refused_even_when_chunked_is_last() -> None:
    conn = make_connection()
    conn.receive_data(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    with pytest.raises(InvalidTransferEncoding):
        conn.next_event()
