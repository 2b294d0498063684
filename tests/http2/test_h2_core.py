"""The sans-IO HTTP/2 core (gunicorn.http.h2.H2Connection), driven in-process by an
``h2`` client or by hand-written frames. No sockets, no sleeps: a fake clock."""

from __future__ import annotations

import h2.connection
import h2.events as h2e
import hpack
import pytest
from h2.settings import SettingCodes
from hpack import NeverIndexedHeaderTuple
from hyperframe.frame import (
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from gunicorn.http.connection import NEED_DATA, ServerConnection
from gunicorn.http.error_page import error_page
from gunicorn.http.errors import (
    InvalidResponseHeader,
    LocalProtocolError,
    ProtocolError,
    ResponseStateError,
)
from gunicorn.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    InformationalResponse,
    Request,
    Response,
    StreamReset,
    Trailers,
)
from gunicorn.http.h2 import H2Connection
from gunicorn.http.h2_engine import ServerFrameBuffer
from gunicorn.http.h2_hpack import (
    CompressionError,
    ServerDecoder,
    ServerEncoder,
    encode_integer,
    encode_string,
    huffman_encode,
)
from gunicorn.http.limits import Limits, Policy
from gunicorn.http.negotiate import PREFACE, InvalidHTTP2Settings
from tests.http2.h2_client_helpers import (
    GET,
    FakeClock,
    Pair,
    RawPeer,
    drain,
    frames_of,
    make_server,
    request_fields,
)

PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB
NO_ERROR = 0x0


def requests_of(events: list) -> list[Request]:
    return [e for e in events if isinstance(e, Request)]


def answer(pair: Pair, sid: int, body: bytes = b"ok", headers=None, status: int = 200) -> None:
    server = pair.server
    pair.to_client(server.send(Response(status, headers or [], stream_id=sid)))
    if body:
        pair.to_client(server.send(Data(body, sid)))
    pair.to_client(server.send(EndOfMessage(None, sid)))
    server.finish_stream(sid)
    pair.exchange()


def response_headers(pair: Pair, sid: int) -> dict[bytes, bytes]:
    (event,) = pair.of(h2e.ResponseReceived, sid)
    return dict(event.headers)


# ------------------------------------------------------------------ requests


def test_get_request_event_and_response() -> None:
    pair = Pair()
    sid = pair.request(request_fields(b"GET", b"/a/b?x=1&y=2", (b"accept", b"*/*")))
    request, end = pair.events()
    assert isinstance(request, Request)
    assert (request.method, request.target, request.path, request.query) == (
        b"GET",
        b"/a/b?x=1&y=2",
        b"/a/b",
        b"x=1&y=2",
    )
    assert request.version == (2, 0)
    assert request.stream_id == sid
    assert request.scheme is None  # the transport decides
    assert request.authority == b"example.com"
    # :authority stands in for Host; pseudo-headers are not fields.
    assert request.headers == [(b"host", b"example.com"), (b"accept", b"*/*")]
    assert not request.has_body
    assert end == EndOfMessage([], sid)

    answer(pair, sid, b"hello", [(b"Content-Type", b"text/plain")])
    fields = response_headers(pair, sid)
    assert fields[b":status"] == b"200"
    assert fields[b"content-type"] == b"text/plain"
    assert fields[b"server"] == b"gunicorn"
    assert fields[b"date"] == b"Mon, 12 Jan 1970 13:46:40 GMT"
    assert pair.body(sid) == b"hello"
    assert pair.of(h2e.StreamEnded, sid)
    assert pair.server.open_streams == 0


def test_post_body_is_streamed_as_data_events() -> None:
    pair = Pair()
    fields = request_fields(b"POST", b"/upload", (b"content-length", b"11"))
    sid = pair.request(fields, body=b"hello", end=False)
    request, data = pair.events()
    assert request.has_body and request.content_length == 11
    assert data == Data(b"hello", sid)
    pair.client.send_data(sid, b" world", end_stream=True)
    pair.exchange()
    assert pair.events() == [Data(b" world", sid), EndOfMessage([], sid)]


def test_cookie_crumbs_are_joined() -> None:
    pair = Pair()
    pair.request(
        request_fields(b"GET", b"/", (b"cookie", b"a=1"), (b"x", b"y"), (b"cookie", b"b=2"))
    )
    request = pair.events()[0]
    assert request.headers == [
        (b"host", b"example.com"),
        (b"cookie", b"a=1; b=2"),
        (b"x", b"y"),
    ]


def test_host_field_is_kept_when_it_matches() -> None:
    pair = Pair()
    fields = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b"host", b"h:80")]
    pair.request(fields)
    request = pair.events()[0]
    assert request.authority == b"h:80"
    assert request.headers == [(b"host", b"h:80")]


def test_concurrent_streams_interleave() -> None:
    pair = Pair()
    client = pair.client
    sids = [1, 3, 5]
    for sid in sids:
        client.send_headers(sid, request_fields(b"POST", b"/%d" % sid))
    for part in (b"a", b"b"):
        for sid in sids:
            client.send_data(sid, part + b"%d" % sid)
    for sid in reversed(sids):
        client.end_stream(sid)
    pair.exchange()
    events = pair.events()
    assert [e.stream_id for e in requests_of(events)] == sids
    for sid in sids:
        data = [e.data for e in events if isinstance(e, Data) and e.stream_id == sid]
        assert data == [b"a%d" % sid, b"b%d" % sid]
    ends = [e.stream_id for e in events if isinstance(e, EndOfMessage)]
    assert ends == [5, 3, 1]
    for sid in (3, 1, 5):
        answer(pair, sid, b"r%d" % sid)
    assert [pair.body(sid) for sid in sids] == [b"r1", b"r3", b"r5"]


def test_request_trailers() -> None:
    pair = Pair()
    sid = pair.request(request_fields(b"POST", b"/"), body=b"x", end=False)
    pair.client.send_headers(sid, [(b"checksum", b"abc")], end_stream=True)
    pair.exchange()
    assert pair.events()[-1] == EndOfMessage([(b"checksum", b"abc")], sid)


# ------------------------------------------------------- malformed requests

MALFORMED = {
    "uppercase name": request_fields(b"GET", b"/", (b"Accept", b"x")),
    "name not a token": request_fields(b"GET", b"/", (b"a b", b"x")),
    "pseudo after regular": [*GET[:2], (b"accept", b"x"), *GET[2:]],
    "unknown pseudo": request_fields(b"GET", b"/", (b":foo", b"x")),
    "response pseudo": [(b":status", b"200"), *GET],
    "duplicate :path": [*GET, (b":path", b"/b")],
    "missing :method": GET[1:],
    "missing :scheme": [GET[0], *GET[2:]],
    "missing :path": [*GET[:2], GET[3]],
    "empty :path": request_fields(b"GET", b""),
    "relative :path": request_fields(b"GET", b"a/b"),
    "asterisk :path for GET": request_fields(b"GET", b"*"),
    "space in :path": request_fields(b"GET", b"/a b"),
    "fragment in :path": request_fields(b"GET", b"/a#b"),
    "connection": request_fields(b"GET", b"/", (b"connection", b"keep-alive")),
    "keep-alive": request_fields(b"GET", b"/", (b"keep-alive", b"5")),
    "proxy-connection": request_fields(b"GET", b"/", (b"proxy-connection", b"x")),
    "transfer-encoding": request_fields(b"GET", b"/", (b"transfer-encoding", b"chunked")),
    "upgrade": request_fields(b"GET", b"/", (b"upgrade", b"h2c")),
    "te gzip": request_fields(b"GET", b"/", (b"te", b"gzip")),
    "CR in value": request_fields(b"GET", b"/", (b"x", b"a\rb")),
    "LF in value": request_fields(b"GET", b"/", (b"x", b"a\nb")),
    "NUL in value": request_fields(b"GET", b"/", (b"x", b"a\x00b")),
    "control in value": request_fields(b"GET", b"/", (b"x", b"a\x01b")),
    "leading space": request_fields(b"GET", b"/", (b"x", b" a")),
    "trailing tab": request_fields(b"GET", b"/", (b"x", b"a\t")),
    "content-length not a number": request_fields(b"POST", b"/", (b"content-length", b"1x")),
    "content-length without body": request_fields(b"POST", b"/", (b"content-length", b"3")),
    "host differs from :authority": request_fields(b"GET", b"/", (b"host", b"other")),
    "invalid :authority": [*GET[:3], (b":authority", b"a b")],
    "duplicate host": [*GET[:3], (b"host", b"a"), (b"host", b"a")],
    "duplicate content-type": request_fields(
        b"GET", b"/", (b"content-type", b"a/b"), (b"content-type", b"a/b")
    ),
    "method not a token": request_fields(b"GE T", b"/"),
    "lowercase method": request_fields(b"get", b"/"),
    "CONNECT with :path": [(b":method", b"CONNECT"), (b":authority", b"a:443"), (b":path", b"/")],
}


@pytest.mark.parametrize("fields", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_request_resets_the_stream(fields: list[tuple[bytes, bytes]]) -> None:
    peer = RawPeer()
    peer.send(peer.headers(1, fields))
    assert peer.resets() == {1: PROTOCOL_ERROR}
    assert peer.events() == []
    # The connection lives on.
    peer.send(peer.headers(3, GET))
    assert [e.stream_id for e in requests_of(peer.events())] == [3]
    assert peer.goaway() is None


def body_case(peer: RawPeer, length: bytes, *chunks: bytes) -> list:
    """The events of a request with this Content-Length and body, taken as they come."""
    peer.send(peer.headers(1, request_fields(b"POST", b"/", (b"content-length", length)), False))
    events = peer.events()
    for index, chunk in enumerate(chunks):
        peer.send(peer.data(1, chunk, end_stream=index == len(chunks) - 1))
        events += peer.events()
    return events


def test_body_longer_than_content_length_resets() -> None:
    peer = RawPeer()
    events = body_case(peer, b"2", b"abc")
    assert peer.resets() == {1: PROTOCOL_ERROR}
    # The request was already delivered: the application learns the stream died.
    assert events[-1] == StreamReset(PROTOCOL_ERROR, 1)
    assert not any(isinstance(e, Data) for e in events)


def test_body_shorter_than_content_length_resets_at_end() -> None:
    peer = RawPeer()
    events = body_case(peer, b"5", b"ab", b"c")
    assert peer.resets() == {1: PROTOCOL_ERROR}
    assert [type(e) for e in events] == [Request, Data, Data, StreamReset]


def test_trailers_with_pseudo_header_reset() -> None:
    peer = RawPeer()
    peer.send(peer.headers(1, request_fields(b"POST", b"/"), end_stream=False))
    assert requests_of(peer.events())
    peer.send(peer.headers(1, [(b":path", b"/x")], end_stream=True))
    assert peer.resets() == {1: PROTOCOL_ERROR}
    assert peer.events() == [StreamReset(PROTOCOL_ERROR, 1)]


def test_trailers_without_end_stream_reset() -> None:
    peer = RawPeer()
    peer.send(peer.headers(1, request_fields(b"POST", b"/"), end_stream=False))
    assert requests_of(peer.events())
    peer.send(peer.headers(1, [(b"x", b"y")], end_stream=False))
    assert peer.resets() == {1: PROTOCOL_ERROR}
    assert peer.goaway() is None
    assert peer.events() == [StreamReset(PROTOCOL_ERROR, 1)]


def test_forbidden_trailer_resets() -> None:
    peer = RawPeer()
    peer.send(peer.headers(1, request_fields(b"POST", b"/"), end_stream=False))
    peer.send(peer.headers(1, [(b"content-length", b"1")], end_stream=True))
    assert peer.resets() == {1: PROTOCOL_ERROR}


def test_connect_is_answered_501() -> None:
    pair = Pair()
    sid = pair.request([(b":method", b"CONNECT"), (b":authority", b"example.com:443")])
    assert pair.events() == []
    assert response_headers(pair, sid)[b":status"] == b"501"
    assert pair.server.open_streams == 0


# ------------------------------------------------------------ policy, limits


def test_underscore_field_dropped_by_default() -> None:
    pair = Pair()
    pair.request(request_fields(b"GET", b"/", (b"x_forwarded", b"1"), (b"ok", b"2")))
    assert pair.events()[0].headers == [(b"host", b"example.com"), (b"ok", b"2")]


def test_underscore_field_refused() -> None:
    peer = RawPeer(make_server(policy=Policy(header_map="refuse")))
    peer.send(peer.headers(1, request_fields(b"GET", b"/", (b"x_a", b"1"))))
    assert peer.resets() == {1: PROTOCOL_ERROR}
    assert peer.events() == []


@pytest.mark.parametrize(
    ("policy", "trusted"),
    [
        (Policy(header_map="dangerous"), False),
        (Policy(forwarder_headers=frozenset({b"x_a"})), True),
    ],
)
def test_underscore_field_kept(policy: Policy, trusted: bool) -> None:
    pair = Pair(make_server(policy=policy, trusted=trusted))
    pair.request(request_fields(b"GET", b"/", (b"x_a", b"1")))
    assert (b"x_a", b"1") in pair.events()[0].headers


def test_untrusted_forwarder_header_dropped() -> None:
    pair = Pair(make_server(policy=Policy(forwarder_headers=frozenset({b"x_a"}))))
    pair.request(request_fields(b"GET", b"/", (b"x_a", b"1")))
    assert (b"x_a", b"1") not in pair.events()[0].headers


def test_unconventional_method_permitted_and_casefolded() -> None:
    policy = Policy(permit_unconventional_http_method=True, casefold_http_method=True)
    pair = Pair(make_server(policy=policy))
    pair.request(request_fields(b"purge", b"/"))
    assert pair.events()[0].method == b"PURGE"


@pytest.mark.parametrize(
    ("limits", "extra", "status"),
    [
        (Limits(max_request_line=20), [(b":path", b"/" + b"a" * 20)], b"414"),
        (Limits(max_header_fields=3), [(b"a", b"1")] * 4, b"431"),
        (Limits(max_header_field_size=20), [(b"x", b"a" * 18)], b"431"),
        (Limits(), [(b"expect", b"something")], b"417"),
    ],
    ids=["path too long", "too many fields", "field too large", "unknown expectation"],
)
def test_limits_are_answered(limits: Limits, extra: list, status: bytes) -> None:
    pair = Pair(make_server(limits))
    fields = [f for f in GET if f[0] != b":path" or not any(k == b":path" for k, _ in extra)]
    pseudo = [f for f in extra if f[0].startswith(b":")]
    regular = [f for f in extra if not f[0].startswith(b":")]
    sid = pair.request(fields[:2] + pseudo + fields[2:] + regular)
    assert pair.events() == []
    headers = response_headers(pair, sid)
    assert headers[b":status"] == status
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    assert int(headers[b"content-length"]) == len(pair.body(sid)) > 0
    assert pair.server.open_streams == 0


def test_limits_at_the_boundary_pass() -> None:
    pair = Pair(make_server(Limits(max_header_fields=3, max_header_field_size=21)))
    pair.request(request_fields(b"GET", b"/", (b"a", b"1"), (b"b", b"2"), (b"x", b"a" * 18)))
    assert len(requests_of(pair.events())) == 1


def test_answered_request_with_body_is_reset_after_the_answer() -> None:
    peer = RawPeer(make_server(Limits(max_header_fields=1)))
    peer.send(peer.headers(1, request_fields(b"POST", b"/", (b"a", b"1"), (b"b", b"2")), False))
    statuses = [f for f in peer.received if isinstance(f, HeadersFrame)]
    assert statuses and peer.resets() == {1: NO_ERROR}


# ----------------------------------------------------------------- responses


@pytest.mark.parametrize(
    ("method", "status", "keeps_length"),
    [(b"HEAD", 200, True), (b"GET", 204, False), (b"GET", 304, True)],
)
def test_no_body_responses_drop_data(method: bytes, status: int, keeps_length: bool) -> None:
    pair = Pair()
    sid = pair.request(request_fields(method, b"/"))
    pair.events()
    server = pair.server
    pair.to_client(server.send(Response(status, [(b"content-length", b"5")], stream_id=sid)))
    assert server.send(Data(b"hello", sid)) == b""
    assert server.body_dropped(sid)
    assert server.body_sent(sid) == 0
    pair.to_client(server.send(EndOfMessage(None, sid)))
    server.finish_stream(sid)
    pair.exchange()
    assert (b"content-length" in response_headers(pair, sid)) is keeps_length
    assert pair.of(h2e.DataReceived, sid) == []
    assert pair.of(h2e.StreamEnded, sid)


def test_body_completing_content_length_ends_the_stream() -> None:
    pair = Pair()
    sid = pair.request()
    server = pair.server
    server.send(Response(200, [(b"content-length", b"5")], stream_id=sid))
    assert not server.body_complete(sid)
    frames = frames_of(server.send(Data(b"hello", sid)))
    assert server.body_complete(sid)
    assert [type(f) for f in frames] == [DataFrame]
    assert "END_STREAM" in frames[0].flags
    assert server.send(EndOfMessage(None, sid)) == b""
    assert server.body_sent(sid) == 5


def test_body_of_unknown_length_is_never_complete_before_its_end() -> None:
    pair = Pair()
    sid = pair.request()
    server = pair.server
    server.send(Response(200, [], stream_id=sid))
    server.send(Data(b"hello", sid))
    assert not server.body_complete(sid)


def test_early_hints_before_the_final_response_only() -> None:
    pair = Pair()
    sid = pair.request()
    server = pair.server
    link = [(b"Link", b"</s.css>; rel=preload")]
    pair.to_client(server.send(InformationalResponse(103, link, stream_id=sid)))
    pair.to_client(server.send(InformationalResponse(101, stream_id=sid)))
    answer(pair, sid)
    assert server.response_complete(sid)
    (hints,) = pair.of(h2e.InformationalResponseReceived, sid)
    assert hints.headers == [(b":status", b"103"), (b"link", b"</s.css>; rel=preload")]

    sid = pair.request()
    pair.to_client(server.send(Response(200, [], stream_id=sid)))
    assert server.send(InformationalResponse(103, link, stream_id=sid)) == b""
    assert pair.of(h2e.InformationalResponseReceived, sid) == []


def test_response_trailers() -> None:
    pair = Pair()
    sid = pair.request()
    server = pair.server
    pair.to_client(server.send(Response(200, [(b"trailer", b"grpc-status")], stream_id=sid)))
    pair.to_client(server.send(Data(b"x", sid)))
    pair.to_client(server.send(Trailers([(b"Grpc-Status", b"0")], sid)))
    pair.to_client(server.send(EndOfMessage(None, sid)))
    (trailers,) = pair.of(h2e.TrailersReceived, sid)
    assert trailers.headers == [(b"grpc-status", b"0")]
    assert trailers.stream_ended is not None


def test_trailers_given_with_end_of_message() -> None:
    pair = Pair()
    sid = pair.request()
    server = pair.server
    pair.to_client(server.send(Response(200, [], stream_id=sid)))
    pair.to_client(server.send(EndOfMessage([(b"x", b"1")], sid)))
    assert pair.of(h2e.TrailersReceived, sid)[0].headers == [(b"x", b"1")]


def test_connection_specific_response_fields_dropped() -> None:
    pair = Pair()
    sid = pair.request()
    headers = [
        (b"Connection", b"close"),
        (b"Keep-Alive", b"5"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Upgrade", b"x"),
        (b"Proxy-Connection", b"x"),
        (b"Server", b"app"),
        (b"Date", b"today"),
        (b"X-Thing", b" padded "),
    ]
    answer(pair, sid, b"", headers)
    assert response_headers(pair, sid) == {
        b":status": b"200",
        b"server": b"app",
        b"date": b"today",
        b"x-thing": b"padded",
    }


def test_server_header_can_be_turned_off() -> None:
    pair = Pair(H2Connection(clock=FakeClock(), server_header=b""))
    sid = pair.request()
    answer(pair, sid)
    assert b"server" not in response_headers(pair, sid)


@pytest.mark.parametrize(
    "event",
    [
        Response(200, [(b"bad name", b"x")]),
        Response(200, [(b"x", b"a\r\nb")]),
        Response(200, [(b"content-length", b"x")]),
        Response(200, [(b"content-length", b"1"), (b"content-length", b"2")]),
        Response(101),
        InformationalResponse(200),
        Data(b"too early"),
        EndOfMessage(),
    ],
    ids=["name", "value", "length", "two lengths", "101 final", "2xx informational", "data", "end"],
)
def test_invalid_responses_raise(event) -> None:
    pair = Pair()
    sid = pair.request()
    event.stream_id = sid
    with pytest.raises(LocalProtocolError):
        pair.server.send(event)


def test_forbidden_response_trailer_raises() -> None:
    pair = Pair()
    sid = pair.request()
    pair.server.send(Response(200, [], stream_id=sid))
    with pytest.raises(InvalidResponseHeader):
        pair.server.send(Trailers([(b"content-length", b"1")], sid))


def test_second_response_raises() -> None:
    pair = Pair()
    sid = pair.request()
    pair.server.send(Response(200, [], stream_id=sid))
    with pytest.raises(ResponseStateError):
        pair.server.send(Response(200, [], stream_id=sid))
    with pytest.raises(ResponseStateError):
        pair.server.send(Response(200, [], stream_id=99))


def test_body_shorter_than_content_length_resets() -> None:
    pair = Pair()
    sid = pair.request()
    server = pair.server
    pair.to_client(server.send(Response(200, [(b"content-length", b"10")], stream_id=sid)))
    pair.to_client(server.send(Data(b"short", sid)))
    pair.to_client(server.send(EndOfMessage(None, sid)))
    (reset,) = pair.of(h2e.StreamReset, sid)
    assert reset.error_code == INTERNAL_ERROR
    assert pair.of(h2e.StreamEnded, sid) == []


def test_body_longer_than_content_length_is_cut_then_reset() -> None:
    pair = Pair()
    sid = pair.request()
    server = pair.server
    pair.to_client(server.send(Response(200, [(b"content-length", b"3")], stream_id=sid)))
    pair.to_client(server.send(Data(b"abcdef", sid)))
    pair.to_client(server.send(Data(b"more", sid)))
    pair.to_client(server.send(EndOfMessage(None, sid)))
    assert pair.body(sid) == b"abc"
    assert server.body_sent(sid) == 3
    assert pair.of(h2e.StreamReset, sid)[0].error_code == INTERNAL_ERROR


def test_continue_once_and_only_when_asked() -> None:
    pair = Pair()
    fields = request_fields(b"POST", b"/", (b"expect", b"100-continue"))
    sid = pair.request(fields, end=False)
    (request,) = pair.events()
    assert request.expect_continue
    server = pair.server
    pair.to_client(server.send_continue(sid))
    assert server.send_continue(sid) == b""
    (info,) = pair.of(h2e.InformationalResponseReceived, sid)
    assert info.headers == [(b":status", b"100")]

    plain = pair.request(request_fields(b"POST", b"/"), end=False)
    assert not pair.events()[0].expect_continue
    assert server.send_continue(plain) == b""

    late = pair.request(fields, end=False)
    pair.events()
    server.send(Response(200, [], stream_id=late))
    assert server.send_continue(late) == b""


def test_error_response_before_the_head() -> None:
    pair = Pair()
    sid = pair.request()
    pair.events()
    pair.to_client(pair.server.error_response(ProtocolError("bad <thing>"), sid))
    pair.server.finish_stream(sid)
    pair.exchange()
    headers = response_headers(pair, sid)
    assert headers[b":status"] == b"400"
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    body = pair.body(sid)
    assert b"400 Bad Request" in body and b"bad &lt;thing&gt;" in body
    assert not body.startswith(b"HTTP/1")
    assert pair.of(h2e.StreamEnded, sid)


def test_server_error_response_tells_nothing() -> None:
    pair = Pair()
    sid = pair.request()
    pair.to_client(pair.server.error_response(LocalProtocolError("secret detail"), sid))
    assert b"secret" not in pair.body(sid)
    assert response_headers(pair, sid)[b":status"] == b"500"


def test_error_response_after_the_head_resets() -> None:
    pair = Pair()
    sid = pair.request()
    server = pair.server
    pair.to_client(server.send(Response(200, [], stream_id=sid)))
    pair.to_client(server.error_response(LocalProtocolError("boom"), sid))
    assert pair.of(h2e.StreamReset, sid)[0].error_code == INTERNAL_ERROR
    assert server.response_complete(sid)
    assert not server.stream_open(sid)


# -------------------------------------------------------------- flow control


def test_large_response_waits_for_window() -> None:
    pair = Pair()
    sid = pair.request()
    server = pair.server
    body = bytes(range(256)) * 400  # 102400 bytes, more than the 65535 window
    pair.to_client(server.send(Response(200, [], stream_id=sid)))
    out = server.send(Data(body, sid))
    frames = [f for f in frames_of(out) if isinstance(f, DataFrame)]
    assert max(len(f.data) for f in frames) <= 16384  # the peer's SETTINGS_MAX_FRAME_SIZE
    assert sum(len(f.data) for f in frames) == 65535
    pair.to_client(out)
    assert server.buffered(sid) == len(body) - 65535
    assert server.send_window(sid) == 0
    pair.to_client(server.send(EndOfMessage(None, sid)))
    assert pair.of(h2e.StreamEnded, sid) == []  # END_STREAM follows the buffered bytes
    server.finish_stream(sid)
    assert server.open_streams == 1  # still sending
    for _ in range(5):
        pair.ack_client()
    assert server.buffered(sid) == 0
    assert pair.body(sid) == body
    assert pair.of(h2e.StreamEnded, sid)
    assert server.open_streams == 0


def test_send_window_reports_what_may_go_now() -> None:
    pair = Pair()
    sid = pair.request()
    server = pair.server
    pair.to_client(server.send(Response(200, [], stream_id=sid)))
    assert server.send_window(sid) == 65535
    pair.to_client(server.send(Data(b"x" * 1000, sid)))
    assert server.send_window(sid) == 64535
    assert server.buffered(sid) == 0


def test_small_initial_window_from_the_peer() -> None:
    pair = Pair(client_settings={SettingCodes.INITIAL_WINDOW_SIZE: 10})
    sid = pair.request()
    server = pair.server
    pair.to_client(server.send(Response(200, [], stream_id=sid)))
    pair.to_client(server.send(Data(b"0123456789abcdef", sid)))
    assert pair.body(sid) == b"0123456789"
    assert server.buffered(sid) == 6
    pair.ack_client()
    assert pair.body(sid) == b"0123456789abcdef"


def test_tiny_window_increments_are_not_answered_with_tiny_frames() -> None:
    pair = Pair()
    sid = pair.request()
    server = pair.server
    pair.to_client(server.send(Response(200, [], stream_id=sid)))
    pair.to_client(server.send(Data(b"x" * 70000, sid)))
    assert len(pair.body(sid)) == 65535
    pair.client.increment_flow_control_window(1, stream_id=sid)
    pair.client.increment_flow_control_window(1)
    received = pair.exchange()
    assert not [e for e in received if isinstance(e, h2e.DataReceived)]
    assert server.buffered(sid) == 70000 - 65535


def test_window_credit_only_on_ack_body() -> None:
    pair = Pair()
    sid = pair.request(request_fields(b"POST", b"/"), body=b"x" * 40000, end=False)
    assert [type(e) for e in pair.events()] == [Request, Data, Data, Data]
    assert pair.client.local_flow_control_window(sid) == 65535 - 40000
    pair.server.ack_body(sid, 40000)
    updates = frames_of(pair.server.data_to_send())
    assert {f.stream_id: f.window_increment for f in updates} == {0: 40000, sid: 40000}


def test_padding_is_credited_at_once() -> None:
    pair = Pair()
    sid = pair.request(request_fields(b"POST", b"/"), end=False)
    for _ in range(3):
        pair.client.send_data(sid, b"x" * 11000, pad_length=200)
    pair.exchange()
    pair.server.ack_body(sid, 33000)
    updates = frames_of(pair.server.data_to_send())
    # 33000 data bytes + 3 x (200 padding bytes + the pad length byte).
    assert {f.stream_id: f.window_increment for f in updates} == {0: 33603, sid: 33603}


def test_data_for_a_finished_stream_is_credited_at_once() -> None:
    pair = Pair()
    sid = pair.request(request_fields(b"POST", b"/"), body=b"x" * 20000, end=False)
    pair.events()
    server = pair.server
    pair.to_client(server.send(Response(200, [], stream_id=sid)))
    server.finish_stream(sid)  # incomplete response: reset, body credited
    pair.exchange()
    assert pair.of(h2e.StreamReset, sid)[0].error_code == INTERNAL_ERROR
    # The reset stream's 20000 bytes were credited: they come back with the next update.
    other = pair.request(request_fields(b"POST", b"/"), body=b"y" * 20000, end=False)
    pair.events()
    server.ack_body(other, 20000)
    updates = frames_of(server.data_to_send())
    assert {f.stream_id: f.window_increment for f in updates}[0] == 40000


# ---------------------------------------------------------- stream lifecycle


def test_finish_with_unread_body_resets_with_no_error() -> None:
    pair = Pair()
    sid = pair.request(request_fields(b"POST", b"/"), body=b"abc", end=False)
    pair.events()
    answer(pair, sid)
    assert pair.body(sid) == b"ok"
    assert pair.of(h2e.StreamReset, sid)[0].error_code == NO_ERROR
    assert pair.server.open_streams == 0


def test_finish_with_incomplete_response_resets() -> None:
    pair = Pair()
    sid = pair.request()
    pair.events()
    pair.to_client(pair.server.send(Response(200, [], stream_id=sid)))
    pair.server.finish_stream(sid)
    pair.exchange()
    assert pair.of(h2e.StreamReset, sid)[0].error_code == INTERNAL_ERROR


def test_peer_reset_is_reported() -> None:
    pair = Pair()
    sid = pair.request(end=False)
    assert requests_of(pair.events())
    assert pair.server.stream_open(sid)
    pair.client.reset_stream(sid, CANCEL)
    pair.exchange()
    assert pair.events() == [StreamReset(CANCEL, sid)]
    assert not pair.server.stream_open(sid)
    assert pair.server.send(Response(200, [], stream_id=sid)) == b""  # ignored
    assert pair.server.send(Data(b"x", sid)) == b""
    pair.server.finish_stream(sid)
    assert pair.server.open_streams == 0


def test_stream_reset_before_delivery_never_reaches_the_application() -> None:
    peer = RawPeer()
    peer.send(peer.headers(1, GET, end_stream=False), peer.rst(1))
    assert peer.events() == []
    assert peer.server.open_streams == 0


def test_priority_is_recorded() -> None:
    pair = Pair()
    sid = pair.client.get_next_available_stream_id()
    pair.client.send_headers(sid, GET, end_stream=True, priority_weight=200, priority_depends_on=0)
    pair.exchange()
    pair.events()
    assert pair.server.priority(sid) == (200, 0)
    pair.client.prioritize(sid, weight=10, depends_on=0)
    pair.exchange()
    assert pair.server.priority(sid) == (10, 0)
    assert pair.server.priority(999) is None


def test_settings_sent_from_limits() -> None:
    limits = Limits(
        h2_max_concurrent_streams=7,
        h2_initial_window_size=100000,
        h2_max_frame_size=32768,
        h2_max_header_list_size=0,
    )
    server = make_server(limits)
    server.initiate()
    frames = frames_of(server.data_to_send())
    settings = frames[0]
    assert isinstance(settings, SettingsFrame)
    assert settings.settings[SettingCodes.MAX_CONCURRENT_STREAMS] == 7
    assert settings.settings[SettingCodes.INITIAL_WINDOW_SIZE] == 100000
    assert settings.settings[SettingCodes.MAX_FRAME_SIZE] == 32768
    assert settings.settings[SettingCodes.ENABLE_PUSH] == 0
    assert SettingCodes.MAX_HEADER_LIST_SIZE not in settings.settings
    # The connection window grows with the streams' initial window.
    assert isinstance(frames[1], WindowUpdateFrame)
    assert frames[1].window_increment == 100000 - 65535

    server = make_server()
    server.initiate()
    settings = frames_of(server.data_to_send())[0]
    assert settings.settings[SettingCodes.MAX_HEADER_LIST_SIZE] == 65536


def test_max_concurrent_streams_refuses_extra_streams() -> None:
    peer = RawPeer(h2_max_concurrent_streams=2)
    peer.send(*(peer.headers(sid, GET) for sid in (1, 3, 5)))
    assert peer.resets() == {5: REFUSED_STREAM}
    assert [e.stream_id for e in requests_of(peer.events())] == [1, 3]
    assert peer.goaway() is None
    # Streams the application has not finished still count, even once answered.
    server = peer.server
    server.send(Response(204, [], stream_id=1))
    server.send(EndOfMessage(None, 1))
    peer.send(peer.headers(7, GET))
    assert peer.resets()[7] == REFUSED_STREAM
    server.finish_stream(1)
    peer.send(peer.headers(9, GET))
    assert [e.stream_id for e in requests_of(peer.events())] == [9]


# ---------------------------------------------------------------- connection


def test_graceful_shutdown_refuses_new_streams() -> None:
    peer = RawPeer()
    peer.send(peer.headers(1, GET), peer.headers(3, GET))
    assert len(requests_of(peer.events())) == 2
    server = peer.server
    server.shutdown()
    assert server.going_away and not server.closed
    peer.take()
    goaway = peer.goaway()
    assert goaway is not None
    assert (goaway.last_stream_id, goaway.error_code) == (3, NO_ERROR)
    peer.send(peer.headers(5, GET))
    assert peer.resets() == {5: REFUSED_STREAM}
    assert peer.events() == []
    # In-flight streams finish; then the connection is over.
    for sid in (1, 3):
        server.send(Response(204, [], stream_id=sid))
        server.send(EndOfMessage(None, sid))
        assert server.next_event() is NEED_DATA
        server.finish_stream(sid)
    assert server.next_event() == ConnectionClosed()
    assert server.closed


def test_shutdown_without_streams_closes_at_once() -> None:
    pair = Pair()
    pair.server.shutdown()
    pair.to_client(pair.server.data_to_send())
    (terminated,) = pair.of(h2e.ConnectionTerminated)
    assert terminated.last_stream_id == 0
    assert pair.events() == [ConnectionClosed()]


def test_peer_goaway_lets_streams_in_flight_finish() -> None:
    pair = Pair()
    sid = pair.request()
    pair.events()
    pair.client.close_connection(0, last_stream_id=0)
    pair.exchange()
    server = pair.server
    assert server.going_away
    assert pair.events() == []  # a stream is still open
    out = server.send(Response(200, [], stream_id=sid)) + server.send(Data(b"late", sid))
    out += server.send(EndOfMessage(None, sid))
    assert [type(f) for f in frames_of(out)] == [HeadersFrame, DataFrame, DataFrame]
    server.finish_stream(sid)
    assert pair.events() == [ConnectionClosed()]


def test_no_new_requests_after_peer_goaway() -> None:
    peer = RawPeer()
    peer.send(peer.headers(1, GET, end_stream=False))
    goaway = GoAwayFrame(0)
    goaway.last_stream_id = 1
    peer.send(goaway, peer.headers(3, GET))
    assert peer.resets() == {3: REFUSED_STREAM}
    assert [e.stream_id for e in requests_of(peer.events())] == [1]


def test_peer_goaway_with_error_ends_the_connection() -> None:
    pair = Pair()
    pair.request(end=False)
    pair.client.close_connection(PROTOCOL_ERROR)
    pair.exchange()
    assert pair.events() == [ConnectionClosed()]
    assert pair.server.closed


def test_close_sends_goaway() -> None:
    peer = RawPeer()
    peer.send(peer.headers(1, GET))
    peer.server.close(INTERNAL_ERROR)
    peer.take()
    goaway = peer.goaway()
    assert goaway is not None
    assert (goaway.last_stream_id, goaway.error_code) == (1, INTERNAL_ERROR)
    assert peer.events() == [ConnectionClosed()]
    assert peer.server.send(Response(200, [], stream_id=1)) == b""


def test_peer_closing_the_socket() -> None:
    pair = Pair()
    pair.server.receive_data(b"")
    assert pair.events() == [ConnectionClosed()]
    assert pair.server.closed


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", PROTOCOL_ERROR),  # not the preface
        (b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x", PROTOCOL_ERROR),  # DATA on stream 0
        (b"\x00\x40\x01\x00\x00\x00\x00\x00\x01" + b"x" * 0x4001, 0x6),  # FRAME_SIZE_ERROR
    ],
    ids=["preface", "data on stream 0", "frame too large"],
)
def test_connection_errors_send_goaway(data: bytes, code: int) -> None:
    server = make_server()
    server.initiate()
    server.data_to_send()
    if not data.startswith(b"GET"):
        server.receive_data(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize())
        server.data_to_send()
    server.receive_data(data)
    goaways = [f for f in frames_of(server.data_to_send()) if isinstance(f, GoAwayFrame)]
    assert [f.error_code for f in goaways] == [code]
    assert drain(server) == [ConnectionClosed()]


def goaway_codes(server: H2Connection) -> list[int]:
    return [f.error_code for f in frames_of(server.data_to_send()) if isinstance(f, GoAwayFrame)]


def ping_bytes(ack: bool = False) -> bytes:
    return PingFrame(0, opaque_data=b"12345678", flags=["ACK"] if ack else []).serialize()


@pytest.mark.parametrize(
    "first",
    [
        ping_bytes(),
        SettingsFrame(0, flags=["ACK"]).serialize(),
        WindowUpdateFrame(0, window_increment=1).serialize(),
        b"\x00\x00\x01\xfa\x00\x00\x00\x00\x00x",  # an extension frame type
    ],
    ids=["ping", "settings-ack", "window-update", "unknown-type"],
)
def test_client_preface_must_end_with_settings(first: bytes) -> None:
    """RFC 9113 §3.4: the preface is the magic then a SETTINGS frame; anything else
    first is a connection error, and the frame is not answered."""
    server = make_server()
    server.initiate()
    server.data_to_send()
    server.receive_data(PREFACE + first + ping_bytes())
    out = frames_of(server.data_to_send())
    assert not any(isinstance(f, PingFrame) for f in out)
    assert [f.error_code for f in out if isinstance(f, GoAwayFrame)] == [PROTOCOL_ERROR]
    assert drain(server) == [ConnectionClosed()]


def test_preface_settings_split_across_reads_then_ping_is_answered() -> None:
    server = make_server()
    server.initiate()
    server.data_to_send()
    for byte in PREFACE + SettingsFrame(0).serialize():
        server.receive_data(bytes([byte]))
    server.receive_data(ping_bytes())
    out = frames_of(server.data_to_send())
    assert [f.flags for f in out if isinstance(f, PingFrame)] == [{"ACK"}]
    assert not server.closed


def test_settings_ack_with_payload_is_a_frame_size_error() -> None:
    """RFC 9113 §6.5: FRAME_SIZE_ERROR, not PROTOCOL_ERROR (hyperframe refuses to
    build this frame, so it is written by hand)."""
    peer = RawPeer()
    peer.server.receive_data(b"\x00\x00\x06\x04\x01\x00\x00\x00\x00" + b"\x00\x03\x00\x00\x00\x0a")
    assert goaway_codes(peer.server) == [FRAME_SIZE_ERROR]
    assert peer.events() == [ConnectionClosed()]


def test_empty_settings_ack_is_accepted() -> None:
    peer = RawPeer()
    peer.send(SettingsFrame(0, flags=["ACK"]))
    assert peer.goaway() is None and not peer.server.closed


# RFC 7541 decoding errors, each after (or before) a valid field block.
BAD_HPACK = {
    "index-out-of-range": b"\xc6",  # indexed field 70: past both tables
    "index-0": b"\x80",
    "name-index-out-of-range": b"\x0f\x37\x01v",  # literal, name index 70
    "integer-overflow": b"\xff" + b"\xff" * 12 + b"\x01",  # an index of ~2**90
    "table-size-update-after-field": b"\x20",  # RFC 7541 §4.2: only at the block start
    "huffman-eos": b"\x00\x03x-h\x84\xff\xff\xff\xff",  # EOS inside a string
    "huffman-long-padding": b"\x00\x03x-h\x82\x1f\xff",  # padding over 7 bits
    "truncated-string": b"\x00\x06x-name\x05val",
}


@pytest.mark.parametrize("tail", BAD_HPACK.values(), ids=BAD_HPACK.keys())
def test_hpack_decoding_errors_are_compression_errors(tail: bytes) -> None:
    """RFC 9113 §4.3: a field block that cannot be decoded is COMPRESSION_ERROR."""
    peer = RawPeer()
    frame = peer.headers(1, GET)
    frame.data += tail
    peer.send(frame)
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == COMPRESSION_ERROR
    assert peer.events() == [ConnectionClosed()]


def test_table_size_update_over_the_setting_is_a_compression_error() -> None:
    peer = RawPeer()
    frame = peer.headers(1, GET)
    frame.data = b"\x3f\xe2\x1f" + frame.data  # dynamic table size 4097 > 4096
    peer.send(frame)
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == COMPRESSION_ERROR


@pytest.mark.parametrize(
    ("status", "reason", "shown"),
    [
        (400, b"Bad Request", True),
        (431, b"Request Header Fields Too Large", True),
        (500, b"Internal Server Error", False),
        (502, b"Bad Gateway", False),
    ],
)
def test_error_page(status: int, reason: bytes, shown: bool) -> None:
    """The one error page of HTTP/1 and HTTP/2: a client error shows its detail,
    escaped; a server error shows nothing of it."""
    page = error_page(status, reason, "the <detail> & more")
    assert page.startswith(b"<!DOCTYPE html>")
    assert b"<h1>%d %s</h1>" % (status, reason) in page
    if shown:
        assert b"<p>the &lt;detail&gt; &amp; more</p>" in page
    else:
        assert b"detail" not in page


def test_stream_id_going_backwards_is_a_connection_error() -> None:
    peer = RawPeer()
    peer.send(peer.headers(2**31 - 1, GET))
    peer.send(peer.headers(3, GET))
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == PROTOCOL_ERROR
    assert peer.server.closed


# ------------------------------------------------------------- flood guards


def assert_calm(peer: RawPeer) -> None:
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == ENHANCE_YOUR_CALM
    assert peer.events()[-1] == ConnectionClosed()
    assert peer.server.closed


def test_rapid_reset_trips_goaway() -> None:
    peer = RawPeer(h2_max_resets_per_window=5)
    for sid in range(1, 11, 2):
        peer.send(peer.headers(sid, GET, end_stream=False), peer.rst(sid))
    assert peer.goaway() is None
    assert peer.events() == []  # none of them ran
    peer.send(peer.headers(11, GET, end_stream=False), peer.rst(11))
    assert_calm(peer)


def test_reset_budget_is_per_window() -> None:
    peer = RawPeer(h2_max_resets_per_window=5, h2_flood_window=10)
    sid = 1
    for _ in range(3):
        for _ in range(5):
            peer.send(peer.headers(sid, GET, end_stream=False), peer.rst(sid))
            sid += 2
        peer.clock.advance(10)
    assert peer.goaway() is None


def test_server_caused_resets_count_too() -> None:
    peer = RawPeer(h2_max_resets_per_window=3)
    bad = request_fields(b"GET", b"/", (b"connection", b"close"))
    for sid in (1, 3, 5):
        peer.send(peer.headers(sid, bad))
    assert peer.goaway() is None
    # DATA after END_STREAM makes h2 reset the stream (MadeYouReset): same budget.
    peer.send(peer.headers(7, GET), peer.data(7, b"x"))
    assert_calm(peer)


@pytest.mark.parametrize("kind", ["settings", "ping"])
def test_control_frame_flood(kind: str) -> None:
    peer = RawPeer(h2_max_control_frames_per_window=5)

    def frame():
        return SettingsFrame(0) if kind == "settings" else PingFrame(0, opaque_data=b"12345678")

    for _ in range(4):  # the preface's SETTINGS counts too
        peer.send(frame())
    assert peer.goaway() is None
    peer.send(frame())
    assert_calm(peer)


def test_queued_control_answers_are_capped() -> None:
    peer = RawPeer(h2_max_queued_control_frames=3)
    ping = PingFrame(0, opaque_data=b"12345678").serialize()
    peer.feed(ping * 3)  # answers taken by data_to_send in between
    peer.feed(ping * 3)
    assert peer.goaway() is None
    peer.feed(ping * 4)
    assert_calm(peer)


def test_empty_data_frames_flood() -> None:
    peer = RawPeer(h2_max_empty_frames_per_window=3)
    peer.send(peer.headers(1, request_fields(b"POST", b"/"), end_stream=False))
    for _ in range(3):
        peer.send(peer.data(1, b""))
    assert peer.goaway() is None
    peer.send(peer.data(1, b""))
    assert_calm(peer)


def test_empty_headers_blocks_count_as_empty_frames() -> None:
    peer = RawPeer(h2_max_empty_frames_per_window=2)
    for sid in (1, 3):
        peer.send(peer.headers(sid, []))
    assert peer.resets() == {1: PROTOCOL_ERROR, 3: PROTOCOL_ERROR}
    peer.send(peer.headers(5, []))
    assert_calm(peer)


def test_priority_flood() -> None:
    peer = RawPeer(h2_max_priority_frames_per_stream=3)
    frames = [PriorityFrame(1, depends_on=0, stream_weight=5) for _ in range(3)]
    peer.send(*frames)
    assert peer.goaway() is None
    peer.send(PriorityFrame(3, depends_on=0, stream_weight=5))
    assert_calm(peer)


def test_window_update_flood() -> None:
    peer = RawPeer()
    update = WindowUpdateFrame(0, window_increment=1).serialize()
    peer.feed(update * 100)
    assert peer.goaway() is None
    peer.feed(update)
    assert_calm(peer)


def test_continuation_flood() -> None:
    peer = RawPeer()
    block = peer.encoder.encode(GET)
    frames = [peer.headers(1, [], end_stream=True, end_headers=False)]
    frames[0].data = block[:1]
    frames += [peer.continuation(1, b"") for _ in range(80)]
    peer.send(*frames)
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code in (PROTOCOL_ERROR, ENHANCE_YOUR_CALM)
    assert peer.events() == [ConnectionClosed()]


def test_hpack_bomb() -> None:
    peer = RawPeer(h2_max_header_list_size=16384)
    big = (b"x-big", b"a" * 3000)
    peer.send(peer.headers(1, [*GET, big]))  # adds the field to the dynamic table
    assert requests_of(peer.events())
    peer.send(peer.headers(3, [*GET] + [big] * 10))  # indexed: 10 bytes decode to 30 KB
    assert_calm(peer)


# ---------------------------------------------------------------------- h2c


def test_h2c_upgrade_makes_the_request_stream_1() -> None:
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    settings = client.initiate_upgrade_connection()
    client.data_to_send()
    assert settings is not None
    h1_request = Request(
        b"POST",
        b"/up?x=1",
        (1, 1),
        [
            (b"host", b"example.com"),
            (b"connection", b"Upgrade, HTTP2-Settings"),
            (b"upgrade", b"h2c"),
            (b"http2-settings", settings),
            (b"content-length", b"4"),
        ],
        path=b"/up",
        query=b"x=1",
        authority=b"example.com",
        content_length=4,
    )
    server = make_server()
    server.initiate_upgrade(settings.rstrip(b"="), h1_request, b"body")
    request, data, end = drain(server)
    assert request.stream_id == 1 and request.version == (2, 0)
    assert (request.method, request.path, request.query) == (b"POST", b"/up", b"x=1")
    assert request.headers == [(b"host", b"example.com"), (b"content-length", b"4")]
    assert data == Data(b"body", 1)
    assert end == EndOfMessage([], 1)
    out = server.data_to_send()
    out += server.send(Response(200, [], stream_id=1))
    out += server.send(Data(b"upgraded", 1))
    out += server.send(EndOfMessage(None, 1))
    server.finish_stream(1)
    events = client.receive_data(out)
    assert [e.data for e in events if isinstance(e, h2e.DataReceived) and e.data] == [b"upgraded"]


@pytest.mark.parametrize("value", [b"not base64!", b"AAMAAABk=x", b"AAMAAAB", b"AAIAAAAC"])
def test_h2c_upgrade_refuses_bad_settings(value: bytes) -> None:
    server = make_server()
    with pytest.raises(InvalidHTTP2Settings) as info:
        server.initiate_upgrade(value, Request(b"GET", b"/", (1, 1), []), b"")
    assert isinstance(info.value, ProtocolError)


def test_satisfies_the_server_connection_protocol() -> None:
    conn: ServerConnection = make_server()
    assert conn.http_version == "2"
    for name in ServerConnection.__dict__:
        if not name.startswith("_") and name != "http_version":
            assert callable(getattr(conn, name)), name


# ------------------------------------------- HPACK and the engine's fast paths

RESPONSE_NAMES = st.sampled_from(
    [b":status", b"content-type", b"content-length", b"server", b"date", b"set-cookie"]
) | st.binary(min_size=1, max_size=24)
RESPONSE_VALUES = st.sampled_from([b"200", b"404", b"gzip, deflate", b""]) | st.binary(max_size=200)


def test_hpack_primitives_match_the_rfc_7541_examples() -> None:
    # RFC 7541 C.1.1-C.1.3 (integers) and C.4.1-C.4.2 (Huffman-coded strings).
    assert encode_integer(10, 5) == b"\x0a"
    assert encode_integer(1337, 5) == b"\x1f\x9a\x0a"
    assert encode_integer(42, 8) == b"\x2a"
    assert huffman_encode(b"www.example.com") == bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ff")
    assert encode_string(b"no-cache") == bytes.fromhex("86a8eb10649cbf")
    assert encode_string(b"\xff\xfe") == b"\x02\xff\xfe"  # Huffman would be longer


@settings(max_examples=50, deadline=None)
@given(fields=st.lists(st.tuples(RESPONSE_NAMES, RESPONSE_VALUES), max_size=10))
def test_response_blocks_decode_to_their_fields_without_touching_the_table(
    fields: list[tuple[bytes, bytes]],
) -> None:
    decoder = hpack.Decoder()
    for _ in range(2):  # the second block comes from the cache
        block = ServerEncoder().encode(fields)
        assert decoder.decode(block, raw=True) == fields
        assert not decoder.header_table.dynamic_entries


def test_never_indexed_fields_keep_their_representation() -> None:
    encoder = ServerEncoder()
    plain = encoder.encode([(b"authorization", b"secret")])
    sensitive = encoder.encode([NeverIndexedHeaderTuple(b"authorization", b"secret")])
    assert plain[0] & 0xF0 == 0x00 and sensitive[0] & 0xF0 == 0x10  # RFC 7541 §6.2.2/§6.2.3
    (field,) = hpack.Decoder().decode(sensitive, raw=True)
    assert isinstance(field, NeverIndexedHeaderTuple)


def test_a_smaller_header_table_is_acknowledged_at_the_next_block_only() -> None:
    # The h2 client refuses a block once its smaller table is acknowledged, unless the
    # block opens with a size update (RFC 7541 §4.2).
    pair = Pair(client_settings={SettingCodes.HEADER_TABLE_SIZE: 100})
    blocks = []
    for _ in range(2):
        sid = pair.request()
        pair.events()
        out = pair.server.send(Response(200, [(b"content-length", b"0")], stream_id=sid))
        blocks.append(frames_of(out)[0].data)
        pair.to_client(out)
        pair.server.finish_stream(sid)
        pair.exchange()
        assert response_headers(pair, sid)[b":status"] == b"200"
    assert blocks[0] == encode_integer(100, 5, 0x20) + blocks[1]  # §6.3 size update
    assert blocks[1][0] & 0xE0 != 0x20
    # Another connection shares the block cache, not the size update.
    other = Pair()
    sid = other.request()
    other.events()
    out = other.server.send(Response(200, [(b"content-length", b"0")], stream_id=sid))
    assert frames_of(out)[0].data == blocks[1]


def test_a_field_block_over_the_frame_size_continues_in_continuation_frames() -> None:
    pair = Pair()
    sid = pair.request()
    pair.events()
    big = bytes(range(0x80, 0x100)) * 300  # 38,400 bytes (obs-text: no Huffman)
    out = pair.server.send(
        Response(200, [(b"x-big", big), (b"content-length", b"0")], stream_id=sid)
    )
    frames = frames_of(out)
    assert [type(f).__name__ for f in frames] == [
        "HeadersFrame",
        "ContinuationFrame",
        "ContinuationFrame",
    ]
    assert [sorted(f.flags) for f in frames] == [["END_STREAM"], [], ["END_HEADERS"]]
    assert max(len(f.data) for f in frames) == 16384
    pair.to_client(out)
    assert response_headers(pair, sid)[b"x-big"] == big
    assert pair.of(h2e.StreamEnded, sid)


def test_remembered_request_blocks_follow_the_dynamic_table() -> None:
    decoder = ServerDecoder()
    client = hpack.Encoder()
    assert decoder.decode(client.encode([(b"x-a", b"1")]), raw=True) == [(b"x-a", b"1")]
    assert client.encode([(b"x-a", b"1")]) == b"\xbe"  # index 62: the newest entry
    for _ in range(2):
        assert decoder.decode(b"\xbe", raw=True) == [(b"x-a", b"1")]
    decoder.decode(client.encode([(b"x-b", b"2")]), raw=True)
    assert decoder.decode(b"\xbe", raw=True) == [(b"x-b", b"2")]
    assert decoder.decode(b"\xbf", raw=True) == [(b"x-a", b"1")]
    # A size update that evicts the oldest entry leaves the newest in place.
    decoder.decode(b"\x3f\x09", raw=True)  # table size 40: room for one entry
    with pytest.raises(CompressionError):
        decoder.decode(b"\xbf", raw=True)
    assert decoder.decode(b"\xbe", raw=True) == [(b"x-b", b"2")]


def test_remembered_request_blocks_respect_a_lowered_header_list_limit() -> None:
    decoder = ServerDecoder()
    block = hpack.Encoder().encode([(b"x-long", b"v" * 100)], huffman=False)
    for _ in range(2):
        assert decoder.decode(block, raw=True) == [(b"x-long", b"v" * 100)]
    decoder.max_header_list_size = 64
    with pytest.raises(hpack.OversizedHeaderListError):
        decoder.decode(block, raw=True)


def test_repeated_requests_on_one_connection_are_each_decoded() -> None:
    pair = Pair()
    paths = [b"/a", b"/a", b"/a", b"/b", b"/a"]
    for path in paths:
        pair.request(request_fields(b"GET", path, (b"user-agent", b"h2load")))
    requests = requests_of(pair.events())
    assert [r.target for r in requests] == paths
    assert all(
        r.headers == [(b"host", b"example.com"), (b"user-agent", b"h2load")] for r in requests
    )


def test_frames_split_anywhere_across_reads_are_reassembled() -> None:
    peer = RawPeer()
    fields = request_fields(b"GET", b"/split", (b"accept", b"*/*"))
    headers = peer.headers(1, fields, end_stream=True, end_headers=False)
    block = headers.data
    headers.data = block[:5]
    wire = headers.serialize() + peer.continuation(1, block[5:], end_headers=True).serialize()
    for octet in range(len(wire)):
        peer.feed(wire[octet : octet + 1])
    request, end = peer.events()
    assert request.target == b"/split" and request.headers[-1] == (b"accept", b"*/*")
    assert end == EndOfMessage([], 1)


def test_received_frames_are_hyperframe_frames_with_a_short_repr() -> None:
    buffer = ServerFrameBuffer()
    buffer.max_frame_size = 16384
    headers = RawPeer.data(1, b"x", end_stream=True)
    buffer.add_data(PREFACE + SettingsFrame(0).serialize() + headers.serialize())
    settings_frame, data_frame = list(buffer)
    assert isinstance(settings_frame, SettingsFrame) and isinstance(data_frame, DataFrame)
    assert type(data_frame).__name__ == "DataFrame" and data_frame.data == b"x"
    assert [repr(settings_frame), repr(data_frame)] == [
        "<SettingsFrame stream 0>",
        "<DataFrame stream 1>",
    ]
