"""The stash tables themselves, held by the dirty arbiter (see :mod:`gunicorn.dirty.stash`)."""

from __future__ import annotations

import fnmatch
from typing import Any

from gunicorn.dirty import protocol
from gunicorn.dirty.errors import StashError, StashKeyNotFoundError, StashTableNotFoundError


class StashStore:
    """Named tables of key/value pairs; :meth:`apply` runs one stash message."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, Any]] = {}

    def apply(self, message: dict[str, Any]) -> Any:
        """The result of the stash operation ``message`` (``{op, table, key?, ...}``)."""
        op = message.get("op")
        name = message.get("table")
        if not isinstance(name, str):
            raise StashError("Stash message without a table name")
        key = message.get("key")
        if isinstance(key, list):
            key = tuple(key)
        tables = self.tables
        if op == protocol.STASH_OP_PUT:
            tables.setdefault(name, {})[key] = message.get("value")
            return None
        if op == protocol.STASH_OP_GET:
            table = tables.get(name)
            if table is None or key not in table:
                raise StashKeyNotFoundError(name, key)
            return table[key]
        if op == protocol.STASH_OP_DELETE:
            table = tables.get(name)
            return table is not None and table.pop(key, _ABSENT) is not _ABSENT
        if op == protocol.STASH_OP_KEYS:
            table = tables.get(name, {})
            pattern = message.get("pattern")
            if pattern is None:
                return list(table)
            return [k for k in table if fnmatch.fnmatchcase(str(k), str(pattern))]
        if op == protocol.STASH_OP_CLEAR:
            table = tables.get(name)
            if table is not None:
                table.clear()
            return None
        if op == protocol.STASH_OP_INFO:
            table = tables.get(name)
            if table is None:
                raise StashTableNotFoundError(name)
            return {"name": name, "size": len(table)}
        if op == protocol.STASH_OP_ENSURE:
            tables.setdefault(name, {})
            return None
        if op == protocol.STASH_OP_DELETE_TABLE:
            if tables.pop(name, None) is None:
                raise StashTableNotFoundError(name)
            return None
        if op == protocol.STASH_OP_TABLES:
            return list(tables)
        if op == protocol.STASH_OP_EXISTS:
            table = tables.get(name)
            if "key" not in message:
                return table is not None
            return table is not None and key in table
        raise StashError(f"Unknown stash operation: {op!r}")


_ABSENT = object()
