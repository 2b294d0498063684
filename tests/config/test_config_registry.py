"""The setting registry: counts, declarations and the print-config defaults of gunicorn 27."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gunicorn.config import KNOWN_SETTINGS, SUPPORTED_WORKERS, Config, Setting, make_settings

HOOKS = {
    "on_starting": 1,
    "on_reload": 1,
    "when_ready": 1,
    "pre_fork": 2,
    "post_fork": 2,
    "post_worker_init": 1,
    "worker_int": 1,
    "worker_abort": 1,
    "pre_exec": 1,
    "pre_request": 2,
    "post_request": 4,
    "child_exit": 2,
    "worker_exit": 2,
    "nworkers_changed": 3,
    "on_exit": 1,
    "ssl_context": 2,
    "on_dirty_starting": 1,
    "dirty_post_fork": 2,
    "dirty_worker_init": 1,
    "dirty_worker_exit": 2,
}

CONFIG_FILE_ONLY = set(HOOKS) | {
    "wsgi_app",
    "tmp_upload_dir",
    "secure_scheme_headers",
    "logconfig_dict",
    "default_proc_name",
}

SECTION_SIZES = {
    "Config File": 2,
    "Server Socket": 2,
    "Worker Processes": 14,
    "Security": 3,
    "Debugging": 6,
    "Server Mechanics": 30,
    "Logging": 19,
    "Process Naming": 2,
    "Server Hooks": 16,
    "SSL": 8,
    "HTTP/2": 6,
    "Dirty Arbiters": 5,
    "Dirty Arbiter Hooks": 4,
    "Control": 4,
}

# `name = value` lines printed by --print-config for gunicorn 27 defaults; {cwd}, {uid},
# {gid} and {home} are filled in. Hooks print as <function qualname()>.
DEFAULTS = {
    "access_log_format": '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
    "accesslog": "None",
    "asgi_disconnect_grace_period": "3",
    "asgi_lifespan": "auto",
    "asgi_loop": "auto",
    "backlog": "2048",
    "bind": "['127.0.0.1:8000']",
    "ca_certs": "None",
    "capture_output": "False",
    "casefold_http_method": "False",
    "cert_reqs": "0",
    "certfile": "None",
    "chdir": "{cwd}",
    "check_config": "False",
    "ciphers": "None",
    "config": "./gunicorn.conf.py",
    "control_socket": "{home}/.gunicorn/gunicorn.ctl",
    "control_socket_disable": "False",
    "control_socket_mode": "384",
    "metrics_bind": "None",
    "daemon": "False",
    "default_proc_name": "gunicorn",
    "dirty_apps": "[]",
    "dirty_graceful_timeout": "30",
    "dirty_threads": "1",
    "dirty_timeout": "300",
    "dirty_workers": "0",
    "disable_redirect_access_to_syslog": "False",
    "do_handshake_on_connect": "False",
    "dogstatsd_tags": "",
    "enable_backlog_metric": "False",
    "enable_stdio_inheritance": "False",
    "errorlog": "-",
    "forwarded_allow_ips": "['127.0.0.1', '::1']",
    "forwarder_headers": "['SCRIPT_NAME', 'PATH_INFO']",
    "graceful_timeout": "30",
    "group": "{gid}",
    "header_map": "drop",
    "http2_cleartext": "off",
    "http2_initial_window_size": "65535",
    "http2_max_concurrent_streams": "100",
    "http2_max_frame_size": "16384",
    "http2_max_header_list_size": "65536",
    "http_parser": "auto",
    "http_protocols": "['h1']",
    "initgroups": "False",
    "keepalive": "2",
    "keyfile": "None",
    "limit_request_field_size": "8190",
    "limit_request_fields": "100",
    "limit_request_line": "4094",
    "logconfig": "None",
    "logconfig_dict": "{}",
    "logconfig_json": "None",
    "logger_class": "gunicorn.glogging.Logger",
    "loglevel": "info",
    "max_requests": "0",
    "max_requests_jitter": "0",
    "paste": "None",
    "permit_obsolete_folding": "False",
    "permit_unconventional_http_method": "False",
    "permit_unconventional_http_version": "False",
    "pidfile": "None",
    "preload_app": "False",
    "print_config": "False",
    "proc_name": "None",
    "protocol": "http",
    "proxy_allow_ips": "['127.0.0.1', '::1']",
    "proxy_protocol": "off",
    "pythonpath": "None",
    "raw_env": "[]",
    "raw_paste_global_conf": "[]",
    "reload": "False",
    "reload_engine": "auto",
    "reload_extra_files": "[]",
    "reuse_port": "False",
    "root_path": "",
    "secure_scheme_headers": "{'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https', "
    "'X-FORWARDED-SSL': 'on'}",
    "sendfile": "None",
    "spew": "False",
    "ssl_version": "2",
    "statsd_host": "None",
    "statsd_prefix": "",
    "strip_header_spaces": "False",
    "suppress_ragged_eofs": "True",
    "syslog": "False",
    "syslog_addr": "udp://localhost:514",
    "syslog_facility": "user",
    "syslog_prefix": "None",
    "threads": "1",
    "timeout": "30",
    "tmp_upload_dir": "None",
    "umask": "0",
    "user": "{uid}",
    "uwsgi_allow_ips": "['127.0.0.1', '::1']",
    "websocket_max_message_size": "16777216",
    "worker_class": "sync",
    "worker_connections": "1000",
    "worker_tmp_dir": "None",
    "workers": "1",
    "wsgi_app": "None",
}


def test_there_are_121_settings_96_with_flags() -> None:
    assert len(KNOWN_SETTINGS) == 121
    assert len({s.name for s in KNOWN_SETTINGS}) == 121
    assert sum(1 for s in KNOWN_SETTINGS if s.cli) == 96
    assert {s.name for s in KNOWN_SETTINGS if not s.cli} == CONFIG_FILE_ONLY


def test_sections_in_docs_order_with_their_sizes() -> None:
    sections: dict[str, int] = {}
    for setting in KNOWN_SETTINGS:
        sections[setting.section] = sections.get(setting.section, 0) + 1
    assert sections == SECTION_SIZES
    assert list(sections) == list(SECTION_SIZES)


def test_every_setting_is_documented() -> None:
    for setting in KNOWN_SETTINGS:
        assert setting.short.strip(), setting.name
        assert setting.desc.strip(), setting.name


def test_flags_are_unique_and_match_gunicorn() -> None:
    flags = [flag for s in KNOWN_SETTINGS for flag in s.cli]
    assert len(flags) == len(set(flags))
    by_flag = {flag: s.name for s in KNOWN_SETTINGS for flag in s.cli}
    assert by_flag["--limit-request-field_size"] == "limit_request_field_size"
    assert by_flag["--no-sendfile"] == "sendfile"
    assert by_flag["--keep-alive"] == "keepalive"
    assert by_flag["--log-file"] == by_flag["--error-logfile"] == "errorlog"
    assert by_flag["--paster"] == by_flag["--paste"] == "paste"
    assert by_flag["--proxy-allow-from"] == "proxy_allow_ips"
    assert by_flag["--no-control-socket"] == "control_socket_disable"
    assert by_flag["-R"] == "enable_stdio_inheritance"


def test_hooks_default_to_callables() -> None:
    settings = make_settings()
    for name in HOOKS:
        assert callable(settings[name].get()), name


def test_default_pre_request_logs_method_and_path_at_debug() -> None:
    logged: list[tuple[object, ...]] = []

    class Log:
        def debug(self, *args: object) -> None:
            logged.append(args)

    class Worker:
        log = Log()

    class Req:
        method = "GET"
        path = "/x"

    Config().pre_request(Worker(), Req())
    assert logged == [("%s %s", "GET", "/x")]


def test_default_ssl_context_hook_calls_the_factory() -> None:
    marker = object()
    assert Config().ssl_context(Config(), lambda: marker) is marker


def test_print_config_lists_all_settings_with_gunicorn_defaults(clean_env: Path) -> None:
    cfg = Config()
    lines = str(cfg).splitlines()
    assert len(lines) == 121
    names = [line.split(" = ", 1)[0].rstrip() for line in lines]
    assert names == sorted(names)
    printed = {name: line.split(" = ", 1)[1] for name, line in zip(names, lines, strict=True)}
    fill = {
        "cwd": os.getcwd(),
        "uid": str(os.geteuid()),
        "gid": str(os.getegid()),
        "home": os.environ["HOME"],
    }
    for name, expected in DEFAULTS.items():
        if "{" in expected and name in ("chdir", "user", "group", "control_socket"):
            expected = expected.format(**fill)
        assert printed[name] == expected, name
    for name in HOOKS:
        assert printed[name].startswith("<") and printed[name].endswith("()>"), name
    assert set(printed) == set(DEFAULTS) | set(HOOKS)
    # values are aligned on the longest name
    width = max(len(n) for n in names)
    assert all(line[width : width + 3] == " = " for line in lines)


def test_env_derived_defaults(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "5000")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8,*")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    cfg = Config()
    assert cfg.bind == ["0.0.0.0:5000"]
    assert cfg.address == [("0.0.0.0", 5000)]
    assert cfg.workers == 3
    assert cfg.forwarded_allow_ips == ["10.0.0.0/8", "*"]
    assert cfg.control_socket == "/run/user/1000/gunicorn.ctl"


@pytest.mark.parametrize(
    ("env", "expected"),
    [(None, True), ("1", True), ("yes", True), ("TRUE", True), ("0", False), ("no", False)],
)
def test_sendfile_follows_environment_when_unset(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, env: str | None, expected: bool
) -> None:
    if env is not None:
        monkeypatch.setenv("SENDFILE", env)
    cfg = Config()
    assert cfg.sendfile is expected
    cfg.set("sendfile", False)
    assert cfg.sendfile is False


def test_supported_workers_names() -> None:
    assert set(SUPPORTED_WORKERS) >= {
        "sync",
        "gthread",
        "gevent",
        "gevent_wsgi",
        "gevent_pywsgi",
        "tornado",
        "asgi",
    }
    assert SUPPORTED_WORKERS["sync"] == "gunicorn.workers.sync.SyncWorker"
    assert SUPPORTED_WORKERS["gthread"] == "gunicorn.workers.gthread.ThreadWorker"
    assert SUPPORTED_WORKERS["asgi"] == "gunicorn.workers.gasgi.ASGIWorker"


def test_subclass_style_settings_register_themselves() -> None:
    before = len(KNOWN_SETTINGS)
    try:

        class Custom(Setting):
            name = "custom_test_setting"
            section = "Custom"
            cli = ("--custom-test-setting",)
            validator = staticmethod(lambda v: int(v))
            default = 5

        assert len(KNOWN_SETTINGS) == before + 1
        cfg = Config()
        assert cfg.custom_test_setting == 5
        ns = cfg.parser().parse_args(["--custom-test-setting", "7"])
        cfg.set("custom_test_setting", ns.custom_test_setting)
        assert cfg.custom_test_setting == 7
    finally:
        del KNOWN_SETTINGS[before:]
    with pytest.raises(ValueError, match="declared twice"):

        class Duplicate(Setting):
            name = "workers"
