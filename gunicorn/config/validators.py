"""Validators: each takes a raw value (from the CLI, the environment or a config file) and
returns the normalised value or raises ValueError / TypeError / ConfigError."""

from __future__ import annotations

import glob
import grp
import importlib
import inspect
import ipaddress
import os
import pwd
import re
import sys
from collections.abc import Callable
from typing import Any

from gunicorn import util
from gunicorn.errors import ConfigError

Validator = Callable[[Any], Any]


class InvalidSetting(ConfigError, ValueError, TypeError):
    """A value was refused by a setting's validator.

    It is a ConfigError for the command line, and a ValueError/TypeError for code that set
    values programmatically and expects the plain exception types.
    """


def _text(val: Any) -> str:
    if isinstance(val, bytes):
        return util.bytes_to_str(val)
    if not isinstance(val, str):
        raise TypeError(f"expected a string, got {type(val).__name__} {val!r}")
    return val


def validate_bool(val: Any) -> bool | None:
    """Booleans, or the strings "true"/"false" (any case)."""
    if val is None or isinstance(val, bool):
        return val
    if not isinstance(val, str):
        raise TypeError(f"expected a boolean, got {val!r}")
    word = val.strip().lower()
    if word == "true":
        return True
    if word == "false":
        return False
    raise ValueError(f"invalid boolean: {val!r} (use true or false)")


def validate_dict(val: Any) -> dict[Any, Any]:
    """A dictionary, kept as given."""
    if not isinstance(val, dict):
        raise TypeError(f"expected a dictionary, got {val!r}")
    return val


def parse_int(text: str) -> int:
    """Parse an integer literal in any base Python accepts (``42``, ``0x10``, ``0o22``)."""
    return int(text.strip(), 0)


parse_int.__name__ = "int"  # argparse names the type in its error: "invalid int value"


def validate_pos_int(val: Any) -> int:
    """A non-negative integer; strings use Python literal syntax (``0x10`` works)."""
    if isinstance(val, bool):
        return int(val)
    if isinstance(val, int):
        number = val
    else:
        text = _text(val)
        try:
            number = int(text.strip(), 0)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if number < 0:
        raise ValueError(f"value must be positive: {number}")
    return number


def parse_octal(text: str) -> int:
    """Parse a file mode: a leading ``0`` means octal (``0022``, ``0600``), else ``int(x, 0)``."""
    text = text.strip()
    if re.fullmatch(r"0[0-7]+", text):
        return int(text, 8)
    return int(text, 0)


parse_octal.__name__ = "int"


def validate_octal(val: Any) -> int:
    """A non-negative integer where a string with a leading 0 is read as octal."""
    if isinstance(val, (bytes, str)):
        text = _text(val)
        try:
            val = parse_octal(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer or an octal mode") from None
    return validate_pos_int(val)


def validate_int_range(low: int, high: int | None = None) -> Validator:
    """An integer between ``low`` and ``high`` (inclusive; no upper bound when None)."""

    def _validate(val: Any) -> int:
        number = validate_pos_int(val)
        if number < low or (high is not None and number > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"value must be {bounds}: {number}")
        return number

    return _validate


def validate_string(val: Any) -> str | None:
    """A string, stripped of surrounding whitespace; None stays None."""
    if val is None:
        return None
    return _text(val).strip()


def validate_file_exists(val: Any) -> str | None:
    """The path of an existing file."""
    path = validate_string(val)
    if path is None:
        return None
    if not os.path.exists(path):
        raise ValueError(f"file {path!r} does not exist")
    return path


def validate_list_string(val: Any) -> list[str]:
    """A list of strings; a single string becomes a one-item list."""
    if not val:
        return []
    if isinstance(val, (str, bytes)):
        val = [val]
    if not isinstance(val, (list, tuple)):
        raise TypeError(f"expected a list of strings, got {val!r}")
    return [v for v in (validate_string(item) for item in val) if v is not None]


def validate_list_of_existing_files(val: Any) -> list[str]:
    """A list of existing files; entries with glob characters (``*?[``) are patterns and may
    match nothing yet."""
    files = validate_list_string(val)
    for name in files:
        if not glob.has_magic(name) and not os.path.exists(name):
            raise ValueError(f"file {name!r} does not exist")
    return files


def validate_string_to_list(val: Any) -> list[str]:
    """A comma separated string (or a list) split into stripped, non-empty items."""
    if isinstance(val, (list, tuple)):
        items = [validate_string(v) or "" for v in val]
    else:
        text = validate_string(val)
        if not text:
            return []
        items = text.split(",")
    return [item.strip() for item in items if item.strip()]


def validate_string_to_addr_list(val: Any) -> list[str]:
    """Comma separated IP addresses or networks (CIDR), or ``*``; kept as strings.

    Networks are checked strictly: host bits set (``10.0.0.1/8``) is an error.
    """
    addrs = validate_string_to_list(val)
    for addr in addrs:
        if addr == "*":
            continue
        try:
            ipaddress.ip_network(addr, strict=True)
        except ValueError as exc:
            raise ValueError(f"invalid address or network {addr!r}: {exc}") from None
    return addrs


def validate_class(val: Any) -> type | str | None:
    """A class object, or a string naming one (resolved later)."""
    if inspect.isfunction(val) or inspect.ismethod(val):
        val = val()
    if inspect.isclass(val):
        return val
    return validate_string(val)


def _accepts(func: Callable[..., Any], nargs: int) -> bool:
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return True  # builtins without a signature: trust the caller
    try:
        sig.bind(*([None] * nargs))
    except TypeError:
        return False
    return True


def get_arity(func: Callable[..., Any]) -> int:
    """Number of positional parameters of ``func`` (bound ``self`` excluded)."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in inspect.signature(func).parameters.values() if p.kind in kinds)


def _import_object(path: str) -> Any:
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise TypeError(f"{path!r} is not an import path (expected module.object or module:object)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TypeError(f"cannot import {module_name!r}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TypeError(f"cannot load {attr!r} from {module_name!r}") from None
    return obj


def _resolve_callable(val: Any) -> Callable[..., Any]:
    if isinstance(val, str):
        val = _import_object(val.strip())
    if not callable(val):
        raise TypeError(f"value is not callable: {val!r}")
    return val  # type: ignore[no-any-return]


def validate_callable(arity: int) -> Validator:
    """A callable (or a ``module.function`` import path) taking ``arity`` positional
    arguments; -1 accepts any."""

    def _validate(val: Any) -> Callable[..., Any]:
        func = _resolve_callable(val)
        if arity != -1 and not _accepts(func, arity):
            plural = "s" if arity != 1 else ""
            raise TypeError(f"{func!r} must accept {arity} positional argument{plural}")
        return func

    return _validate


def validate_post_request(val: Any) -> Callable[..., Any]:
    """A callable taking (worker, req, environ, resp), (worker, req, environ) or
    (worker, req); always returned as a 4-argument callable."""
    func = _resolve_callable(val)
    if _accepts(func, 4):
        return func
    if _accepts(func, 3):

        def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> Any:
            return func(worker, req, environ)

    elif _accepts(func, 2):

        def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> Any:
            return func(worker, req)

    else:
        raise TypeError(f"{func!r} must accept 2, 3 or 4 positional arguments")
    post_request.__qualname__ = getattr(func, "__qualname__", post_request.__qualname__)
    post_request.__name__ = getattr(func, "__name__", post_request.__name__)
    return post_request


def _account_id(val: Any, current: Any, lookup: Any, kind: str) -> int:
    """A name or a number naming a user or group; None means the current one."""
    if val is None:
        return int(current())
    if isinstance(val, int) and not isinstance(val, bool):
        return val
    name = _text(val).strip()
    if name.isdigit():
        return int(name)
    try:
        return int(lookup(name))
    except KeyError:
        raise ConfigError(f"No such {kind}: {name!r}") from None


def validate_user(val: Any) -> int:
    """A user name or a numeric uid; None means the effective uid."""
    return _account_id(val, os.geteuid, lambda name: pwd.getpwnam(name).pw_uid, "user")


def validate_group(val: Any) -> int:
    """A group name or a numeric gid; None means the effective gid."""
    return _account_id(val, os.getegid, lambda name: grp.getgrnam(name).gr_gid, "group")


def validate_chdir(val: Any) -> str:
    """An existing directory, returned as an absolute path."""
    text = validate_string(val) or ""
    path = os.path.abspath(os.path.normpath(os.path.join(util.getcwd(), text)))
    if not os.path.isdir(path):
        raise ConfigError(f"can't chdir to {text!r}")
    return path


def validate_statsd_address(val: Any) -> tuple[str, int] | str | None:
    """``HOST[:PORT]`` (port 8125 by default), ``[v6]:PORT`` or ``unix://PATH``."""
    text = validate_string(val)
    if text is None:
        return None
    legacy = re.fullmatch(r"unix:(\d+)", text)  # "unix:8125" is the host "unix", not a socket
    if legacy:
        return ("unix", int(legacy.group(1)))
    try:
        address = util.parse_address(text, default_port="8125")
    except ValueError as exc:
        raise ValueError(f"{exc} (expected HOST:PORT or unix://PATH)") from None
    if isinstance(address, int):
        raise ValueError("statsd address cannot be a file descriptor")
    return address


def validate_bind(val: Any) -> list[str]:
    """A list of listen addresses, each of which must parse."""
    binds = validate_list_string(val)
    for bind in binds:
        util.parse_address(bind)
    return binds


def validate_raw_env(val: Any) -> list[str]:
    """A list of ``KEY=VALUE`` strings."""
    items = validate_list_string(val)
    for item in items:
        if "=" not in item or item.startswith("="):
            raise ValueError(f"environment setting {item!r} is not KEY=VALUE")
    return items


def validate_choice(*choices: str, setting: str = "value") -> Validator:
    """One of ``choices`` (case-insensitive, returned lowercase)."""

    def _validate(val: Any) -> str:
        text = _text(val).strip().lower()
        if text not in choices:
            raise ValueError(f"invalid {setting} {val!r}; expected one of: {', '.join(choices)}")
        return text

    return _validate


validate_reload_engine = validate_choice("auto", "poll", "inotify", setting="reload engine")
validate_header_map_behaviour = validate_choice(
    "drop", "refuse", "dangerous", setting="header map behaviour"
)
validate_asgi_loop = validate_choice("auto", "asyncio", "uvloop", setting="asgi loop")
validate_asgi_lifespan = validate_choice("auto", "on", "off", setting="asgi lifespan mode")
validate_http_parser = validate_choice("auto", "fast", "python", setting="http parser")
validate_protocol = validate_choice("http", "uwsgi", setting="protocol")

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def validate_loglevel(val: Any) -> str:
    """A log level name; unknown names are kept (the logger falls back to info) with a
    warning."""
    text = validate_string(val) or "info"
    if text.lower() not in _LOG_LEVELS:
        sys.stderr.write(
            f"WARNING: unknown log level {text!r}, info is used "
            f"(choose one of {', '.join(_LOG_LEVELS)})\n"
        )
    return text


def validate_proxy_protocol(val: Any) -> str:
    """``off``, ``v1``, ``v2`` or ``auto``; True means auto and False off."""
    if val is None or val is False:
        return "off"
    if val is True:
        return "auto"
    text = _text(val).strip().lower()
    text = {"true": "auto", "false": "off", "": "off"}.get(text, text)
    if text not in ("off", "v1", "v2", "auto"):
        raise ValueError(f"invalid proxy protocol mode {val!r}; expected off, v1, v2 or auto")
    return text


def validate_http2_cleartext(val: Any) -> str:
    """``off``, ``prior-knowledge``, ``upgrade`` or ``both``; True means prior-knowledge."""
    if val is None or val is False:
        return "off"
    if val is True:
        return "prior-knowledge"
    text = _text(val).strip().lower().replace("_", "-")
    text = {"true": "prior-knowledge", "false": "off"}.get(text, text)
    if text not in ("off", "prior-knowledge", "upgrade", "both"):
        raise ValueError(
            f"invalid http2_cleartext mode {val!r}; expected off, prior-knowledge, upgrade or both"
        )
    return text


def validate_http_protocols(val: Any) -> list[str]:
    """A comma separated preference list of ``h1`` and ``h2``."""
    protocols = [p.lower() for p in validate_string_to_list(val if val is not None else "h1")]
    if not protocols:
        raise ValueError("at least one HTTP protocol is required (h1, h2)")
    for proto in protocols:
        if proto == "h3":
            raise ValueError("HTTP/3 (h3) is not supported; use h1 and/or h2")
        if proto not in ("h1", "h2"):
            raise ValueError(f"unknown HTTP protocol {proto!r}; expected h1 or h2")
    return list(dict.fromkeys(protocols))


def validate_ssl_version(val: Any) -> Any:
    """Deprecated and ignored: any value other than the default prints a warning."""
    import ssl

    default = int(ssl.PROTOCOL_TLS)
    number: Any = val
    if isinstance(val, str):
        text = val.strip()
        if text.lstrip("-").isdigit():
            number = int(text)
        else:
            name = text if text.startswith("PROTOCOL_") else f"PROTOCOL_{text}"
            number = getattr(ssl, name, None)
            if number is None:
                raise ValueError(f"unknown SSL protocol {text!r}")
    if isinstance(number, int) and int(number) == default:
        return default
    sys.stderr.write(
        "Warning: option `ssl_version` is deprecated and it is ignored. Use ssl_context instead.\n"
    )
    return int(number) if isinstance(number, int) else number


def validate_dirty_apps(val: Any) -> list[str]:
    """A list of ``module:Class`` or ``module:Class:N`` specs."""
    specs = validate_list_string(val)
    for spec in specs:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise ValueError(f"invalid dirty app {spec!r}; expected module:Class or module:Class:N")
        if len(parts) == 3 and (not parts[2].isdigit() or int(parts[2]) < 1):
            raise ValueError(f"invalid worker count in dirty app {spec!r}; expected N >= 1")
    return specs
