"""The client API used directly (plain threads and plain asyncio) against a real server."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gunicorn.dirty import (
    DirtyAppError,
    DirtyClient,
    DirtyConnectionError,
    DirtyTimeoutError,
    close_dirty_client,
    close_dirty_client_async,
    get_dirty_client,
    get_dirty_client_async,
    protocol,
    set_dirty_socket_path,
    stash,
)
from gunicorn.dirty.errors import StashKeyNotFoundError, StashTableNotFoundError

ECHO = "dirty_apps:Echo"


@pytest.fixture
def socket_path(dirty_server: Any) -> Iterator[str]:
    server = dirty_server(
        f"--dirty-workers 2 --dirty-app {ECHO} --dirty-app dirty_apps:Limited:1",
        "--no-control-socket web_apps:app",
    )
    path = server.socket_path()
    set_dirty_socket_path(path)
    try:
        yield path
    finally:
        close_dirty_client()
        set_dirty_socket_path(None)


def test_thread_local_clients_and_context_manager(socket_path: str) -> None:
    client = get_dirty_client(timeout=5)
    assert get_dirty_client(timeout=5) is client
    other: list[DirtyClient] = []
    thread = threading.Thread(target=lambda: other.append(get_dirty_client()))
    thread.start()
    thread.join()
    assert other[0] is not client
    assert client.execute(ECHO, "ping", value=1)["value"] == 1
    assert list(client.stream(ECHO, "count", 2)) == ["chunk-0", "chunk-1"]
    with DirtyClient(socket_path, timeout=5) as own:
        assert own.execute(ECHO, "double", 4) == 8
    close_dirty_client()
    assert get_dirty_client() is not client


def test_abandoned_stream_does_not_leak_into_the_next_call(socket_path: str) -> None:
    client = get_dirty_client(timeout=5)
    chunks = client.stream(ECHO, "count", 50, 0.01)
    assert next(chunks) == "chunk-0"
    assert client.execute(ECHO, "ping", "after")["value"] == "after"
    with pytest.raises(DirtyConnectionError, match="interrupted by another call"):
        next(chunks)


def test_stream_total_timeout(socket_path: str) -> None:
    client = DirtyClient(socket_path, timeout=5)
    client.stream_total_timeout = 0.3
    with pytest.raises(DirtyTimeoutError, match=r"Timed out after 0\.3s"):
        list(client.stream(ECHO, "count", 100, 0.05))
    assert client.execute(ECHO, "ping", "ok")["value"] == "ok"
    client.close()


def test_async_client_from_plain_asyncio(socket_path: str) -> None:
    async def one(i: int) -> dict[str, Any]:
        client = await get_dirty_client_async(timeout=5)
        result: dict[str, Any] = await client.execute_async(ECHO, "sleep", 0.5)
        assert await client.execute_async(ECHO, "double", i) == 2 * i
        return result

    async def main() -> None:
        spans = await asyncio.gather(one(1), one(2))  # each task has its own context/client
        assert max(s["started"] for s in spans) < min(s["ended"] for s in spans)
        client = await get_dirty_client_async(timeout=5)
        assert [c async for c in client.stream_async(ECHO, "acount", 3)] == [0, 1, 2]
        assert [c async for c in client.stream_async(ECHO, "count", 2)] == ["chunk-0", "chunk-1"]
        with pytest.raises(DirtyAppError, match="ValueError: nope"):
            await client.execute_async(ECHO, "fail", "nope")
        client.timeout = 0.2
        with pytest.raises(DirtyTimeoutError):
            await client.execute_async(ECHO, "sleep", 1.0)
        client.timeout = 5
        assert (await client.execute_async(ECHO, "ping", "next"))["value"] == "next"
        async with DirtyClient(socket_path, timeout=5) as own:
            assert await own.execute_async(ECHO, "double", 5) == 10
        await close_dirty_client_async()

    asyncio.run(main())


def test_stash_module_and_table(socket_path: str) -> None:
    stash.put("t1", "a", 1)
    stash.put("t1", "b", [1, "x"])
    assert stash.get("t1", "a") == 1
    assert stash.get("t1", "zz", "dflt") == "dflt"
    assert sorted(stash.keys("t1")) == ["a", "b"]
    assert stash.keys("t1", "a*") == ["a"]
    assert stash.exists("t1") and stash.exists("t1", "a") and not stash.exists("t1", "c")
    assert stash.info("t1") == {"name": "t1", "size": 2}
    table = stash.table("t1")
    table["c"] = {"k": None}
    assert "c" in table and len(table) == 3
    assert table["c"] == {"k": None}
    assert sorted(table) == ["a", "b", "c"]
    assert dict(table.items())["b"] == [1, "x"]
    with pytest.raises(StashKeyNotFoundError, match="Key not found in t1: nope"):
        table["nope"]
    with pytest.raises(KeyError):
        del table["nope"]
    assert stash.delete("t1", "a") is True and stash.delete("t1", "a") is False
    stash.ensure("t2")
    assert set(stash.tables()) >= {"t1", "t2"}
    table.clear()
    assert len(table) == 0
    stash.delete_table("t2")
    with pytest.raises(StashTableNotFoundError, match="Stash table not found: t2"):
        stash.delete_table("t2")


def test_status_and_manage_messages(socket_path: str) -> None:
    with DirtyClient(socket_path, timeout=5) as client:
        status = client.roundtrip(protocol.encode_status, "status")
        assert status["num_workers"] == 2
        assert len(status["workers"]) == 2
        assert all(ECHO in w["apps"] and w["booted"] for w in status["workers"])
        apps = {app["import_path"]: app for app in status["apps"]}
        assert apps["dirty_apps:Limited"]["worker_count"] == 1
        assert apps["dirty_apps:Limited"]["current_workers"] == 1
        assert apps[ECHO]["worker_count"] is None
        assert apps[ECHO]["current_workers"] == 2
        added = client.roundtrip(
            lambda rid: protocol.encode_manage(rid, protocol.MANAGE_OP_ADD, 1), "add"
        )
        assert added == {"target": 3}
        removed = client.roundtrip(
            lambda rid: protocol.encode_manage(rid, protocol.MANAGE_OP_REMOVE, 5), "remove"
        )
        assert removed == {"target": 1}  # never below the largest per-app count (1)


def test_no_socket_configured() -> None:
    set_dirty_socket_path(None)
    saved = os.environ.pop("GUNICORN_DIRTY_SOCKET", None)
    try:
        with pytest.raises(DirtyConnectionError, match="socket path is not set"):
            get_dirty_client()
    finally:
        if saved is not None:
            os.environ["GUNICORN_DIRTY_SOCKET"] = saved


def test_connection_refused_is_a_connection_error(tmp_path: Any) -> None:
    client = DirtyClient(str(tmp_path / "nothing.sock"), timeout=1)
    with pytest.raises(DirtyConnectionError, match="Cannot connect to the dirty arbiter") as info:
        client.execute(ECHO, "ping")
    assert info.value.socket_path == str(tmp_path / "nothing.sock")
