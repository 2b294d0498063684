"""The errors a dirty call can raise, by gunicorn's names.

Each error crosses the wire as a dict ``{"error_type", "message", "details"}``
(:meth:`DirtyError.to_dict`) and is rebuilt on the caller's side by
:meth:`DirtyError.from_dict`, so the caller sees the class raised in the dirty worker.
"""

from __future__ import annotations

from typing import Any


class DirtyError(Exception):
    """Base class of every dirty-arbiter error."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        self.message = message
        self.details = details or {}
        super().__init__(message)

    def __str__(self) -> str:
        if self.details:
            return f"{self.message}: {self.details}"
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"error_type": type(self).__name__, "message": self.message, "details": self.details}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DirtyError:
        """The error described by ``data`` (as :meth:`to_dict` wrote it)."""
        name = str(data.get("error_type", "DirtyError"))
        message = str(data.get("message", "unknown error"))
        details = data.get("details") or {}
        if not isinstance(details, dict):
            details = {"details": details}
        error_class = _ERROR_CLASSES.get(name, DirtyError)
        error = error_class.__new__(error_class)
        DirtyError.__init__(error, message, details)
        for key, value in details.items():
            if key.isidentifier() and key not in ("message", "details"):
                setattr(error, key, value)
        if error_class is DirtyError and name != "DirtyError":
            error.details = {**details, "error_type": name}
        return error


class DirtyTimeoutError(DirtyError):
    """The call took longer than the client's timeout or ``dirty_timeout``."""

    def __init__(self, message: str = "Operation timed out", timeout: float | None = None) -> None:
        super().__init__(message, {"timeout": timeout} if timeout is not None else None)
        self.timeout = timeout


class DirtyConnectionError(DirtyError):
    """The dirty arbiter cannot be reached (not running, restarting, socket gone)."""

    def __init__(self, message: str = "Connection failed", socket_path: str | None = None) -> None:
        super().__init__(message, {"socket_path": socket_path} if socket_path else None)
        self.socket_path = socket_path


class DirtyWorkerError(DirtyError):
    """The dirty worker failed (died mid-task, could not run the request)."""

    def __init__(
        self, message: str, worker_id: int | None = None, traceback: str | None = None
    ) -> None:
        details: dict[str, Any] = {}
        if worker_id is not None:
            details["worker_id"] = worker_id
        if traceback is not None:
            details["traceback"] = traceback
        super().__init__(message, details)
        self.worker_id = worker_id
        self.traceback = traceback


class DirtyAppError(DirtyError):
    """The dirty app raised, or the action is not one it offers."""

    def __init__(
        self,
        message: str,
        app_path: str | None = None,
        action: str | None = None,
        traceback: str | None = None,
    ) -> None:
        details: dict[str, Any] = {}
        if app_path is not None:
            details["app_path"] = app_path
        if action is not None:
            details["action"] = action
        if traceback is not None:
            details["traceback"] = traceback
        super().__init__(message, details)
        self.app_path = app_path
        self.action = action
        self.traceback = traceback


class DirtyAppNotFoundError(DirtyAppError):
    """No dirty app of that path is configured (or it failed to load)."""

    def __init__(self, app_path: str) -> None:
        super().__init__(f"Dirty app not found: {app_path}", app_path=app_path)


class DirtyNoWorkersAvailableError(DirtyError):
    """The app is configured but no live dirty worker has it loaded right now."""

    def __init__(self, app_path: str, message: str | None = None) -> None:
        super().__init__(
            message or f"No workers available for app: {app_path}", {"app_path": app_path}
        )
        self.app_path = app_path


class DirtyProtocolError(DirtyError):
    """A message that breaks the wire format, or a value the TLV codec cannot carry."""

    def __init__(self, message: str = "Protocol error", raw_data: bytes | None = None) -> None:
        details = {"raw_data": raw_data[:32].hex()} if raw_data else None
        super().__init__(message, details)
        self.raw_data = raw_data


class StashError(DirtyError):
    """Base class of the stash errors."""

    def __str__(self) -> str:
        return self.message


class StashTableNotFoundError(StashError):
    """The stash table does not exist."""

    def __init__(self, table_name: str) -> None:
        super().__init__(f"Stash table not found: {table_name}", {"table_name": table_name})
        self.table_name = table_name


class StashKeyNotFoundError(StashError, KeyError):
    """The key is not in the stash table (also a KeyError, as for a dict)."""

    def __init__(self, table_name: str, key: Any) -> None:
        super().__init__(
            f"Key not found in {table_name}: {key}", {"table_name": table_name, "key": key}
        )
        self.table_name = table_name
        self.key = key


_ERROR_CLASSES: dict[str, type[DirtyError]] = {
    cls.__name__: cls
    for cls in (
        DirtyError,
        DirtyTimeoutError,
        DirtyConnectionError,
        DirtyWorkerError,
        DirtyAppError,
        DirtyAppNotFoundError,
        DirtyNoWorkersAvailableError,
        DirtyProtocolError,
        StashError,
        StashTableNotFoundError,
        StashKeyNotFoundError,
    )
}
