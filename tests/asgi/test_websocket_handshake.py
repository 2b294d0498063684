"""The WebSocket opening handshake: which requests switch, 101/400/426/403/500 answers,
the websocket scope, subprotocols and accept headers, the denial-response extension."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gunicorn.asgi.websocket import is_websocket_request
from gunicorn.asgi.ws_handshake import accept_token, parse_extensions
from gunicorn.http.h1.connection import H1Connection
from tests.asgi.ws_harness import ACCEPT, Harness, handshake, run, until


def parse(raw: bytes) -> Any:
    core = H1Connection(clock=time.time)
    core.receive_data(raw)
    return core.next_event()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (handshake(), True),
        (handshake().replace(b"Upgrade: websocket", b"Upgrade: WebSocket"), True),
        (handshake().replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade"), True),
        (handshake().replace(b"GET", b"POST", 1), False),
        (handshake().replace(b"HTTP/1.1", b"HTTP/1.0", 1), False),
        (handshake().replace(b"Connection: Upgrade", b"Connection: keep-alive"), False),
        (handshake().replace(b"Upgrade: websocket", b"Upgrade: h2c"), False),
    ],
)
def test_which_requests_are_websocket_handshakes(raw: bytes, expected: bool) -> None:
    assert is_websocket_request(parse(raw)) is expected


def test_accept_token_is_the_rfc_example() -> None:
    assert accept_token(b"dGhlIHNhbXBsZSBub25jZQ==") == ACCEPT


async def accept_and_wait(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def never_called(scope: dict[str, Any], receive: Any, send: Any) -> Any:
    raise AssertionError("the application must not run for a refused handshake")


def test_valid_handshake_gets_101() -> None:
    async def main() -> None:
        h = Harness(accept_and_wait)
        assert await h.response() == 101
        assert h.header(b"upgrade") == b"websocket"
        assert h.header(b"connection") == b"Upgrade"
        assert h.header(b"sec-websocket-accept") == ACCEPT
        assert h.header(b"server") == b"gunicorn"
        assert h.header(b"date") is not None
        assert h.header(b"sec-websocket-protocol") is None
        h.cycle.connection_lost(None)
        await h.finished()
        status, headers, _sent = h.done[0]
        assert status == 101
        assert (b"Sec-WebSocket-Accept", ACCEPT) in headers

    run(main())


@pytest.mark.parametrize(
    ("raw", "status", "why"),
    [
        (handshake(version=None), 426, b"version"),
        (handshake(version=b"8"), 426, b"version"),
        (
            handshake(
                (b"Sec-WebSocket-Version", b"13"),
            ),
            426,
            b"version",
        ),  # two of them
        (handshake(key=None), 400, b"Sec-WebSocket-Key"),
        (handshake(key=b"c2hvcnQ="), 400, b"Sec-WebSocket-Key"),  # 5 bytes, not 16
        (handshake(key=b"!!!!!!!!!!!!!!!!!!!!!!=="), 400, b"Sec-WebSocket-Key"),
        (
            handshake(
                (b"Content-Length", b"3"),
            )
            + b"abc",
            400,
            b"body",
        ),
    ],
)
def test_bad_handshakes_are_refused(raw: bytes, status: int, why: bytes) -> None:
    async def main() -> None:
        h = Harness(never_called, request=raw)  # type: ignore[arg-type]
        assert await h.response() == status
        body = await h.http_body()
        assert why in body
        assert h.header(b"content-length") == b"%d" % len(body)
        assert h.header(b"connection") == b"close"
        if status == 426:
            assert h.header(b"sec-websocket-version") == b"13"
        await h.finished()
        assert h.done == [(status, h.done[0][1], len(body))]

    run(main())


def test_websocket_scope() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)
        await send({"type": "websocket.close"})

    async def main() -> None:
        h = Harness(
            app,
            request=handshake(
                (b"Sec-WebSocket-Protocol", b"chat, superchat"),
            ),
            scheme="https",
        )
        await h.response()
        await h.finished()

    run(main())
    assert seen["type"] == "websocket"
    assert seen["scheme"] == "wss"
    assert "method" not in seen
    assert seen["subprotocols"] == ["chat", "superchat"]
    assert seen["path"] == "/chat"
    assert seen["query_string"] == b"room=1"
    assert seen["http_version"] == "1.1"
    assert seen["state"] == {"db": "ready"}
    assert seen["asgi"]["spec_version"] == "2.4"
    assert "websocket.http.response" in seen["extensions"]
    assert "http.response.trailers" not in seen["extensions"]


def test_accept_with_subprotocol_and_headers() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": "superchat",
                "headers": [(b"x-session", b"abc"), (b"set-cookie", b"a=1"), (b"upgrade", b"x")],
            }
        )
        await send({"type": "websocket.close"})

    async def main() -> None:
        h = Harness(
            app,
            request=handshake(
                (b"Sec-WebSocket-Protocol", b"chat, superchat"),
            ),
        )
        assert await h.response() == 101
        assert h.header(b"sec-websocket-protocol") == b"superchat"
        assert h.header(b"x-session") == b"abc"
        assert h.header(b"set-cookie") == b"a=1"
        assert [v for k, v in h.headers if k == b"upgrade"] == [b"websocket"]

    run(main())


def test_sec_websocket_protocol_in_accept_headers_is_an_application_error() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"sec-websocket-protocol", b"x")]})

    async def main() -> None:
        h = Harness(app)
        assert await h.response() == 500
        await h.finished()
        assert "exception" in h.log.levels()

    run(main())


def test_close_before_accept_is_403() -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        received.append(await receive())
        await send({"type": "websocket.close"})  # harmless
        with pytest.raises(OSError):
            await send({"type": "websocket.send", "text": "late"})

    async def main() -> None:
        h = Harness(app)
        assert await h.response() == 403
        assert await h.http_body() == b""
        await h.finished()
        assert h.done[0][0] == 403

    run(main())
    assert received[0]["type"] == "websocket.disconnect"


def test_denial_response_extension() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"www-authenticate", b"Bearer"), (b"content-type", b"text/plain")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"token"})

    async def main() -> None:
        h = Harness(app)
        assert await h.response() == 401
        assert h.header(b"www-authenticate") == b"Bearer"
        assert h.header(b"transfer-encoding") == b"chunked"
        assert h.header(b"connection") == b"close"
        assert await h.http_body() == b"3\r\nno \r\n5\r\ntoken\r\n0\r\n\r\n"
        await h.finished()
        assert h.done[0][0] == 401
        assert h.done[0][2] == 8

    run(main())


def test_denial_response_with_content_length() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 404,
                "headers": [(b"content-length", b"9")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"not found"})

    async def main() -> None:
        h = Harness(app)
        assert await h.response() == 404
        assert await h.http_body() == b"not found"

    run(main())


def test_exception_before_accept_is_500() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        raise ValueError("boom")

    async def main() -> None:
        h = Harness(app)
        assert await h.response() == 500
        assert b"Internal Server Error" in await h.http_body()
        await h.finished()
        assert h.log.levels() == ["exception"]
        assert h.done[0][0] == 500

    run(main())


def test_returning_without_accepting_is_500() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()

    async def main() -> None:
        h = Harness(app)
        assert await h.response() == 500
        await h.finished()
        assert h.log.levels() == ["error"]

    run(main())


def test_exception_during_denial_response_drops_the_connection() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 400, "headers": []})
        raise ValueError("boom")

    async def main() -> None:
        h = Harness(app)
        assert await h.response() == 400
        await h.finished()
        assert h.channel.aborted

    run(main())


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.send", "text": "too early"},
        {"type": "websocket.http.response.body", "body": b"no start"},
        {"type": "http.response.start", "status": 200},
        {"type": "websocket.http.response.start", "status": 101, "headers": []},
    ],
)
def test_unexpected_messages_before_accept(message: dict[str, Any]) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send(message)

    async def main() -> None:
        h = Harness(app)
        assert await h.response() == 500
        await h.finished()

    run(main())


def test_client_gone_before_accept() -> None:
    outcome: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        outcome["disconnect"] = await receive()
        try:
            await send({"type": "websocket.accept"})
        except OSError as exc:
            outcome["error"] = exc
            raise

    async def main() -> None:
        h = Harness(app)
        await until_running(h)
        h.cycle.connection_lost(None)
        await h.finished()
        assert h.channel.out == b""
        assert h.done == [(0, [], 0)]
        assert h.log.records == []

    run(main())
    assert outcome["disconnect"] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    assert isinstance(outcome["error"], OSError)


async def until_running(h: Harness) -> None:
    await until(lambda: h.cycle._connect_delivered)


def test_parse_extensions() -> None:
    assert parse_extensions(b'permessage-deflate; client_max_window_bits; x="10", foo') == [
        ("permessage-deflate", [("client_max_window_bits", None), ("x", "10")]),
        ("foo", []),
    ]
    with pytest.raises(ValueError):
        parse_extensions(b'permessage-deflate; x="10')
