"""HTTP/1 rules pinned one by one: when a 101 may be sent, the HTTP/0.9 request line,
absolute-form targets against Host, gunicorn's field-size count, and ``has_body``."""

from __future__ import annotations

import pytest
from corpus import FEED_MODES, Outcome, drive, general_parser_only, make_connection, pieces

from gunicorn.http.connection import NEED_DATA, PAUSED
from gunicorn.http.errors import (
    InvalidRequestLine,
    InvalidResponseStatus,
    LimitRequestHeaders,
    LocalProtocolError,
    ResponseStateError,
)
from gunicorn.http.events import (
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
)
from gunicorn.http.h1 import H1Connection, reader
from gunicorn.http.limits import Limits, Policy
from gunicorn.wsgi.environ import EnvironConfig, connection_environ, request_environ

WEBSOCKET = b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
SWITCH_HEADERS = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")]


def received(raw: bytes, conn: H1Connection | None = None) -> tuple[H1Connection, Request]:
    """A connection that read the complete request ``raw`` (and its end)."""
    conn = conn or make_connection()
    conn.receive_data(raw)
    request = conn.next_event()
    assert isinstance(request, Request), request
    return conn, request


def read_to_pause(conn: H1Connection) -> None:
    while (event := conn.next_event()) is not PAUSED:
        assert event is not NEED_DATA


# ------------------------------------------------------------------------------ 101


def test_101_answers_an_http11_upgrade_offer_and_hands_over_the_bytes() -> None:
    conn, request = received(b"GET /ws HTTP/1.1\r\nHost: a\r\n" + WEBSOCKET + b"\r\n\x81\x00")
    assert request.upgrade == b"websocket"
    head = conn.send(Response(101, SWITCH_HEADERS))
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert conn.trailing_data == (b"\x81\x00", False)


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /ws HTTP/1.0\r\nHost: a\r\n" + WEBSOCKET + b"\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: \r\n\r\n",
    ],
    ids=["http10", "no-upgrade", "upgrade-not-in-connection", "connection-only", "empty"],
)
@pytest.mark.parametrize("as_informational", [False, True], ids=["response", "informational"])
def test_101_without_an_http11_upgrade_offer_is_an_application_error(
    raw: bytes, as_informational: bool
) -> None:
    conn, _request = received(raw)
    read_to_pause(conn)
    event = (
        InformationalResponse(101, SWITCH_HEADERS)
        if as_informational
        else Response(101, SWITCH_HEADERS)
    )
    with pytest.raises(InvalidResponseStatus) as info:
        conn.send(event)
    assert isinstance(info.value, LocalProtocolError) and info.value.status == 500
    # Nothing was switched: the server answers 500 and closes.
    page = conn.error_response(info.value)
    assert page.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"\r\nConnection: close\r\n" in page
    assert not conn.keep_alive


def test_an_http10_upgrade_offer_is_ignored() -> None:
    """RFC 9110 §7.8: a server ignores Upgrade in an HTTP/1.0 request."""
    _conn, request = received(b"GET /ws HTTP/1.0\r\nHost: a\r\n" + WEBSOCKET + b"\r\n")
    assert request.upgrade is None


def test_101_before_the_request_body_is_read_is_an_application_error() -> None:
    conn, request = received(
        b"POST /ws HTTP/1.1\r\nHost: a\r\n" + WEBSOCKET + b"Content-Length: 5\r\n\r\nab"
    )
    assert request.upgrade == b"websocket"
    with pytest.raises(ResponseStateError):
        conn.send(Response(101, SWITCH_HEADERS))
    # Once the body is read, the switch may happen.
    assert conn.next_event() == Data(b"ab")
    conn.receive_data(b"cde")
    assert conn.next_event() == Data(b"cde")
    assert conn.send(Response(101, SWITCH_HEADERS)).startswith(b"HTTP/1.1 101 ")


# ---------------------------------------------------------------- HTTP/0.9 line


@pytest.mark.parametrize("raw", [b"GET /\r\n", b"GET /\r\n\r\n", b"GET /\r\nHost: a\r\n"])
def test_an_http09_request_line_is_refused_at_once(raw: bytes) -> None:
    conn = make_connection()
    conn.receive_data(raw)  # no EOF: the reader must not wait for more
    with pytest.raises(InvalidRequestLine) as info:
        conn.next_event()
    assert info.value.status == 400
    assert conn.error_response(info.value).startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_an_http09_request_line_fed_byte_by_byte_is_refused_at_its_lf() -> None:
    conn = make_connection()
    for byte in b"GET /\r":
        conn.receive_data(bytes([byte]))
        assert conn.next_event() is NEED_DATA
    conn.receive_data(b"\n")
    with pytest.raises(InvalidRequestLine):
        conn.next_event()


def test_a_request_line_is_checked_before_its_header_section_arrives() -> None:
    conn = make_connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n")
    assert conn.next_event() is NEED_DATA
    bad = make_connection()
    bad.receive_data(b"GET / HTTP/1.1 extra\r\nHost: a\r\n")
    with pytest.raises(InvalidRequestLine):
        bad.next_event()


# --------------------------------------------------------------- absolute-form


ABSOLUTE = b"GET http://good.example:8080/x?q=1 HTTP/1.1\r\nHost: evil.example\r\nX: y\r\n\r\n"


def test_the_authority_of_an_absolute_form_target_replaces_host() -> None:
    """RFC 9112 §3.2.2: the target's authority wins and Host is ignored."""
    _conn, request = received(ABSOLUTE)
    assert request.authority == b"good.example:8080"
    assert request.headers == [(b"host", b"good.example:8080"), (b"x", b"y")]
    assert (request.scheme, request.path, request.query) == (b"http", b"/x", b"q=1")


def test_an_absolute_form_target_sets_the_wsgi_host_and_server_name() -> None:
    _conn, request = received(ABSOLUTE)
    config = EnvironConfig()
    # On a unix socket the server's name and port come from Host.
    base = connection_environ(config, "", "/run/app.sock")
    environ = request_environ(
        base, request, config, url_scheme="http", trusted=False, wsgi_input=None
    )
    assert environ["HTTP_HOST"] == "good.example:8080"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("good.example", "8080")


def test_origin_form_keeps_host() -> None:
    _conn, request = received(b"GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n")
    assert request.authority == b"a.example"
    assert request.headers == [(b"host", b"a.example")]


# ------------------------------------------------------------------ field size


def field_request(line_size: int, extra: bytes = b"") -> bytes:
    """A request whose field line "X: vvv..." is ``line_size`` bytes without CRLF."""
    return b"GET / HTTP/1.1\r\nHost: a\r\n" + extra + b"X: " + b"v" * (line_size - 3) + b"\r\n\r\n"


def outcomes(
    raw: bytes, limits: Limits | None = None, policy: Policy | None = None
) -> list[Outcome]:
    """``raw`` served in every feed mode, with the fast paths and without them."""
    runs = [drive(make_connection(limits, policy), pieces(raw, mode)) for mode in FEED_MODES]
    with general_parser_only():
        runs.append(drive(make_connection(limits, policy), [raw]))
    return runs


@pytest.mark.parametrize("extra", [b"", b"A: b\r\n" * 3], ids=["one-field", "more-fields"])
def test_gunicorn_counts_a_field_line_with_its_crlf(extra: bytes) -> None:
    """limit_request_field_size 8190 (the default): 8188 bytes + CRLF pass, 8189 not."""
    for outcome in outcomes(field_request(8188, extra)):
        assert outcome.error is None and len(outcome.served) == 1
        assert outcome.served[0].request.headers[-1] == (b"x", b"v" * 8185)
    for outcome in outcomes(field_request(8189, extra)):
        assert isinstance(outcome.error, LimitRequestHeaders)
        assert outcome.error.status == 431


def test_the_fast_path_takes_a_field_line_at_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def general_path(*args: object) -> None:
        raise AssertionError("the general path was taken")

    monkeypatch.setattr(reader, "parse_fields", general_path)
    _conn, request = received(field_request(8188, b"A: b\r\n"))
    assert request.headers[-1] == (b"x", b"v" * 8185)


@pytest.mark.parametrize("limit", [9, 20, 100])
def test_a_custom_field_size_counts_the_crlf_too(limit: int) -> None:
    limits = Limits.from_settings(limit_request_field_size=limit)
    for outcome in outcomes(field_request(limit - 2), limits):
        assert outcome.error is None, outcome.error
    for outcome in outcomes(field_request(limit - 1), limits):
        assert isinstance(outcome.error, LimitRequestHeaders)


def test_a_folded_field_counts_each_line_with_its_crlf() -> None:
    policy = Policy(permit_obsolete_folding=True)
    limits = Limits.from_settings(limit_request_field_size=40)
    # "X: aaaa...": 20 + 2, " bbb...": 16 + 2 -> 40.
    fits = b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 17 + b"\r\n " + b"b" * 15 + b"\r\n\r\n"
    for outcome in outcomes(fits, limits, policy):
        assert outcome.error is None, outcome.error
        assert outcome.served[0].request.headers[-1] == (b"x", b"a" * 17 + b" " + b"b" * 15)
    past = fits.replace(b"b" * 15, b"b" * 16)
    for outcome in outcomes(past, limits, policy):
        assert isinstance(outcome.error, LimitRequestHeaders)


def test_a_folded_line_after_a_dropped_field_is_dropped_with_it() -> None:
    conn = make_connection(policy=Policy(permit_obsolete_folding=True))
    _conn, request = received(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX_B: 2\r\n more\r\n\r\n", conn
    )
    assert request.headers == [(b"host", b"a"), (b"x-a", b"1")]


# -------------------------------------------------------------------- has_body


@pytest.mark.parametrize(
    ("fields", "has_body"),
    [
        (b"", False),
        (b"Content-Length: 0\r\n", False),
        (b"Content-Length: 3\r\n", True),
        (b"Transfer-Encoding: chunked\r\n", True),
    ],
)
def test_has_body_on_the_fast_and_the_general_path(fields: bytes, has_body: bool) -> None:
    raw = b"POST / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n"
    assert received(raw)[1].has_body is has_body
    with general_parser_only():
        assert received(raw)[1].has_body is has_body
    # A head the fast path refuses (trailing whitespace in a value).
    assert received(raw.replace(b"Host: a", b"Host: a "))[1].has_body is has_body


def test_chunked_response_data_is_framed_as_chunks() -> None:
    conn, _request = received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    read_to_pause(conn)
    assert b"Transfer-Encoding: chunked\r\n" in conn.send(Response(200))
    assert conn.send(Data(b"hello")) == b"5\r\nhello\r\n"
    assert conn.send(EndOfMessage()) == b"0\r\n\r\n"
