"""The ``gunicorn`` command: serve the WSGI application named on the command line."""

from __future__ import annotations

import argparse
import os
from typing import Any

from gunicorn.app.base import Application
from gunicorn.app.importer import ensure_path, import_app
from gunicorn.errors import ConfigError

USAGE = "%(prog)s [OPTIONS] [APP_MODULE]"


class WSGIApplication(Application):
    """Loads the app from a URI (``module:callable``) or a PasteDeploy ini (``--paste``)."""

    app_uri: str | None = None

    def init(
        self, parser: argparse.ArgumentParser, opts: argparse.Namespace, args: list[str]
    ) -> Any:
        self.app_uri = None
        paste = getattr(opts, "paste", None)
        if paste:
            from gunicorn.app.pasterapp import has_logging_config

            config_uri = os.path.abspath(paste)
            config_file = config_uri.split("#", 1)[0]
            if not os.path.exists(config_file):
                raise ConfigError(f"paste config file {config_file!r} not found")
            self.cfg.set("default_proc_name", config_file)
            self.app_uri = config_uri
            if has_logging_config(config_file):
                self.cfg.set("logconfig", config_file)
            return None
        if args:
            self.cfg.set("default_proc_name", args[0])
            self.app_uri = args[0]
        return None

    def load_config(self) -> None:
        super().load_config()
        if self.app_uri is None:
            if self.cfg.wsgi_app is not None:
                self.app_uri = self.cfg.wsgi_app
            else:
                raise ConfigError(
                    "No application module specified (usage: gunicorn [OPTIONS] APP_MODULE)."
                )

    def prepare_import_path(self) -> None:
        """Apply ``--chdir`` and ``--pythonpath`` so the app module can be found."""
        if self.cfg.chdir:
            ensure_path(self.cfg.chdir)
        if self.cfg.pythonpath:
            for path in reversed(self.cfg.pythonpath.split(",")):
                if path.strip():
                    ensure_path(os.path.abspath(path.strip()))

    def load_wsgiapp(self) -> Any:
        assert self.app_uri is not None
        return import_app(self.app_uri)

    def load_pasteapp(self) -> Any:
        from gunicorn.app.pasterapp import get_wsgi_app

        assert self.app_uri is not None
        return get_wsgi_app(self.app_uri, defaults=self.cfg.paste_global_conf)

    def load(self) -> Any:
        self.prepare_import_path()
        if self.cfg.paste is not None:
            return self.load_pasteapp()
        return self.load_wsgiapp()


def run(prog: str | None = None) -> None:
    """Console script entry point: ``gunicorn [OPTIONS] [APP_MODULE]``."""
    WSGIApplication(USAGE, prog=prog).run()


if __name__ == "__main__":
    run()
