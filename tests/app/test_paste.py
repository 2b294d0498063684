"""PasteDeploy: ``--paste app.ini#name`` loading and the ``egg:gunicorn#main`` server runner."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gunicorn.app.pasterapp import PasterServerApplication, get_wsgi_app, has_logging_config
from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.errors import AppImportError

FACTORY = textwrap.dedent(
    """
    def make_app(global_conf, greeting="hello", **local):
        def app(environ, start_response):
            start_response("200 OK", [])
            return [f"{greeting} {global_conf.get('who', '?')}".encode()]
        return app

    def broken(global_conf, **local):
        raise RuntimeError("no database")
    """
)

INI = textwrap.dedent(
    """
    [app:main]
    use = call:gapp_paste_factory:make_app
    greeting = hi

    [app:other]
    use = call:gapp_paste_factory:make_app
    greeting = bonjour

    [app:broken]
    use = call:gapp_paste_factory:broken
    """
)


@pytest.fixture
def paste_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "gapp_paste_factory.py").write_text(FACTORY)
    (tmp_path / "app.ini").write_text(INI)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    yield tmp_path
    sys.modules.pop("gapp_paste_factory", None)


def body(app: Any) -> bytes:
    return b"".join(app({}, lambda status, headers: None))


def test_get_wsgi_app(paste_dir: Path) -> None:
    assert body(get_wsgi_app(str(paste_dir / "app.ini"), defaults={"who": "you"})) == b"hi you"
    assert body(get_wsgi_app(f"{paste_dir / 'app.ini'}#other")) == b"bonjour ?"


def test_paste_option(paste_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        sys, "argv", ["gunicorn", "--paste", "app.ini#other", "--paste-global", "who=world"]
    )
    app = WSGIApplication()
    assert app.cfg.default_proc_name == str(paste_dir / "app.ini")
    assert body(app.wsgi()) == b"bonjour world"


def test_paste_factory_error_is_app_import_error(
    paste_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["gunicorn", "--paste", "app.ini#broken"])
    with pytest.raises(AppImportError) as info:
        WSGIApplication().wsgi()
    assert "\n" not in str(info.value)
    assert str(info.value).endswith("RuntimeError: no database")


def test_missing_ini_is_one_line_error(
    paste_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr(sys, "argv", ["gunicorn", "--paste", "nope.ini"])
    with pytest.raises(SystemExit) as info:
        WSGIApplication()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.ini" in err and "not found" in err


def test_ini_with_logging_sections_becomes_logconfig(
    paste_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ini = paste_dir / "logged.ini"
    ini.write_text(
        INI
        + textwrap.dedent(
            """
            [loggers]
            keys = root
            [handlers]
            keys = null
            [formatters]
            keys =
            [logger_root]
            handlers = null
            [handler_null]
            class = NullHandler
            args = ()
            """
        )
    )
    assert has_logging_config(str(ini)) and not has_logging_config(str(paste_dir / "app.ini"))
    monkeypatch.setattr(sys, "argv", ["gunicorn", "--paste", str(ini)])
    assert WSGIApplication().cfg.logconfig == str(ini)


def test_server_runner_settings(paste_dir: Path) -> None:
    loaded = get_wsgi_app(str(paste_dir / "app.ini"))
    app = PasterServerApplication(
        loaded,
        {"__file__": str(paste_dir / "app.ini"), "here": str(paste_dir)},
        {"host": "127.0.0.1", "port": "9001", "workers": "3", "timeout": "12", "proc_name": "x"},
    )
    assert app.cfg.bind == ["127.0.0.1:9001"]
    assert (app.cfg.workers, app.cfg.timeout, app.cfg.proc_name) == (3, 12, "x")
    assert app.wsgi() is loaded


def test_server_runner_bind_and_config_file(paste_dir: Path) -> None:
    (paste_dir / "gconf.py").write_text("workers = 4\nkeepalive = 9\n")
    app = PasterServerApplication(
        body,
        {"__file__": str(paste_dir / "app.ini")},
        {"bind": "unix:/tmp/x.sock", "config": str(paste_dir / "gconf.py"), "workers": "5"},
    )
    assert app.cfg.bind == ["unix:/tmp/x.sock"]
    assert (app.cfg.workers, app.cfg.keepalive) == (5, 9)  # ini keys beat the config file


def test_server_runner_unknown_key(paste_dir: Path, capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        PasterServerApplication(body, {"__file__": str(paste_dir / "app.ini")}, {"wrkers": "2"})
    assert info.value.code == 1
    assert "unknown setting 'wrkers'" in capsys.readouterr().err


def test_server_runner_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="paste.server_runner") if e.name == "main"]
    assert ep.value == "gunicorn.app.pasterapp:serve"
