"""Response framing through H1Connection.send: method x status x version x what the app set.

The expectations are written from RFC 9110/9112 here (not computed with framing.py), and
every produced byte stream is also parsed by h11 acting as the client.
"""

from __future__ import annotations

from dataclasses import dataclass

import h11
import pytest
from corpus import make_connection

from gunicorn.http.errors import LocalProtocolError
from gunicorn.http.events import (
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    Trailers,
)
from gunicorn.http.h1 import NEED_DATA, PAUSED, H1Connection

METHODS = (b"GET", b"HEAD", b"CONNECT")
STATUSES = (100, 103, 200, 204, 304, 404)
VERSIONS = ((1, 0), (1, 1))
APP_SETS = ("content-length", "chunked", "nothing", "body")
BODY = b"hello"
EPOCH_DATE = b"Thu, 01 Jan 1970 00:00:00 GMT"


def request_bytes(method: bytes, version: tuple[int, int], extra: bytes = b"") -> bytes:
    target = b"a:443" if method == b"CONNECT" else b"/"
    host = b"a:443" if method == b"CONNECT" else b"a"
    # HTTP/1.0 clients ask for keep-alive so that only the framing can close.
    keep = b"Connection: keep-alive\r\n" if version == (1, 0) else b""
    return b"%s %s HTTP/%d.%d\r\nHost: %s\r\n%s%s\r\n" % (
        method,
        target,
        *version,
        host,
        keep,
        extra,
    )


def ready_connection(method: bytes, version: tuple[int, int]) -> H1Connection:
    """A connection holding one complete request, waiting for its response."""
    conn = make_connection()
    conn.receive_data(request_bytes(method, version))
    events = []
    while (event := conn.next_event()) is not PAUSED:
        assert event is not NEED_DATA
        events.append(event)
    assert isinstance(events[0], Request)
    assert isinstance(events[-1], EndOfMessage)
    return conn


def app_headers(app_sets: str) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"text/plain")]
    if app_sets == "content-length":
        headers.append((b"content-length", b"%d" % len(BODY)))
    elif app_sets == "chunked":
        headers.append((b"transfer-encoding", b"chunked"))
    return headers


def split_head(raw: bytes) -> tuple[bytes, dict[bytes, list[bytes]], bytes]:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, raw
    status_line, *lines = head.split(b"\r\n")
    fields: dict[bytes, list[bytes]] = {}
    for line in lines:
        name, _, value = line.partition(b":")
        fields.setdefault(name.strip().lower(), []).append(value.strip())
    return status_line, fields, rest


@dataclass
class Parsed:
    informational: list[h11.InformationalResponse]
    response: h11.Response
    body: bytes
    reusable: bool
    leftover: bytes


def h11_parse(method: bytes, raw: bytes, eof: bool) -> Parsed:
    """What a strict independent client makes of the bytes we produced."""
    client = h11.Connection(h11.CLIENT)
    target = b"a:443" if method == b"CONNECT" else b"/"
    host = b"a:443" if method == b"CONNECT" else b"a"
    client.send(h11.Request(method=method, target=target, headers=[(b"host", host)]))
    client.send(h11.EndOfMessage())
    client.receive_data(raw)
    if eof:
        client.receive_data(b"")
    informational = []
    response = None
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.InformationalResponse):
            informational.append(event)
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
            break
        else:
            raise AssertionError(f"h11 stopped at {event!r}")
    assert response is not None
    leftover, _ = client.trailing_data
    return Parsed(informational, response, body, client.their_state is h11.DONE, leftover)


# --------------------------------------------------------------------- the matrix


def _param(method: bytes, status: int, version: tuple[int, int], app_sets: str) -> object:
    name = f"{method.decode()}-{status}-HTTP/{version[0]}.{version[1]}-{app_sets}"
    return pytest.param(method, status, version, app_sets, id=name)


FINAL_CASES = [
    _param(method, status, version, app_sets)
    for method in METHODS
    for status in STATUSES
    if status >= 200
    for version in VERSIONS
    for app_sets in APP_SETS
]


@pytest.mark.parametrize(("method", "status", "version", "app_sets"), FINAL_CASES)
def test_final_response_framing(
    method: bytes, status: int, version: tuple[int, int], app_sets: str
) -> None:
    conn = ready_connection(method, version)
    sends_body = app_sets != "nothing"
    out = conn.send(Response(status, app_headers(app_sets)))
    if sends_body:
        out += conn.send(Data(BODY))
    out += conn.send(EndOfMessage())

    # RFC 9110 §9.3.2, §9.3.6, §15.3.5, §15.4.5: no content for HEAD, 204, 304 and a 2xx
    # to CONNECT. §8.6: no Content-Length on 204 or a 2xx to CONNECT; HEAD and 304 keep
    # the one the application set.
    connect_2xx = method == b"CONNECT" and 200 <= status < 300
    no_body = method == b"HEAD" or status in (204, 304) or connect_2xx
    cl_allowed = status != 204 and not connect_2xx
    expect_cl = app_sets == "content-length" and cl_allowed
    framed_by_length = app_sets == "content-length"
    expect_chunked = not no_body and not framed_by_length and version == (1, 1)
    close_delimited = not no_body and not framed_by_length and version == (1, 0)
    keep_alive = method != b"CONNECT" and not close_delimited

    status_line, fields, wire_body = split_head(out)
    assert status_line.startswith(b"HTTP/%d.%d %d " % (*version, status))
    assert fields.get(b"content-length") == ([b"5"] if expect_cl else None)
    assert fields.get(b"transfer-encoding") == ([b"chunked"] if expect_chunked else None)
    assert fields[b"content-type"] == [b"text/plain"]
    assert fields[b"server"] == [b"gunicorn"]
    assert fields[b"date"] == [EPOCH_DATE]
    assert fields[b"connection"] == [b"keep-alive" if keep_alive else b"close"]
    if no_body:
        assert wire_body == b""
    elif expect_chunked:
        assert wire_body == (b"5\r\nhello\r\n0\r\n\r\n" if sends_body else b"0\r\n\r\n")
    else:
        assert wire_body == (BODY if sends_body else b"")
    assert conn.body_dropped is (no_body and sends_body)
    assert conn.keep_alive is keep_alive

    parsed = h11_parse(method, out, eof=close_delimited)
    assert parsed.response.status_code == status
    assert parsed.body == (b"" if no_body or not sends_body else BODY)
    assert parsed.leftover == b""
    if version == (1, 1) and not connect_2xx:
        assert parsed.reusable is keep_alive


INFORMATIONAL_CASES = [
    _param(method, status, version, app_sets)
    for method in METHODS
    for status in STATUSES
    if status < 200
    for version in VERSIONS
    for app_sets in ("content-length", "chunked", "nothing")
]


@pytest.mark.parametrize(("method", "status", "version", "app_sets"), INFORMATIONAL_CASES)
def test_informational_response_framing(
    method: bytes, status: int, version: tuple[int, int], app_sets: str
) -> None:
    conn = ready_connection(method, version)
    headers = [(b"link", b"</style.css>; rel=preload"), *app_headers(app_sets)]
    interim = conn.send(InformationalResponse(status, headers))
    if version == (1, 0):
        # RFC 9110 §15.2: no 1xx to an HTTP/1.0 client.
        assert interim == b""
    else:
        status_line, fields, rest = split_head(interim)
        assert status_line.startswith(b"HTTP/1.1 %d " % status)
        assert rest == b""
        assert fields[b"link"] == [b"</style.css>; rel=preload"]
        assert b"content-length" not in fields
        assert b"transfer-encoding" not in fields
    final = conn.send(Response(404, [(b"content-length", b"0")])) + conn.send(EndOfMessage())
    parsed = h11_parse(method, interim + final, eof=False)
    assert [event.status_code for event in parsed.informational] == (
        [status] if version == (1, 1) else []
    )
    assert parsed.response.status_code == 404
    assert parsed.body == b""
    assert parsed.leftover == b""


def test_early_hints_after_the_final_response_started_are_not_sent() -> None:
    conn = ready_connection(b"GET", (1, 1))
    conn.send(Response(200, [(b"content-length", b"2")]))
    assert conn.send(InformationalResponse(103, [(b"link", b"</a.js>; rel=preload")])) == b""
    assert conn.send(Data(b"ok")) == b"ok"
    conn.send(EndOfMessage())
    assert conn.keep_alive


def test_repeated_early_hints_are_all_sent() -> None:
    conn = ready_connection(b"GET", (1, 1))
    first = conn.send(InformationalResponse(103, [(b"link", b"</a.js>; rel=preload")]))
    second = conn.send(InformationalResponse(103, [(b"link", b"</b.js>; rel=preload")]))
    final = conn.send(Response(200, [(b"content-length", b"0")])) + conn.send(EndOfMessage())
    parsed = h11_parse(b"GET", first + second + final, eof=False)
    assert [dict(event.headers)[b"link"] for event in parsed.informational] == [
        b"</a.js>; rel=preload",
        b"</b.js>; rel=preload",
    ]


def test_empty_data_does_not_count_as_dropped() -> None:
    conn = ready_connection(b"HEAD", (1, 1))
    conn.send(Response(200))
    assert conn.send(Data(b"")) == b""
    conn.send(EndOfMessage())
    assert conn.body_dropped is False


def test_body_dropped_resets_for_the_next_response() -> None:
    conn = make_connection()
    conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
    while conn.next_event() is not PAUSED:
        pass
    conn.send(Response(200, [(b"content-length", b"5")]))
    assert conn.send(Data(BODY)) == b""
    conn.send(EndOfMessage())
    assert conn.body_dropped
    conn.start_next_cycle()
    while conn.next_event() is not PAUSED:
        pass
    conn.send(Response(200, [(b"content-length", b"5")]))
    assert conn.send(Data(BODY)) == BODY
    assert conn.body_dropped is False


# ------------------------------------------------------------ R1: response splitting

BAD_VALUES = [b"a\r\nX-Injected: y", b"a\nb", b"a\rb", b"a\x00b", b"\x7f", b"a\x1bb"]
BAD_NAMES = [b"X\r\nY", b"X\nY", b"X\x00", b"X Y", b"X:Y", b"", b"X\xe9"]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_r1_header_value_with_controls_is_refused(value: bytes) -> None:
    conn = ready_connection(b"GET", (1, 1))
    with pytest.raises(LocalProtocolError) as info:
        conn.send(Response(200, [(b"x-app", value), (b"content-length", b"0")]))
    assert info.value.status == 500
    error = conn.error_response(info.value)
    assert error.startswith(b"HTTP/1.1 500 ")
    assert b"x-injected" not in error.lower()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_r1_header_name_not_a_token_is_refused(name: bytes) -> None:
    conn = ready_connection(b"GET", (1, 1))
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200, [(name, b"v")]))
    assert conn.error_response(LocalProtocolError()).startswith(b"HTTP/1.1 500 ")


@pytest.mark.parametrize(
    ("status", "reason"),
    [(200, b"OK\r\nX-Injected: y"), (200, b"OK\n"), (200, b"O\x00K"), (99, b""), (1000, b"")],
)
def test_r1_bad_status_is_refused(status: int, reason: bytes) -> None:
    conn = ready_connection(b"GET", (1, 1))
    with pytest.raises(LocalProtocolError):
        conn.send(Response(status, [(b"content-length", b"0")], reason=reason))
    assert conn.error_response(LocalProtocolError()).startswith(b"HTTP/1.1 500 ")


@pytest.mark.parametrize("value", BAD_VALUES[:3])
def test_r1_early_hint_and_trailer_values_are_checked(value: bytes) -> None:
    conn = ready_connection(b"GET", (1, 1))
    with pytest.raises(LocalProtocolError):
        conn.send(InformationalResponse(103, [(b"link", value)]))
    conn.send(Response(200))
    with pytest.raises(LocalProtocolError):
        conn.send(EndOfMessage([(b"x-trailer", value)]))


@pytest.mark.parametrize("name", [b"content-length", b"transfer-encoding", b"host"])
def test_forbidden_response_trailers_are_refused(name: bytes) -> None:
    conn = ready_connection(b"GET", (1, 1))
    conn.send(Response(200))
    with pytest.raises(LocalProtocolError):
        conn.send(Trailers([(name, b"1")]))


def test_response_trailers_on_a_chunked_body() -> None:
    conn = ready_connection(b"GET", (1, 1))
    out = conn.send(Response(200)) + conn.send(Data(BODY))
    out += conn.send(EndOfMessage([(b"x-checksum", b"abc")]))
    assert out.endswith(b"5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n")
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("host", "a")]))
    client.send(h11.EndOfMessage())
    client.receive_data(out)
    events = []
    while not isinstance(event := client.next_event(), h11.EndOfMessage):
        events.append(event)
    assert list(event.headers) == [(b"x-checksum", b"abc")]


# ------------------------------------------- R2: no-body responses keep the stream in sync


@pytest.mark.parametrize(("method", "status"), [(b"HEAD", 200), (b"GET", 204), (b"GET", 304)])
def test_r2_dropped_body_keeps_pipelined_stream_in_sync(method: bytes, status: int) -> None:
    conn = make_connection()
    conn.receive_data(request_bytes(method, (1, 1)) + b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
    out = b""
    targets = []
    for app_status, body in ((status, b"must not be sent"), (200, b"second")):
        while (event := conn.next_event()) is not PAUSED:
            if isinstance(event, Request):
                targets.append(event.target)
        out += conn.send(Response(app_status))
        out += conn.send(Data(body))
        out += conn.send(EndOfMessage())
        if conn.keep_alive:
            conn.start_next_cycle()
    assert targets == [b"/", b"/second"]
    assert b"must not be sent" not in out

    client = h11.Connection(h11.CLIENT)
    seen = []
    for client_method, target in ((method, b"/"), (b"GET", b"/second")):
        client.send(h11.Request(method=client_method, target=target, headers=[("host", "a")]))
        client.send(h11.EndOfMessage())
        client.receive_data(out)
        out = b""
        body = b""
        while not isinstance(event := client.next_event(), h11.EndOfMessage):
            if isinstance(event, h11.Response):
                seen.append(event.status_code)
            elif isinstance(event, h11.Data):
                body += event.data
        client.start_next_cycle()
    assert seen == [status, 200]
    assert body == b"second"


# --------------------------------------------- R3: the app's Content-Length is binding


def test_r3_short_body_closes_the_connection() -> None:
    conn = ready_connection(b"GET", (1, 1))
    conn.send(Response(200, [(b"content-length", b"10")]))
    assert conn.send(Data(b"12345")) == b"12345"
    assert conn.send(EndOfMessage()) == b""
    assert conn.keep_alive is False


def test_r3_long_body_is_cut_at_content_length() -> None:
    conn = ready_connection(b"GET", (1, 1))
    conn.send(Response(200, [(b"content-length", b"10")]))
    assert conn.send(Data(b"0123456789abcdefghij")) == b"0123456789"
    conn.send(EndOfMessage())
    assert conn.keep_alive is False


def test_r3_extra_data_after_content_length_is_not_sent() -> None:
    conn = ready_connection(b"GET", (1, 1))
    conn.send(Response(200, [(b"content-length", b"10")]))
    assert conn.send(Data(b"0123456789")) == b"0123456789"
    assert conn.send(Data(b"extra")) == b""
    conn.send(EndOfMessage())
    assert conn.keep_alive is False


def test_r3_exact_content_length_keeps_the_connection() -> None:
    conn = ready_connection(b"GET", (1, 1))
    conn.send(Response(200, [(b"content-length", b"10")]))
    assert conn.send(Data(b"01234")) + conn.send(Data(b"56789")) == b"0123456789"
    conn.send(EndOfMessage())
    assert conn.keep_alive is True


@pytest.mark.parametrize("value", [b"-1", b"+5", b"0x5", b"5 5", b"", b"1" * 30])
def test_r3_invalid_content_length_from_app_is_refused(value: bytes) -> None:
    conn = ready_connection(b"GET", (1, 1))
    with pytest.raises(LocalProtocolError):
        conn.send(Response(200, [(b"content-length", value)]))


# ------------------------------------------------------------------ head details


def test_app_hop_by_hop_headers_are_replaced() -> None:
    conn = ready_connection(b"GET", (1, 1))
    out = conn.send(
        Response(
            200,
            [
                (b"connection", b"close"),
                (b"keep-alive", b"timeout=5"),
                (b"transfer-encoding", b"gzip"),
                (b"upgrade", b"h2c"),
                (b"content-length", b"0"),
            ],
        )
    )
    _, fields, _ = split_head(out)
    assert fields[b"connection"] == [b"keep-alive"]
    assert b"keep-alive" not in fields
    assert b"transfer-encoding" not in fields
    assert b"upgrade" not in fields


def test_app_date_and_server_are_kept() -> None:
    conn = ready_connection(b"GET", (1, 1))
    out = conn.send(
        Response(
            200,
            [
                (b"Date", b"Sun, 06 Nov 1994 08:49:37 GMT"),
                (b"Server", b"app"),
                (b"content-length", b"0"),
            ],
        )
    )
    _, fields, _ = split_head(out)
    assert fields[b"date"] == [b"Sun, 06 Nov 1994 08:49:37 GMT"]
    assert fields[b"server"] == [b"app"]


def test_close_after_response_is_announced() -> None:
    conn = ready_connection(b"GET", (1, 1))
    conn.close_after_response()
    out = conn.send(Response(200, [(b"content-length", b"0")])) + conn.send(EndOfMessage())
    _, fields, _ = split_head(out)
    assert fields[b"connection"] == [b"close"]
    assert conn.keep_alive is False


def test_http10_response_line_matches_the_request_version() -> None:
    conn = ready_connection(b"GET", (1, 0))
    out = conn.send(Response(200, [(b"content-length", b"0")]))
    assert out.startswith(b"HTTP/1.0 200 OK\r\n")


def test_custom_reason_phrase() -> None:
    conn = ready_connection(b"GET", (1, 1))
    out = conn.send(Response(299, [(b"content-length", b"0")], reason=b"Fine Thanks"))
    assert out.startswith(b"HTTP/1.1 299 Fine Thanks\r\n")
