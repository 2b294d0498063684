"""Control: the control socket used by gunicornc."""

from __future__ import annotations

import os

from gunicorn.config.core import Setting
from gunicorn.config.validators import parse_octal, validate_bool, validate_octal, validate_string

SECTION = "Control"


def default_control_socket() -> str:
    """``$XDG_RUNTIME_DIR/gunicorn.ctl``, else ``~/.gunicorn/gunicorn.ctl``."""
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return os.path.join(runtime_dir, "gunicorn.ctl")
    return os.path.join(os.path.expanduser("~"), ".gunicorn", "gunicorn.ctl")


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
The master listens here for `gunicornc` commands (show workers, add or remove workers,
reload, shutdown). A relative path is taken from the working directory. Any existing file at
the path is replaced, so give each instance on a machine its own path.
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
]
