"""uwsgi request packets turned into the same Request event as HTTP/1."""

from __future__ import annotations

import struct

import pytest

from gunicorn.http.errors import (
    InvalidUWSGIHeader,
    LimitRequestHeaders,
    LimitRequestLine,
    NoMoreData,
    ProtocolError,
)
from gunicorn.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
)
from gunicorn.http.h1 import NEED_DATA, PAUSED
from gunicorn.http.limits import Limits
from gunicorn.http.uwsgi import UWSGIConnection, parse_uwsgi_packet

Vars = list[tuple[bytes, bytes]]


def block(pairs: Vars) -> bytes:
    """The vars block: little-endian 16-bit length before each key and each value."""
    return b"".join(
        struct.pack("<H", len(key)) + key + struct.pack("<H", len(value)) + value
        for key, value in pairs
    )


def packet(pairs: Vars, *, modifier1: int = 0, modifier2: int = 0) -> bytes:
    body = block(pairs)
    return struct.pack("<BHB", modifier1, len(body), modifier2) + body


# What nginx's stock uwsgi_params sends for `GET /hello?x=1` plus the request headers.
NGINX_GET: Vars = [
    (b"QUERY_STRING", b"x=1"),
    (b"REQUEST_METHOD", b"GET"),
    (b"CONTENT_TYPE", b""),
    (b"CONTENT_LENGTH", b""),
    (b"REQUEST_URI", b"/hello?x=1"),
    (b"PATH_INFO", b"/hello"),
    (b"DOCUMENT_ROOT", b"/usr/share/nginx/html"),
    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"REQUEST_SCHEME", b"http"),
    (b"REMOTE_ADDR", b"127.0.0.1"),
    (b"REMOTE_PORT", b"51234"),
    (b"SERVER_PORT", b"80"),
    (b"SERVER_NAME", b"example.com"),
    (b"HTTP_HOST", b"example.com"),
    (b"HTTP_USER_AGENT", b"curl/8.0"),
    (b"HTTP_ACCEPT", b"*/*"),
]


def parse(pairs: Vars, extra: bytes = b"") -> tuple[Request, int, dict[bytes, bytes]]:
    result = parse_uwsgi_packet(packet(pairs) + extra)
    assert result is not None
    return result


def request_of(pairs: Vars) -> Request:
    return parse(pairs)[0]


def replace(pairs: Vars, **changes: bytes) -> Vars:
    """Copy of ``pairs`` with vars set (a value of b"-" removes the var)."""
    keys = {key.encode(): value for key, value in changes.items()}
    out = [(k, keys.pop(k, v)) for k, v in pairs]
    out.extend(keys.items())
    return [(k, v) for k, v in out if v != b"-"]


# -- valid packets ---------------------------------------------------------------------


def test_nginx_get() -> None:
    data = packet(NGINX_GET)
    request, consumed, variables = parse(NGINX_GET, extra=b"next packet")
    assert consumed == len(data)
    assert request == Request(
        b"GET",
        b"/hello?x=1",
        (1, 1),
        [
            (b"host", b"example.com"),
            (b"user-agent", b"curl/8.0"),
            (b"accept", b"*/*"),
        ],
        path=b"/hello",
        query=b"x=1",
        scheme=b"http",
        authority=b"example.com",
        content_length=0,
        keep_alive=True,
        stream_id=1,
    )
    assert variables == dict(NGINX_GET)


def test_post_with_body_framing() -> None:
    pairs = replace(
        NGINX_GET,
        REQUEST_METHOD=b"POST",
        CONTENT_LENGTH=b"11",
        CONTENT_TYPE=b"application/json",
        HTTP_CONTENT_LENGTH=b"11",
        HTTP_CONTENT_TYPE=b"application/json",
    )
    request, consumed, _ = parse(pairs, extra=b'{"a": true}')
    assert consumed == len(packet(pairs))
    assert request.method == b"POST"
    assert request.content_length == 11
    assert not request.chunked
    assert request.has_body
    # Each appears once even though nginx sends both the CGI and the HTTP_ form.
    assert [name for name, _ in request.headers].count(b"content-length") == 1
    assert request.header(b"content-length") == b"11"
    assert request.header(b"content-type") == b"application/json"


def test_content_type_falls_back_to_http_var() -> None:
    pairs = replace(NGINX_GET, CONTENT_TYPE=b"-", HTTP_CONTENT_TYPE=b"text/plain")
    assert request_of(pairs).header(b"content-type") == b"text/plain"


def test_content_length_from_http_var_alone() -> None:
    pairs = replace(NGINX_GET, CONTENT_LENGTH=b"-", HTTP_CONTENT_LENGTH=b"5")
    assert request_of(pairs).content_length == 5


def test_empty_content_vars_mean_no_body() -> None:
    request = request_of(NGINX_GET)
    assert request.content_length == 0
    assert not request.has_body
    assert request.header(b"content-length") is None
    assert request.header(b"content-type") is None


def test_minimal_packet() -> None:
    request, consumed, variables = parse([(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/")])
    assert request == Request(b"GET", b"/", (1, 1), [], path=b"/", scheme=b"http", content_length=0)
    assert consumed == len(packet([(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/")]))
    assert variables == {b"REQUEST_METHOD": b"GET", b"PATH_INFO": b"/"}


@pytest.mark.parametrize(
    ("changes", "target", "path", "query"),
    [
        ({"REQUEST_URI": b"/a%20b/c?q=%41#frag"}, b"/a%20b/c?q=%41#frag", b"/a%20b/c", b"q=%41"),
        ({"REQUEST_URI": b"*"}, b"*", b"*", b""),
        ({"REQUEST_URI": b"/caf\xc3\xa9"}, b"/caf\xc3\xa9", b"/caf\xc3\xa9", b""),
        # Without REQUEST_URI: PATH_INFO (decoded by the front server) is re-encoded.
        ({"REQUEST_URI": b"-"}, b"/hello?x=1", b"/hello", b"x=1"),
        (
            {"REQUEST_URI": b"-", "PATH_INFO": b"/a b/100%/?#", "QUERY_STRING": b""},
            b"/a%20b/100%25/%3F%23",
            b"/a%20b/100%25/%3F%23",
            b"",
        ),
        (
            {"REQUEST_URI": b"-", "PATH_INFO": b"/caf\xc3\xa9", "QUERY_STRING": b"-"},
            b"/caf%C3%A9",
            b"/caf%C3%A9",
            b"",
        ),
    ],
)
def test_target(changes: dict[str, bytes], target: bytes, path: bytes, query: bytes) -> None:
    request = request_of(replace(NGINX_GET, **changes))
    assert (request.target, request.path, request.query) == (target, path, query)


def test_fragment_is_split_off() -> None:
    assert request_of(replace(NGINX_GET, REQUEST_URI=b"/p?q#f")).fragment == b"f"


@pytest.mark.parametrize(
    ("protocol", "version"),
    [
        (b"HTTP/1.1", (1, 1)),
        (b"HTTP/1.0", (1, 0)),
        (b"HTTP/2.0", (2, 0)),
        (b"HTTP/2", (2, 0)),
        (b"HTTP/3.0", (3, 0)),
        (b"", (1, 1)),
        (b"-", (1, 1)),
    ],
)
def test_version(protocol: bytes, version: tuple[int, int]) -> None:
    assert request_of(replace(NGINX_GET, SERVER_PROTOCOL=protocol)).version == version


@pytest.mark.parametrize(
    ("changes", "scheme"),
    [
        ({}, b"http"),
        ({"HTTPS": b"on"}, b"https"),
        ({"HTTPS": b"ON"}, b"https"),
        ({"HTTPS": b"1"}, b"https"),
        ({"HTTPS": b"off"}, b"http"),
        ({"HTTPS": b""}, b"http"),
        ({"UWSGI_SCHEME": b"https"}, b"https"),
        ({"UWSGI_SCHEME": b"http"}, b"http"),
        ({"wsgi.url_scheme": b"https"}, b"https"),
        ({"REQUEST_SCHEME": b"https"}, b"https"),
    ],
)
def test_scheme(changes: dict[str, bytes], scheme: bytes) -> None:
    assert request_of(replace(NGINX_GET, **changes)).scheme == scheme


@pytest.mark.parametrize(
    ("connection", "keep_alive"),
    [
        (b"-", True),
        (b"keep-alive", True),
        (b"close", False),
        (b"Close", False),
        (b"upgrade, close", False),
        (b"closed", True),
    ],
)
def test_keep_alive(connection: bytes, keep_alive: bool) -> None:
    request = request_of(replace(NGINX_GET, HTTP_CONNECTION=connection))
    assert request.keep_alive is keep_alive


def test_header_names_and_values() -> None:
    pairs = [
        (b"REQUEST_METHOD", b"GET"),
        (b"REQUEST_URI", b"/"),
        (b"HTTP_X_FORWARDED_FOR", b"10.0.0.1"),
        (b"HTTP_ACCEPT_ENCODING", b"  gzip \t"),
        (b"HTTP_X_EMPTY", b""),
        (b"HTTP_COOKIE", b"a=1"),
        (b"HTTP_COOKIE", b"b=2"),
        (b"HTTP_X_OBS", b"caf\xc3\xa9"),
    ]
    request, _, variables = parse(pairs)
    assert request.headers == [
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"accept-encoding", b"gzip"),
        (b"x-empty", b""),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
        (b"x-obs", b"caf\xc3\xa9"),
    ]
    assert request.authority is None
    # The raw vars as sent; a repeated name keeps its last value.
    assert variables[b"HTTP_COOKIE"] == b"b=2"
    assert variables[b"HTTP_ACCEPT_ENCODING"] == b"  gzip \t"


def test_modifier2_is_ignored() -> None:
    data = packet(NGINX_GET, modifier2=7)
    result = parse_uwsgi_packet(data)
    assert result is not None and result[1] == len(data)


def test_thousand_vars_accepted() -> None:
    pairs = [(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/")]
    pairs += [(b"V%d" % i, b"") for i in range(998)]
    assert len(parse(pairs)[2]) == 1000


def test_bytearray_input() -> None:
    result = parse_uwsgi_packet(bytearray(packet(NGINX_GET)))
    assert result is not None and result[0].path == b"/hello"


@pytest.mark.parametrize(
    "pairs",
    [
        NGINX_GET,
        [(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/")],
        replace(NGINX_GET, REQUEST_METHOD=b"POST", CONTENT_LENGTH=b"3"),
    ],
)
def test_byte_by_byte(pairs: Vars) -> None:
    data = packet(pairs)
    for end in range(len(data)):
        assert parse_uwsgi_packet(data[:end]) is None, data[:end]
    whole = parse_uwsgi_packet(data)
    assert whole is not None
    assert whole[1] == len(data)
    assert whole == parse_uwsgi_packet(data + b"body")


# -- malformed packets -----------------------------------------------------------------


@pytest.mark.parametrize("modifier1", [1, 5, 30, 255])
def test_modifier1_other_than_zero(modifier1: int) -> None:
    data = packet(NGINX_GET, modifier1=modifier1)
    with pytest.raises(InvalidUWSGIHeader):
        parse_uwsgi_packet(data)
    # Known from the first byte.
    with pytest.raises(InvalidUWSGIHeader):
        parse_uwsgi_packet(data[:1])


def test_error_is_a_400() -> None:
    with pytest.raises(InvalidUWSGIHeader) as info:
        parse_uwsgi_packet(packet(NGINX_GET, modifier1=1))
    assert info.value.status == 400


GOOD = [(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/")]

MALFORMED_BLOCKS = [
    # a key length byte pair cut short
    block(GOOD) + b"\x05",
    # key longer than the block
    block(GOOD) + struct.pack("<H", 10) + b"KEY",
    # value length missing
    block(GOOD) + struct.pack("<H", 3) + b"KEY",
    block(GOOD) + struct.pack("<H", 3) + b"KEY\x01",
    # value longer than the block
    block(GOOD) + struct.pack("<H", 3) + b"KEY" + struct.pack("<H", 4) + b"val",
    # empty name
    block(GOOD) + struct.pack("<H", 0) + struct.pack("<H", 1) + b"v",
]


@pytest.mark.parametrize("vars_block", MALFORMED_BLOCKS)
def test_lengths_must_fit_exactly(vars_block: bytes) -> None:
    data = struct.pack("<BHB", 0, len(vars_block), 0) + vars_block
    with pytest.raises(InvalidUWSGIHeader):
        parse_uwsgi_packet(data)
    for end in range(len(data)):
        assert parse_uwsgi_packet(data[:end]) is None


def test_declared_size_shorter_than_vars() -> None:
    # The size ends inside a var: the rest would be read as body, so it is an error.
    vars_block = block(GOOD)
    data = struct.pack("<BHB", 0, len(vars_block) - 1, 0) + vars_block
    with pytest.raises(InvalidUWSGIHeader):
        parse_uwsgi_packet(data)


def test_more_than_thousand_vars() -> None:
    pairs = GOOD + [(b"V%d" % i, b"") for i in range(999)]
    with pytest.raises(InvalidUWSGIHeader, match="1000"):
        parse_uwsgi_packet(packet(pairs))


@pytest.mark.parametrize(
    "changes",
    [
        # body length
        {"CONTENT_LENGTH": b"abc"},
        {"CONTENT_LENGTH": b"-1"},
        {"CONTENT_LENGTH": b"+5"},
        {"CONTENT_LENGTH": b" 5"},
        {"CONTENT_LENGTH": b"5 "},
        {"CONTENT_LENGTH": b"0x10"},
        {"CONTENT_LENGTH": b"\xd9\xa3"},
        {"CONTENT_LENGTH": b"1" * 20},
        {"CONTENT_LENGTH": b"9" * 5000},
        {"CONTENT_LENGTH": b"5", "HTTP_CONTENT_LENGTH": b"6"},
        {"CONTENT_LENGTH": b"5", "HTTP_CONTENT_LENGTH": b"05"},
        # method
        {"REQUEST_METHOD": b"-"},
        {"REQUEST_METHOD": b""},
        {"REQUEST_METHOD": b"GE T"},
        {"REQUEST_METHOD": b"GET\r\n"},
        {"REQUEST_METHOD": b"G\xc3\xa9T"},
        # target
        {"REQUEST_URI": b"-", "PATH_INFO": b"-"},
        {"REQUEST_URI": b"-", "PATH_INFO": b""},
        {"REQUEST_URI": b"/a b"},
        {"REQUEST_URI": b"/a\tb"},
        {"REQUEST_URI": b"/a\x7fb"},
        {"REQUEST_URI": b"/a\x00b"},
        {"REQUEST_URI": b"/a\r\nb"},
        # version
        {"SERVER_PROTOCOL": b"HTTP/1.1.1"},
        {"SERVER_PROTOCOL": b"HTTP/11.0"},
        {"SERVER_PROTOCOL": b"HTTP/"},
        {"SERVER_PROTOCOL": b"HTTP/1."},
        {"SERVER_PROTOCOL": b"FTP/1.0"},
        {"SERVER_PROTOCOL": b"http/1.1"},
        # header vars
        {"HTTP_": b"x"},
        {"HTTP_X_A B": b"x"},
        {"HTTP_X:Y": b"x"},
        {"HTTP_X_INJECT": b"a\r\nb"},
        {"HTTP_X_INJECT": b"a\nb"},
        {"HTTP_X_INJECT": b"a\x00b"},
        {"HTTP_X_INJECT": b"a\x01b"},
        {"HTTP_X_INJECT": b"a\x7fb"},
        # CGI vars must not smuggle line breaks either
        {"SERVER_NAME": b"a\r\nb"},
        {"SCRIPT_NAME": b"/a\x00"},
    ],
)
def test_invalid_vars(changes: dict[str, bytes]) -> None:
    data = packet(replace(NGINX_GET, **changes))
    with pytest.raises(InvalidUWSGIHeader):
        parse_uwsgi_packet(data)
    for end in range(len(data)):
        assert parse_uwsgi_packet(data[:end]) is None


# -- the connection --------------------------------------------------------------------


def connection(**limits: int) -> UWSGIConnection:
    return UWSGIConnection(Limits(**limits), clock=lambda: 784111777.0)


def events(conn: UWSGIConnection) -> list[object]:
    """Events until the connection needs data, pauses or closes."""
    out: list[object] = []
    while True:
        event = conn.next_event()
        out.append(event)
        if event is NEED_DATA or event is PAUSED or isinstance(event, ConnectionClosed):
            return out


def head_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n")[0].split(b"\r\n")


def test_connection_get_without_content_length_closes() -> None:
    conn = connection()
    conn.receive_data(packet(NGINX_GET))
    got = events(conn)
    assert got == [request_of(NGINX_GET), EndOfMessage(), PAUSED]
    assert conn.uwsgi_vars == dict(NGINX_GET)
    head = conn.send(Response(200, [(b"Content-Type", b"text/plain")]))
    lines = head_lines(head)
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Connection: close" in lines
    assert b"Date: Sun, 06 Nov 1994 08:49:37 GMT" in lines
    assert not any(line.lower().startswith(b"transfer-encoding") for line in lines)
    # The body goes out as is (close-delimited), never chunk-framed.
    assert conn.send(Data(b"hello")) == b"hello"
    assert conn.send(EndOfMessage()) == b""
    assert not conn.keep_alive


def test_connection_keep_alive_with_content_length_and_pipelining() -> None:
    second = replace(NGINX_GET, REQUEST_URI=b"/second", PATH_INFO=b"/second")
    conn = connection()
    conn.receive_data(packet(NGINX_GET) + packet(second))
    assert events(conn)[0] == request_of(NGINX_GET)
    head = conn.send(Response(200, [(b"Content-Length", b"2")]))
    assert b"Connection: keep-alive" in head_lines(head)
    assert conn.send(Data(b"ok")) == b"ok"
    conn.send(EndOfMessage())
    assert conn.keep_alive
    conn.start_next_cycle()
    got = events(conn)
    assert isinstance(got[0], Request) and got[0].target == b"/second"
    assert conn.uwsgi_vars[b"REQUEST_URI"] == b"/second"


def test_connection_close_requested_by_client() -> None:
    conn = connection()
    conn.receive_data(packet(replace(NGINX_GET, HTTP_CONNECTION=b"close")))
    events(conn)
    head = conn.send(Response(204))
    assert b"Connection: close" in head_lines(head)
    assert not conn.keep_alive


def test_connection_body_byte_by_byte() -> None:
    pairs = replace(NGINX_GET, REQUEST_METHOD=b"POST", CONTENT_LENGTH=b"5")
    conn = connection()
    body = b""
    seen: list[object] = []
    for byte in packet(pairs) + b"hello":
        conn.receive_data(bytes([byte]))
        for event in events(conn):
            if isinstance(event, Data):
                body += event.data
            elif event is not NEED_DATA:
                seen.append(event)
    assert body == b"hello"
    assert seen == [request_of(pairs), EndOfMessage(), PAUSED]


def test_connection_unread_body_is_skipped_before_the_next_packet() -> None:
    pairs = replace(NGINX_GET, REQUEST_METHOD=b"POST", CONTENT_LENGTH=b"4")
    conn = connection()
    conn.receive_data(packet(pairs) + b"body" + packet(NGINX_GET))
    assert isinstance(conn.next_event(), Request)
    conn.send(Response(200, [(b"Content-Length", b"0")]))
    conn.send(EndOfMessage())
    conn.start_next_cycle()
    assert conn.next_event() == request_of(NGINX_GET)


def test_connection_head_response_has_no_body() -> None:
    conn = connection()
    conn.receive_data(packet(replace(NGINX_GET, REQUEST_METHOD=b"HEAD")))
    events(conn)
    conn.send(Response(200, [(b"Content-Length", b"5")]))
    assert conn.send(Data(b"hello")) == b""
    assert conn.body_dropped


def test_connection_sends_no_informational_responses() -> None:
    conn = connection()
    conn.receive_data(packet(replace(NGINX_GET, HTTP_EXPECT=b"100-continue")))
    request = events(conn)[0]
    assert isinstance(request, Request) and not request.expect_continue
    assert conn.send_continue() == b""
    assert conn.send(InformationalResponse(103, [(b"Link", b"</a.css>; rel=preload")])) == b""
    assert conn.send(Response(200, [(b"Content-Length", b"0")])).startswith(b"HTTP/1.1 200 ")


def test_connection_eof() -> None:
    conn = connection()
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), ConnectionClosed)

    conn = connection()
    conn.receive_data(packet(NGINX_GET)[:10])
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(NoMoreData):
        conn.next_event()

    conn = connection()
    conn.receive_data(packet(replace(NGINX_GET, CONTENT_LENGTH=b"10")) + b"short")
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), Request)
    assert conn.next_event() == Data(b"short")
    with pytest.raises(NoMoreData):
        conn.next_event()


def test_connection_malformed_packet_gets_a_400() -> None:
    conn = connection()
    conn.receive_data(packet(NGINX_GET, modifier1=9))
    with pytest.raises(InvalidUWSGIHeader) as info:
        conn.next_event()
    # The connection stays failed.
    with pytest.raises(InvalidUWSGIHeader):
        conn.next_event()
    response = conn.error_response(info.value)
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close" in head_lines(response)
    assert not conn.keep_alive


@pytest.mark.parametrize(
    ("limits", "changes", "error", "status"),
    [
        ({"max_header_fields": 2}, {}, LimitRequestHeaders, 431),
        ({"max_header_field_size": 20}, {"HTTP_X_LONG": b"x" * 20}, LimitRequestHeaders, 431),
        ({"max_request_line": 30}, {"REQUEST_URI": b"/" + b"a" * 30}, LimitRequestLine, 414),
    ],
)
def test_connection_limits(
    limits: dict[str, int], changes: dict[str, bytes], error: type[ProtocolError], status: int
) -> None:
    conn = connection(**limits)
    conn.receive_data(packet(replace(NGINX_GET, **changes)))
    with pytest.raises(error) as info:
        conn.next_event()
    assert conn.error_response(info.value).startswith(b"HTTP/1.1 %d " % status)


def test_connection_within_limits() -> None:
    conn = connection(max_header_fields=3, max_request_line=30)
    conn.receive_data(packet(NGINX_GET))
    assert isinstance(conn.next_event(), Request)


def test_connection_field_size_counts_a_field_as_its_http1_line() -> None:
    """A field counts as the HTTP/1 line "name: value" with its CRLF (as gunicorn)."""
    fits = connection(max_header_field_size=100)
    fits.receive_data(packet(replace(NGINX_GET, HTTP_X_LONG=b"v" * (100 - 6 - 4))))
    assert isinstance(fits.next_event(), Request)
    past = connection(max_header_field_size=100)
    past.receive_data(packet(replace(NGINX_GET, HTTP_X_LONG=b"v" * (100 - 6 - 3))))
    with pytest.raises(LimitRequestHeaders):
        past.next_event()
