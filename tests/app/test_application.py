"""BaseApplication embedding, Application config precedence, WSGIApplication, reload."""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gunicorn.app.base import Application, BaseApplication
from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.errors import AppImportError, ConfigError, HaltServer


def hello_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


class StandaloneApplication(BaseApplication):
    """The documented embedding pattern."""

    def __init__(self, app: Any, options: dict[str, Any] | None = None) -> None:
        self.options = options or {}
        self.application = app
        self.loads = 0
        super().__init__()

    def load_config(self) -> None:
        config = {
            key: value
            for key, value in self.options.items()
            if key in self.cfg.settings and value is not None
        }
        for key, value in config.items():
            self.cfg.set(key.lower(), value)

    def load(self) -> Any:
        self.loads += 1
        return self.application


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean cwd, sys.path and environment for code that chdirs and reads GUNICORN_CMD_ARGS."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", sys.path[:])
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("gapp_cfg")]:
        del sys.modules[name]


def argv(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["gunicorn", *args])


def test_standalone_application_configures_cfg() -> None:
    app = StandaloneApplication(
        hello_app,
        {
            "bind": "127.0.0.1:9999",
            "workers": 3,
            "timeout": "45",
            "not_a_setting": 1,
            "loglevel": None,
        },
    )
    assert app.cfg.bind == ["127.0.0.1:9999"]
    assert app.cfg.workers == 3
    assert app.cfg.timeout == 45
    assert app.cfg.loglevel == "info"
    assert app.callable is None
    assert app.wsgi() is hello_app
    assert app.wsgi() is hello_app
    assert app.loads == 1


def test_standalone_invalid_value_exits_with_one_line(capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        StandaloneApplication(hello_app, {"workers": "many"})
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: ") and "workers" in err


def test_base_application_is_abstract() -> None:
    class NoConfig(BaseApplication):
        pass

    with pytest.raises(NotImplementedError):
        NoConfig()


def test_defaults_without_config(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv(monkeypatch, "gapp_cfg_a:app")
    app = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]")
    assert app.app_uri == "gapp_cfg_a:app"
    assert app.cfg.workers == 1
    assert app.cfg.default_proc_name == "gapp_cfg_a:app"


def test_precedence(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "custom.conf.py").write_text("workers = 2\nthreads = 5\ntimeout = 40\n")
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--workers 3 --threads 6")
    argv(monkeypatch, "-c", "custom.conf.py", "--workers", "4", "app:app")
    cfg = WSGIApplication().cfg
    assert (cfg.workers, cfg.threads, cfg.timeout) == (4, 6, 40)


def test_env_beats_config_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "gunicorn.conf.py").write_text("workers = 2\n")
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--workers=3")
    argv(monkeypatch, "app:app")
    assert WSGIApplication().cfg.workers == 3


def test_default_config_file_is_loaded(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "gunicorn.conf.py").write_text("workers = 2\nraw_env = ['A=1']\n")
    argv(monkeypatch, "app:app")
    cfg = WSGIApplication().cfg
    assert cfg.workers == 2 and cfg.raw_env == ["A=1"]


def test_config_from_env_args_when_no_c(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "gunicorn.conf.py").write_text("workers = 2\n")
    (workdir / "env.conf.py").write_text("workers = 7\n")
    (workdir / "cli.conf.py").write_text("workers = 9\n")
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--config env.conf.py")
    argv(monkeypatch, "app:app")
    assert WSGIApplication().cfg.workers == 7
    argv(monkeypatch, "-c", "cli.conf.py", "app:app")
    assert WSGIApplication().cfg.workers == 9


def test_python_module_config(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "gapp_cfg_mod.py").write_text("workers = 6\n")
    monkeypatch.syspath_prepend(str(workdir))
    argv(monkeypatch, "-c", "python:gapp_cfg_mod", "app:app")
    assert WSGIApplication().cfg.workers == 6


def test_wsgi_app_from_config_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "gapp_cfg_w.py").write_text(
        "def application(environ, start_response):\n    return [b'w']\n"
    )
    (workdir / "gunicorn.conf.py").write_text("wsgi_app = 'gapp_cfg_w:application'\n")
    argv(monkeypatch)
    app = WSGIApplication()
    assert app.app_uri == "gapp_cfg_w:application"
    assert app.wsgi()({}, None) == [b"w"]


def test_command_line_app_beats_wsgi_app(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "gunicorn.conf.py").write_text("wsgi_app = 'other:app'\n")
    argv(monkeypatch, "mine:app")
    assert WSGIApplication().app_uri == "mine:app"


def test_missing_app_is_one_line_exit_1(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    argv(monkeypatch)
    with pytest.raises(SystemExit) as info:
        WSGIApplication()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("Error: No application module specified")


def test_bad_cli_value_exits_1(workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    argv(monkeypatch, "--workers", "-3", "app:app")
    with pytest.raises(SystemExit) as info:
        WSGIApplication()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "workers" in err


def test_chdir_and_pythonpath_apply_to_load(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    appdir, libdir = workdir / "site", workdir / "lib"
    appdir.mkdir()
    libdir.mkdir()
    (libdir / "gapp_cfg_lib.py").write_text("GREETING = b'from lib'\n")
    (appdir / "gapp_cfg_site.py").write_text(
        "import gapp_cfg_lib\n"
        "def app(environ, start_response):\n    return [gapp_cfg_lib.GREETING]\n"
    )
    argv(monkeypatch, "--chdir", str(appdir), "--pythonpath", str(libdir), "gapp_cfg_site:app")
    app = WSGIApplication()
    assert Path.cwd() == appdir
    assert app.wsgi()({}, None) == [b"from lib"]


def test_app_import_error_from_wsgi(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv(monkeypatch, "gapp_cfg_nonexistent:app")
    app = WSGIApplication()
    with pytest.raises(AppImportError, match=r"^No module named 'gapp_cfg_nonexistent'$"):
        app.wsgi()


def test_reload_rereads_config_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = workdir / "gunicorn.conf.py"
    conf.write_text("workers = 2\n")
    argv(monkeypatch, "app:app")
    app = WSGIApplication()
    conf.write_text("workers = 5\n")
    app.reload()
    assert app.cfg.workers == 5


def test_reload_failure_keeps_previous_config(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = workdir / "gunicorn.conf.py"
    conf.write_text("workers = 2\n")
    argv(monkeypatch, "app:app")
    app = WSGIApplication()
    old = app.cfg
    conf.write_text("workers = 'lots'\n")
    with pytest.raises(ConfigError) as info:
        app.reload()
    assert "\n" not in str(info.value) and "workers" in str(info.value)
    assert app.cfg is old and app.cfg.workers == 2
    conf.write_text("workers = (\n")
    with pytest.raises(ConfigError):
        app.reload()
    assert app.cfg is old


def test_reload_sets_up_logging_again(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = workdir / "gunicorn.conf.py"
    conf.write_text("loglevel = 'info'\n")
    argv(monkeypatch, "app:app")
    app = WSGIApplication()
    seen: list[str] = []

    class RecordingLogger:
        def setup(self, cfg: Any) -> None:
            seen.append(cfg.loglevel)

    app.logger = RecordingLogger()
    conf.write_text("loglevel = 'debug'\n")
    app.reload()
    assert seen == ["debug"]


def test_application_subclass_init_returns_settings(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Framework(Application):
        def init(self, parser: Any, opts: Any, args: list[str]) -> dict[str, Any]:
            return {"workers": 8, "bind": "127.0.0.1:7000"}

        def load(self) -> Any:
            return hello_app

    (workdir / "gunicorn.conf.py").write_text("workers = 2\n")
    argv(monkeypatch)
    cfg = Framework().cfg
    assert cfg.workers == 2  # the config file beats app-specific settings
    assert cfg.bind == ["127.0.0.1:7000"]


def test_config_file_that_raises_is_one_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    (workdir / "gunicorn.conf.py").write_text(
        textwrap.dedent(
            """
            import os
            workers = int(os.environ["GAPP_NOT_SET_ANYWHERE"])
            """
        )
    )
    argv(monkeypatch, "app:app")
    with pytest.raises(SystemExit) as info:
        WSGIApplication()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "GAPP_NOT_SET_ANYWHERE" in err


# -- run(): what happens before the arbiter takes over -----------------------------------------


class FakeArbiter:
    """Stands in for gunicorn.arbiter.Arbiter: records the app, or raises ``error``."""

    runs: list[Any] = []
    error: BaseException | None = None

    def __init__(self, app: Any) -> None:
        self.app = app

    def run(self) -> None:
        if FakeArbiter.error is not None:
            raise FakeArbiter.error
        FakeArbiter.runs.append((self.app, list(sys.path)))


@pytest.fixture
def fake_arbiter(monkeypatch: pytest.MonkeyPatch) -> type[FakeArbiter]:
    module = types.ModuleType("gunicorn.arbiter")
    module.Arbiter = FakeArbiter  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gunicorn.arbiter", module)
    FakeArbiter.runs = []
    FakeArbiter.error = None
    return FakeArbiter


def test_run_applies_pythonpath_then_starts_arbiter(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, fake_arbiter: type[FakeArbiter]
) -> None:
    argv(monkeypatch, "--pythonpath", "one,two", "app:app")
    app = WSGIApplication()
    app.run()
    ((ran, path),) = fake_arbiter.runs
    assert ran is app
    assert path[:2] == [str(workdir / "one"), str(workdir / "two")]


def test_run_daemonizes_first(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, fake_arbiter: type[FakeArbiter]
) -> None:
    from gunicorn import osutil

    calls: list[bool] = []
    monkeypatch.setattr(osutil, "daemonize", lambda inherit=False: calls.append(inherit))
    argv(monkeypatch, "--daemon", "-R", "app:app")
    WSGIApplication().run()
    assert calls == [True]
    assert len(fake_arbiter.runs) == 1


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (HaltServer("App failed to load.", 4), 4, "Error: App failed to load.\n"),
        (ConfigError("bad\nthing"), 1, "Error: bad thing\n"),
        (RuntimeError("no sockets"), 1, "Error: no sockets\n"),
    ],
)
def test_run_reports_arbiter_errors_in_one_line(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_arbiter: type[FakeArbiter],
    capsys: Any,
    error: BaseException,
    code: int,
    line: str,
) -> None:
    argv(monkeypatch, "app:app")
    app = WSGIApplication()
    fake_arbiter.error = error
    with pytest.raises(SystemExit) as info:
        app.run()
    assert info.value.code == code
    assert capsys.readouterr().err == line


def test_check_config_does_not_start_arbiter(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, fake_arbiter: type[FakeArbiter]
) -> None:
    (workdir / "gapp_cfg_ok.py").write_text("def app(e, s):\n    return []\n")
    argv(monkeypatch, "--check-config", "gapp_cfg_ok:app")
    with pytest.raises(SystemExit) as info:
        WSGIApplication().run()
    assert info.value.code == 0
    assert fake_arbiter.runs == []


def test_missing_config_file_is_one_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    argv(monkeypatch, "-c", "nope.conf.py", "app:app")
    with pytest.raises(SystemExit) as info:
        WSGIApplication()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Error: ") and "nope.conf.py" in err
