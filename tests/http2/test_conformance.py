"""RFC 9113 / RFC 7541 conformance, case by case, against a real server.

Organised like h2spec's case list (its ``generic``, ``http2`` and ``hpack`` sections); each
case id starts with the RFC 9113 section (``hpack-`` ones with RFC 7541's). A *connection
error* is a GOAWAY with the code, then the close (§5.4.1); a *stream error* is RST_STREAM
with the code, or the same code as a connection error, which §5.4.1 allows in its place.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from hyperframe.frame import GoAwayFrame, HeadersFrame, PingFrame, SettingsFrame

from tests.http2.apps import LARGE_DEFAULT, pattern
from tests.http2.conftest import OUTCOME, AppCalls
from tests.http2.frames import ErrorCodes, H2Client, Target
from tests.http2.wire import (
    DEFAULT_MAX_FRAME,
    MAX_WINDOW,
    PREFACE,
    Flag,
    FrameType,
    Setting,
    frame_bytes,
    hpack_block,
    hpack_indexed,
    hpack_literal,
    hpack_string,
    hpack_table_size_update,
    padded,
    priority_payload,
)
from tests.reliability.figures import record

E = ErrorCodes
T = FrameType

HELLO = b"hello world\n"
END_REQUEST = Flag.END_STREAM | Flag.END_HEADERS

# Outcomes per worker class, published as passed/total (section h2-conformance of
# tests/reliability/figures.py) whenever the module leaves that class: the counts are
# cumulative, so with a shuffled order the latest line still covers every test run.
_OUTCOMES: dict[str, Counter[str]] = {}


@pytest.fixture(autouse=True)
def _count_outcome(request: pytest.FixtureRequest, worker: str) -> Iterator[None]:
    yield
    _OUTCOMES.setdefault(worker, Counter())[getattr(request.node, OUTCOME, "error")] += 1


@pytest.fixture(scope="module", autouse=True)
def _record_conformance(worker: str) -> Iterator[None]:
    yield
    counts = _OUTCOMES.get(worker, Counter())
    total = sum(counts.values())
    record(
        "h2-conformance",
        worker,
        "h2spec-port",
        passed=counts["passed"],
        total=total,
        outcomes=dict(counts),
    )


def max_frame(client: H2Client) -> int:
    return client.server_settings.get(Setting.MAX_FRAME_SIZE, DEFAULT_MAX_FRAME)


def get_block(client: H2Client, path: str = "/hello", *extra: tuple[str, str]) -> bytes:
    """A plain GET header block, encoded without touching the dynamic tables."""
    return hpack_block(client.request_headers(path, "GET", extra))


# ----------------------------------------------------------------------------- §3.4 preface


def test_3_4_server_preface_is_settings(conn: H2Client) -> None:
    conn.send_preface()
    first = conn.next_frame()
    assert isinstance(first, SettingsFrame) and "ACK" not in first.flags, conn.summary()
    conn.expect_settings_ack()


def _read_all(conn: H2Client, timeout: float = 5.0) -> bytes:
    raw = bytearray()
    conn.sock.settimeout(timeout)
    while True:
        try:
            data = conn.sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not data:
            break
        raw += data
    return bytes(raw)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", id="wrong-magic"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", id="http1-request"),
        pytest.param(PREFACE + frame_bytes(T.PING, 0, 0, b"x" * 8), id="no-settings-first"),
    ],
)
def test_3_4_invalid_preface_is_a_connection_error(conn: H2Client, data: bytes) -> None:
    """PROTOCOL_ERROR, GOAWAY optional (§3.4); an HTTP/1.1 400 is accepted for h2c peers that
    spoke HTTP/1 (gunicorn's documented answer). Never served, never left hanging."""
    conn.send_bytes(data)
    raw = _read_all(conn)
    if raw.startswith(b"HTTP/1.1 "):
        assert raw.startswith(b"HTTP/1.1 400"), raw[:100]
        return
    offset, codes = 0, []
    while offset + 9 <= len(raw):
        length, ftype = int.from_bytes(raw[offset : offset + 3], "big"), raw[offset + 3]
        if ftype == T.GOAWAY:
            codes.append(struct.unpack(">I", raw[offset + 13 : offset + 17])[0])
        assert ftype in (T.SETTINGS, T.GOAWAY, T.WINDOW_UPDATE), f"frame type {ftype} sent"
        offset += 9 + length
    assert set(codes) <= {E.PROTOCOL_ERROR}, codes


# ----------------------------------------------------------------------------- §4 frames


def test_4_1_unknown_frame_type_is_ignored(client: H2Client) -> None:
    client.send_frame(0xFA, 0xFF, 0, b"extension")
    client.send_frame(0xFA, 0, 1, b"on an idle stream")
    client.ping_roundtrip()


def test_4_1_undefined_flags_are_ignored(client: H2Client) -> None:
    client.send_frame(T.PING, 0xFE, 0, b"flags-ok")
    client.wait_for(lambda f: isinstance(f, PingFrame) and f.opaque_data == b"flags-ok", "ACK")


def test_4_1_reserved_bit_is_ignored(client: H2Client) -> None:
    client.send_frame(T.PING, 0, 0, b"reserved", reserved_bit=True)
    client.wait_for(lambda f: isinstance(f, PingFrame) and f.opaque_data == b"reserved", "ACK")
    flags = Flag.END_STREAM | Flag.END_HEADERS
    client.send_frame(T.HEADERS, flags, 1, get_block(client), reserved_bit=True)
    assert client.read_response(1).status == 200


def test_4_2_data_of_max_frame_size_is_accepted(client: H2Client) -> None:
    body = pattern(max_frame(client))
    sid = client.open_stream("/echo")
    client.send_data(sid, body, end_stream=True)
    response = client.read_response(sid)
    assert response.status == 200 and bytes(response.body) == body


def test_4_2_data_over_max_frame_size(client: H2Client) -> None:
    sid = client.open_stream("/echo")
    client.send_data(sid, b"x" * (max_frame(client) + 1), end_stream=True)
    client.expect_stream_error(sid, E.FRAME_SIZE_ERROR)


def block_of_size(client: H2Client, size: int) -> bytes:
    """A valid GET field block of exactly ``size`` bytes (a filler field makes up the rest)."""
    base = get_block(client)
    guess = size - len(base) - len(hpack_literal(b"x-filler", b""))
    for n in range(max(guess - 8, 0), guess + 8):
        block = base + hpack_literal(b"x-filler", b"f" * n)
        if len(block) == size:
            return block
    raise AssertionError(f"no block of {size} bytes")


def test_4_2_headers_over_max_frame_size(client: H2Client) -> None:
    payload = block_of_size(client, max_frame(client) + 1)
    client.send_frame(T.HEADERS, Flag.END_STREAM | Flag.END_HEADERS, 1, payload)
    client.expect_connection_error(E.FRAME_SIZE_ERROR)


# ----------------------------------------------------------------------------- connection errors

Action = Callable[[H2Client], object]


def _headers_open(c: H2Client, sid: int = 1, end_stream: bool = True) -> int:
    """HEADERS without END_HEADERS: a field block in progress."""
    c.send_headers(sid, get_block(c), end_stream=end_stream, end_headers=False)
    return sid


def _closed_stream(c: H2Client) -> int:
    sid = c.send_request("/hello")
    c.read_response(sid)
    return sid


def _headers_then_final_continuation(c: H2Client) -> None:
    _headers_open(c)
    c.send_continuation(1, b"", end_headers=True)


def _continuation_after(c: H2Client, first: Callable[[H2Client], object]) -> None:
    first(c)
    c.send_continuation(1, b"", end_headers=True)


PROTOCOL_ERRORS: dict[str, Action] = {
    # §4.3 / §6.10: a field block is contiguous CONTINUATIONs on its own stream.
    "4.3-priority-inside-field-block": lambda c: (_headers_open(c), c.send_priority(1, 0)),
    "4.3-headers-on-other-stream-inside-field-block": lambda c: (
        _headers_open(c),
        c.send_headers(3, get_block(c)),
    ),
    "5.5-unknown-frame-inside-field-block": lambda c: (
        _headers_open(c),
        c.send_frame(0xFA, 0, 1, b"x"),
    ),
    # §5.1 idle: only HEADERS and PRIORITY.
    "5.1-idle-data": lambda c: c.send_data(1, b"x", end_stream=True),
    "5.1-idle-rst-stream": lambda c: c.send_rst(1),
    "5.1-idle-window-update": lambda c: c.send_window_update(1, 100),
    "5.1-idle-continuation": lambda c: c.send_continuation(1, get_block(c)),
    # §5.1.1 stream identifiers.
    "5.1.1-even-stream-id": lambda c: c.send_headers(2, get_block(c)),
    "5.1.1-decreasing-stream-id": lambda c: (
        c.send_headers(5, get_block(c)),
        c.send_headers(3, get_block(c)),
    ),
    "6.1-data-on-stream-0": lambda c: c.send_data(0, b"x", end_stream=True),
    "6.1-data-pad-length-too-big": lambda c: (
        c.open_stream(),
        c.send_frame(T.DATA, Flag.PADDED | Flag.END_STREAM, 1, bytes([6]) + b"abcde"),
    ),
    "6.2-headers-on-stream-0": lambda c: c.send_headers(0, get_block(c)),
    "6.2-headers-pad-length-too-big": lambda c: c.send_frame(
        T.HEADERS, Flag.PADDED | END_REQUEST, 1, padded(get_block(c), 0, declared=200)
    ),
    "6.3-priority-on-stream-0": lambda c: c.send_priority(0, 1),
    "6.4-rst-stream-on-stream-0": lambda c: c.send_rst(0),
    "6.5-settings-on-stream-1": lambda c: c.send_frame(T.SETTINGS, 0, 1, b"\0\x03\0\0\0\x0a"),
    "6.5.2-enable-push-2": lambda c: c.send_settings({Setting.ENABLE_PUSH: 2}),
    "6.5.2-max-frame-size-too-small": lambda c: c.send_settings({Setting.MAX_FRAME_SIZE: 16383}),
    "6.5.2-max-frame-size-too-large": lambda c: c.send_settings({Setting.MAX_FRAME_SIZE: 2**24}),
    "6.7-ping-on-stream-1": lambda c: c.send_frame(T.PING, 0, 1, b"x" * 8),
    "6.8-goaway-on-stream-1": lambda c: c.send_frame(T.GOAWAY, 0, 1, bytes(8)),
    "6.9-window-update-0-on-connection": lambda c: c.send_window_update(0, 0),
    "6.10-continuation-then-data": lambda c: (
        _headers_open(c, end_stream=False),
        c.send_continuation(1, b"", False),
        c.send_data(1, b"x"),
    ),
    "6.10-continuation-on-stream-0": lambda c: (_headers_open(c), c.send_continuation(0, b"")),
    "6.10-continuation-on-other-stream": lambda c: (
        _headers_open(c),
        c.send_continuation(3, b""),
    ),
    "6.10-continuation-after-end-headers": lambda c: _continuation_after(
        c, lambda c: c.send_headers(1, get_block(c))
    ),
    "6.10-continuation-after-ended-continuation": lambda c: _continuation_after(
        c, _headers_then_final_continuation
    ),
    "6.10-continuation-after-data": lambda c: (
        c.open_stream(),
        c.send_data(1, b"x"),
        c.send_continuation(1, b""),
    ),
    # §8.4: a client cannot push.
    "8.4-push-promise-from-client": lambda c: (
        c.open_stream(),
        c.send_frame(T.PUSH_PROMISE, Flag.END_HEADERS, 1, struct.pack(">I", 2) + get_block(c)),
    ),
}

FRAME_SIZE_ERRORS: dict[str, Action] = {
    "6.4-rst-stream-length-3": lambda c: (
        c.open_stream(),
        c.send_frame(T.RST_STREAM, 0, 1, b"\0\0\x08"),
    ),
    "6.5-settings-ack-with-payload": lambda c: c.send_frame(
        T.SETTINGS, Flag.ACK, 0, b"\0\x03\0\0\0\x0a"
    ),
    "6.5-settings-length-not-multiple-of-6": lambda c: c.send_frame(T.SETTINGS, 0, 0, b"\0" * 5),
    "6.7-ping-length-6": lambda c: c.send_frame(T.PING, 0, 0, b"x" * 6),
    "6.9-window-update-length-3": lambda c: c.send_frame(T.WINDOW_UPDATE, 0, 0, b"\0\0\x01"),
}

FLOW_CONTROL_ERRORS: dict[str, Action] = {
    "6.5.2-initial-window-over-max": lambda c: c.send_settings(
        {Setting.INITIAL_WINDOW_SIZE: MAX_WINDOW + 1}
    ),
    "6.9.1-connection-window-overflow": lambda c: c.send_window_update(0, MAX_WINDOW),
}


def _huffman_value(raw: bytes) -> bytes:
    """A literal field ``x-h`` whose value is ``raw`` sent as a Huffman string, unchecked."""
    return b"\x00" + hpack_string(b"x-h", huffman=True) + hpack_string(raw, raw_huffman=True)


# RFC 7541 decoding errors; each block follows a valid GET block (RFC 9113 §4.3).
BAD_FIELD_BLOCK_TAILS: dict[str, bytes] = {
    "hpack-2.3.3-indexed-field-out-of-range": hpack_indexed(70),
    "hpack-2.3.3-literal-name-index-out-of-range": hpack_literal(70, b"v"),
    "hpack-6.1-index-0": hpack_indexed(0),
    "hpack-4.2-table-size-update-after-field": hpack_table_size_update(0),
    "hpack-5.2-huffman-eos": _huffman_value(b"\xff\xff\xff\xff"),
    "hpack-5.2-huffman-padding-over-7-bits": _huffman_value(b"\x1f\xff"),
    "hpack-5.2-huffman-padding-not-eos-prefix": _huffman_value(b"\x18"),
    "hpack-truncated-string": hpack_literal(b"x-name", b"value")[:-2],
}


def _bad_block(tail: bytes) -> Action:
    return lambda c: c.send_headers(1, get_block(c) + tail)


CONNECTION_ERRORS = [
    *(pytest.param(a, E.PROTOCOL_ERROR, id=i) for i, a in PROTOCOL_ERRORS.items()),
    *(pytest.param(a, E.FRAME_SIZE_ERROR, id=i) for i, a in FRAME_SIZE_ERRORS.items()),
    *(pytest.param(a, E.FLOW_CONTROL_ERROR, id=i) for i, a in FLOW_CONTROL_ERRORS.items()),
    *(
        pytest.param(_bad_block(t), E.COMPRESSION_ERROR, id=i)
        for i, t in BAD_FIELD_BLOCK_TAILS.items()
    ),
    pytest.param(
        lambda c: c.send_headers(1, hpack_table_size_update(4097) + get_block(c)),
        E.COMPRESSION_ERROR,
        id="hpack-4.2-table-size-update-over-setting",
    ),
]


@pytest.mark.parametrize("action, code", CONNECTION_ERRORS)
def test_connection_error(client: H2Client, action: Action, code: int) -> None:
    action(client)
    client.expect_connection_error(code)


# ----------------------------------------------------------------------------- stream states


def _half_closed_remote(c: H2Client) -> int:
    return c.send_request("/hello")


def _reset_by_client(c: H2Client) -> int:
    sid = c.open_stream("/echo")
    c.send_rst(sid)
    return sid


@pytest.mark.parametrize(
    "make_stream",
    [
        pytest.param(_half_closed_remote, id="5.1-half-closed-remote"),
        pytest.param(_reset_by_client, id="5.1-closed-by-rst-stream"),
        pytest.param(_closed_stream, id="5.1-closed-by-end-stream"),
    ],
)
@pytest.mark.parametrize("frame", ["data", "headers", "continuation"])
def test_5_1_frames_on_a_stream_the_client_ended(
    client: H2Client, make_stream: Callable[[H2Client], int], frame: str
) -> None:
    """STREAM_CLOSED (§5.1); a stray CONTINUATION may also be a PROTOCOL_ERROR (§6.10)."""
    sid = make_stream(client)
    if frame == "data":
        client.send_data(sid, b"late", end_stream=True)
    elif frame == "headers":
        client.send_headers(sid, get_block(client))
    else:
        client.send_continuation(sid, get_block(client))
    codes = {E.STREAM_CLOSED} | ({E.PROTOCOL_ERROR} if frame == "continuation" else set())
    client.expect_stream_error(sid, codes, answered_ok=True)


def test_5_1_2_streams_over_the_advertised_limit_are_refused(client: H2Client) -> None:
    limit = client.server_settings.get(Setting.MAX_CONCURRENT_STREAMS)
    assert limit is not None and limit <= 1000, "the server must advertise a stream limit"
    sids = [client.open_stream("/echo") for _ in range(limit + 1)]
    # A liveness bound, not a speed one: 101 streams over TLS on a loaded machine.
    client.expect_stream_error(sids[-1], {E.REFUSED_STREAM, E.PROTOCOL_ERROR}, timeout=20)


def test_5_3_1_headers_depending_on_itself(client: H2Client) -> None:
    client.send_headers(1, get_block(client), priority=priority_payload(1))
    client.expect_stream_error(1, E.PROTOCOL_ERROR)


def test_5_3_1_priority_depending_on_itself(client: H2Client) -> None:
    client.send_priority(1, depends_on=1)
    client.expect_stream_error(1, E.PROTOCOL_ERROR)


def test_6_3_priority_with_bad_length(client: H2Client) -> None:
    client.send_frame(T.PRIORITY, 0, 1, priority_payload(0)[:4])
    client.expect_stream_error(1, E.FRAME_SIZE_ERROR)


def test_6_9_window_update_0_on_a_stream(client: H2Client) -> None:
    sid = client.open_stream("/echo")
    client.send_window_update(sid, 0)
    client.expect_stream_error(sid, E.PROTOCOL_ERROR)


def test_6_9_1_stream_window_overflow(client: H2Client) -> None:
    sid = client.open_stream("/echo")
    client.send_window_update(sid, MAX_WINDOW)
    client.expect_stream_error(sid, E.FLOW_CONTROL_ERROR)


# ----------------------------------------------------------------------------- settings, ping


def test_6_5_unknown_setting_is_acknowledged(client: H2Client) -> None:
    client.send_settings({0xFA: 1})
    client.expect_settings_ack()
    assert client.request("/hello").status == 200


def test_6_5_3_settings_are_acknowledged(client: H2Client) -> None:
    client.send_settings({Setting.MAX_CONCURRENT_STREAMS: 10})
    client.expect_settings_ack()


def test_6_5_3_last_value_of_a_repeated_setting_wins(client: H2Client) -> None:
    client.send_settings([(Setting.INITIAL_WINDOW_SIZE, 100), (Setting.INITIAL_WINDOW_SIZE, 1)])
    response = client.request("/hello")
    assert bytes(response.body) == HELLO and max(response.data_frames) == 1


def test_6_5_2_header_table_size_0_is_signalled(target: Target) -> None:
    with target.client({Setting.HEADER_TABLE_SIZE: 0}) as client:
        client.decoder.max_allowed_table_size = 0  # a larger size update now fails to decode
        for _ in range(3):
            assert client.request("/hello").status == 200
        first = next(f for f in client.received if isinstance(f, HeadersFrame))
        # RFC 7541 §4.2: the change is signalled at the start of the next field block.
        assert first.data[0] & 0xE0 == 0x20, bytes(first.data[:4])
        assert client.decoder.header_table_size == 0


def test_6_7_ping_is_echoed(client: H2Client) -> None:
    client.ping_roundtrip(b"\x00\x01\x02\x03\x04\x05\x06\x07")


def test_6_7_ping_ack_is_not_answered(client: H2Client) -> None:
    client.send_ping(b"unsolici", ack=True)
    client.send_ping(b"solicite")
    ack = client.wait_for(lambda f: isinstance(f, PingFrame), "PING ACK")
    assert isinstance(ack, PingFrame) and ack.opaque_data == b"solicite"


# ----------------------------------------------------------------------------- flow control


def test_6_9_1_initial_window_of_1(target: Target) -> None:
    with target.client({Setting.INITIAL_WINDOW_SIZE: 1}) as client:
        response = client.request("/hello")
        assert bytes(response.body) == HELLO and max(response.data_frames) == 1


def test_6_9_2_initial_window_raised_after_headers(target: Target) -> None:
    with target.client({Setting.INITIAL_WINDOW_SIZE: 0}) as client:
        sid = client.send_request("/hello")
        client.ping_roundtrip()
        assert not client.responses[sid].body, "DATA sent into a zero window"
        client.send_settings({Setting.INITIAL_WINDOW_SIZE: 1})
        response = client.read_response(sid)
        assert bytes(response.body) == HELLO and max(response.data_frames) == 1


def test_6_9_2_window_can_go_negative(target: Target) -> None:
    with target.client({Setting.INITIAL_WINDOW_SIZE: 3}) as client:
        client.auto_window = False
        sid = client.send_request("/hello")
        response = client.responses[sid]
        client.wait_for(lambda f: False, "3 bytes", until=lambda: len(response.body) >= 3)
        client.send_settings({Setting.INITIAL_WINDOW_SIZE: 1})  # window: 1 - 3 = -2
        client.send_window_update(sid, 3)  # window: 1
        client.wait_for(lambda f: False, "1 more byte", until=lambda: len(response.body) >= 4)
        client.ping_roundtrip()
        assert bytes(response.body) == HELLO[:4]


def test_6_9_2_settings_overflowing_a_stream_window(client: H2Client) -> None:
    sid = client.open_stream("/echo")
    initial = 65535
    client.send_settings({Setting.INITIAL_WINDOW_SIZE: initial})
    client.send_window_update(sid, MAX_WINDOW - initial)
    client.send_settings({Setting.INITIAL_WINDOW_SIZE: initial + 1})
    client.expect_connection_error(E.FLOW_CONTROL_ERROR)


def test_6_9_1_data_beyond_the_granted_window(app_target: Target) -> None:
    """§6.9.1: DATA past the window the server granted is a FLOW_CONTROL_ERROR. The app does
    not read; whatever credit the server did send before our PING is honoured."""
    with app_target.client() as client:
        window = client.server_settings.get(Setting.INITIAL_WINDOW_SIZE, 65535)
        sid = client.open_stream("/slow?delay=2")
        chunk = max_frame(client)
        frames, sent = [], 0
        while sent <= window:
            frames.append(frame_bytes(T.DATA, 0, sid, b"\0" * chunk))
            sent += chunk
        client.send_bytes(b"".join(frames) + frame_bytes(T.PING, 0, 0, b"flowctrl"))
        flow_errors = {E.FLOW_CONTROL_ERROR}

        def settled(f: object) -> bool:
            if isinstance(f, PingFrame) and f.opaque_data == b"flowctrl":
                return True
            # Not any reset: with the app done, the stream ends with RST_STREAM(NO_ERROR)
            # and the WINDOW_UPDATEs for the later DATA are still on their way.
            reset = client.responses.get(sid)
            return isinstance(f, GoAwayFrame) or bool(reset and reset.reset in flow_errors)

        client.wait_for(settled, "a reaction to the excess DATA")
        response = client.responses[sid]
        if client.goaway is not None or response.reset in flow_errors:
            code = client.goaway.error_code if client.goaway else response.reset
            assert code in flow_errors, client.summary()
            return
        # No error: then the server must have granted the room (WINDOW_UPDATEs seen so far).
        connection_window = client.send_window  # 65535 plus the WINDOW_UPDATEs on stream 0
        stream_window = client.stream_windows[sid]  # the initial window plus the stream's
        assert sent <= connection_window, f"{sent} bytes taken, {connection_window} granted"
        if response.reset is None:  # the stream was still open when the excess came
            assert sent <= stream_window, f"{sent} bytes taken, {stream_window} granted"


# ----------------------------------------------------------------------------- exchanges


def test_get(client: H2Client) -> None:
    response = client.request("/hello")
    assert response.status == 200 and bytes(response.body) == HELLO


def test_head_has_no_body(client: H2Client) -> None:
    response = client.request("/hello", "HEAD")
    assert response.status == 200 and not response.body


def test_post_in_many_frames(client: H2Client) -> None:
    body = pattern(200_000)
    response = client.request("/echo", "POST", body=body)
    assert response.status == 200 and bytes(response.body) == body


def test_post_with_padding_and_trailers(client: H2Client) -> None:
    sid = client.open_stream("/echo")
    client.send_frame(T.DATA, Flag.PADDED, sid, padded(b"abc", 10))
    client.send_frame(T.DATA, Flag.PADDED, sid, padded(b"def", 0))
    client.send_headers(sid, hpack_block([("x-trailer", "1")]), end_stream=True)
    response = client.read_response(sid)
    assert response.status == 200 and bytes(response.body) == b"abcdef"


def test_large_response_is_complete(client: H2Client) -> None:
    response = client.request("/large")
    assert response.status == 200 and bytes(response.body) == pattern(LARGE_DEFAULT)
    assert max(response.data_frames) <= max_frame(client)


def test_concurrent_streams_are_answered_on_their_own_streams(client: H2Client) -> None:
    sids = [client.send_request("/echo", "POST", body=f"stream {i}".encode()) for i in range(10)]
    for i, sid in enumerate(sids):
        assert bytes(client.read_response(sid).body) == f"stream {i}".encode()


def test_headers_with_priority_and_padding(client: H2Client) -> None:
    payload = padded(priority_payload(0, 200, exclusive=True) + get_block(client), 17)
    flags = Flag.PADDED | Flag.PRIORITY | Flag.END_HEADERS | Flag.END_STREAM
    client.send_frame(T.HEADERS, flags, 1, payload)
    assert client.read_response(1).status == 200


def test_priority_frames_are_accepted(client: H2Client) -> None:
    client.send_priority(3, depends_on=0, weight=1)
    client.send_priority(5, depends_on=3, weight=256, exclusive=True)
    client.send_priority(7, depends_on=9)  # depends on an idle stream
    client.send_headers(3, get_block(client))
    assert client.read_response(3).status == 200
    client.send_priority(3, depends_on=5)  # PRIORITY on a closed stream is allowed
    client.ping_roundtrip()


def test_6_10_field_block_in_continuations(client: H2Client) -> None:
    block = get_block(client, "/hello", ("x-filler", "f" * 3000))
    parts = [block[i : i + 1000] for i in range(0, len(block), 1000)]
    client.send_headers(1, parts[0], end_headers=False)
    for part in parts[1:-1]:
        client.send_continuation(1, part, end_headers=False)
    client.send_continuation(1, parts[-1])
    assert client.read_response(1).status == 200


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(lambda c: c.encode(c.request_headers()), id="hpack-encoder-indexing"),
        pytest.param(lambda c: hpack_block(c.request_headers()), id="literals-without-indexing"),
        pytest.param(
            lambda c: b"".join(
                hpack_literal(n.encode(), v.encode(), mode="never", huffman=True)
                for n, v in c.request_headers()
            ),
            id="never-indexed-huffman",
        ),
        pytest.param(
            lambda c: (
                hpack_table_size_update(0)
                + hpack_table_size_update(4096)
                + hpack_indexed(2)
                + hpack_literal(4, b"/hello", mode="incremental")
                + hpack_literal(b":scheme", c.scheme.encode(), mode="incremental")
                + hpack_literal(1, b"localhost")
            ),
            id="size-updates-and-indexed-names",
        ),
    ],
)
def test_hpack_representations(client: H2Client, fields: Callable[[H2Client], bytes]) -> None:
    client.send_headers(1, fields(client))
    response = client.read_response(1)
    assert response.status == 200 and bytes(response.body) == HELLO
    assert client.request("/hello").status == 200  # the dynamic tables are still in step


def test_6_8_goaway_from_the_client_lets_requests_finish(client: H2Client) -> None:
    sid = client.send_request("/hello")
    client.send_goaway(last_stream_id=0)
    assert bytes(client.read_response(sid).body) == HELLO


def test_rst_stream_from_the_client_keeps_the_connection(client: H2Client) -> None:
    sid = client.open_stream("/echo")
    client.send_rst(sid, E.CANCEL)
    assert client.request("/hello").status == 200


def test_default_settings_are_advertised(app_target: Target) -> None:
    """gunicorn's defaults (settings reference §1.11)."""
    with app_target.client() as client:
        settings = client.server_settings
    assert settings.get(Setting.MAX_CONCURRENT_STREAMS) == 100
    assert settings.get(Setting.INITIAL_WINDOW_SIZE, 65535) == 65535
    assert settings.get(Setting.MAX_FRAME_SIZE, 16384) == 16384
    assert settings.get(Setting.MAX_HEADER_LIST_SIZE) == 65536


# ----------------------------------------------------------------------------- §8 malformed


def _fields(
    c: H2Client, *extra: tuple[str, str], drop: str = "", path: str = "/hello"
) -> list[tuple[str, str]]:
    return [f for f in c.request_headers(path, "GET", extra) if f[0] != drop]


MALFORMED: list[tuple[str, Callable[[H2Client], list[tuple[str, str]]]]] = [
    ("8.2.1-uppercase-name", lambda c: _fields(c, ("X-Upper", "1"))),
    ("8.2.1-space-in-name", lambda c: _fields(c, ("x bad", "1"))),
    ("8.2.1-colon-in-name", lambda c: _fields(c, ("x:bad", "1"))),
    ("8.2.1-nul-in-name", lambda c: _fields(c, ("x\0bad", "1"))),
    ("8.2.1-cr-in-value", lambda c: _fields(c, ("x-v", "a\rb"))),
    ("8.2.1-lf-in-value", lambda c: _fields(c, ("x-v", "a\nx-injected: 1"))),
    ("8.2.1-nul-in-value", lambda c: _fields(c, ("x-v", "a\0b"))),
    ("8.2.1-value-leading-space", lambda c: _fields(c, ("x-v", " a"))),
    ("8.2.1-value-trailing-tab", lambda c: _fields(c, ("x-v", "a\t"))),
    ("8.2.2-connection", lambda c: _fields(c, ("connection", "keep-alive"))),
    ("8.2.2-keep-alive", lambda c: _fields(c, ("keep-alive", "timeout=5"))),
    ("8.2.2-proxy-connection", lambda c: _fields(c, ("proxy-connection", "keep-alive"))),
    ("8.2.2-transfer-encoding", lambda c: _fields(c, ("transfer-encoding", "chunked"))),
    ("8.2.2-upgrade", lambda c: _fields(c, ("upgrade", "websocket"))),
    ("8.2.2-te-gzip", lambda c: _fields(c, ("te", "gzip"))),
    ("8.2.2-te-trailers-and-gzip", lambda c: _fields(c, ("te", "trailers, gzip"))),
    (
        "8.3-pseudo-after-regular",
        lambda c: [*_fields(c, drop=":path"), ("x-regular", "1"), (":path", "/hello")],
    ),
    ("8.3-unknown-pseudo", lambda c: _fields(c, (":foo", "bar"))),
    ("8.3-response-pseudo", lambda c: _fields(c, (":status", "200"))),
    ("8.3-duplicate-path", lambda c: _fields(c, (":path", "/hello"))),
    ("8.3-duplicate-method", lambda c: _fields(c, (":method", "GET"))),
    ("8.3-duplicate-scheme", lambda c: _fields(c, (":scheme", c.scheme))),
    ("8.3-duplicate-authority", lambda c: _fields(c, (":authority", "localhost"))),
    ("8.3.1-empty-path", lambda c: _fields(c, path="")),
    ("8.3.1-missing-path", lambda c: _fields(c, drop=":path")),
    ("8.3.1-missing-method", lambda c: _fields(c, drop=":method")),
    ("8.3.1-missing-scheme", lambda c: _fields(c, drop=":scheme")),
    (
        "8.5-connect-with-path-and-scheme",
        lambda c: [(":method", "CONNECT"), *_fields(c, drop=":method")],
    ),
]


@pytest.mark.parametrize("build", [pytest.param(b, id=i) for i, b in MALFORMED])
def test_8_malformed_request_is_a_stream_error(
    request: pytest.FixtureRequest,
    target: Target,
    build: Callable[[H2Client], list[tuple[str, str]]],
) -> None:
    """PROTOCOL_ERROR on the stream (§8.1.1), and the application never sees the request."""
    case = request.node.callspec.id
    with target.client() as client:
        fields = [*build(client), ("x-case", case)]
        client.send_headers(1, hpack_block(fields))
        client.expect_stream_error(1, E.PROTOCOL_ERROR)
    if target.name == "gunicorn":
        AppCalls(target).assert_not_called(case)


@pytest.mark.parametrize(
    "content_length, chunks",
    [
        pytest.param("10", [b"abc"], id="8.1.1-content-length-over-data"),
        pytest.param("2", [b"abc"], id="8.1.1-content-length-under-data"),
        pytest.param("5", [b"ab", b"cd"], id="8.1.1-content-length-over-frames"),
        pytest.param("3", [], id="8.1.1-content-length-no-data"),
    ],
)
def test_8_1_1_content_length_must_match_data(
    client: H2Client, content_length: str, chunks: list[bytes]
) -> None:
    fields = client.request_headers("/echo", "POST", [("content-length", content_length)])
    client.send_headers(1, hpack_block(fields), end_stream=not chunks)
    for i, chunk in enumerate(chunks):
        client.send_data(1, chunk, end_stream=i == len(chunks) - 1)
    client.expect_stream_error(1, E.PROTOCOL_ERROR)


@pytest.mark.parametrize(
    "trailers, end_stream",
    [
        pytest.param([(":path", "/x")], True, id="8.3-pseudo-in-trailers"),
        pytest.param([("x-trailer", "1")], False, id="8.1-trailers-without-end-stream"),
    ],
)
def test_8_1_bad_trailers(
    client: H2Client, trailers: list[tuple[str, str]], end_stream: bool
) -> None:
    sid = client.open_stream("/echo")
    client.send_data(sid, b"body")
    client.send_headers(sid, hpack_block(trailers), end_stream=end_stream)
    client.expect_stream_error(sid, E.PROTOCOL_ERROR)


def test_8_2_2_te_trailers_is_allowed(client: H2Client) -> None:
    assert client.request("/hello", headers=[("te", "trailers")]).status == 200


def test_malformed_request_leaves_other_streams_alone(client: H2Client) -> None:
    """A stream error ends one stream; if the server chose a connection error, fine too."""
    client.send_headers(1, hpack_block(_fields(client, ("X-Upper", "1"))))
    client.expect_stream_error(1, E.PROTOCOL_ERROR)
    if client.goaway is None:
        assert client.request("/hello").status == 200
