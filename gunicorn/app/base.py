"""Applications: the configuration and the loaded callable the arbiter and workers serve.

``BaseApplication`` is the embedding API (subclass it, set settings in ``load_config()``,
return the app from ``load()``, call ``run()``). ``Application`` adds the command line,
``GUNICORN_CMD_ARGS`` and the config file.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from typing import Any

from gunicorn import debug
from gunicorn.app.importer import ensure_path, one_line
from gunicorn.config import Config
from gunicorn.errors import AppImportError, ConfigError, HaltServer

log = logging.getLogger("gunicorn.error")


def _fail(message: str, code: int = 1) -> None:
    """Print ``Error: message`` as one line on stderr and exit with ``code``."""
    text = " ".join(str(message).split())
    if not text.startswith("Error:"):
        text = f"Error: {text}"
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
    sys.exit(code)


class BaseApplication:
    """An application gunicorn can serve: owns ``cfg`` and loads ``callable`` on demand."""

    def __init__(self, usage: str | None = None, prog: str | None = None) -> None:
        self.usage = usage
        self.prog = prog
        self.cfg: Config = Config(usage, prog)
        self.callable: Any = None
        self.logger: Any = None
        self.do_load_config()

    # -- configuration -----------------------------------------------------------------------

    def do_load_config(self) -> None:
        """Load defaults, then this application's settings, then validate; exit 1 on error."""
        try:
            self.load_default_config()
            self.load_config()
            self.cfg.validate()
        except ConfigError as exc:
            _fail(str(exc), exc.exit_status)

    def load_default_config(self) -> None:
        """Start again from a fresh configuration holding the defaults."""
        self.cfg = Config(self.usage, prog=self.prog)

    def init(
        self, parser: argparse.ArgumentParser, opts: argparse.Namespace, args: list[str]
    ) -> Any:
        """Hook for subclasses: inspect the parsed command line; may return a settings dict."""
        return None

    def load_config(self) -> None:
        """Set this application's settings on ``self.cfg``."""
        raise NotImplementedError

    def load(self) -> Any:
        """Import and return the application callable."""
        raise NotImplementedError

    def reload(self) -> None:
        """Re-read the configuration (HUP). On failure the previous configuration is kept and
        ConfigError is raised with a one-line reason."""
        previous = self.cfg
        try:
            self.load_default_config()
            self.load_config()
            self.cfg.validate()
            if self.logger is not None:
                self.logger.setup(self.cfg)
        except (Exception, SystemExit) as exc:
            self.cfg = previous
            if self.logger is not None:
                # the old config worked before; if it fails now keep whatever is set up
                with contextlib.suppress(Exception):
                    self.logger.setup(previous)
            reason = "invalid command line" if isinstance(exc, SystemExit) else one_line(exc)
            if isinstance(exc, ConfigError):
                reason = " ".join(str(exc).split())
            raise ConfigError(
                f"reload failed, keeping the previous configuration: {reason}"
            ) from exc
        if self.cfg.spew:
            debug.spew()

    # -- the application ---------------------------------------------------------------------

    def wsgi(self) -> Any:
        """The application callable, loaded on first use and cached."""
        if self.callable is None:
            self.callable = self.load()
        return self.callable

    def run(self) -> None:
        """Start the arbiter; configuration errors end the process with one line."""
        from gunicorn.arbiter import Arbiter

        try:
            Arbiter(self).run()
        except ConfigError as exc:
            _fail(str(exc), exc.exit_status)
        except HaltServer as exc:
            _fail(exc.reason, exc.exit_status)
        except RuntimeError as exc:
            _fail(str(exc))


class Application(BaseApplication):
    """An application configured from the command line, the environment and a config file."""

    def chdir(self) -> None:
        """Change into ``cfg.chdir`` and put it first on ``sys.path``."""
        os.chdir(self.cfg.chdir)
        ensure_path(self.cfg.chdir)

    def get_config_from_filename(self, filename: str) -> dict[str, Any]:
        """Execute a Python config file and return its top-level names."""
        from gunicorn.config import loader

        return loader.load_config_file(f"file:{filename}")

    def get_config_from_module_name(self, module_name: str) -> dict[str, Any]:
        """Import a config module (``python:pkg.conf``) and return its top-level names."""
        from gunicorn.config import loader

        return loader.load_config_file(f"python:{module_name}")

    def load_config_from_module_name_or_filename(self, location: str) -> dict[str, Any]:
        """Load ``PATH``, ``file:PATH`` or ``python:MODULE`` and apply the names that are
        settings; return everything the file defined."""
        if location.startswith("python:"):
            values = self.get_config_from_module_name(location[len("python:") :])
        else:
            path = location[len("file:") :] if location.startswith("file:") else location
            values = self.get_config_from_filename(path)
        from gunicorn.config import loader

        loader.apply_config_dict(self.cfg, values)
        return values

    def load_config_from_file(self, filename: str) -> dict[str, Any]:
        """Apply the config file ``filename`` (any of the accepted forms)."""
        return self.load_config_from_module_name_or_filename(filename)

    def load_config(self) -> None:
        """Defaults < app-specific (``init``) < config file < ``GUNICORN_CMD_ARGS`` < argv."""
        parser = self.cfg.parser()
        args = parser.parse_args()

        extra = self.init(parser, args, list(getattr(args, "args", None) or []))
        if extra:
            for key, value in extra.items():
                self.cfg.set(key.lower(), value)

        env_args = parser.parse_args(self.cfg.get_cmd_args_from_env())

        # As gunicorn, the working directory is first on sys.path before the config file
        # is read, so that "-c python:MODULE" finds a module there; --chdir is searched too.
        ensure_path(self.cfg.chdir)
        for namespace in (env_args, args):
            chdir = getattr(namespace, "chdir", None)
            if chdir and os.path.isdir(chdir):
                ensure_path(os.path.abspath(chdir))

        if getattr(args, "config", None):
            self.load_config_from_file(args.config)
        elif getattr(env_args, "config", None):
            self.load_config_from_file(env_args.config)
        else:
            default = _default_config_file()
            if default is not None:
                self.load_config_from_file(default)

        for namespace in (env_args, args):
            for key, value in vars(namespace).items():
                if value is None or key == "args":
                    continue
                self.cfg.set(key.lower(), value)

        self.chdir()

    def run(self) -> None:
        """Handle ``--print-config``/``--check-config``, spew, daemon and pythonpath, then serve."""
        if self.cfg.print_config:
            print(self.cfg)
        if self.cfg.print_config or self.cfg.check_config:
            self._check_and_exit()
        if self.cfg.spew:
            debug.spew()
        if self.cfg.daemon:
            if os.environ.get("NOTIFY_SOCKET"):
                sys.stderr.write(
                    "Warning: you shouldn't specify `daemon = True` when launching by systemd "
                    "with `Type = notify`\n"
                )
            from gunicorn import osutil

            osutil.daemonize(self.cfg.enable_stdio_inheritance)
        if self.cfg.pythonpath:
            for path in reversed(self.cfg.pythonpath.split(",")):
                if path.strip():
                    ensure_path(os.path.abspath(path.strip()))
        super().run()

    def _check_and_exit(self) -> None:
        """Load what a real start loads (worker class, application); exit 0, or 1 with the
        message a real start would give."""
        for warning in self.cfg.warnings:
            sys.stderr.write(f"Warning: {warning}\n")
        try:
            self.cfg.load_worker_class(setup=False)
        except RuntimeError as exc:
            _fail(str(exc))
        try:
            self.load()
        except AppImportError as exc:
            details = getattr(exc, "details", "")
            if str(self.cfg.loglevel).lower() == "debug":
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            elif details:
                sys.stderr.write(details)
            _fail(str(exc))
        except Exception as exc:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            _fail(f"Error while loading the application: {one_line(exc)}")
        sys.exit(0)


def _default_config_file() -> str | None:
    path = os.path.join(os.path.abspath(os.getcwd()), "gunicorn.conf.py")
    return path if os.path.exists(path) else None
