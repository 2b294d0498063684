"""Every setting parses from the command line, GUNICORN_CMD_ARGS and a config file, and the
sources apply in gunicorn's precedence order."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from gunicorn.config import KNOWN_SETTINGS, Config
from gunicorn.config.loader import apply_config_dict, apply_namespace, load_all, load_config_file

# name -> (command-line arguments, resulting value); "{dir}" / "{file}" are replaced by an
# existing directory / file.
CLI_SAMPLES: dict[str, tuple[list[str], Any]] = {
    "config": (["-c", "other.py"], "other.py"),
    "bind": (
        ["-b", "0.0.0.0:9000", "--bind", "unix:/tmp/g.sock"],
        ["0.0.0.0:9000", "unix:/tmp/g.sock"],
    ),
    "backlog": (["--backlog", "64"], 64),
    "workers": (["-w", "0x10"], 16),
    "worker_class": (["-k", "gthread"], "gthread"),
    "threads": (["--threads", "4"], 4),
    "worker_connections": (["--worker-connections", "50"], 50),
    "max_requests": (["--max-requests", "100"], 100),
    "max_requests_jitter": (["--max-requests-jitter", "10"], 10),
    "timeout": (["-t", "5"], 5),
    "graceful_timeout": (["--graceful-timeout", "7"], 7),
    "keepalive": (["--keep-alive", "75"], 75),
    "asgi_loop": (["--asgi-loop", "asyncio"], "asyncio"),
    "asgi_lifespan": (["--asgi-lifespan", "off"], "off"),
    "asgi_disconnect_grace_period": (["--asgi-disconnect-grace-period", "0"], 0),
    "websocket_max_message_size": (["--websocket-max-message-size", "1024"], 1024),
    "http_parser": (["--http-parser", "python"], "python"),
    "limit_request_line": (["--limit-request-line", "0"], 0),
    "limit_request_fields": (["--limit-request-fields", "20"], 20),
    "limit_request_field_size": (["--limit-request-field_size", "100"], 100),
    "reload": (["--reload"], True),
    "reload_engine": (["--reload-engine", "poll"], "poll"),
    "reload_extra_files": (
        ["--reload-extra-file", "{file}", "--reload-extra-file", "templates/**/*.html"],
        ["{file}", "templates/**/*.html"],
    ),
    "spew": (["--spew"], True),
    "check_config": (["--check-config"], True),
    "print_config": (["--print-config"], True),
    "preload_app": (["--preload"], True),
    "sendfile": (["--no-sendfile"], False),
    "reuse_port": (["--reuse-port"], True),
    "chdir": (["--chdir", "{dir}"], "{dir}"),
    "daemon": (["-D"], True),
    "raw_env": (["-e", "A=1", "--env", "B=x=y"], ["A=1", "B=x=y"]),
    "pidfile": (["-p", "/tmp/g.pid"], "/tmp/g.pid"),
    "worker_tmp_dir": (["--worker-tmp-dir", "/dev/shm"], "/dev/shm"),
    "user": (["-u", "12345"], 12345),
    "group": (["-g", "54321"], 54321),
    "umask": (["-m", "0022"], 0o22),
    "initgroups": (["--initgroups"], True),
    "forwarded_allow_ips": (
        ["--forwarded-allow-ips", "10.0.0.0/8, 192.168.1.1,fd00::/8"],
        ["10.0.0.0/8", "192.168.1.1", "fd00::/8"],
    ),
    "pythonpath": (["--pythonpath", "/a,/b"], "/a,/b"),
    "paste": (["--paster", "prod.ini#main"], "prod.ini#main"),
    "proxy_protocol": (["--proxy-protocol", "v2"], "v2"),
    "proxy_allow_ips": (["--proxy-allow-from", "*"], ["*"]),
    "protocol": (["--protocol", "uwsgi"], "uwsgi"),
    "uwsgi_allow_ips": (["--uwsgi-allow-from", "10.1.2.3"], ["10.1.2.3"]),
    "raw_paste_global_conf": (
        ["--paste-global", "k=v", "--paste-global", "a\\=b=c"],
        ["k=v", "a\\=b=c"],
    ),
    "permit_obsolete_folding": (["--permit-obsolete-folding"], True),
    "strip_header_spaces": (["--strip-header-spaces"], True),
    "permit_unconventional_http_method": (["--permit-unconventional-http-method"], True),
    "permit_unconventional_http_version": (["--permit-unconventional-http-version"], True),
    "casefold_http_method": (["--casefold-http-method"], True),
    "forwarder_headers": (
        ["--forwarder-headers", "SCRIPT_NAME,REMOTE_USER"],
        ["SCRIPT_NAME", "REMOTE_USER"],
    ),
    "header_map": (["--header-map", "refuse"], "refuse"),
    "root_path": (["--root-path", "/api"], "/api"),
    "accesslog": (["--access-logfile", "-"], "-"),
    "disable_redirect_access_to_syslog": (["--disable-redirect-access-to-syslog"], True),
    "access_log_format": (["--access-logformat", "%(h)s %(s)s"], "%(h)s %(s)s"),
    "errorlog": (["--log-file", "/tmp/e.log"], "/tmp/e.log"),
    "loglevel": (["--log-level", "debug"], "debug"),
    "capture_output": (["--capture-output"], True),
    "logger_class": (["--logger-class", "simple"], "simple"),
    "logconfig": (["--log-config", "log.ini"], "log.ini"),
    "logconfig_json": (["--log-config-json", "log.json"], "log.json"),
    "syslog_addr": (["--log-syslog-to", "unix:///dev/log#dgram"], "unix:///dev/log#dgram"),
    "syslog": (["--log-syslog"], True),
    "syslog_prefix": (["--log-syslog-prefix", "app"], "app"),
    "syslog_facility": (["--log-syslog-facility", "local0"], "local0"),
    "enable_stdio_inheritance": (["-R"], True),
    "statsd_host": (["--statsd-host", "localhost"], ("localhost", 8125)),
    "dogstatsd_tags": (["--dogstatsd-tags", "env:prod,app:x"], "env:prod,app:x"),
    "statsd_prefix": (["--statsd-prefix", "web"], "web"),
    "enable_backlog_metric": (["--enable-backlog-metric"], True),
    "proc_name": (["-n", "myapp"], "myapp"),
    "keyfile": (["--keyfile", "key.pem"], "key.pem"),
    "certfile": (["--certfile", "cert.pem"], "cert.pem"),
    "ssl_version": (["--ssl-version", "TLSv1_2"], 5),
    "cert_reqs": (["--cert-reqs", "2"], 2),
    "ca_certs": (["--ca-certs", "ca.pem"], "ca.pem"),
    "suppress_ragged_eofs": (["--suppress-ragged-eofs"], True),
    "do_handshake_on_connect": (["--do-handshake-on-connect"], True),
    "ciphers": (["--ciphers", "ECDHE+AESGCM"], "ECDHE+AESGCM"),
    "http_protocols": (["--http-protocols", "h2, h1"], ["h2", "h1"]),
    "http2_cleartext": (["--http2-cleartext", "both"], "both"),
    "http2_max_concurrent_streams": (["--http2-max-concurrent-streams", "10"], 10),
    "http2_initial_window_size": (["--http2-initial-window-size", "1048576"], 1048576),
    "http2_max_frame_size": (["--http2-max-frame-size", "32768"], 32768),
    "http2_max_header_list_size": (["--http2-max-header-list-size", "0"], 0),
    "dirty_apps": (
        ["--dirty-app", "mod:App", "--dirty-app", "mod:Big:2"],
        ["mod:App", "mod:Big:2"],
    ),
    "dirty_workers": (["--dirty-workers", "2"], 2),
    "dirty_timeout": (["--dirty-timeout", "60"], 60),
    "dirty_threads": (["--dirty-threads", "4"], 4),
    "dirty_graceful_timeout": (["--dirty-graceful-timeout", "5"], 5),
    "control_socket": (["--control-socket", "/tmp/g.ctl"], "/tmp/g.ctl"),
    "control_socket_mode": (["--control-socket-mode", "0660"], 0o660),
    "control_socket_disable": (["--no-control-socket"], True),
    "metrics_bind": (["--metrics-bind", "127.0.0.1:9100"], "127.0.0.1:9100"),
}


def _hook(*args: Any) -> None:
    pass


# Settings without flags: name -> (config file source line, resulting value or a predicate).
FILE_ONLY_SAMPLES: dict[str, tuple[str, Any]] = {
    "wsgi_app": ("wsgi_app = 'app:application'", "app:application"),
    "tmp_upload_dir": ("tmp_upload_dir = '/tmp'", "/tmp"),
    "secure_scheme_headers": (
        "secure_scheme_headers = {'X-FORWARDED-PROTO': 'https'}",
        {"X-FORWARDED-PROTO": "https"},
    ),
    "logconfig_dict": ("logconfig_dict = {'version': 1}", {"version": 1}),
    "default_proc_name": ("default_proc_name = 'site'", "site"),
}

HOOK_ARGS = {
    "on_starting": "server",
    "on_reload": "server",
    "when_ready": "server",
    "pre_fork": "server, worker",
    "post_fork": "server, worker",
    "post_worker_init": "worker",
    "worker_int": "worker",
    "worker_abort": "worker",
    "pre_exec": "server",
    "pre_request": "worker, req",
    "post_request": "worker, req, environ, resp",
    "child_exit": "server, worker",
    "worker_exit": "server, worker",
    "nworkers_changed": "server, new_value, old_value",
    "on_exit": "server",
    "ssl_context": "config, factory",
    "on_dirty_starting": "arbiter",
    "dirty_post_fork": "arbiter, worker",
    "dirty_worker_init": "worker",
    "dirty_worker_exit": "arbiter, worker",
}

FLAGGED = sorted(s.name for s in KNOWN_SETTINGS if s.cli)
ALL = sorted(s.name for s in KNOWN_SETTINGS)


def _fill(value: Any, paths: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, path in paths.items():
            value = value.replace("{" + key + "}", path)
        return value
    if isinstance(value, list):
        return [_fill(v, paths) for v in value]
    return value


@pytest.fixture
def sample_paths(clean_env: Path) -> dict[str, str]:
    (clean_env / "d").mkdir()
    (clean_env / "extra.txt").write_text("x")
    (clean_env / "other.py").write_text("")
    return {"dir": str(clean_env / "d"), "file": str(clean_env / "extra.txt")}


def _sample(name: str, paths: dict[str, str]) -> tuple[list[str], Any]:
    argv, expected = CLI_SAMPLES[name]
    return _fill(argv, paths), _fill(expected, paths)


def _as_python(name: str, argv: list[str]) -> Any:
    """The config-file value equivalent to the command-line arguments."""
    setting = Config().settings[name]
    if setting.action in ("store_true", "store_const"):
        return True if setting.action == "store_true" else setting.const
    values = argv[1::2]
    return values if setting.action == "append" else values[0]


def test_samples_cover_every_flagged_setting() -> None:
    assert sorted(CLI_SAMPLES) == FLAGGED
    assert sorted(set(CLI_SAMPLES) | set(FILE_ONLY_SAMPLES) | set(HOOK_ARGS)) == ALL


@pytest.mark.parametrize("name", FLAGGED)
def test_setting_parses_from_command_line(name: str, sample_paths: dict[str, str]) -> None:
    argv, expected = _sample(name, sample_paths)
    cfg = Config()
    if name == "suppress_ragged_eofs":  # the flag can only set the default, True
        cfg.set(name, False)
    assert cfg.settings[name].get() != expected
    load_all(cfg, argv)
    assert cfg.settings[name].get() == expected


@pytest.mark.parametrize("name", FLAGGED)
def test_setting_parses_from_gunicorn_cmd_args(
    name: str, sample_paths: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv, expected = _sample(name, sample_paths)
    monkeypatch.setenv("GUNICORN_CMD_ARGS", shlex.join(argv))
    cfg = Config()
    assert cfg.get_cmd_args_from_env() == argv
    load_all(cfg, [])
    assert cfg.settings[name].get() == expected


@pytest.mark.parametrize("name", FLAGGED)
def test_setting_parses_from_config_file(name: str, sample_paths: dict[str, str]) -> None:
    argv, expected = _sample(name, sample_paths)
    Path("gunicorn.conf.py").write_text(f"{name} = {_as_python(name, argv)!r}\n")
    cfg = Config()
    load_all(cfg, [])
    assert cfg.settings[name].get() == expected


@pytest.mark.parametrize("name", sorted(FILE_ONLY_SAMPLES))
def test_config_file_only_setting(name: str, clean_env: Path) -> None:
    line, expected = FILE_ONLY_SAMPLES[name]
    Path("gunicorn.conf.py").write_text(line + "\n")
    cfg = Config()
    for flag in (f"--{name}", f"--{name.replace('_', '-')}"):
        assert cfg.parser().parse_known_args([flag])[1] == [flag]  # no such option
    load_all(cfg, [])
    assert cfg.settings[name].get() == expected


@pytest.mark.parametrize("name", sorted(HOOK_ARGS))
def test_hook_from_config_file(name: str, clean_env: Path) -> None:
    Path("gunicorn.conf.py").write_text(
        f"calls = []\ndef {name}({HOOK_ARGS[name]}):\n    calls.append(1)\n    return 'done'\n"
    )
    cfg = Config()
    load_all(cfg, [])
    hook = cfg.settings[name].get()
    assert hook.__name__ == name
    assert hook(*range(HOOK_ARGS[name].count(",") + 1)) == "done"


# -- precedence ------------------------------------------------------------------------------


def test_config_file_beats_defaults(clean_env: Path) -> None:
    Path("gunicorn.conf.py").write_text("workers = 3\nbind = ['unix:/tmp/a.sock']\n")
    cfg = Config()
    load_all(cfg, [])
    assert cfg.workers == 3
    assert cfg.bind == ["unix:/tmp/a.sock"]
    assert cfg.timeout == 30


def test_env_beats_config_file(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("gunicorn.conf.py").write_text("workers = 3\ntimeout = 9\nbind = ['0.0.0.0:1']\n")
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--workers=5 --bind 127.0.0.1:2")
    cfg = Config()
    load_all(cfg, [])
    assert (cfg.workers, cfg.timeout, cfg.bind) == (5, 9, ["127.0.0.1:2"])


def test_cli_beats_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("gunicorn.conf.py").write_text("workers = 3\nkeepalive = 10\n")
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--workers=5 --timeout 6")
    cfg = Config()
    args = load_all(cfg, ["-w", "7", "app:app"])
    assert (cfg.workers, cfg.timeout, cfg.keepalive) == (7, 6, 10)
    assert args.args == ["app:app"]


def test_cli_config_file_beats_the_one_in_env(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("a.py").write_text("workers = 2\n")
    Path("b.py").write_text("workers = 4\n")
    Path("gunicorn.conf.py").write_text("workers = 6\n")
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--config a.py")
    cfg = Config()
    load_all(cfg, ["-c", "b.py"])
    assert (cfg.workers, cfg.config) == (4, "b.py")


def test_env_config_file_beats_default_file(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("a.py").write_text("workers = 2\n")
    Path("gunicorn.conf.py").write_text("workers = 6\n")
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--config a.py")
    cfg = Config()
    load_all(cfg, [])
    assert cfg.workers == 2


def test_config_file_unknown_names_are_ignored(clean_env: Path) -> None:
    Path("gunicorn.conf.py").write_text("import os\nhelper = 1\nworkers = 2\n_private = 'x'\n")
    cfg = Config()
    load_all(cfg, [])
    assert cfg.workers == 2


def test_parsed_options_default_to_none() -> None:
    namespace = Config().parser().parse_args([])
    assert all(v is None for k, v in vars(namespace).items() if k != "args")
    assert namespace.args == []


def test_proxy_protocol_bare_flag_means_auto() -> None:
    cfg = Config()
    apply_namespace(cfg, cfg.parser().parse_args(["--proxy-protocol"]))
    assert cfg.proxy_protocol == "auto"


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    import gunicorn

    with pytest.raises(SystemExit) as exc:
        Config(prog="gunicorn").parser().parse_args(["-v"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"gunicorn (version {gunicorn.__version__})\n"


def test_help_groups_flags_by_section_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        Config(prog="gunicorn").parser().parse_args(["--help"])
    out = capsys.readouterr().out
    positions = [out.index(f"\n{section}:\n") for section in ("Server Socket", "Security", "SSL")]
    assert positions == sorted(positions)
    assert "[2048]" in out  # backlog default
    assert '%(h)s %(l)s %(u)s %(t)s "%(r)s"' in out  # % survives argparse formatting


def test_bad_cli_integer_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        Config(prog="gunicorn").parser().parse_args(["-w", "many"])
    assert exc.value.code == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err


def test_apply_config_dict_reports_name_and_value() -> None:
    cfg = Config()
    with pytest.raises(Exception, match=r"^Invalid value for workers: 'lots'") as exc:
        apply_config_dict(cfg, {"workers": "lots"})
    from gunicorn.errors import ConfigError

    assert isinstance(exc.value, ConfigError)
    assert "\n" not in str(exc.value)


def test_python_module_config(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / "my_gconf.py").write_text("workers = 9\n")
    monkeypatch.syspath_prepend(str(clean_env))
    values = load_config_file("python:my_gconf")
    assert values["workers"] == 9
    cfg = Config()
    load_all(cfg, ["-c", "python:my_gconf"])
    assert cfg.workers == 9
