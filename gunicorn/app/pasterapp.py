"""PasteDeploy support: ``--paste app.ini#main`` and the ``egg:gunicorn#main`` server runner."""

from __future__ import annotations

import configparser
import os
from typing import Any

from gunicorn.app.importer import AppBootError, one_line
from gunicorn.app.wsgiapp import WSGIApplication
from gunicorn.errors import ConfigError


def has_logging_config(config_file: str) -> bool:
    """True when the ini file configures logging (has a ``[loggers]`` section)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read([config_file])
    except configparser.Error:
        return False
    return parser.has_section("loggers")


def get_wsgi_app(
    config_uri: str, name: str | None = None, defaults: dict[str, Any] | None = None
) -> Any:
    """Load the WSGI app described by ``config_uri`` (``path.ini`` or ``path.ini#section``)."""
    try:
        from paste.deploy import loadapp
    except ImportError as exc:
        raise AppBootError("--paste needs PasteDeploy: pip install pastedeploy") from exc
    if ":" not in config_uri.split("#", 1)[0]:
        config_uri = f"config:{config_uri}"
    try:
        return loadapp(config_uri, name=name, relative_to=os.getcwd(), global_conf=defaults)
    except Exception as exc:
        message = f"Failed to load paste app {config_uri!r}: {one_line(exc)}"
        raise AppBootError(message, exc) from exc


def _bind_from(local_conf: dict[str, Any]) -> None:
    host = local_conf.pop("host", "")
    port = local_conf.pop("port", "")
    if host and port:
        local_conf["bind"] = f"{host}:{port}"
    elif host:
        local_conf["bind"] = [h.strip() for h in host.split(",") if h.strip()]
    elif port:
        local_conf["bind"] = f"0.0.0.0:{port}"


class PasterServerApplication(WSGIApplication):
    """Serves an app PasteDeploy already loaded, configured from ``[server:...]`` keys."""

    def __init__(self, app: Any, global_conf: dict[str, Any], local_conf: dict[str, Any]) -> None:
        self.paste_app = app
        self.global_conf = dict(global_conf)
        self.local_conf = dict(local_conf)
        super().__init__()

    def load_config(self) -> None:
        config_file = self.global_conf.get("__file__")
        local_conf = dict(self.local_conf)
        gunicorn_config = local_conf.pop("config", None)
        _bind_from(local_conf)
        if config_file:
            self.cfg.set("default_proc_name", config_file)
            if has_logging_config(config_file):
                self.cfg.set("logconfig", config_file)
        if gunicorn_config:
            self.load_config_from_file(gunicorn_config)
        else:
            default = os.path.join(os.path.abspath(os.getcwd()), "gunicorn.conf.py")
            if os.path.exists(default):
                self.load_config_from_file(default)
        for key, value in local_conf.items():
            if value is None:
                continue
            name = key.lower().replace("-", "_")
            if name not in self.cfg.settings:
                raise ConfigError(f"unknown setting {key!r} in the paste server section")
            self.cfg.set(name, value)
        self.app_uri = config_file or "paste"

    def load(self) -> Any:
        return self.paste_app


def serve(app: Any, global_conf: dict[str, Any], **local_conf: Any) -> None:
    """``paste.server_runner`` entry point (``[server:main] use = egg:gunicorn#main``)."""
    PasterServerApplication(app, global_conf, local_conf).run()
