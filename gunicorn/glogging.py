"""The error log and the access log: handlers, formats, syslog, logging config files, reopen."""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import logging
import logging.config
import logging.handlers
import os
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from gunicorn.errors import ConfigError

ERROR_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "[%Y-%m-%d %H:%M:%S %z]"
ACCESS_TIME_FORMAT = "[%d/%b/%Y:%H:%M:%S %z]"
JSON_PRESET = "json"

SYSLOG_FACILITIES: dict[str, int] = {
    "auth": 4,
    "authpriv": 10,
    "cron": 9,
    "daemon": 3,
    "ftp": 11,
    "kern": 0,
    "lpr": 6,
    "mail": 2,
    "news": 7,
    "security": 4,  # alias of auth
    "syslog": 5,
    "user": 1,
    "uucp": 8,
    "local0": 16,
    "local1": 17,
    "local2": 18,
    "local3": 19,
    "local4": 20,
    "local5": 21,
    "local6": 22,
    "local7": 23,
}

CONFIG_DEFAULTS: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {
            "level": "INFO",
            "handlers": ["error_console"],
            "propagate": True,
            "qualname": "gunicorn.error",
        },
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["console"],
            "propagate": True,
            "qualname": "gunicorn.access",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stdout",
        },
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stderr",
        },
    },
    "formatters": {
        "generic": {
            "format": ERROR_FORMAT,
            "datefmt": DATE_FORMAT,
            "class": "logging.Formatter",
        },
    },
}

# Characters that could forge or split a log line: C0 controls, DEL, C1 controls (0x9b is a
# one-byte CSI on some terminals), the backslash (so escapes stay unambiguous) and '"'.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f\\"]')


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char == '"':
        return '\\"'
    if char == "\\":
        return "\\\\"
    return f"\\x{ord(char):02x}"


def escape_atom(value: str) -> str:
    """Escape quotes, backslashes and control characters so a value stays inside its field."""
    if _UNSAFE.search(value) is None:
        return value
    return _UNSAFE.sub(_escape_char, value)


class SafeAtoms(dict):  # type: ignore[type-arg]
    """Access-log atoms whose text values are escaped when read; unknown atoms read as ``-``.

    Header (``{name}i``/``{name}o``) and environ (``{name}e``) atoms are looked up by their
    lowercase name.
    """

    def __getitem__(self, key: str) -> Any:
        if key.startswith("{"):
            key = key.lower()
        try:
            value = super().__getitem__(key)
        except KeyError:
            return "-"
        if isinstance(value, str):
            return escape_atom(value)
        if key.endswith("e") and key.startswith("{") and value is not None:
            return escape_atom(str(value))
        return value


_MERGED_SECTIONS = ("loggers", "handlers", "formatters", "filters")


def merge_logging_config(user: Mapping[str, Any]) -> dict[str, Any]:
    """``CONFIG_DEFAULTS`` overlaid with a user dictConfig: the named entries of ``loggers``,
    ``handlers``, ``formatters`` and ``filters`` are merged by name, other keys replaced."""
    config = copy.deepcopy(CONFIG_DEFAULTS)
    for key, value in user.items():
        if key in _MERGED_SECTIONS and isinstance(value, Mapping):
            section = config.setdefault(key, {})
            section.update(copy.deepcopy(dict(value)))
        else:
            config[key] = copy.deepcopy(value)
    return config


def _basic_auth_user(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return None
    user, sep, _ = decoded.partition(":")
    return user if sep else None


def _status_code(resp: Any) -> int | str:
    code = getattr(resp, "status_code", None)
    if isinstance(code, int):
        return code
    status = getattr(resp, "status", None)
    if isinstance(status, str):
        head = status.split(None, 1)[0] if status.strip() else ""
        return int(head) if head.isdigit() else head
    return status if status is not None else "-"


def _header_atoms(atoms: dict[str, Any], headers: Iterable[tuple[str, str]], suffix: str) -> None:
    for name, value in headers or ():
        key = f"{{{name.lower()}}}{suffix}"
        previous = atoms.get(key)
        atoms[key] = value if previous is None else f"{previous},{value}"


def _check_writable(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigError(f"log file directory {directory!r} does not exist")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ConfigError(f"log file {path!r} is not writable")
    if not os.path.exists(path) and not os.access(directory, os.W_OK):
        raise ConfigError(f"log file directory {directory!r} is not writable")


def parse_syslog_address(addr: str) -> tuple[socket.SocketKind, str | tuple[str, int]]:
    """Return ``(socktype, address)`` for ``unix://PATH[#dgram|#stream]``, ``udp://H:P``,
    ``tcp://H:P`` (port 514 when left out)."""
    if addr.startswith("unix://"):
        path, _, kind = addr[len("unix://") :].partition("#")
        if kind not in ("", "dgram", "stream"):
            raise ConfigError(f"Invalid syslog socket type {kind!r} in {addr!r}")
        socktype = socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM
        return socktype, path
    if addr.startswith("tcp://"):
        socktype, rest = socket.SOCK_STREAM, addr[len("tcp://") :]
    elif addr.startswith("udp://"):
        socktype, rest = socket.SOCK_DGRAM, addr[len("udp://") :]
    else:
        raise ConfigError(f"Invalid syslog address {addr!r}: use unix://, udp:// or tcp://")
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    elif rest.count(":") == 1:
        host, _, port = rest.partition(":")
    else:
        host, port = rest, ""
    if port and not port.isdigit():
        raise ConfigError(f"Invalid port in syslog address {addr!r}")
    return socktype, (host or "localhost", int(port) if port else 514)


class _ReportsWriteFailures:
    """For a log handler whose destination can fail (a full disk, ``/dev/full``, a closed
    pipe): the first failed write is reported once, in one line, and later failures are
    dropped quietly (never a traceback per record) until a line is written again, which
    is reported too. Other errors (a bad format string) keep logging's usual report."""

    #: Called with the one-line report; set by the Logger that made the handler.
    report: Any = None
    target = "log"
    failing = False
    _failed_now = False

    def emit(self, record: logging.LogRecord) -> None:
        self._failed_now = False
        super().emit(record)  # type: ignore[misc]
        if self.failing and not self._failed_now:
            self.failing = False
            self._report(f"Writing to the {self.target} works again")

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)  # type: ignore[misc]
            return
        self._failed_now = True
        if not self.failing:
            self.failing = True
            self._report(
                f"Cannot write to the {self.target} ({exc.strerror or exc}); its lines are "
                "dropped until it can be written again"
            )

    def _report(self, line: str) -> None:
        try:
            if self.report is not None:
                self.report(line)
            else:
                sys.stderr.write(f"[{os.getpid()}] [WARNING] {line}\n")
                sys.stderr.flush()
        except Exception:  # the report's own destination may be failing too
            pass


class _FileHandler(_ReportsWriteFailures, logging.FileHandler):
    pass


class _StreamHandler(_ReportsWriteFailures, logging.StreamHandler):  # type: ignore[type-arg]
    pass


class Logger:
    """gunicorn's logger: ``error_log`` (``gunicorn.error``) and ``access_log``
    (``gunicorn.access``) configured from the settings."""

    LOG_LEVELS: dict[str, int] = {
        "critical": logging.CRITICAL,
        "error": logging.ERROR,
        "warning": logging.WARNING,
        "info": logging.INFO,
        "debug": logging.DEBUG,
    }
    loglevel = logging.INFO

    error_fmt = ERROR_FORMAT
    datefmt = DATE_FORMAT
    access_fmt = "%(message)s"
    syslog_fmt = "[%(process)d] %(message)s"

    atoms_wrapper_class: type[SafeAtoms] = SafeAtoms

    def __init__(self, cfg: Any) -> None:
        self.error_log = logging.getLogger("gunicorn.error")
        self.error_log.propagate = False
        self.access_log = logging.getLogger("gunicorn.access")
        self.access_log.propagate = False
        self.logfile: Any = None
        self.lock = threading.Lock()
        self.access_log_enabled = False
        self._external_config = False
        self._now_cache: tuple[int, str] = (-1, "")
        self.cfg = cfg
        self.setup(cfg)

    # -- configuration ---------------------------------------------------------------------

    def setup(self, cfg: Any) -> None:
        """Configure both loggers from ``cfg``; safe to call again (HUP) with a new config."""
        self.cfg = cfg
        self._drop_handlers()
        self.loglevel = self.LOG_LEVELS.get(str(cfg.loglevel).lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        self.access_log.setLevel(logging.INFO)

        if cfg.capture_output and cfg.errorlog != "-":
            self._capture_output(cfg.errorlog)

        self._set_handler(
            self.error_log, cfg.errorlog, logging.Formatter(self.error_fmt, self.datefmt)
        )
        if cfg.accesslog is not None:
            self._set_handler(
                self.access_log, cfg.accesslog, logging.Formatter(self.access_fmt), sys.stdout
            )

        if cfg.syslog:
            self._set_syslog_handler(self.error_log, cfg, self.syslog_fmt, "error")
            if not cfg.disable_redirect_access_to_syslog:
                self._set_syslog_handler(self.access_log, cfg, self.syslog_fmt, "access")

        self._apply_logging_config(cfg)
        self.access_log_enabled = bool(
            cfg.accesslog
            or cfg.logconfig
            or cfg.logconfig_dict
            or cfg.logconfig_json
            or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
        )

    def _apply_logging_config(self, cfg: Any) -> None:
        self._external_config = bool(cfg.logconfig_dict or cfg.logconfig_json or cfg.logconfig)
        if cfg.logconfig_dict:
            self._dict_config(merge_logging_config(cfg.logconfig_dict), "logconfig_dict")
        elif cfg.logconfig_json:
            try:
                with open(cfg.logconfig_json, encoding="utf-8") as fh:
                    loaded = json.load(fh)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"Error: could not read log config {cfg.logconfig_json!r}: {exc}"
                ) from exc
            if not isinstance(loaded, dict):
                raise ConfigError(f"log config {cfg.logconfig_json!r} is not a JSON object")
            self._dict_config(merge_logging_config(loaded), "logconfig_json")
        elif cfg.logconfig:
            path = cfg.logconfig
            if not os.path.exists(path):
                raise ConfigError(f"log config {path!r} not found")
            defaults = {"__file__": path, "here": os.path.dirname(os.path.abspath(path))}
            try:
                logging.config.fileConfig(path, defaults=defaults, disable_existing_loggers=False)
            except Exception as exc:
                raise ConfigError(f"invalid log config {path!r}: {exc}") from exc

    @staticmethod
    def _dict_config(config: dict[str, Any], source: str) -> None:
        try:
            logging.config.dictConfig(config)
        except (ValueError, TypeError, AttributeError, ImportError) as exc:
            raise ConfigError(f"invalid {source}: {' '.join(str(exc).split())}") from exc

    def _drop_handlers(self) -> None:
        """Remove the handlers a gunicorn Logger added (from any instance); keep the rest."""
        clear_all = self._external_config  # handlers a previous logconfig installed go too
        self._external_config = False
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                if clear_all or getattr(handler, "_gunicorn", False):
                    log.removeHandler(handler)
                    handler.close()  # a plain StreamHandler leaves its stream open

    def _capture_output(self, path: str) -> None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        if self.logfile is not None:
            self.logfile.close()
        self.logfile = open(path, "a+", buffering=1)  # noqa: SIM115 - kept open for dup2
        os.dup2(self.logfile.fileno(), sys.stdout.fileno())
        os.dup2(self.logfile.fileno(), sys.stderr.fileno())

    @staticmethod
    def _add_handler(log: logging.Logger, handler: logging.Handler) -> None:
        handler._gunicorn = True  # type: ignore[attr-defined]
        log.addHandler(handler)

    def _set_handler(
        self,
        log: logging.Logger,
        output: str | None,
        fmt: logging.Formatter,
        stream: Any = None,
    ) -> None:
        if output is None:
            return
        handler: _FileHandler | _StreamHandler
        if output == "-":
            handler = _StreamHandler(stream)
        else:
            _check_writable(output)
            handler = _FileHandler(output)
            self._chown_to_worker_user(output)
        if log is self.access_log:
            handler.target = f"access log {output!r}"
            handler.report = self.error_log.warning
        else:
            handler.target = f"error log {output!r}"
        handler.setFormatter(fmt)
        self._add_handler(log, handler)

    def _chown_to_worker_user(self, path: str) -> None:
        try:
            uid, gid = self.cfg.uid, self.cfg.gid
        except AttributeError:
            return
        if (uid, gid) == (os.geteuid(), os.getegid()):
            return
        with contextlib.suppress(OSError):  # not root: the workers run as us anyway
            os.chown(path, uid, gid)

    def _set_syslog_handler(self, log: logging.Logger, cfg: Any, fmt: str, name: str) -> None:
        prefix = cfg.syslog_prefix or str(cfg.proc_name).replace(":", ".")
        formatter = logging.Formatter(f"gunicorn.{prefix}.{name}: {fmt}")
        facility_name = str(cfg.syslog_facility).lower()
        facility = SYSLOG_FACILITIES.get(facility_name, SYSLOG_FACILITIES["user"])
        socktype, address = parse_syslog_address(cfg.syslog_addr)
        try:
            handler = logging.handlers.SysLogHandler(
                address=address, facility=facility, socktype=socktype
            )
        except OSError as exc:
            raise ConfigError(
                f"Error: cannot connect to syslog at {cfg.syslog_addr!r}: {exc}"
            ) from exc
        handler.setFormatter(formatter)
        self._add_handler(log, handler)

    # -- error log ---------------------------------------------------------------------------

    def critical(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.critical(msg, *args, **kwargs)

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.error(msg, *args, **kwargs)

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.warning(msg, *args, **kwargs)

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.info(msg, *args, **kwargs)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.debug(msg, *args, **kwargs)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.error_log.exception(msg, *args, **kwargs)

    def log(self, lvl: int | str, msg: object, *args: Any, **kwargs: Any) -> None:
        if isinstance(lvl, str):
            lvl = self.LOG_LEVELS.get(lvl.lower(), logging.INFO)
        self.error_log.log(lvl, msg, *args, **kwargs)

    # -- access log --------------------------------------------------------------------------

    def now(self) -> str:
        """The current local time in access-log (``%(t)s``) format."""
        second = int(time.time())
        cached = self._now_cache
        if cached[0] != second:
            cached = self._now_cache = (second, time.strftime(ACCESS_TIME_FORMAT))
        return cached[1]

    def atoms(
        self, resp: Any, req: Any, environ: Mapping[str, Any], request_time: timedelta
    ) -> dict[str, Any]:
        """The raw (unescaped) access-log atoms for one request."""
        status = _status_code(resp)
        sent = getattr(resp, "sent", None)
        method = environ.get("REQUEST_METHOD", "-")
        protocol = environ.get("SERVER_PROTOCOL", "-")
        uri = environ.get("RAW_URI")
        if uri is None:
            path = environ.get("PATH_INFO", "")
            query = environ.get("QUERY_STRING", "")
            uri = f"{path}?{query}" if query else path
        micros = request_time // timedelta(microseconds=1)
        user = _basic_auth_user(environ.get("HTTP_AUTHORIZATION"))
        atoms: dict[str, Any] = {
            "h": environ.get("REMOTE_ADDR") or "-",
            "l": "-",
            "u": user if user is not None else "-",
            "t": self.now(),
            "r": f"{method} {uri} {protocol}",
            "m": method,
            "U": environ.get("PATH_INFO", "-"),
            "q": environ.get("QUERY_STRING", "-"),
            "H": protocol,
            "s": status,
            "B": sent,
            "b": str(sent) if sent is not None else "-",
            "f": environ.get("HTTP_REFERER") or "-",
            "a": environ.get("HTTP_USER_AGENT") or "-",
            "T": micros // 1_000_000,
            "M": micros // 1000,
            "D": micros,
            "L": f"{micros // 1_000_000}.{micros % 1_000_000:06d}",
            "p": f"<{os.getpid()}>",
        }
        _header_atoms(atoms, getattr(req, "headers", None) or (), "i")
        _header_atoms(atoms, getattr(resp, "headers", None) or (), "o")
        for key, value in environ.items():
            atoms[f"{{{key.lower()}}}e"] = value
        return atoms

    def json_fields(self, atoms: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of one ``--access-logformat json`` line, built from raw atoms."""

        def text(key: str) -> str | None:
            value = atoms.get(key)
            return None if value in (None, "-") else str(value)

        return {
            "time": str(atoms.get("t", "")).strip("[]"),
            "remote_addr": text("h"),
            "user": text("u"),
            "request": text("r"),
            "method": text("m"),
            "path": text("U"),
            "query": text("q"),
            "protocol": text("H"),
            "status": atoms.get("s"),
            "bytes": atoms.get("B"),
            "referer": text("f"),
            "user_agent": text("a"),
            "request_time": float(atoms.get("L", 0)),
            "request_time_us": atoms.get("D"),
            "pid": os.getpid(),
        }

    def access(
        self, resp: Any, req: Any, environ: Mapping[str, Any], request_time: timedelta
    ) -> None:
        """Write one access-log line for a finished request."""
        if not self.access_log_enabled:
            return
        try:
            atoms = self.atoms(resp, req, environ, request_time)
            if self.cfg.access_log_format == JSON_PRESET:
                self.access_log.info("%s", json.dumps(self.json_fields(atoms)))
            else:
                self.access_log.info(self.cfg.access_log_format, self.atoms_wrapper_class(atoms))
        except Exception:
            self.error(traceback.format_exc())

    # -- files -------------------------------------------------------------------------------

    def reopen_files(self) -> None:
        """Reopen log files (USR1, after logrotate moved them)."""
        if self.cfg.capture_output and self.cfg.errorlog != "-":
            with self.lock:
                self._capture_output(self.cfg.errorlog)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if isinstance(handler, logging.FileHandler):
                    handler.acquire()
                    try:
                        old, handler.stream = handler.stream, handler._open()
                        if old is not None:
                            old.close()
                    finally:
                        handler.release()

    def close_on_exec(self) -> None:
        """Keep log files from leaking into exec'd programs."""
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if isinstance(handler, logging.FileHandler) and handler.stream:
                    os.set_inheritable(handler.stream.fileno(), False)
