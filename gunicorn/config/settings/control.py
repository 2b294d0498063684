"""Control: the control socket used by gunicornc."""

from __future__ import annotations

import os

from gunicorn import util
from gunicorn.config.core import Setting
from gunicorn.config.validators import (
    InvalidSetting,
    parse_octal,
    validate_bool,
    validate_octal,
    validate_string,
)

SECTION = "Control"


def default_control_socket() -> str:
    """``$XDG_RUNTIME_DIR/gunicorn.ctl``, else ``~/.gunicorn/gunicorn.ctl``."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return os.path.join(runtime_dir, "gunicorn.ctl")
    return os.path.join(os.path.expanduser("~"), ".gunicorn", "gunicorn.ctl")


def validate_metrics_bind(value: object) -> str | None:
    """``HOST:PORT``, ``[v6]:PORT`` or ``unix:PATH``; None turns the endpoint off."""
    text = validate_string(value)
    if not text:
        return None
    try:
        parsed = util.parse_address(text, default_port="9100")
    except ValueError as exc:
        raise InvalidSetting(f"invalid metrics_bind address: {exc}") from None
    if isinstance(parsed, int):
        raise InvalidSetting("metrics_bind cannot be a file descriptor")
    return text


SETTINGS = [
    Setting(
        name="control_socket",
        section=SECTION,
        cli=("--control-socket",),
        meta="PATH",
        validator=validate_string,
        default_factory=default_control_socket,
        default_doc="'$XDG_RUNTIME_DIR/gunicorn.ctl' or '~/.gunicorn/gunicorn.ctl'",
        short="Path of the Unix socket gunicornc connects to.",
        desc="""
The master listens here for `gunicornc` commands (show workers and metrics, add or remove
workers, reload, shutdown). A relative path is taken from the working directory.

Left at its default, the path is per instance: `gunicorn-<name>.ctl` in the default
directory, where `<name>` is `proc_name` when set, else the first address the server
listens on (`gunicorn-127.0.0.1-8000.ctl`); `gunicornc` finds it alone when one server
runs, or takes `-s`. A socket another live server listens on is never replaced: with the
default path this instance adds its pid to the name, with a configured path it logs a
warning and runs without a control socket. A stale socket file (nobody listening) is
replaced.
""",
    ),
    Setting(
        name="control_socket_mode",
        section=SECTION,
        cli=("--control-socket-mode",),
        meta="INT",
        validator=validate_octal,
        type=parse_octal,
        default=0o600,
        default_doc="0o600",
        short="Permission bits of the control socket.",
        desc="""
File mode given to the control socket; a string with a leading zero (`0660`) is octal.
""",
    ),
    Setting(
        name="control_socket_disable",
        section=SECTION,
        cli=("--no-control-socket",),
        action="store_true",
        validator=validate_bool,
        default=False,
        short="Do not create the control socket.",
        desc="""
Turns the control socket off; `gunicornc` cannot reach this server.
""",
    ),
    Setting(
        name="metrics_bind",
        section=SECTION,
        cli=("--metrics-bind",),
        meta="ADDRESS",
        validator=validate_metrics_bind,
        default=None,
        short="Serve Prometheus/OpenMetrics metrics at this address (off by default).",
        desc="""
`HOST:PORT` (`127.0.0.1:9100`, `[::1]:9100`) or `unix:PATH`. The master answers
`GET /metrics` there with the request, worker and connection metrics of all workers, in the
Prometheus text format (OpenMetrics when the scraper asks for it). It must not be one of
the `bind` addresses. The same numbers are shown by `gunicornc show metrics`.
""",
    ),
]
