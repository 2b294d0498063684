"""Dirty applications: the classes dirty workers load and the HTTP workers call."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from gunicorn.dirty.errors import DirtyAppError, DirtyAppNotFoundError


class DirtyApp:
    """Base class of a dirty application.

    One instance lives in each dirty worker that loads it. ``init()`` runs once after
    the worker started (load models there); a call ``execute(app_path, action, *args,
    **kwargs)`` runs ``app(action, *args, **kwargs)``, which by default calls the public
    method named ``action``. A method may return a value, or a generator or async
    generator to stream chunks. ``close()`` runs when the worker stops.

    ``workers`` limits how many dirty workers load the app (None: all of them); the
    ``module:Class:N`` spec overrides it.
    """

    workers: int | None = None

    def init(self) -> None:
        """Load resources (runs once per dirty worker)."""

    def __call__(self, action: str, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(action, str) or not action or action.startswith("_"):
            raise DirtyAppError(f"Unknown action: {action!r}", action=str(action))
        method = getattr(self, action, None)
        if method is None or not callable(method) or action in _RESERVED:
            raise DirtyAppError(f"Unknown action: {action!r}", action=action)
        return method(*args, **kwargs)

    def close(self) -> None:
        """Release resources (runs when the dirty worker stops)."""


_RESERVED = frozenset({"init", "close"})


def parse_dirty_app_spec(spec: str) -> tuple[str, int | None]:
    """``module:Class`` or ``module:Class:N`` -> (``module:Class``, N or None)."""
    parts = spec.split(":")
    if len(parts) == 2 and all(parts):
        return spec, None
    if len(parts) == 3 and parts[0] and parts[1]:
        if parts[2].isdigit() and int(parts[2]) >= 1:
            return f"{parts[0]}:{parts[1]}", int(parts[2])
        raise DirtyAppError(f"Invalid worker count in dirty app spec {spec!r}; expected N >= 1")
    raise DirtyAppError(f"Invalid dirty app spec {spec!r}; expected module:Class or module:Class:N")


def load_dirty_app_class(import_path: str) -> type:
    """Import the class named by ``module:Class``; DirtyAppError says why it cannot be used."""
    module_name, _, attr = import_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise DirtyAppError(
            f"cannot import {module_name!r}: {type(exc).__name__}: {exc}", app_path=import_path
        ) from exc
    target: Any = module
    for name in attr.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise DirtyAppError(
                f"module {module_name!r} has no attribute {attr!r}", app_path=import_path
            ) from None
    if not inspect.isclass(target) or not callable(target):
        raise DirtyAppError(
            f"{import_path} is not a dirty app (expected a class with __call__, "
            f"such as a DirtyApp subclass; got {type(target).__name__})",
            app_path=import_path,
        )
    if not issubclass(target, DirtyApp) and "__call__" not in _class_attrs(target):
        raise DirtyAppError(
            f"{import_path} is not a dirty app (its instances are not callable)",
            app_path=import_path,
        )
    return target


def _class_attrs(cls: type) -> set[str]:
    return {name for klass in cls.__mro__ if klass is not object for name in vars(klass)}


def load_dirty_app(import_path: str) -> Any:
    """An instance of the dirty app ``module:Class`` (``init()`` not called yet)."""
    return load_dirty_app_class(import_path)()


def load_dirty_apps(import_paths: list[str]) -> dict[str, Any]:
    return {path: load_dirty_app(path) for path in import_paths}


def get_app_workers_attribute(import_path: str) -> int | None:
    """The class attribute ``workers`` of the app (None: every dirty worker)."""
    value = getattr(load_dirty_app_class(import_path), "workers", None)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DirtyAppError(
            f"{import_path}.workers must be None or an int >= 1, not {value!r}",
            app_path=import_path,
        )
    return value


def not_found(app_path: str, reason: str | None = None) -> DirtyAppNotFoundError:
    """DirtyAppNotFoundError, with why the app is missing when it is known."""
    error = DirtyAppNotFoundError(app_path)
    if reason:
        error.message = f"Dirty app not found: {app_path} ({reason})"
        error.args = (error.message,)
    return error
