"""The stash: key/value tables kept in the dirty arbiter's memory.

Any HTTP worker or dirty worker reaches them by message passing, so they are shared by
every process of the server (and lost when the dirty arbiter restarts). Tables are
created on the first ``put``; ``table(name)`` gives a dict-like view::

    from gunicorn.dirty import stash
    stash.put("sessions", "abc", {"user": 1})
    sessions = stash.table("sessions")
    if "abc" in sessions:
        print(sessions["abc"])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gunicorn.dirty import protocol
from gunicorn.dirty.client import DirtyClient, _thread_local, get_dirty_socket_path
from gunicorn.dirty.errors import (
    StashError,
    StashKeyNotFoundError,
    StashTableNotFoundError,
)

__all__ = [
    "StashClient",
    "StashError",
    "StashKeyNotFoundError",
    "StashTable",
    "StashTableNotFoundError",
    "clear",
    "delete",
    "delete_table",
    "ensure",
    "exists",
    "get",
    "info",
    "keys",
    "put",
    "table",
    "tables",
]

_OP_NAMES = {
    protocol.STASH_OP_PUT: "put",
    protocol.STASH_OP_GET: "get",
    protocol.STASH_OP_DELETE: "delete",
    protocol.STASH_OP_KEYS: "keys",
    protocol.STASH_OP_CLEAR: "clear",
    protocol.STASH_OP_INFO: "info",
    protocol.STASH_OP_ENSURE: "ensure",
    protocol.STASH_OP_DELETE_TABLE: "delete_table",
    protocol.STASH_OP_TABLES: "tables",
    protocol.STASH_OP_EXISTS: "exists",
}
_MISSING = "__gunicorn_stash_missing__"


class StashClient:
    """Stash operations over one connection to the dirty arbiter."""

    def __init__(self, socket_path: str, timeout: float = 30.0) -> None:
        self._client = DirtyClient(socket_path, timeout=timeout)

    def _execute(
        self, op: int, table: str, key: Any = None, value: Any = None, pattern: str | None = None
    ) -> Any:
        if not isinstance(table, str) or (op != protocol.STASH_OP_TABLES and not table):
            raise StashError(f"Stash table name must be a non-empty string, not {table!r}")
        return self._client.roundtrip(
            lambda rid: protocol.encode_stash(rid, op, table, key, value, pattern),
            f"stash.{_OP_NAMES[op]}({table!r})",
        )

    def put(self, table: str, key: Any, value: Any) -> None:
        self._execute(protocol.STASH_OP_PUT, table, key, value)

    def get(self, table: str, key: Any, default: Any = None) -> Any:
        try:
            return self._get(table, key)
        except StashKeyNotFoundError:
            return default

    def _get(self, table: str, key: Any) -> Any:
        return self._execute(protocol.STASH_OP_GET, table, key)

    def delete(self, table: str, key: Any) -> bool:
        return bool(self._execute(protocol.STASH_OP_DELETE, table, key))

    def keys(self, table: str, pattern: str | None = None) -> list[Any]:
        return list(self._execute(protocol.STASH_OP_KEYS, table, pattern=pattern) or [])

    def clear(self, table: str) -> None:
        self._execute(protocol.STASH_OP_CLEAR, table)

    def info(self, table: str) -> dict[str, Any]:
        return dict(self._execute(protocol.STASH_OP_INFO, table))

    def ensure(self, table: str) -> None:
        self._execute(protocol.STASH_OP_ENSURE, table)

    def exists(self, table: str, key: Any = None) -> bool:
        return bool(self._execute(protocol.STASH_OP_EXISTS, table, key))

    def delete_table(self, table: str) -> None:
        self._execute(protocol.STASH_OP_DELETE_TABLE, table)

    def tables(self) -> list[str]:
        return list(self._execute(protocol.STASH_OP_TABLES, "") or [])

    def table(self, name: str) -> StashTable:
        return StashTable(self, name)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> StashClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StashTable:
    """A dict-like view of one stash table (each operation is a round trip)."""

    def __init__(self, client: StashClient, name: str) -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def __getitem__(self, key: Any) -> Any:
        return self._client._get(self._name, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._client.put(self._name, key, value)

    def __delitem__(self, key: Any) -> None:
        if not self._client.delete(self._name, key):
            raise StashKeyNotFoundError(self._name, key)

    def __contains__(self, key: Any) -> bool:
        return self._client.exists(self._name, key)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._client.keys(self._name))

    def __len__(self) -> int:
        try:
            return int(self._client.info(self._name)["size"])
        except StashTableNotFoundError:
            return 0

    def get(self, key: Any, default: Any = None) -> Any:
        return self._client.get(self._name, key, default)

    def keys(self, pattern: str | None = None) -> list[Any]:
        return self._client.keys(self._name, pattern)

    def clear(self) -> None:
        self._client.clear(self._name)

    def items(self) -> list[tuple[Any, Any]]:
        found = []
        for key in self._client.keys(self._name):
            value = self._client.get(self._name, key, _MISSING)
            if value != _MISSING:
                found.append((key, value))
        return found

    def values(self) -> list[Any]:
        return [value for _, value in self.items()]

    def __repr__(self) -> str:
        return f"<StashTable {self._name!r}>"


_socket_path: str | None = None


def set_stash_socket_path(path: str | None) -> None:
    """Reach the stash through ``path`` (default: the dirty client's socket path)."""
    global _socket_path
    _socket_path = path


def get_stash_socket_path() -> str:
    return _socket_path or get_dirty_socket_path()


def _client() -> StashClient:
    local = _thread_local()
    client: StashClient | None = getattr(local, "stash_client", None)
    if client is None:
        client = StashClient(get_stash_socket_path())
        local.stash_client = client
    return client


def put(table: str, key: Any, value: Any) -> None:
    """Store ``value`` under ``key`` (the table is created if needed)."""
    _client().put(table, key, value)


def get(table: str, key: Any, default: Any = None) -> Any:
    return _client().get(table, key, default)


def delete(table: str, key: Any) -> bool:
    """Remove ``key``; True if it was there."""
    return _client().delete(table, key)


def keys(table: str, pattern: str | None = None) -> list[Any]:
    """Keys of ``table``, optionally filtered by a glob ``pattern``."""
    return _client().keys(table, pattern)


def clear(table: str) -> None:
    _client().clear(table)


def info(table: str) -> dict[str, Any]:
    """``{"name", "size"}`` of ``table``; StashTableNotFoundError if it does not exist."""
    return _client().info(table)


def ensure(table: str) -> None:
    """Create ``table`` if it does not exist."""
    _client().ensure(table)


def exists(table: str, key: Any = None) -> bool:
    """Whether ``table`` exists, or (with ``key``) holds ``key``."""
    return _client().exists(table, key)


def delete_table(table: str) -> None:
    """Remove ``table``; StashTableNotFoundError if it does not exist."""
    _client().delete_table(table)


def tables() -> list[str]:
    return _client().tables()


def table(name: str) -> StashTable:
    return StashTable(_client(), name)
