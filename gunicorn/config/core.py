"""The setting registry and the Config object built from it."""

from __future__ import annotations

import argparse
import copy
import importlib.util
import inspect
import ipaddress
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gunicorn import __version__, util
from gunicorn.config.validators import InvalidSetting, validate_bool, validate_string
from gunicorn.config.workers import REMOVED_WORKERS, SUPPORTED_WORKERS, WORKER_REQUIREMENTS
from gunicorn.errors import ConfigError, MissingWorkerPackage

# Attributes of a setting that hold plain functions and must not become bound methods.
_FUNCTION_FIELDS = ("validator", "type", "default", "default_factory")
_FIELDS = frozenset(
    {"name", "section", "cli", "meta", "action", "default_doc", "short", "desc", "nargs", "const"}
    | set(_FUNCTION_FIELDS)
)


class Setting:
    """One configuration setting: its name, docs section, CLI flags, validator and default.

    Settings are declared once, as instances (``Setting(name=..., ...)``) in
    ``gunicorn.config.settings`` or as subclasses with class attributes (the upstream style,
    registered automatically). Config objects hold per-instance copies with a ``value``.
    """

    name: str = ""
    section: str = ""
    cli: Sequence[str] = ()
    meta: str | None = None
    validator: Callable[[Any], Any] = staticmethod(validate_string)
    type: Callable[[str], Any] | None = None
    action: str | None = None
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    default_doc: str | None = None
    short: str = ""
    desc: str = ""
    nargs: str | int | None = None
    const: Any = None

    def __init__(self, **fields: Any) -> None:
        for key, val in fields.items():
            if key not in _FIELDS:
                raise TypeError(f"unknown setting field {key!r}")
            setattr(self, key, val)
        if self.default_factory is not None and "default" not in fields:
            self.default = self.default_factory()
        self.order: int = -1  # position in KNOWN_SETTINGS, set by register_settings()
        self.value: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for field in _FUNCTION_FIELDS:
            attr = cls.__dict__.get(field)
            if inspect.isfunction(attr):
                setattr(cls, field, staticmethod(attr))
        if cls.__dict__.get("name"):
            register_settings([cls()])

    def instantiate(self) -> Setting:
        """A fresh copy holding the (re-computed) default as its value."""
        setting = copy.copy(self)
        if self.default_factory is not None:
            setting.default = self.default_factory()
        setting.value = None
        if setting.default is not None:
            setting.set(copy.deepcopy(setting.default))
        return setting

    def copy(self) -> Setting:
        return copy.copy(self)

    def get(self) -> Any:
        return self.value

    def set(self, val: Any) -> None:
        """Validate ``val`` and store the result; raise InvalidSetting on a bad value."""
        try:
            self.value = self.validator(val)
        except InvalidSetting:
            raise
        except (ValueError, TypeError, ConfigError) as exc:
            raise InvalidSetting(f"Invalid value for {self.name}: {val!r}: {exc}") from exc

    @property
    def help_text(self) -> str:
        return f"{self.short} [{self.default}]".replace("%", "%%")

    def add_option(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        """Declare this setting's flags on an argparse parser (no-op without flags)."""
        if not self.cli:
            return
        kwargs: dict[str, Any] = {
            "dest": self.name,
            "action": self.action or "store",
            "default": None,
            "help": self.help_text,
        }
        if kwargs["action"] == "store":
            kwargs["type"] = self.type or str
        if self.meta is not None:
            kwargs["metavar"] = self.meta
        if self.nargs is not None:
            kwargs["nargs"] = self.nargs
        if self.const is not None:
            kwargs["const"] = self.const
        parser.add_argument(*self.cli, **kwargs)

    def __lt__(self, other: Setting) -> bool:
        return self.order < other.order

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}={self.value!r}>"


KNOWN_SETTINGS: list[Setting] = []


def register_settings(settings: Iterable[Setting]) -> None:
    """Add settings to the registry; a name may be declared only once."""
    known = {s.name for s in KNOWN_SETTINGS}
    for setting in settings:
        if not setting.name:
            raise ValueError(f"setting without a name: {setting!r}")
        if setting.name in known:
            raise ValueError(f"setting {setting.name!r} is declared twice")
        known.add(setting.name)
        setting.order = len(KNOWN_SETTINGS)
        KNOWN_SETTINGS.append(setting)


def make_settings(ignore: Iterable[str] | None = None) -> dict[str, Setting]:
    """A fresh ``{name: Setting}`` map with every known setting at its default."""
    skip = set(ignore or ())
    return {s.name: s.instantiate() for s in KNOWN_SETTINGS if s.name not in skip}


def get_default_config_file() -> str | None:
    """``./gunicorn.conf.py`` (absolute) if it exists, else None."""
    path = os.path.join(os.path.abspath(os.getcwd()), "gunicorn.conf.py")
    return path if os.path.exists(path) else None


def _module_available(name: str) -> bool:
    if sys.modules.get(name) is not None:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def flag_setting(section: str, name: str, cli: tuple[str, ...], short: str, desc: str) -> Setting:
    """A boolean setting switched on by a bare command-line flag (default False)."""
    return Setting(
        name=name,
        section=section,
        cli=cli,
        action="store_true",
        validator=validate_bool,
        default=False,
        short=short,
        desc=desc,
    )


class Config:
    """All settings of one server: ``cfg.workers`` reads a value, ``cfg.set(name, value)``
    validates and stores one."""

    def __init__(self, usage: str | None = None, prog: str | None = None) -> None:
        self.settings: dict[str, Setting] = make_settings()
        self.usage = usage
        self.prog = prog or os.path.basename(sys.argv[0])
        self.env_orig = os.environ.copy()
        #: Warnings found while loading (e.g. a misspelt setting in the config file), logged
        #: once the logger is set up.
        self.warnings: list[str] = []
        self._network_cache: dict[str, tuple[tuple[str, ...], list[Any]]] = {}

    def __str__(self) -> str:
        width = max(len(name) for name in self.settings)
        lines = []
        for name in sorted(self.settings):
            value = self.settings[name].value
            if callable(value):
                value = f"<{getattr(value, '__qualname__', type(value).__qualname__)}()>"
            lines.append(f"{name:{width}} = {value}")
        return "\n".join(lines)

    def __getattr__(self, name: str) -> Any:
        settings = self.__dict__.get("settings")
        if settings is None or name not in settings:
            raise AttributeError(f"No configuration setting for: {name}")
        return settings[name].get()

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "settings" and name in self.__dict__.get("settings", {}):
            raise AttributeError(f"Invalid access: use cfg.set({name!r}, value)")
        super().__setattr__(name, value)

    def set(self, name: str, value: Any) -> None:
        """Validate and store a setting's value."""
        if name not in self.settings:
            raise AttributeError(f"No configuration setting for: {name}")
        self.settings[name].set(value)

    def get_cmd_args_from_env(self) -> list[str]:
        """``GUNICORN_CMD_ARGS`` split like a shell would."""
        raw = self.env_orig.get("GUNICORN_CMD_ARGS")
        return shlex.split(raw) if raw else []

    def parser(self) -> argparse.ArgumentParser:
        """An argparse parser for every setting with CLI flags, grouped by docs section.

        Every option defaults to None, so "not given" can be told apart from a value.
        """
        parser = argparse.ArgumentParser(usage=self.usage, prog=self.prog)
        parser.add_argument(
            "-v",
            "--version",
            action="version",
            default=argparse.SUPPRESS,
            version=f"%(prog)s (version {__version__})",
            help="show program's version number and exit",
        )
        parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
        groups: dict[str, argparse._ArgumentGroup] = {}
        for setting in sorted(self.settings.values()):
            if not setting.cli:
                continue
            group = groups.get(setting.section)
            if group is None:
                group = groups[setting.section] = parser.add_argument_group(setting.section)
            setting.add_option(group)
        return parser

    # -- cross-setting checks -------------------------------------------------------------

    def validate(self) -> None:
        """Check combinations of settings; raise ConfigError on a fatal one."""
        self._validate_worker_class()
        self._validate_http2()

    def _validate_worker_class(self) -> None:
        uri = self.settings["worker_class"].get()
        if not isinstance(uri, str) or uri.startswith("egg:"):
            return
        short = uri.lstrip("#")
        if "." not in short and ":" not in short:
            if short not in SUPPORTED_WORKERS:
                removed = REMOVED_WORKERS.get(short)
                raise ConfigError(
                    f"Unknown worker class {uri!r}"
                    + (f" ({removed})" if removed else "")
                    + "; valid names are "
                    f"{', '.join(sorted(SUPPORTED_WORKERS))} "
                    "(or a dotted path such as mypackage.workers.MyWorker)"
                )
        else:
            by_path = {path: name for name, path in SUPPORTED_WORKERS.items()}
            if uri not in by_path:
                module = uri.replace(":", ".").rpartition(".")[0]
                if not _module_available(module):
                    raise ConfigError(f"Worker class {uri!r} not found: no module {module!r}")
                return
            short = by_path[uri]
        requirement = WORKER_REQUIREMENTS.get(short)
        if requirement and not _module_available(requirement[0]):
            package, extra = requirement
            raise MissingWorkerPackage(
                f"Worker class {uri!r} needs the {package} package: pip install 'gunicorn[{extra}]'"
            )

    def _validate_http2(self) -> None:
        protocols = self.settings["http_protocols"].get() or []
        if "h2" not in protocols:
            return
        if not _module_available("h2"):
            raise ConfigError(
                "HTTP/2 (h2 in http_protocols) needs the h2 package: pip install 'gunicorn[http2]'"
            )
        if not self.is_ssl and self.settings["http2_cleartext"].get() == "off":
            sys.stderr.write(
                "WARNING: h2 is listed in http_protocols but TLS is not configured and "
                "http2_cleartext is off: clients will only get HTTP/1.1\n"
            )

    # -- derived values -------------------------------------------------------------------

    @property
    def worker_class_str(self) -> str:
        uri = self.settings["worker_class"].get()
        if isinstance(uri, str):
            if self._sync_becomes_gthread(uri):
                return "gthread"
            return uri
        return str(uri.__name__)

    def _sync_becomes_gthread(self, uri: str) -> bool:
        is_sync = uri in ("sync", "#sync") or uri.endswith("SyncWorker")
        return is_sync and self.settings["threads"].get() > 1

    @property
    def worker_class(self) -> type:
        """The worker class, imported now (``setup()`` is called if it has one)."""
        return self.load_worker_class()

    def load_worker_class(self, setup: bool = True) -> type:
        """Import the worker class; RuntimeError with a one-line reason when it cannot be.

        ``setup=False`` skips the class's ``setup()`` (e.g. gevent's monkey-patching) for a
        check that only needs to know the class can be loaded.
        """
        uri = self.settings["worker_class"].get()
        if isinstance(uri, str) and self._sync_becomes_gthread(uri):
            uri = SUPPORTED_WORKERS["gthread"]
        worker_class = util.load_class(uri)
        if setup and hasattr(worker_class, "setup"):
            worker_class.setup()
        return worker_class

    @property
    def address(self) -> list[util.Address]:
        """Parsed binds: ``(host, port)``, unix path ``str`` or fd ``int``."""
        return [util.parse_address(bind) for bind in self.settings["bind"].get()]

    @property
    def uid(self) -> int:
        return int(self.settings["user"].get())

    @property
    def gid(self) -> int:
        return int(self.settings["group"].get())

    @property
    def proc_name(self) -> str:
        name = self.settings["proc_name"].get()
        return str(name if name is not None else self.settings["default_proc_name"].get())

    @property
    def logger_class(self) -> type:
        """The logger class (switches to the statsd logger when statsd_host is set)."""
        default = "gunicorn.glogging.Logger"
        uri = self.settings["logger_class"].get()
        if uri == "simple":
            uri = default
        if uri == default and self.settings["statsd_host"].get() is not None:
            uri = "gunicorn.instrument.statsd.Statsd"
        logger_class = util.load_class(uri, default=default, section="gunicorn.loggers")
        if hasattr(logger_class, "install"):
            logger_class.install()
        return logger_class

    @property
    def is_ssl(self) -> bool:
        return bool(self.settings["certfile"].get() or self.settings["keyfile"].get())

    @property
    def ssl_options(self) -> dict[str, Any]:
        """Values of the SSL section keyed by setting name."""
        return {name: s.get() for name, s in self.settings.items() if s.section == "SSL"}

    @property
    def env(self) -> dict[str, str]:
        """``raw_env`` as a dict."""
        env: dict[str, str] = {}
        for item in self.settings["raw_env"].get() or ():
            key, sep, value = util.bytes_to_str(item).partition("=")
            if not sep:
                raise RuntimeError(f"environment setting {item!r} invalid")
            env[key] = value
        return env

    @property
    def sendfile(self) -> bool:
        value = self.settings["sendfile"].get()
        if value is not None:
            return bool(value)
        if "SENDFILE" in os.environ:
            return os.environ["SENDFILE"].strip().lower() in ("y", "1", "yes", "true")
        return True

    @property
    def reuse_port(self) -> bool:
        return bool(self.settings["reuse_port"].get())

    @property
    def paste_global_conf(self) -> dict[str, str] | None:
        """``raw_paste_global_conf`` as a dict (``\\=`` escapes an ``=`` in keys/values)."""
        raw = self.settings["raw_paste_global_conf"].get()
        if raw is None:
            return None
        conf: dict[str, str] = {}
        for item in raw:
            parts = re.split(r"(?<!\\)=", util.bytes_to_str(item), maxsplit=1)
            if len(parts) != 2:
                raise RuntimeError(f"paste global setting {item!r} invalid")
            key, value = (p.replace("\\=", "=") for p in parts)
            conf[key] = value
        return conf

    def _networks(self, name: str) -> list[Any]:
        addrs = tuple(self.settings[name].get() or ())
        cached = self._network_cache.get(name)
        if cached is None or cached[0] != addrs:
            nets = [ipaddress.ip_network(a) for a in addrs if a != "*"]
            cached = self._network_cache[name] = (addrs, nets)
        return cached[1]

    def forwarded_allow_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """forwarded_allow_ips as network objects (``*`` left out; check the list for it)."""
        return self._networks("forwarded_allow_ips")

    def proxy_allow_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """proxy_allow_ips as network objects (``*`` left out; check the list for it)."""
        return self._networks("proxy_allow_ips")
