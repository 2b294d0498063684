"""Error log: format, levels, files, reopen (USR1), re-setup (HUP), capture_output, syslog,
logging config files."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from logfakes import FakeRequest, FakeResponse, make_environ

from gunicorn.config import Config
from gunicorn.errors import ConfigError
from gunicorn.glogging import (
    CONFIG_DEFAULTS,
    SYSLOG_FACILITIES,
    Logger,
    merge_logging_config,
    parse_syslog_address,
)

LINE = re.compile(
    r"\[(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4})\] \[(\d+)\] \[([A-Z]+)\] (.*)"
)


def flush(logger: Logger) -> None:
    for log in (logger.error_log, logger.access_log):
        for handler in log.handlers:
            handler.flush()


def test_error_log_format(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    path = tmp_path / "error.log"
    logger = Logger(make_cfg(errorlog=str(path)))
    logger.info("Listening at: %s (%s)", "http://127.0.0.1:8000", 42)
    logger.critical("WORKER TIMEOUT (pid:%d)", 7214)
    flush(logger)
    lines = path.read_text().splitlines()
    first, second = (LINE.fullmatch(line) for line in lines)
    assert first is not None and second is not None
    assert first.group(2) == str(os.getpid())
    assert first.group(3, 4) == ("INFO", "Listening at: http://127.0.0.1:8000 (42)")
    assert second.group(3, 4) == ("CRITICAL", "WORKER TIMEOUT (pid:7214)")


def test_default_error_log_is_stderr(make_cfg: Callable[..., Config], capsys: Any) -> None:
    logger = Logger(make_cfg())
    logger.warning("careful")
    captured = capsys.readouterr()
    assert captured.out == ""
    match = LINE.fullmatch(captured.err.strip())
    assert match is not None and match.group(3, 4) == ("WARNING", "careful")


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        ("debug", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]),
        ("info", ["INFO", "WARNING", "ERROR", "CRITICAL"]),
        ("warning", ["WARNING", "ERROR", "CRITICAL"]),
        ("error", ["ERROR", "CRITICAL"]),
        ("critical", ["CRITICAL"]),
    ],
)
def test_loglevel(
    make_cfg: Callable[..., Config], tmp_path: Path, level: str, shown: list[str]
) -> None:
    path = tmp_path / "error.log"
    logger = Logger(make_cfg(errorlog=str(path), loglevel=level))
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    logger.critical("c")
    flush(logger)
    levels = [LINE.fullmatch(line).group(3) for line in path.read_text().splitlines()]  # type: ignore[union-attr]
    assert levels == shown


def test_log_with_level_name_and_exception(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    path = tmp_path / "error.log"
    logger = Logger(make_cfg(errorlog=str(path)))
    logger.log("warning", "by name")
    logger.log(logging.ERROR, "by number")
    try:
        raise KeyError("boom")
    except KeyError:
        logger.exception("Error handling request")
    flush(logger)
    text = path.read_text()
    assert "[WARNING] by name" in text and "[ERROR] by number" in text
    assert "[ERROR] Error handling request\nTraceback" in text and "KeyError: 'boom'" in text


def test_reopen_files_after_rotation(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    error, access = tmp_path / "error.log", tmp_path / "access.log"
    logger = Logger(make_cfg(errorlog=str(error), accesslog=str(access)))
    logger.info("before")
    logger.access(FakeResponse(), FakeRequest(), make_environ(), timedelta(0))
    error.rename(tmp_path / "error.log.1")
    access.rename(tmp_path / "access.log.1")
    logger.reopen_files()
    logger.info("after")
    logger.access(FakeResponse(status="404 Not Found"), FakeRequest(), make_environ(), timedelta(0))
    flush(logger)
    assert "before" in (tmp_path / "error.log.1").read_text()
    assert "after" in error.read_text() and "before" not in error.read_text()
    assert '" 200 ' in (tmp_path / "access.log.1").read_text()
    assert '" 404 ' in access.read_text() and '" 200 ' not in access.read_text()


def test_close_on_exec(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    logger = Logger(make_cfg(errorlog=str(tmp_path / "e.log")))
    logger.close_on_exec()
    files = [h for h in logger.error_log.handlers if isinstance(h, logging.FileHandler)]
    assert files and all(not os.get_inheritable(h.stream.fileno()) for h in files)


def test_setup_again_replaces_its_handlers(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    first, second = tmp_path / "one.log", tmp_path / "two.log"
    logger = Logger(make_cfg(errorlog=str(first)))
    foreign = logging.NullHandler()
    logger.error_log.addHandler(foreign)
    logger.setup(make_cfg(errorlog=str(second), loglevel="debug"))
    logger.debug("only in two")
    flush(logger)
    assert "only in two" in second.read_text()
    assert "only in two" not in first.read_text()
    assert foreign in logger.error_log.handlers  # handlers we did not add are left alone
    assert sum(isinstance(h, logging.FileHandler) for h in logger.error_log.handlers) == 1


def test_new_logger_instance_drops_previous_handlers(
    make_cfg: Callable[..., Config], tmp_path: Path
) -> None:
    Logger(make_cfg(errorlog=str(tmp_path / "a.log")))
    logger = Logger(make_cfg(errorlog=str(tmp_path / "b.log")))
    files = [h for h in logger.error_log.handlers if isinstance(h, logging.FileHandler)]
    assert [h.baseFilename for h in files] == [str(tmp_path / "b.log")]


def test_unwritable_log_directory_is_a_config_error(
    make_cfg: Callable[..., Config], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Logger(make_cfg(errorlog=str(tmp_path / "missing" / "error.log")))


def test_capture_output(tmp_path: Path) -> None:
    """print() and writes to fd 2 end up in the error log file (needs its own process)."""
    path = tmp_path / "error.log"
    script = textwrap.dedent(
        f"""
        import os, sys
        from gunicorn.config import Config
        from gunicorn.glogging import Logger
        cfg = Config()
        cfg.set("errorlog", {str(path)!r})
        cfg.set("capture_output", True)
        log = Logger(cfg)
        log.info("from the logger")
        print("from print", flush=True)
        os.write(2, b"from fd 2\\n")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"" and proc.stderr == b""
    text = path.read_text()
    assert "[INFO] from the logger" in text
    assert "from print\n" in text and "from fd 2\n" in text


# -- syslog ---------------------------------------------------------------------------------


@pytest.fixture
def udp_server() -> Any:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    try:
        yield sock
    finally:
        sock.close()


def test_syslog_udp(make_cfg: Callable[..., Config], udp_server: socket.socket) -> None:
    port = udp_server.getsockname()[1]
    cfg = make_cfg(
        syslog=True,
        syslog_addr=f"udp://127.0.0.1:{port}",
        syslog_prefix="myapp",
        syslog_facility="local3",
        accesslog=None,
    )
    logger = Logger(cfg)
    logger.warning("disk %s", "full")
    data = udp_server.recv(4096).decode()
    priority = SYSLOG_FACILITIES["local3"] * 8 + 4  # warning = 4
    assert data.rstrip("\x00") == f"<{priority}>gunicorn.myapp.error: [{os.getpid()}] disk full"
    assert logger.access_log_enabled is True
    logger.access(FakeResponse(), FakeRequest(), make_environ(), timedelta(0))
    line = udp_server.recv(4096).decode()
    assert line.startswith(f"<{SYSLOG_FACILITIES['local3'] * 8 + 6}>gunicorn.myapp.access: ")
    assert '"GET /items/7?full=1 HTTP/1.1" 200 1234' in line


def test_syslog_without_access_redirect(
    make_cfg: Callable[..., Config], udp_server: socket.socket
) -> None:
    port = udp_server.getsockname()[1]
    cfg = make_cfg(
        syslog=True,
        syslog_addr=f"udp://127.0.0.1:{port}",
        disable_redirect_access_to_syslog=True,
    )
    logger = Logger(cfg)
    assert logger.access_log_enabled is False
    assert not any(
        isinstance(h, logging.handlers.SysLogHandler) for h in logger.access_log.handlers
    )


def test_syslog_prefix_defaults_to_proc_name(
    make_cfg: Callable[..., Config], udp_server: socket.socket
) -> None:
    port = udp_server.getsockname()[1]
    cfg = make_cfg(syslog=True, syslog_addr=f"udp://127.0.0.1:{port}", proc_name="shop:web")
    Logger(cfg).info("hi")
    assert b"gunicorn.shop.web.error: " in udp_server.recv(4096)


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("udp://localhost:514", (socket.SOCK_DGRAM, ("localhost", 514))),
        ("udp://10.0.0.1", (socket.SOCK_DGRAM, ("10.0.0.1", 514))),
        ("tcp://log.example:6514", (socket.SOCK_STREAM, ("log.example", 6514))),
        ("udp://[::1]:5140", (socket.SOCK_DGRAM, ("::1", 5140))),
        ("unix:///dev/log", (socket.SOCK_DGRAM, "/dev/log")),
        ("unix:///var/run/syslog#stream", (socket.SOCK_STREAM, "/var/run/syslog")),
        ("unix:///dev/log#dgram", (socket.SOCK_DGRAM, "/dev/log")),
    ],
)
def test_parse_syslog_address(addr: str, expected: tuple[int, Any]) -> None:
    assert parse_syslog_address(addr) == expected


@pytest.mark.parametrize("addr", ["http://x:1", "udp://h:port", "unix:///dev/log#raw"])
def test_bad_syslog_address(addr: str) -> None:
    with pytest.raises(ConfigError):
        parse_syslog_address(addr)


def test_syslog_unix_datagram(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    path = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    try:
        Logger(make_cfg(syslog=True, syslog_addr=f"unix://{path}", syslog_prefix="u")).error("x")
        assert b"gunicorn.u.error: [" in server.recv(4096)
    finally:
        server.close()


# -- logging configuration files ---------------------------------------------------------------


def test_logconfig_dict_merges_over_defaults(
    make_cfg: Callable[..., Config], tmp_path: Path
) -> None:
    path = tmp_path / "custom.log"
    logconfig = {
        "handlers": {
            "custom": {
                "class": "logging.FileHandler",
                "filename": str(path),
                "formatter": "generic",
            }
        },
        "loggers": {
            "gunicorn.error": {"level": "DEBUG", "handlers": ["custom"], "propagate": False}
        },
    }
    logger = Logger(make_cfg(logconfig_dict=logconfig))
    logger.debug("via dictConfig")
    flush(logger)
    line = path.read_text().strip()
    match = LINE.fullmatch(line)  # "generic" came from CONFIG_DEFAULTS
    assert match is not None and match.group(3, 4) == ("DEBUG", "via dictConfig")
    assert logger.access_log_enabled is True
    for handler in logger.error_log.handlers[:]:
        logger.error_log.removeHandler(handler)
        handler.close()


def test_logconfig_json(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    path = tmp_path / "json.log"
    conf = tmp_path / "logging.json"
    conf.write_text(
        json.dumps(
            {
                "version": 1,
                "formatters": {"bare": {"format": "J %(levelname)s %(message)s"}},
                "handlers": {
                    "f": {
                        "class": "logging.FileHandler",
                        "filename": str(path),
                        "formatter": "bare",
                    }
                },
                "loggers": {
                    "gunicorn.error": {"handlers": ["f"], "level": "INFO", "propagate": False}
                },
            }
        )
    )
    logger = Logger(make_cfg(logconfig_json=str(conf)))
    logger.info("hello")
    flush(logger)
    assert path.read_text() == "J INFO hello\n"
    for handler in logger.error_log.handlers[:]:
        logger.error_log.removeHandler(handler)
        handler.close()


def test_logconfig_ini(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    conf = tmp_path / "logging.ini"
    conf.write_text(
        textwrap.dedent(
            """
            [loggers]
            keys = root, gunicorn.error

            [handlers]
            keys = file

            [formatters]
            keys = plain

            [logger_root]
            level = WARNING
            handlers =

            [logger_gunicorn.error]
            level = INFO
            handlers = file
            propagate = 0
            qualname = gunicorn.error

            [handler_file]
            class = FileHandler
            args = ('%(here)s/ini.log', 'a')
            formatter = plain

            [formatter_plain]
            format = INI %(message)s
            """
        )
    )
    logger = Logger(make_cfg(logconfig=str(conf)))
    logger.info("from ini")
    flush(logger)
    assert (tmp_path / "ini.log").read_text() == "INI from ini\n"
    for handler in logger.error_log.handlers[:]:
        logger.error_log.removeHandler(handler)
        handler.close()


def test_invalid_logconfig_dict_is_one_line(make_cfg: Callable[..., Config]) -> None:
    with pytest.raises(ConfigError) as info:
        Logger(make_cfg(logconfig_dict={"handlers": {"h": {"class": "no.such.Handler"}}}))
    assert "\n" not in str(info.value) and "logconfig_dict" in str(info.value)


def test_logconfig_dict_entries_merge_by_name() -> None:
    merged = merge_logging_config(
        {"handlers": {"extra": {"class": "logging.NullHandler"}}, "root": {"level": "ERROR"}}
    )
    assert set(merged["handlers"]) == {"console", "error_console", "extra"}
    assert merged["root"] == {"level": "ERROR"}
    assert "extra" not in CONFIG_DEFAULTS["handlers"]


def test_config_defaults_shape() -> None:
    assert CONFIG_DEFAULTS["version"] == 1
    assert set(CONFIG_DEFAULTS["loggers"]) == {"gunicorn.error", "gunicorn.access"}
    assert CONFIG_DEFAULTS["formatters"]["generic"]["datefmt"] == "[%Y-%m-%d %H:%M:%S %z]"
