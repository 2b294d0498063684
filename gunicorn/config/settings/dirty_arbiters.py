"""Dirty Arbiters: a separate worker pool for long or heavy tasks."""

from __future__ import annotations

from gunicorn.config.core import Setting
from gunicorn.config.validators import parse_int, validate_dirty_apps, validate_pos_int

SECTION = "Dirty Arbiters"


def _int(name: str, default: int, short: str, desc: str) -> Setting:
    return Setting(
        name=name,
        section=SECTION,
        cli=(f"--{name.replace('_', '-')}",),
        meta="INT",
        validator=validate_pos_int,
        type=parse_int,
        default=default,
        short=short,
        desc=desc,
    )


SETTINGS = [
    Setting(
        name="dirty_apps",
        section=SECTION,
        cli=("--dirty-app",),
        action="append",
        meta="STRING",
        validator=validate_dirty_apps,
        default=[],
        short="A dirty application to load, as module:Class or module:Class:N.",
        desc="""
Classes (usually subclasses of `gunicorn.dirty.DirtyApp`) loaded by the dirty workers; HTTP
workers call them through `gunicorn.dirty.get_dirty_client()`. `:N` loads the app in only N
dirty workers (e.g. a large model). Repeat the option for several apps.
""",
    ),
    _int(
        "dirty_workers",
        0,
        "Number of dirty worker processes (0 disables the dirty arbiter).",
        """
The dirty arbiter starts only when this is above 0 and `dirty_apps` is not empty.
""",
    ),
    _int(
        "dirty_timeout",
        300,
        "Seconds a dirty task may run, and a dirty worker may stay silent.",
        """
A task running longer fails with a timeout error; a dirty worker silent for longer is
restarted. 0 disables both.
""",
    ),
    _int(
        "dirty_threads",
        1,
        "Threads per dirty worker.",
        """
How many tasks one dirty worker runs at the same time.
""",
    ),
    _int(
        "dirty_graceful_timeout",
        30,
        "Seconds dirty workers get to finish their tasks when stopping.",
        """
After this, dirty workers still running are killed.
""",
    ),
]
