"""Process Naming: titles shown by ps and top."""

from __future__ import annotations

from gunicorn.config.core import Setting
from gunicorn.config.validators import validate_string

SECTION = "Process Naming"

SETTINGS = [
    Setting(
        name="proc_name",
        section=SECTION,
        cli=("-n", "--name"),
        meta="STRING",
        validator=validate_string,
        default=None,
        short="Name shown in process titles (needs setproctitle).",
        desc="""
Processes are titled `gunicorn: master [NAME]` and `gunicorn: worker [NAME]` (needs the
`setproctitle` package). Without a name, `default_proc_name` is used: the application
reference.
""",
    ),
    Setting(
        name="default_proc_name",
        section=SECTION,
        validator=validate_string,
        default="gunicorn",
        short="Fallback process name, set by the application loader.",
        desc="""
The name used when `proc_name` is unset; the application loader sets it to the application
reference or paste file.
""",
    ),
]
