"""WebSockets end to end: a real ``gunicorn -k asgi`` serving tests/asgi/ws_apps.py,
driven by the ``websockets`` client library and by raw sockets for bad handshakes."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.certs import make_certs
from tests.support import Gunicorn, wait_until

REPO = Path(__file__).resolve().parents[2]
MAX_MESSAGE = 65536


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gunicorn, Path]]:
    tmp = tmp_path_factory.mktemp("ws")
    record = tmp / "record.jsonl"
    record.touch()
    access = tmp / "access.log"
    with Gunicorn(
        "-k",
        "asgi",
        "--access-logfile",
        str(access),
        "--websocket-max-message-size",
        str(MAX_MESSAGE),
        "tests.asgi.ws_apps:app",
        cwd=REPO,
        env={"WS_TEST_RECORD": str(record)},
    ) as server:
        server.wait_for("Booting worker")
        yield server, tmp


@pytest.fixture
def server(served: tuple[Gunicorn, Path]) -> Gunicorn:
    return served[0]


def ws_url(server: Gunicorn, path: str) -> str:
    host, port = server.address  # type: ignore[misc]
    return f"ws://{host}:{port}{path}"


def records(served: tuple[Gunicorn, Path]) -> list[dict[str, Any]]:
    text = (served[1] / "record.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 15))


def test_echo_with_subprotocol_and_permessage_deflate(server: Gunicorn) -> None:
    async def main() -> None:
        async with connect(ws_url(server, "/echo"), subprotocols=["chat", "other"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
            assert ws.response.headers["X-Scope-Scheme"] == "ws"
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01\x02")
            assert await ws.recv() == b"\x00\x01\x02"
            big = "many repeated words " * 3000  # 60 kB, compressed both ways
            await ws.send(big)
            assert await ws.recv() == big
            await ws.send([b"frag", b"mented"])  # a fragmented message
            assert await ws.recv() == b"fragmented"
            latency = await ws.ping()
            await asyncio.wait_for(latency, 5)

    run(main())


def test_echo_without_compression(server: Gunicorn) -> None:
    async def main() -> None:
        async with connect(ws_url(server, "/echo"), compression=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            for n in range(50):
                await ws.send(f"message {n}")
                assert await ws.recv() == f"message {n}"

    run(main())


def test_client_close_code_reaches_the_application(
    server: Gunicorn, served: tuple[Gunicorn, Path]
) -> None:
    async def main() -> None:
        async with connect(ws_url(server, "/echo?client-close")) as ws:
            await ws.close(code=4002, reason="client leaves")

    run(main())
    seen = wait_until(lambda: [r for r in records(served) if r.get("code") == 4002])
    assert seen[0]["reason"] == "client leaves"
    # send() after the disconnect raised the spec's OSError subclass.
    assert wait_until(lambda: [r for r in records(served) if "send_error" in r])


def test_server_close_code_and_reason(server: Gunicorn) -> None:
    async def main() -> None:
        async with connect(ws_url(server, "/echo")) as ws:
            await ws.send("close-me")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "as asked")

    run(main())


def test_exception_after_accept_closes_with_1011(server: Gunicorn) -> None:
    async def main() -> None:
        async with connect(ws_url(server, "/echo")) as ws:
            await ws.send("raise")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1011

    run(main())
    assert "boom after accept" in server.log


def test_message_too_big_closes_with_1009(server: Gunicorn) -> None:
    async def main() -> None:
        async with connect(ws_url(server, "/echo"), max_size=None) as ws:
            await ws.send(b"x" * (MAX_MESSAGE + 1))
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009

    run(main())


@pytest.mark.parametrize(("path", "status"), [("/forbidden", 403), ("/deny", 401), ("/raise", 500)])
def test_handshake_refused_by_the_application(server: Gunicorn, path: str, status: int) -> None:
    async def main() -> None:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server, path)):
                pass
        response = info.value.response
        assert response.status_code == status
        if status == 401:
            assert response.body == b"who are you?\n"

    run(main())


def raw_handshake(server: Gunicorn, *headers: bytes) -> bytes:
    host, port = server.address  # type: ignore[misc]
    request = b"\r\n".join(
        [
            b"GET /echo HTTP/1.1",
            b"Host: test",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            *headers,
            b"",
            b"",
        ]
    )
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_unsupported_version_gets_426(server: Gunicorn) -> None:
    answer = raw_handshake(
        server, b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", b"Sec-WebSocket-Version: 8"
    )
    assert answer.startswith(b"HTTP/1.1 426 ")
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in answer


def test_missing_key_gets_400(server: Gunicorn) -> None:
    answer = raw_handshake(server, b"Sec-WebSocket-Version: 13")
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_upgrade_accepted_in_the_access_log(served: tuple[Gunicorn, Path]) -> None:
    server, tmp = served

    async def main() -> None:
        async with connect(ws_url(server, "/echo?logged")) as ws:
            await ws.send("x")
            await ws.recv()
        with pytest.raises(InvalidStatus):
            async with connect(ws_url(server, "/forbidden?logged")):
                pass

    run(main())
    access = tmp / "access.log"

    def line(path: str) -> str:
        def found() -> list[str]:
            return [ln for ln in access.read_text().splitlines() if path in ln]

        return str(wait_until(found)[0])

    assert '" 101 ' in line("/echo?logged")
    assert '" 403 ' in line("/forbidden?logged")


def test_graceful_stop_closes_websockets_with_going_away(tmp_path: Path) -> None:
    with Gunicorn(
        "-k", "asgi", "--graceful-timeout", "2", "tests.asgi.ws_apps:app", cwd=REPO
    ) as server:
        server.wait_for("Booting worker")

        async def main() -> tuple[int, str]:
            async with connect(ws_url(server, "/echo")) as ws:
                await ws.send("before")
                assert await ws.recv() == "before"
                server.send(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        await ws.recv()
                assert info.value.rcvd is not None
                return info.value.rcvd.code, info.value.rcvd.reason

        code, _reason = run(main())
        assert code == 1001
        assert server.wait(timeout=15) == 0


def test_wss_over_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    with Gunicorn(
        "-k",
        "asgi",
        "--certfile",
        str(certs.server_cert),
        "--keyfile",
        str(certs.server_key),
        "tests.asgi.ws_apps:app",
        cwd=REPO,
    ) as server:
        server.wait_for("Booting worker")
        host, port = server.address  # type: ignore[misc]
        context = ssl.create_default_context(cafile=str(certs.ca))

        async def main() -> None:
            async with connect(f"wss://{host}:{port}/echo", ssl=context) as ws:
                assert ws.response.headers["X-Scope-Scheme"] == "wss"
                big = "x" * 100_000
                await ws.send(big)
                assert await ws.recv() == big

        run(main())
