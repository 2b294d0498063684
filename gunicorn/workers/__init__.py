"""Worker classes. ``SUPPORTED_WORKERS`` maps the ``-k`` short names to class paths."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Resolved lazily: importing a worker module must not require the config package.
    if name == "SUPPORTED_WORKERS":
        from gunicorn.config import SUPPORTED_WORKERS

        return SUPPORTED_WORKERS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SUPPORTED_WORKERS"]
