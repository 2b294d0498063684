"""Dirty apps, app specs, allocation and the stash tables, without processes."""

from __future__ import annotations

from typing import Any

import pytest

from gunicorn.dirty import DirtyApp, protocol
from gunicorn.dirty.app import get_app_workers_attribute, load_dirty_app, parse_dirty_app_spec
from gunicorn.dirty.errors import DirtyAppError, StashKeyNotFoundError, StashTableNotFoundError
from gunicorn.dirty.routing import Allocation
from gunicorn.dirty.stash_store import StashStore

APPS = "dirty.dirty_apps"  # this directory is the test package "dirty"


class Calculator(DirtyApp):
    def add(self, a: int, b: int = 0) -> int:
        return a + b

    def _private(self) -> None:
        return None


def test_dirty_app_dispatches_to_public_methods() -> None:
    app = Calculator()
    assert app("add", 1, b=2) == 3
    for action in ("_private", "__init__", "missing", "init", "close"):
        with pytest.raises(DirtyAppError, match="Unknown action"):
            app(action)
    assert Calculator.workers is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("a.b:C", ("a.b:C", None)), ("a:C:3", ("a:C", 3))],
)
def test_app_specs(spec: str, expected: tuple[str, int | None]) -> None:
    assert parse_dirty_app_spec(spec) == expected


@pytest.mark.parametrize("spec", ["a", "a:C:0", "a:C:x", ":C", "a:C:1:2"])
def test_bad_app_specs(spec: str) -> None:
    with pytest.raises(DirtyAppError, match=r"dirty app spec|worker count"):
        parse_dirty_app_spec(spec)


def test_loading_apps_says_why_it_cannot() -> None:
    assert isinstance(load_dirty_app(f"{APPS}:Echo"), DirtyApp)
    assert get_app_workers_attribute(f"{APPS}:Model") == 1
    assert get_app_workers_attribute(f"{APPS}:Echo") is None
    cases = {
        "no_such_mod_xyz:A": "cannot import 'no_such_mod_xyz': ModuleNotFoundError",
        f"{APPS}:Missing": f"module '{APPS}' has no attribute 'Missing'",
        f"{APPS}:NotAnApp": "is not a dirty app",
        f"{APPS}:not_a_class": "is not a dirty app",
    }
    for path, message in cases.items():
        with pytest.raises(DirtyAppError, match=message) as info:
            load_dirty_app(path)
        assert info.value.app_path == path


def test_allocation_gives_limited_apps_to_the_first_workers() -> None:
    allocation = Allocation({"a:All": None, "a:One": 1, "a:Two": 2})
    assert allocation.apps_for(0) == ["a:All", "a:One", "a:Two"]
    assert allocation.apps_for(1) == ["a:All", "a:Two"]
    assert allocation.apps_for(5) == ["a:All"]
    assert allocation.minimum_workers == 2
    assert Allocation({"a:All": None}).minimum_workers == 1


def op(op_code: int, table: str, **fields: Any) -> dict[str, Any]:
    return {"op": op_code, "table": table, **fields}


def test_stash_store_operations() -> None:
    store = StashStore()
    assert store.apply(op(protocol.STASH_OP_PUT, "t", key="k", value=[1])) is None
    assert store.apply(op(protocol.STASH_OP_GET, "t", key="k")) == [1]
    assert store.apply(op(protocol.STASH_OP_KEYS, "t", pattern="k*")) == ["k"]
    assert store.apply(op(protocol.STASH_OP_EXISTS, "t")) is True
    assert store.apply(op(protocol.STASH_OP_EXISTS, "t", key="nope")) is False
    assert store.apply(op(protocol.STASH_OP_INFO, "t")) == {"name": "t", "size": 1}
    assert store.apply(op(protocol.STASH_OP_DELETE, "t", key="k")) is True
    assert store.apply(op(protocol.STASH_OP_DELETE, "t", key="k")) is False
    with pytest.raises(StashKeyNotFoundError):
        store.apply(op(protocol.STASH_OP_GET, "t", key="k"))
    store.apply(op(protocol.STASH_OP_ENSURE, "u"))
    assert store.apply(op(protocol.STASH_OP_TABLES, "")) == ["t", "u"]
    store.apply(op(protocol.STASH_OP_DELETE_TABLE, "u"))
    with pytest.raises(StashTableNotFoundError):
        store.apply(op(protocol.STASH_OP_INFO, "u"))
    with pytest.raises(StashTableNotFoundError):
        store.apply(op(protocol.STASH_OP_DELETE_TABLE, "u"))
    assert store.apply(op(protocol.STASH_OP_KEYS, "never")) == []
