"""Reading configuration files and applying their values to a Config."""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Collection, Mapping
from types import ModuleType
from typing import Any

from gunicorn.config.core import Config
from gunicorn.errors import ConfigError

MODULE_NAME = "__config__"


def _fail(location: str, exc: BaseException) -> ConfigError:
    cause = str(exc) if isinstance(exc, (ConfigError, OSError)) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        cause = f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return ConfigError(f"could not load config file {location!r}: {cause}")


def _load_file(filename: str) -> dict[str, Any]:
    if not os.path.exists(filename):
        raise FileNotFoundError(f"{filename!r} doesn't exist")
    if os.path.isdir(filename):
        raise IsADirectoryError(f"{filename!r} is a directory")
    ext = os.path.splitext(filename)[1]
    if ext in (".py", ".pyc"):
        spec = importlib.util.spec_from_file_location(MODULE_NAME, filename)
    else:
        sys.stderr.write(
            f"WARNING: configuration file {filename!r} should have a .py extension; "
            "loading it as Python anyway\n"
        )
        loader = importlib.machinery.SourceFileLoader(MODULE_NAME, filename)
        spec = importlib.util.spec_from_file_location(MODULE_NAME, filename, loader=loader)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {filename!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    return vars(module)


def load_config_file(location: str) -> dict[str, Any]:
    """Execute a config file and return its top-level names.

    ``location`` is ``PATH``, ``file:PATH`` or ``python:MODULE``. Any failure (missing file,
    syntax error, exception while running it) raises a ConfigError with a one-line message.
    """
    try:
        if location.startswith("python:"):
            module = importlib.import_module(location[len("python:") :])
            return dict(vars(module))
        filename = location[len("file:") :] if location.startswith("file:") else location
        return _load_file(filename)
    except Exception as exc:
        raise _fail(location, exc) from exc


def apply_config_dict(cfg: Config, values: Mapping[str, Any]) -> None:
    """Apply every name of ``values`` that is a known setting; others are ignored, and a
    name that looks like a misspelt setting adds a warning to ``cfg.warnings``.

    A refused value raises ConfigError "Invalid value for NAME: VALUE: reason".
    """
    for name, value in values.items():
        if name in cfg.settings:
            cfg.set(name, value)
            continue
        suggestion = misspelt_setting(name, value, cfg.settings)
        if suggestion is not None:
            cfg.warnings.append(
                f"Unknown setting {name!r} in the config file is ignored; "
                f"did you mean {suggestion!r}?"
            )


def misspelt_setting(name: str, value: Any, known: Collection[str]) -> str | None:
    """The setting ``name`` is probably a misspelling of, or None.

    Config files also hold helpers: private names, CONSTANTS, modules, and names built
    around a setting's (``timeout_str``, ``use_bind``, ``workers_per_core``) are not taken
    for misspellings.
    """
    if name.startswith("_") or name.isupper() or isinstance(value, ModuleType):
        return None
    lowered = name.lower()
    if lowered in known:
        return lowered
    words = lowered.split("_")
    for start in range(len(words)):
        for end in range(start + 1, len(words) + 1):
            if "_".join(words[start:end]) in known:
                return None
    longer = sorted(k for k in known if k.startswith(lowered + "_"))
    if longer:
        return longer[0]
    matches = difflib.get_close_matches(lowered, list(known), n=1, cutoff=0.75)
    return matches[0] if matches else None


def apply_namespace(cfg: Config, namespace: argparse.Namespace) -> None:
    """Apply options parsed by ``cfg.parser()``: every option given (not None) is set."""
    for name, value in vars(namespace).items():
        if value is None or name == "args":
            continue
        cfg.set(name.lower(), value)


def config_location(cli: argparse.Namespace, env: argparse.Namespace | None) -> str | None:
    """The config file to load: ``-c`` on the command line, else ``--config`` in
    GUNICORN_CMD_ARGS, else ``./gunicorn.conf.py`` when it exists, else None."""
    from gunicorn.config.core import get_default_config_file

    for namespace in (cli, env):
        location = getattr(namespace, "config", None) if namespace is not None else None
        if location:
            return str(location)
    return get_default_config_file()


def load_all(cfg: Config, argv: list[str]) -> argparse.Namespace:
    """Apply every source in precedence order: defaults < config file < GUNICORN_CMD_ARGS <
    command line. Returns the parsed command line (``.args`` holds the positionals)."""
    parser = cfg.parser()
    cli = parser.parse_args(argv)
    env_argv = cfg.get_cmd_args_from_env()
    env = parser.parse_args(env_argv) if env_argv else None
    location = config_location(cli, env)
    if location:
        apply_config_dict(cfg, load_config_file(location))
    if env is not None:
        apply_namespace(cfg, env)
    apply_namespace(cfg, cli)
    return cli
