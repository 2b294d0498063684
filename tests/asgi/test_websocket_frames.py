"""The frame fast path: simple frames decoded without wsproto, everything else handed to
wsproto at frame boundaries; any split of the client's bytes gives the same session."""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.events import CloseConnection, Pong

from gunicorn.asgi.websocket import WebSocketConfig
from gunicorn.asgi.ws_frames import BINARY, RAW, TEXT, FrameSplitter, encode_frame, unmask
from tests.asgi.ws_harness import Harness, handshake, masked_frame, run


def test_unmask_is_the_rfc_xor() -> None:
    mask = b"\x12\x34\x56\x78"
    for size in (0, 1, 3, 4, 5, 125, 1000):
        payload = os.urandom(size)
        assert unmask(payload, mask) == bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_encode_frame_lengths() -> None:
    assert encode_frame(1, b"hi") == b"\x81\x02hi"
    assert encode_frame(2, b"x" * 126)[:4] == b"\x82\x7e\x00\x7e"
    assert encode_frame(2, b"x" * 65536)[:10] == b"\x82\x7f" + (65536).to_bytes(8, "big")


def test_simple_frames_are_decoded_and_others_passed_on_whole() -> None:
    splitter = FrameSplitter(limit=0)
    ping = masked_frame(0x9, b"p")
    stream = masked_frame(0x1, b"one") + ping + masked_frame(0x2, b"\x00two")
    assert splitter.feed(stream) == [(TEXT, "one"), (RAW, ping), (BINARY, b"\x00two")]


def test_fragments_go_to_wsproto_until_the_message_ends() -> None:
    splitter = FrameSplitter(limit=0)
    first = masked_frame(0x1, b"a", fin=False)
    ping = masked_frame(0x9, b"")
    last = masked_frame(0x0, b"b")
    after = masked_frame(0x1, b"c")
    items = splitter.feed(first + ping + last + after)
    assert items == [(RAW, first + ping + last), (TEXT, "c")]


def test_not_simple_frames() -> None:
    cases = [
        b"\x81\x02hi",  # unmasked
        masked_frame(0x1, b"\xff"),  # not UTF-8: wsproto answers 1007
        masked_frame(0x1, b"x", rsv=0x40),  # compressed
        b"\x81\xfe\x00\x05" + b"\x00" * 4 + b"hello",  # 2-byte length for 5 bytes
        masked_frame(0x1, b"x" * 20),  # above the limit below
    ]
    for frame in cases:
        assert FrameSplitter(limit=10).feed(frame) == [(RAW, frame)]


def test_small_frames_are_waited_for_and_big_ones_streamed() -> None:
    splitter = FrameSplitter(limit=0)
    small = masked_frame(0x2, b"s" * 100)
    assert splitter.feed(small[:50]) == []
    assert splitter.feed(small[50:]) == [(BINARY, b"s" * 100)]
    big = masked_frame(0x2, b"b" * 100_000)
    assert splitter.feed(big[:5000]) == [(RAW, big[:5000])]
    assert splitter.feed(big[5000:] + small) == [(RAW, big[5000:]), (BINARY, b"s" * 100)]


STREAM = b"".join(
    [
        masked_frame(0x1, "héllo".encode()),
        masked_frame(0x2, b""),
        masked_frame(0x9, b"ping"),
        masked_frame(0x1, b"frag", fin=False),
        masked_frame(0xA, b"unsolicited pong"),
        masked_frame(0x0, b"ment"),
        masked_frame(0x2, b"m" * 300),
        masked_frame(0x2, b"L" * 70_000),
        masked_frame(0x1, b""),
        masked_frame(0x8, b"\x03\xe8bye"),
        masked_frame(0x1, b"after close: never read"),
    ]
)
EXPECTED = [
    {"type": "websocket.receive", "text": "héllo"},
    {"type": "websocket.receive", "bytes": b""},
    {"type": "websocket.receive", "text": "fragment"},
    {"type": "websocket.receive", "bytes": b"m" * 300},
    {"type": "websocket.receive", "bytes": b"L" * 70_000},
    {"type": "websocket.receive", "text": ""},
    {"type": "websocket.disconnect", "code": 1000, "reason": "bye"},
]


async def record(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    scope["received"] = received = []
    while True:
        message = await receive()
        received.append(message)
        if message["type"] == "websocket.disconnect":
            return


def replay(cuts: list[int]) -> None:
    async def main() -> None:
        h = Harness(record, config=WebSocketConfig(max_message_size=100_000))
        assert await h.response() == 101
        points = sorted({0, len(STREAM), *cuts})
        for start, stop in itertools.pairwise(points):
            h.send_raw(STREAM[start:stop])
        await h.finished()
        assert h.cycle.scope["received"] == EXPECTED
        events = h.events()
        assert events == [Pong(payload=b"ping"), CloseConnection(code=1000, reason="bye")]

    run(main())


def test_whole_stream_at_once() -> None:
    replay([])


def test_stream_byte_by_byte_around_the_small_frames() -> None:
    replay(list(range(0, 80)))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_session(cuts: list[int]) -> None:
    replay(cuts)


def test_messages_after_our_close_are_not_delivered() -> None:
    gate = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4000})
        await gate.wait()
        scope["after"] = await receive()

    async def main() -> None:
        h = Harness(app)
        assert await h.response() == 101
        assert await h.next_events() == [CloseConnection(code=4000, reason="")]
        h.send_raw(masked_frame(0x1, b"too late"))
        gate.set()
        await h.finished()
        assert h.cycle.scope["after"] == {
            "type": "websocket.disconnect",
            "code": 4000,
            "reason": "",
        }

    run(main())


frame_parts = st.builds(
    lambda opcode, payload, fin, rsv: masked_frame(opcode, payload, fin=fin, rsv=rsv),
    st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB]),
    st.binary(max_size=300) | st.sampled_from([b"\x03\xe8", b"\x03\xe8ok", b"\xc3\x28", b""]),
    st.booleans(),
    st.sampled_from([0, 0x40, 0x20]),
)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(frame_parts | st.binary(max_size=40), max_size=8),
    st.lists(st.integers(min_value=0, max_value=3000), max_size=6),
    st.booleans(),
)
def test_hostile_streams_never_break_the_cycle(
    parts: list[bytes], cuts: list[int], deflate: bool
) -> None:
    """Any bytes at any split: data_received never raises, and the session ends (if it
    ends) with a disconnect the application sees."""
    stream = b"".join(parts)
    request = handshake((b"Sec-WebSocket-Extensions", b"permessage-deflate")) if deflate else None

    async def main() -> None:
        h = Harness(record, request=request, config=WebSocketConfig(max_message_size=200))
        assert await h.response() == 101
        points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
        for start, stop in itertools.pairwise(points):
            h.send_raw(stream[start:stop])
        h.cycle.connection_lost(None)
        await h.finished()
        received = h.cycle.scope["received"]
        assert received[-1]["type"] == "websocket.disconnect"
        assert all(m["type"] == "websocket.receive" for m in received[:-1])

    run(main())
