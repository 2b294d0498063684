"""Validators: accepted spellings and the error each bad value gives."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from gunicorn.config import Config, InvalidSetting
from gunicorn.errors import ConfigError

BAD_VALUES: list[tuple[str, Any, str]] = [
    ("workers", "-1", "must be positive"),
    ("workers", -3, "must be positive"),
    ("workers", "abc", "not an integer"),
    ("workers", 1.5, "expected a string"),
    ("backlog", "12x", "not an integer"),
    ("timeout", "", "not an integer"),
    ("umask", "0o9", "not an integer or an octal mode"),
    ("umask", "-1", "must be positive"),
    ("control_socket_mode", "rw", "not an integer or an octal mode"),
    ("reload", "maybe", "invalid boolean"),
    ("reload", 3, "expected a boolean"),
    ("sendfile", "sometimes", "invalid boolean"),
    ("forwarded_allow_ips", "10.0.0.1/8", "host bits set"),
    ("forwarded_allow_ips", "127.0.0.1,not-an-ip", "invalid address or network 'not-an-ip'"),
    ("proxy_allow_ips", "300.1.1.1", "invalid address or network"),
    ("uwsgi_allow_ips", "fe80::1/10", "host bits set"),
    ("user", "no-such-user-for-gunicorn-tests", "No such user"),
    ("group", "no-such-group-for-gunicorn-tests", "No such group"),
    ("chdir", "/nonexistent/gunicorn/dir", "can't chdir"),
    ("secure_scheme_headers", "X-PROTO=https", "expected a dictionary"),
    ("logconfig_dict", [], "expected a dictionary"),
    ("on_starting", lambda a, b: None, "must accept 1 positional argument"),
    ("pre_fork", lambda a: None, "must accept 2 positional arguments"),
    ("nworkers_changed", lambda a, b: None, "must accept 3"),
    ("ssl_context", 42, "not callable"),
    ("when_ready", "no_such_module_xyz.hook", "cannot import 'no_such_module_xyz'"),
    ("when_ready", "os.path.no_such_function", "cannot load"),
    ("when_ready", "nodots", "not an import path"),
    ("post_request", lambda: None, "must accept 2, 3 or 4"),
    ("post_request", lambda a, b, c, d, e: None, "must accept 2, 3 or 4"),
    ("statsd_host", "host:port", "not a valid port"),
    ("statsd_host", "fd://3", "file descriptor"),
    ("bind", "[::1", "malformed IPv6"),
    ("bind", "localhost:99999", "not a valid port"),
    ("bind", "::1:8000", "in brackets"),
    ("bind", "fd://three", "not a valid file descriptor"),
    ("bind", "unix:", "has no path"),
    ("bind", 8000, "expected a list of strings"),
    ("raw_env", ["NOEQUALS"], "not KEY=VALUE"),
    ("reload_engine", "fsevents", "expected one of: auto, poll, inotify"),
    ("header_map", "keep", "expected one of: drop, refuse, dangerous"),
    ("asgi_loop", "trio", "expected one of: auto, asyncio, uvloop"),
    ("asgi_lifespan", "maybe", "expected one of: auto, on, off"),
    ("http_parser", "c", "expected one of: auto, fast, python"),
    ("protocol", "fastcgi", "expected one of: http, uwsgi"),
    ("proxy_protocol", "v3", "expected off, v1, v2 or auto"),
    ("http2_cleartext", "yes", "expected off, prior-knowledge, upgrade or both"),
    ("http_protocols", "h3,h1", "HTTP/3 (h3) is not supported"),
    ("http_protocols", "spdy", "unknown HTTP protocol 'spdy'"),
    ("http_protocols", " , ", "at least one HTTP protocol"),
    ("http2_max_frame_size", 100, "between 16384 and 16777215"),
    ("http2_max_frame_size", 2**24, "between 16384 and 16777215"),
    ("http2_max_concurrent_streams", 0, "at least 1"),
    ("http2_initial_window_size", 2**31, "between 0 and 2147483647"),
    ("cert_reqs", 3, "between 0 and 2"),
    ("ssl_version", "NOPE", "unknown SSL protocol"),
    ("dirty_apps", ["justmodule"], "expected module:Class"),
    ("dirty_apps", "mod:App:0", "expected N >= 1"),
    ("reload_extra_files", ["/nonexistent/gunicorn.txt"], "does not exist"),
    ("pidfile", 42, "expected a string"),
    ("worker_class", 42, "expected a string"),
    ("logger_class", 3.5, "expected a string"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_VALUES)
def test_bad_value_is_refused(name: str, value: Any, message: str) -> None:
    cfg = Config()
    before = cfg.settings[name].get()
    with pytest.raises(InvalidSetting) as exc:
        cfg.set(name, value)
    text = str(exc.value)
    assert text.startswith(f"Invalid value for {name}: ")
    assert message in text
    assert "\n" not in text
    assert cfg.settings[name].get() == before


def test_invalid_setting_is_config_value_and_type_error() -> None:
    with pytest.raises(ConfigError):
        Config().set("workers", "x")
    with pytest.raises(ValueError):
        Config().set("workers", "x")
    with pytest.raises(TypeError):
        Config().set("dirty_apps", 5)


def test_unknown_setting_name() -> None:
    with pytest.raises(AttributeError, match="No configuration setting for: nope"):
        Config().set("nope", 1)
    with pytest.raises(AttributeError):
        Config().nope  # noqa: B018


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("workers", "0x10", 16),
        ("workers", "0o7", 7),
        ("workers", " 12 ", 12),
        ("workers", True, 1),
        ("umask", "0022", 0o22),
        ("umask", "022", 0o22),
        ("umask", "18", 18),
        ("umask", "0o77", 0o77),
        ("umask", 0o27, 0o27),
        ("control_socket_mode", "0600", 0o600),
        ("control_socket_mode", "0o660", 0o660),
        ("reload", "TRUE", True),
        ("reload", " false ", False),
        ("sendfile", "true", True),
        ("user", "0", 0),
        ("user", 4242, 4242),
        ("group", "0", 0),
        ("user", None, os.geteuid()),
        ("forwarded_allow_ips", "*", ["*"]),
        ("forwarded_allow_ips", ["10.0.0.0/8", "::1"], ["10.0.0.0/8", "::1"]),
        ("forwarded_allow_ips", "", []),
        ("proxy_protocol", True, "auto"),
        ("proxy_protocol", False, "off"),
        ("proxy_protocol", "V1", "v1"),
        ("http2_cleartext", True, "prior-knowledge"),
        ("http2_cleartext", "prior_knowledge", "prior-knowledge"),
        ("http_protocols", ["H2", "h1", "h2"], ["h2", "h1"]),
        ("bind", "127.0.0.1:9000", ["127.0.0.1:9000"]),
        ("bind", ("[::1]:80", "fd://3"), ["[::1]:80", "fd://3"]),
        ("statsd_host", "unix:8125", ("unix", 8125)),
        ("statsd_host", "unix:///run/statsd.sock", "/run/statsd.sock"),
        ("statsd_host", "[::1]:9125", ("::1", 9125)),
        ("reload_extra_files", "templates/*.html", ["templates/*.html"]),
        ("pidfile", "  /tmp/x.pid  ", "/tmp/x.pid"),
        ("pidfile", None, None),
        ("header_map", "Refuse", "refuse"),
        ("dirty_apps", "mod:App", ["mod:App"]),
    ],
)
def test_accepted_values(name: str, value: Any, expected: Any) -> None:
    cfg = Config()
    cfg.set(name, value)
    assert cfg.settings[name].get() == expected


def test_user_and_group_by_name() -> None:
    import grp
    import pwd

    cfg = Config()
    cfg.set("user", pwd.getpwuid(0).pw_name)
    cfg.set("group", grp.getgrgid(0).gr_name)
    assert (cfg.uid, cfg.gid) == (0, 0)


def test_chdir_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    cfg = Config()
    cfg.set("chdir", "sub")
    assert cfg.chdir == str(tmp_path / "sub")


def test_hook_given_as_dotted_path() -> None:
    cfg = Config()
    cfg.set("when_ready", "os.path.basename")
    assert cfg.when_ready("/a/b") == "b"
    cfg.set("on_exit", "os.path:basename")
    assert cfg.on_exit("/a/c") == "c"


@pytest.mark.parametrize("arity", [2, 3, 4])
def test_post_request_is_always_called_with_four_arguments(arity: int) -> None:
    seen: list[tuple[Any, ...]] = []
    params = ", ".join("abcd"[:arity])
    namespace: dict[str, Any] = {"seen": seen}
    exec(f"def my_post({params}):\n    seen.append(({params},))\n", namespace)
    cfg = Config()
    cfg.set("post_request", namespace["my_post"])
    cfg.post_request("w", "r", "e", "resp")
    assert seen == [("w", "r", "e", "resp")[:arity]]
    assert str(cfg).count("<my_post()>") == 1


def test_hooks_accept_callables_with_optional_or_variadic_parameters() -> None:
    cfg = Config()
    cfg.set("on_starting", lambda server, extra=None: None)
    cfg.set("pre_fork", lambda *args: None)

    class Hook:
        def __call__(self, server: Any, worker: Any) -> None:
            pass

    cfg.set("post_fork", Hook())


def test_loglevel_unknown_warns_but_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = Config()
    cfg.set("loglevel", "DEBUG")
    assert capsys.readouterr().err == ""
    cfg.set("loglevel", "verbose")
    assert cfg.loglevel == "verbose"
    assert "unknown log level 'verbose'" in capsys.readouterr().err


def test_ssl_version_is_deprecated(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = Config()
    cfg.set("ssl_version", "TLS")
    assert capsys.readouterr().err == ""
    cfg.set("ssl_version", "TLSv1_2")
    assert "ssl_version` is deprecated and it is ignored" in capsys.readouterr().err


def test_class_values() -> None:
    class MyWorker:
        pass

    cfg = Config()
    cfg.set("worker_class", MyWorker)
    assert cfg.worker_class is MyWorker
    assert cfg.worker_class_str == "MyWorker"
    line = next(x for x in str(cfg).splitlines() if x.startswith("worker_class "))
    assert line.endswith(".MyWorker()>")
