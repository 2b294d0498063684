"""Config attributes, derived properties and the cross-setting checks of validate()."""

from __future__ import annotations

import ipaddress
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from gunicorn.config import Config
from gunicorn.errors import ConfigError


@pytest.fixture
def fake_workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """A module standing in for a worker implementation, importable by dotted path."""
    module = types.ModuleType("fake_gunicorn_workers")

    class FakeSyncWorker:
        setup_calls = 0

        @classmethod
        def setup(cls) -> None:
            cls.setup_calls += 1

    class NotAClass:
        pass

    module.FakeSyncWorker = FakeSyncWorker  # type: ignore[attr-defined]
    module.not_a_class = NotAClass()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_gunicorn_workers", module)
    yield module


def test_attribute_access_and_assignment_guard() -> None:
    cfg = Config()
    assert cfg.workers == 1
    with pytest.raises(AttributeError, match="Invalid access"):
        cfg.workers = 4
    cfg.set("workers", 4)
    assert cfg.workers == 4
    cfg.extra_attribute = "allowed"  # not a setting name
    assert cfg.extra_attribute == "allowed"


def test_configs_do_not_share_mutable_defaults() -> None:
    a, b = Config(), Config()
    a.secure_scheme_headers["X-NEW"] = "yes"
    a.raw_env.append("A=1")
    assert "X-NEW" not in b.secure_scheme_headers
    assert b.raw_env == []


def test_address_parses_every_bind() -> None:
    cfg = Config()
    cfg.set("bind", ["127.0.0.1:8001", "[::1]:8002", "unix:/tmp/x.sock", "fd://5", "example"])
    assert cfg.address == [
        ("127.0.0.1", 8001),
        ("::1", 8002),
        "/tmp/x.sock",
        5,
        ("example", 8000),
    ]


def test_sync_with_threads_becomes_gthread(fake_workers: types.ModuleType) -> None:
    cfg = Config()
    assert cfg.worker_class_str == "sync"
    cfg.set("threads", 4)
    assert cfg.worker_class_str == "gthread"
    cfg.set("worker_class", "fake_gunicorn_workers.FakeSyncWorker")
    assert cfg.worker_class_str == "gthread"
    cfg.set("threads", 1)
    assert cfg.worker_class_str == "fake_gunicorn_workers.FakeSyncWorker"


def test_worker_class_loads_lazily_and_calls_setup(fake_workers: types.ModuleType) -> None:
    cfg = Config()
    cfg.set("worker_class", "fake_gunicorn_workers.FakeSyncWorker")
    klass = cfg.worker_class
    assert klass is fake_workers.FakeSyncWorker
    assert klass.setup_calls == 1


def test_worker_class_errors_are_clear(fake_workers: types.ModuleType) -> None:
    cfg = Config()
    cfg.set("worker_class", "fake_gunicorn_workers.Missing")
    with pytest.raises(RuntimeError, match="has no 'Missing'"):
        cfg.worker_class  # noqa: B018
    cfg.set("worker_class", "fake_gunicorn_workers.not_a_class")
    with pytest.raises(RuntimeError, match="does not name a class"):
        cfg.worker_class  # noqa: B018


def test_proc_name_falls_back_to_default_proc_name() -> None:
    cfg = Config()
    assert cfg.proc_name == "gunicorn"
    cfg.set("default_proc_name", "app:app")
    assert cfg.proc_name == "app:app"
    cfg.set("proc_name", "site")
    assert cfg.proc_name == "site"


def test_ssl_properties() -> None:
    cfg = Config()
    assert cfg.is_ssl is False
    cfg.set("certfile", "cert.pem")
    assert cfg.is_ssl is True
    opts = cfg.ssl_options
    assert set(opts) == {
        "keyfile",
        "certfile",
        "ssl_version",
        "cert_reqs",
        "ca_certs",
        "suppress_ragged_eofs",
        "do_handshake_on_connect",
        "ciphers",
    }
    assert opts["certfile"] == "cert.pem"
    assert "password" not in opts


def test_env_and_paste_global_conf() -> None:
    cfg = Config()
    assert cfg.env == {}
    cfg.set("raw_env", ["A=1", "B=x=y", "C="])
    assert cfg.env == {"A": "1", "B": "x=y", "C": ""}
    cfg.set("raw_paste_global_conf", ["k=v", "a\\=b=c\\=d"])
    assert cfg.paste_global_conf == {"k": "v", "a=b": "c=d"}


def test_reuse_port_property() -> None:
    cfg = Config()
    assert cfg.reuse_port is False
    cfg.set("reuse_port", True)
    assert cfg.reuse_port is True


def test_allow_networks_are_computed_from_the_current_value() -> None:
    cfg = Config()
    assert cfg.forwarded_allow_networks() == [
        ipaddress.ip_network("127.0.0.1"),
        ipaddress.ip_network("::1"),
    ]
    cfg.set("forwarded_allow_ips", "10.0.0.0/8,*")
    assert cfg.forwarded_allow_ips == ["10.0.0.0/8", "*"]
    assert cfg.forwarded_allow_networks() == [ipaddress.ip_network("10.0.0.0/8")]
    cfg.set("proxy_allow_ips", "192.168.0.0/16")
    assert cfg.proxy_allow_networks() == [ipaddress.ip_network("192.168.0.0/16")]


def test_logger_class_switches_to_statsd(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[tuple[str, str]] = []

    def fake_load(uri: str, default: str = "", section: str = "") -> type:
        loaded.append((uri, section))
        return type("L", (), {})

    monkeypatch.setattr("gunicorn.util.load_class", fake_load)
    cfg = Config()
    cfg.logger_class  # noqa: B018
    cfg.set("logger_class", "simple")
    cfg.logger_class  # noqa: B018
    cfg.set("statsd_host", "localhost:8125")
    cfg.logger_class  # noqa: B018
    assert loaded == [
        ("gunicorn.glogging.Logger", "gunicorn.loggers"),
        ("gunicorn.glogging.Logger", "gunicorn.loggers"),
        ("gunicorn.instrument.statsd.Statsd", "gunicorn.loggers"),
    ]


# -- validate() ------------------------------------------------------------------------------


def test_defaults_validate() -> None:
    Config().validate()


def test_unknown_worker_class_lists_valid_names() -> None:
    cfg = Config()
    cfg.set("worker_class", "turbo")
    with pytest.raises(ConfigError) as exc:
        cfg.validate()
    message = str(exc.value)
    assert "Unknown worker class 'turbo'" in message
    for name in ("sync", "gthread", "gevent", "tornado", "asgi"):
        assert name in message


@pytest.mark.parametrize(
    ("worker", "package", "extra"),
    [
        ("gevent", "gevent", "gevent"),
        ("gevent_pywsgi", "gevent", "gevent"),
        ("gunicorn.workers.ggevent.GeventWorker", "gevent", "gevent"),
        ("tornado", "tornado", "tornado"),
    ],
)
def test_worker_class_without_its_package_names_the_extra(
    worker: str, package: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gunicorn.config.core._module_available", lambda name: name != package)
    cfg = Config()
    cfg.set("worker_class", worker)
    with pytest.raises(ConfigError, match=rf"pip install 'gunicorn\[{extra}\]'"):
        cfg.validate()


def test_eventlet_is_back_unlike_gunicorn_26() -> None:
    # gunicorn 26 removed the eventlet worker; this server keeps it (docs/differences.md).
    cfg = Config()
    cfg.set("worker_class", "eventlet")
    cfg.validate()
    assert cfg.worker_class.__name__ == "EventletWorker"
    assert cfg.worker_class.__module__ == "gunicorn.workers.geventlet"


def test_dotted_worker_class_from_missing_module() -> None:
    cfg = Config()
    cfg.set("worker_class", "no_such_pkg_for_gunicorn.Worker")
    with pytest.raises(ConfigError, match="no module 'no_such_pkg_for_gunicorn'"):
        cfg.validate()


def test_class_object_and_installed_module_worker_validate(
    fake_workers: types.ModuleType,
) -> None:
    cfg = Config()
    cfg.set("worker_class", fake_workers.FakeSyncWorker)
    cfg.validate()
    cfg.set("worker_class", "fake_gunicorn_workers.FakeSyncWorker")
    cfg.validate()


def test_h2_without_the_h2_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gunicorn.config.core._module_available", lambda name: name != "h2")
    cfg = Config()
    cfg.set("http_protocols", "h2,h1")
    with pytest.raises(ConfigError, match=r"pip install 'gunicorn\[http2\]'"):
        cfg.validate()


def test_h2_without_tls_or_h2c_warns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("gunicorn.config.core._module_available", lambda name: True)
    cfg = Config()
    cfg.set("http_protocols", "h2,h1")
    cfg.validate()
    assert "TLS is not configured" in capsys.readouterr().err
    cfg.set("http2_cleartext", "both")
    cfg.validate()
    cfg.set("http2_cleartext", "off")
    cfg.set("certfile", "c.pem")
    cfg.validate()
    assert capsys.readouterr().err == ""


def test_config_objects_can_be_copied(tmp_path: Path) -> None:
    import copy

    cfg = Config()
    cfg.set("workers", 3)
    clone = copy.deepcopy(cfg)
    assert clone.workers == 3
    clone.set("workers", 5)
    assert cfg.workers == 3
