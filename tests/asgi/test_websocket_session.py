"""A WebSocket session frame by frame: messages both ways, ping/pong, the close
handshake from either side and its bound, protocol errors (1002/1007/1009), application
errors (1011), disconnects, back-pressure both ways, graceful shutdown and keepalive."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from gunicorn.asgi.websocket import ClientDisconnected, WebSocketConfig
from tests.asgi.ws_harness import Harness, handshake, masked_frame, run, until


class Recorder:
    """An application that accepts, records what it receives and echoes messages."""

    def __init__(self, echo: bool = True) -> None:
        self.received: list[dict[str, Any]] = []
        self.echo = echo
        self.send: Any = None
        self.receive: Any = None
        self.after_disconnect: list[Any] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.send, self.receive = send, receive
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] == "websocket.disconnect":
                return
            if self.echo:
                reply = {k: v for k, v in message.items() if k in ("text", "bytes")}
                await send({"type": "websocket.send", **reply})


async def opened(app: Any, config: WebSocketConfig | None = None, request: bytes | None = None):
    h = Harness(app, config=config, request=request)
    assert await h.response() == 101
    return h


def test_echo_text_and_bytes() -> None:
    async def main() -> None:
        app = Recorder()
        h = await opened(app)
        h.send(TextMessage(data="héllo"))
        h.send(BytesMessage(data=b"\x00\x01"))
        events = await h.next_events(2)
        assert [(type(e), e.data) for e in events] == [
            (TextMessage, "héllo"),
            (BytesMessage, b"\x00\x01"),
        ]
        assert app.received == [
            {"type": "websocket.receive", "text": "héllo"},
            {"type": "websocket.receive", "bytes": b"\x00\x01"},
        ]

    run(main())


def test_fragmented_message_with_a_ping_in_between() -> None:
    async def main() -> None:
        app = Recorder()
        h = await opened(app)
        h.send(TextMessage(data="frag", message_finished=False))
        h.send(Ping(payload=b"p1"))
        h.send(TextMessage(data="ment", message_finished=True))
        events = await h.next_events(2)
        assert events[0] == Pong(payload=b"p1")
        assert events[1].data == "fragment"  # type: ignore[attr-defined]

    run(main())


def test_client_close_is_answered_and_reported() -> None:
    async def main() -> None:
        app = Recorder()
        h = await opened(app)
        h.send(CloseConnection(code=4000, reason="bye"))
        events = await h.next_events()
        assert events == [CloseConnection(code=4000, reason="bye")]
        await h.finished()
        assert app.received[-1] == {"type": "websocket.disconnect", "code": 4000, "reason": "bye"}
        assert h.channel.closed_by_server  # the server closes TCP first (RFC 6455 §7.1.1)
        # After the disconnect: receive repeats it, send raises the spec's OSError.
        assert (await app.receive())["code"] == 4000
        with pytest.raises(ClientDisconnected) as info:
            await app.send({"type": "websocket.send", "text": "late"})
        assert isinstance(info.value, OSError)
        await app.send({"type": "websocket.close"})  # closing again is harmless
        status, _headers, sent = h.done[0]
        assert status == 101 and sent > 0

    run(main())


def test_client_close_without_code() -> None:
    async def main() -> None:
        app = Recorder()
        h = await opened(app)
        h.send_raw(masked_frame(0x8, b""))
        await h.finished()
        assert app.received[-1]["code"] == 1005
        # Our answer carries no code either.
        assert h.new_output() == b"\x88\x00"

    run(main())


def test_application_close_and_the_client_answers() -> None:
    outcome: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4001, "reason": "done"})
        outcome["after"] = await receive()

    async def main() -> None:
        h = await opened(app)
        events = await h.next_events()
        assert events == [CloseConnection(code=4001, reason="done")]
        await h.finished()
        assert not h.channel.closed  # waiting for the client's Close
        h.send(events[0].response())  # type: ignore[attr-defined]
        assert h.channel.closed_by_server and not h.channel.aborted

    run(main())
    assert outcome["after"] == {"type": "websocket.disconnect", "code": 4001, "reason": "done"}


def test_close_handshake_is_bounded() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close"})

    async def main() -> None:
        h = await opened(app, WebSocketConfig(close_timeout=0.05))
        assert await h.next_events() == [CloseConnection(code=1000, reason="")]
        await until(lambda: h.channel.aborted)

    run(main())


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x81\x05hello", 1002),  # unmasked client frame
        (masked_frame(0x3, b"x"), 1002),  # reserved opcode
        (masked_frame(0x1, b"x", rsv=0x40), 1002),  # RSV1 without an extension
        (masked_frame(0x0, b"x"), 1002),  # continuation with nothing to continue
        (masked_frame(0x9, b"x", fin=False), 1002),  # fragmented control frame
        (masked_frame(0x8, b"\x03\xe7"), 1002),  # close code 999
        (masked_frame(0x1, b"\xff\xfe"), 1007),  # text that is not UTF-8
        (masked_frame(0x8, b"\x03\xe8\xff"), 1007),  # close reason that is not UTF-8
    ],
)
def test_protocol_errors_fail_the_connection(frame: bytes, code: int) -> None:
    async def main() -> None:
        app = Recorder()
        h = await opened(app)
        h.send_raw(frame)
        events = await h.next_events()
        assert isinstance(events[0], CloseConnection) and events[0].code == code
        await h.finished()
        assert app.received[-1]["type"] == "websocket.disconnect"
        assert app.received[-1]["code"] == code
        assert h.channel.closed_by_server
        h.send_raw(masked_frame(0x1, b"ignored"))  # nothing is read after a failure

    run(main())


def test_message_too_big_from_the_frame_header() -> None:
    async def main() -> None:
        app = Recorder()
        h = await opened(app, WebSocketConfig(max_message_size=1000))
        h.send(BytesMessage(data=b"x" * 1000))  # exactly the limit is fine
        events = await h.next_events()
        assert len(events[0].data) == 1000  # type: ignore[attr-defined]
        h.send_raw(masked_frame(0x2, b"x" * 1001)[:20])  # the header is enough
        events = await h.next_events()
        assert events == [CloseConnection(code=1009, reason="message too big")]
        await h.finished()
        assert app.received[-1]["code"] == 1009

    run(main())


def test_message_too_big_across_fragments() -> None:
    async def main() -> None:
        app = Recorder()
        h = await opened(app, WebSocketConfig(max_message_size=1000))
        for _ in range(3):
            h.send(TextMessage(data="y" * 400, message_finished=False))
        events = await h.next_events()
        assert events == [CloseConnection(code=1009, reason="message too big")]

    run(main())


def test_exception_after_accept_closes_with_1011() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise RuntimeError("boom")

    async def main() -> None:
        h = await opened(app)
        assert await h.next_events() == [CloseConnection(code=1011, reason="")]
        await h.finished()
        assert h.log.levels() == ["exception"]

    run(main())


def test_returning_after_accept_closes_with_1000() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": b"bye"})

    async def main() -> None:
        h = await opened(app)
        events = await h.next_events(2)
        assert events[1] == CloseConnection(code=1000, reason="")
        assert h.log.records == []

    run(main())


def test_connection_lost_gives_1006_and_send_raises() -> None:
    async def main() -> None:
        app = Recorder()
        h = await opened(app)
        await until(lambda: app.send is not None)
        h.cycle.connection_lost(ConnectionResetError())
        await h.finished()
        assert app.received[-1] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        with pytest.raises(OSError):
            await app.send({"type": "websocket.send", "bytes": b"x"})

    run(main())


def test_end_of_input_without_close_frame() -> None:
    async def main() -> None:
        app = Recorder()
        h = await opened(app)
        h.cycle.eof_received()
        await h.finished()
        assert app.received[-1]["code"] == 1006
        assert h.channel.closed_by_server

    run(main())


def test_application_ignoring_the_disconnect_is_cancelled_after_the_grace_period() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await asyncio.Event().wait()  # never returns by itself

    async def main() -> None:
        h = await opened(app, WebSocketConfig(disconnect_grace_period=0.05))
        h.cycle.connection_lost(None)
        await h.finished()  # cancelled by the cycle, which then finishes normally
        assert h.done[0][0] == 101

    run(main())


def test_reading_pauses_while_messages_wait_and_resumes_when_received() -> None:
    gate = asyncio.Event()
    received: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await gate.wait()
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            received.append(message["text"])

    async def main() -> None:
        h = await opened(app)
        for n in range(40):
            h.send(TextMessage(data=str(n)))
        assert h.channel.paused
        gate.set()
        await until(lambda: len(received) == 40)
        assert not h.channel.paused and h.channel.resumes == 1
        assert received == [str(n) for n in range(40)]

    run(main())


def test_send_waits_for_the_write_buffer_to_drain() -> None:
    sent: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for n in range(3):
            await send({"type": "websocket.send", "text": str(n)})
            sent.append(n)

    async def main() -> None:
        h = Harness(app)
        h.channel.drain_gate = asyncio.Event()
        await until(lambda: h.channel.drains == 1)  # the 101 waits
        h.channel.drain_gate.set()
        await until(lambda: len(sent) == 3)
        await h.response()
        assert [e.data for e in h.events()[:3]] == ["0", "1", "2"]  # type: ignore[attr-defined]

    run(main())


def test_frames_sent_with_the_handshake_and_before_accept() -> None:
    async def main() -> None:
        client_frames = masked_frame(0x1, b"early")
        app = Recorder()
        gate = asyncio.Event()

        async def slow_accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await gate.wait()
            await app(scope, receive, send)

        h = Harness(slow_accept, request=handshake() + client_frames)
        h.send_raw(masked_frame(0x1, b"later"))
        gate.set()
        assert await h.response() == 101
        events = await h.next_events(2)
        assert [e.data for e in events] == ["early", "later"]  # type: ignore[attr-defined]

    run(main())


def test_shutdown_closes_with_going_away() -> None:
    async def main() -> None:
        app = Recorder()
        h = await opened(app)
        await until(lambda: app.send is not None)
        h.cycle.shutdown()
        events = await h.next_events()
        assert events == [CloseConnection(code=1001, reason="")]
        await h.finished()
        assert app.received[-1]["code"] == 1001
        h.send(events[0].response())  # type: ignore[attr-defined]
        assert h.channel.closed_by_server

    run(main())


def test_shutdown_before_accept_closes_right_after_it() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        app = Recorder()

        async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await gate.wait()
            await app(scope, receive, send)

        h = Harness(slow)
        h.cycle.shutdown()
        gate.set()
        assert await h.response() == 101
        assert await h.next_events() == [CloseConnection(code=1001, reason="")]

    run(main())


def test_keepalive_ping_and_timeout() -> None:
    async def main() -> None:
        app = Recorder()
        config = WebSocketConfig(ping_interval=0.02, ping_timeout=0.05)
        h = await opened(app, config)
        ping = (await h.next_events())[0]
        assert isinstance(ping, Ping)
        h.send(ping.response())  # answered: the connection stays
        # No more answers: closed with 1011 after the timeout.
        events: list[Any] = []
        await until(
            lambda: (
                any(isinstance(e, CloseConnection) for e in events)
                or bool(events.extend(h.events()))
            )
        )
        close = next(e for e in events if isinstance(e, CloseConnection))
        assert close.code == 1011
        await h.finished()

    run(main())


def test_invalid_application_messages() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        with pytest.raises(ValueError):
            await send({"type": "websocket.send"})
        with pytest.raises(ValueError):
            await send({"type": "websocket.send", "text": "a", "bytes": b"b"})
        with pytest.raises(RuntimeError):
            await send({"type": "websocket.accept"})
        with pytest.raises(ValueError):
            await send({"type": "websocket.close", "code": 999})
        await send({"type": "websocket.close", "code": 1006})  # local-only: sent as 1000

    async def main() -> None:
        h = await opened(app)
        assert await h.next_events() == [CloseConnection(code=1000, reason="")]
        await h.finished()

    run(main())


def test_active_until_the_connection_and_the_application_are_done() -> None:
    gate = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        await gate.wait()

    async def main() -> None:
        h = await opened(app)
        assert h.cycle.active
        h.cycle.connection_lost(None)
        assert h.cycle.active  # the application still runs
        gate.set()
        await h.finished()
        assert not h.cycle.active

    run(main())
