"""gunicorn.util helpers: addresses, class loading, strings and the working directory."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from gunicorn import util


@pytest.mark.parametrize(
    ("netloc", "expected"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("localhost", ("localhost", 8000)),
        ("EXAMPLE.com:80", ("example.com", 80)),
        ("", ("0.0.0.0", 8000)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", 8000)),
        ("[FE80::1]:1", ("fe80::1", 1)),
        ("tcp://10.0.0.1:81", ("10.0.0.1", 81)),
        ("unix:/tmp/g.sock", "/tmp/g.sock"),
        ("unix:///run/g.sock", "/run/g.sock"),
        ("unix://relative.sock", "relative.sock"),
        ("fd://3", 3),
        (b"127.0.0.1:1", ("127.0.0.1", 1)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
    ],
)
def test_parse_address(netloc: str, expected: object) -> None:
    assert util.parse_address(netloc) == expected


def test_parse_address_default_port() -> None:
    assert util.parse_address("statsd", default_port="8125") == ("statsd", 8125)


@pytest.mark.parametrize(
    ("netloc", "message"),
    [
        ("host:http", "not a valid port"),
        ("host:65536", "not a valid port"),
        ("host:", "not a valid port"),
        ("[::1]8000", "malformed IPv6"),
        ("::1", "in brackets"),
        ("fd://", "not a valid file descriptor"),
        ("unix://", "has no path"),
    ],
)
def test_parse_address_errors(netloc: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        util.parse_address(netloc)


def test_is_ipv6() -> None:
    assert util.is_ipv6("::1")
    assert util.is_ipv6("fe80::1%eth0")
    assert not util.is_ipv6("127.0.0.1")
    assert not util.is_ipv6("localhost")
    assert not util.is_ipv6("")


def test_string_helpers() -> None:
    assert util.bytes_to_str(b"caf\xe9") == "café"
    assert util.bytes_to_str("x") == "x"
    assert util.to_bytestring("café") == b"caf\xc3\xa9"
    assert util.to_bytestring("café", "latin-1") == b"caf\xe9"
    assert util.to_bytestring(b"x") == b"x"
    with pytest.raises(TypeError):
        util.to_bytestring(5)  # type: ignore[arg-type]


def test_getcwd_prefers_pwd_through_a_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "releases" / "v1"
    real.mkdir(parents=True)
    link = tmp_path / "current"
    link.symlink_to(real)
    monkeypatch.chdir(link)
    monkeypatch.setenv("PWD", str(link))
    assert util.getcwd() == str(link)
    monkeypatch.setenv("PWD", str(tmp_path))  # stale PWD naming another directory
    assert util.getcwd() == os.getcwd()
    monkeypatch.delenv("PWD")
    assert util.getcwd() == os.getcwd()


@pytest.fixture
def worker_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("util_test_workers")

    class W:
        pass

    module.W = W  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "util_test_workers", module)
    return module


def test_load_class_forms(worker_module: types.ModuleType) -> None:
    klass = worker_module.W
    assert util.load_class(klass) is klass
    assert util.load_class("util_test_workers.W") is klass
    assert util.load_class("util_test_workers:W") is klass


def test_load_class_short_name_uses_supported_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("gunicorn_fake_sync")
    module.SyncWorker = type("SyncWorker", (), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gunicorn_fake_sync", module)
    monkeypatch.setitem(
        util.__dict__, "DEFAULT_WORKER", "unused"
    )  # short names never use the default
    from gunicorn.config import workers

    monkeypatch.setitem(workers.SUPPORTED_WORKERS, "fakesync", "gunicorn_fake_sync.SyncWorker")
    assert util.load_class("fakesync") is module.SyncWorker
    assert util.load_class("#fakesync") is module.SyncWorker


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("no_such_module_for_gunicorn.Worker", "cannot import 'no_such_module_for_gunicorn'"),
        ("util_test_workers.Missing", "has no 'Missing'"),
        ("egg:no-such-dist#worker", "no entry point 'worker'"),
        ("#nosuchworker", "no entry point 'nosuchworker'"),
        ("", "invalid or not found"),
    ],
)
def test_load_class_errors(worker_module: types.ModuleType, uri: str, message: str) -> None:
    with pytest.raises(RuntimeError, match=message) as exc:
        util.load_class(uri)
    assert "\n" not in str(exc.value)


def test_load_class_from_entry_point() -> None:
    # pytest registers its plugins under the pytest11 group; they are modules, not classes
    with pytest.raises(RuntimeError, match="does not name a class"):
        util.load_class("egg:pytest-timeout#timeout", section="pytest11")
