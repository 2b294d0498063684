"""Config File: where settings come from."""

from __future__ import annotations

from gunicorn.config.core import Setting
from gunicorn.config.validators import validate_string

SECTION = "Config File"

SETTINGS = [
    Setting(
        name="config",
        section=SECTION,
        cli=("-c", "--config"),
        meta="CONFIG",
        validator=validate_string,
        default="./gunicorn.conf.py",
        short="Configuration file: PATH, file:PATH or python:MODULE_NAME.",
        desc="""
The configuration file is plain Python. It is executed once at startup (and again on every
reload), and every top-level name that matches a setting is applied; other names are ignored.
Three forms are understood: a file system path, the same path prefixed with `file:`, or
`python:MODULE_NAME` to import a module from `sys.path`. A file whose name does not end in
`.py` is still executed, with a warning.

Without `-c`, a `--config` inside `GUNICORN_CMD_ARGS` is used, and failing that
`./gunicorn.conf.py` is loaded when it exists in the working directory.
""",
    ),
    Setting(
        name="wsgi_app",
        section=SECTION,
        meta="STRING",
        validator=validate_string,
        default=None,
        short="The application to load, as MODULE_NAME:VARIABLE_NAME.",
        desc="""
The application to serve when none is named on the command line, written like the
command-line argument: `myproject.wsgi:application` or `app:create_app()`. This lets a
config file be the single description of a deployment.
""",
    ),
]
