"""Dirty arbiters: a supervised process pool for heavy or long work, called from HTTP workers.

::

    from gunicorn.dirty import get_dirty_client

    def view(environ, start_response):
        result = get_dirty_client().execute("myapp.ml:Model", "predict", [1, 2, 3])
"""

from __future__ import annotations

from gunicorn.dirty import stash
from gunicorn.dirty.app import DirtyApp
from gunicorn.dirty.client import (
    DirtyClient,
    close_dirty_client,
    close_dirty_client_async,
    get_dirty_client,
    get_dirty_client_async,
    get_dirty_socket_path,
    set_dirty_socket_path,
)
from gunicorn.dirty.errors import (
    DirtyAppError,
    DirtyAppNotFoundError,
    DirtyConnectionError,
    DirtyError,
    DirtyNoWorkersAvailableError,
    DirtyProtocolError,
    DirtyTimeoutError,
    DirtyWorkerError,
    StashError,
    StashKeyNotFoundError,
    StashTableNotFoundError,
)
from gunicorn.dirty.stash import StashClient, StashTable


def __getattr__(name: str) -> object:
    # The arbiter class is only needed by the master: import it on demand.
    if name == "DirtyArbiter":
        from gunicorn.dirty.arbiter import DirtyArbiter

        return DirtyArbiter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DirtyApp",
    "DirtyAppError",
    "DirtyAppNotFoundError",
    "DirtyArbiter",
    "DirtyClient",
    "DirtyConnectionError",
    "DirtyError",
    "DirtyNoWorkersAvailableError",
    "DirtyProtocolError",
    "DirtyTimeoutError",
    "DirtyWorkerError",
    "StashClient",
    "StashError",
    "StashKeyNotFoundError",
    "StashTable",
    "StashTableNotFoundError",
    "close_dirty_client",
    "close_dirty_client_async",
    "get_dirty_client",
    "get_dirty_client_async",
    "get_dirty_socket_path",
    "set_dirty_socket_path",
    "stash",
]
