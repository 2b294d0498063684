"""permessage-deflate (RFC 7692): negotiation, compressed messages both ways, and the
message size limit applied to what a compressed message inflates to."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from wsproto.events import BytesMessage, CloseConnection, TextMessage

from gunicorn.asgi.websocket import WebSocketConfig
from gunicorn.asgi.ws_deflate import MIN_COMPRESSED_SIZE, MessageLimit, negotiate
from gunicorn.asgi.ws_handshake import parse_extensions
from tests.asgi.ws_harness import Harness, handshake, masked_frame, run


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send(
            {"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")}
        )


def agreed(offer: bytes) -> bytes | None:
    result = negotiate(parse_extensions(offer), MessageLimit(0))
    return None if result is None else result[1]


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        (b"permessage-deflate", b"permessage-deflate"),
        (b"permessage-deflate; client_max_window_bits", b"permessage-deflate"),
        (
            b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            b"permessage-deflate; server_max_window_bits=10",
            b"permessage-deflate; server_max_window_bits=10",
        ),
        (
            b'permessage-deflate; server_max_window_bits="11"',
            b"permessage-deflate; server_max_window_bits=11",
        ),
        # Declined offers: unknown or repeated parameters, invalid values, 8-bit windows.
        (b"permessage-deflate; foo", None),
        (b"permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        (b"permessage-deflate; server_max_window_bits", None),
        (b"permessage-deflate; server_max_window_bits=16", None),
        (b"permessage-deflate; server_max_window_bits=8", None),
        (b"permessage-deflate; client_max_window_bits=07", None),
        (b"permessage-deflate; server_no_context_takeover=1", None),
        (b"x-webkit-deflate-frame", None),
        # The first offer we can honour wins.
        (
            b"permessage-deflate; server_max_window_bits=8, permessage-deflate; "
            b"server_max_window_bits=9",
            b"permessage-deflate; server_max_window_bits=9",
        ),
    ],
)
def test_negotiation(offer: bytes, answer: bytes | None) -> None:
    assert agreed(offer) == answer


def offering(value: bytes = b"permessage-deflate; client_max_window_bits") -> bytes:
    return handshake((b"Sec-WebSocket-Extensions", value))


def test_compressed_messages_both_ways() -> None:
    async def main() -> None:
        h = Harness(echo, request=offering())
        assert await h.response() == 101
        assert h.header(b"sec-websocket-extensions") == b"permessage-deflate"
        big = "compress me " * 200
        h.send(TextMessage(data=big))
        h.send(BytesMessage(data=b"tiny"))
        start = len(h.channel.out)
        events = await h.next_events(2)
        assert events[0].data == big  # type: ignore[attr-defined]
        assert events[1].data == b"tiny"  # type: ignore[attr-defined]
        wire = bytes(h.channel.out[start:])
        assert wire[0] == 0xC1  # FIN + RSV1 (compressed) + text
        assert len(wire) < len(big) // 10
        # Small messages go out uncompressed (RSV1 clear).
        assert wire.endswith(b"\x82\x04tiny")
        assert MIN_COMPRESSED_SIZE > 4

    run(main())


def test_context_takeover_across_messages() -> None:
    async def main() -> None:
        h = Harness(echo, request=offering(b"permessage-deflate; server_no_context_takeover"))
        assert await h.response() == 101
        for n in range(5):
            text = f"{n} " + "the same words again and again " * 20
            h.send(TextMessage(data=text))
            assert [e.data for e in await h.next_events()] == [text]  # type: ignore[attr-defined]

    run(main())


def test_no_extension_when_disabled() -> None:
    async def main() -> None:
        h = Harness(echo, request=offering(), config=WebSocketConfig(per_message_deflate=False))
        assert await h.response() == 101
        assert h.header(b"sec-websocket-extensions") is None

    run(main())


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def test_compressed_message_inflating_past_the_limit_is_1009() -> None:
    async def main() -> None:
        h = Harness(echo, request=offering(), config=WebSocketConfig(max_message_size=10_000))
        assert await h.response() == 101
        bomb = deflated(b"\x00" * 1_000_000)
        assert len(bomb) < 2000
        h.send_raw(masked_frame(0x2, bomb, rsv=0x40))
        assert await h.next_events() == [CloseConnection(code=1009, reason="message too big")]

    run(main())


def test_compressed_message_at_the_limit_is_accepted() -> None:
    async def main() -> None:
        h = Harness(echo, request=offering(), config=WebSocketConfig(max_message_size=10_000))
        assert await h.response() == 101
        h.send_raw(masked_frame(0x2, deflated(b"a" * 10_000), rsv=0x40))
        events = await h.next_events()
        assert events[0].data == b"a" * 10_000  # type: ignore[attr-defined]

    run(main())


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (masked_frame(0x2, b"\xff\xff\xff\xff", rsv=0x40), 1007),  # not deflate data
        (masked_frame(0x9, b"", rsv=0x40), 1002),  # RSV1 on a control frame
        (
            masked_frame(0x2, deflated(b"ab"), fin=False, rsv=0x40)
            + masked_frame(0x0, deflated(b"cd"), rsv=0x40),
            1002,
        ),  # RSV1 on a continuation
    ],
)
def test_compression_errors(frame: bytes, code: int) -> None:
    async def main() -> None:
        h = Harness(echo, request=offering())
        assert await h.response() == 101
        h.send_raw(frame)
        events = await h.next_events()
        assert isinstance(events[0], CloseConnection) and events[0].code == code

    run(main())


def test_malformed_extension_header_is_declined_not_refused() -> None:
    async def main() -> None:
        h = Harness(echo, request=offering(b'permessage-deflate; x="unterminated'))
        assert await h.response() == 101
        assert h.header(b"sec-websocket-extensions") is None

    run(main())
