"""Debugging: code reloading, tracing and configuration checks."""

from __future__ import annotations

from gunicorn.config.core import Setting, flag_setting
from gunicorn.config.validators import (
    validate_list_of_existing_files,
    validate_reload_engine,
)

SECTION = "Debugging"


def _flag(name: str, cli: tuple[str, ...], short: str, desc: str) -> Setting:
    return flag_setting(SECTION, name, cli, short, desc)


SETTINGS = [
    _flag(
        "reload",
        ("--reload",),
        "Restart workers when a source file changes (development only).",
        """
Development aid: workers watch the source files of every imported module (and
`reload_extra_files`) and restart when one changes. Do not use it in production, and not
together with `preload_app`, since a preloaded application lives in the master and is not
reloaded. See `reload_engine` for how changes are detected.
""",
    ),
    Setting(
        name="reload_engine",
        section=SECTION,
        cli=("--reload-engine",),
        meta="STRING",
        validator=validate_reload_engine,
        default="auto",
        short="How file changes are detected: auto, poll or inotify.",
        desc="""
`poll` checks file modification times every second. `inotify` uses Linux inotify events
(needs the `inotify` package). `auto` picks inotify when it is available and poll otherwise.
""",
    ),
    Setting(
        name="reload_extra_files",
        section=SECTION,
        cli=("--reload-extra-file",),
        action="append",
        meta="FILES",
        validator=validate_list_of_existing_files,
        default=[],
        short="An extra file or glob for the reloader to watch; repeat for more.",
        desc="""
More files to watch when `reload` is on, such as templates or configuration. Repeat the
option for several files. An entry containing `*`, `?` or `[` is a glob pattern, expanded
again on every check (`**` matches across directories); other entries must exist.
""",
    ),
    _flag(
        "spew",
        ("--spew",),
        "Print every line of Python executed (very slow).",
        """
Prints every line of Python executed, in the master and the workers. Extremely verbose and
slow: only for chasing a problem that nothing else explains.
""",
    ),
    _flag(
        "check_config",
        ("--check-config",),
        "Load the configuration and the application, then exit.",
        """
Loads the configuration and the application, then exits with status 0 when both load and 1
otherwise. Useful before sending HUP to a running server.
""",
    ),
    _flag(
        "print_config",
        ("--print-config",),
        "Print every resolved setting, then exit like --check-config.",
        """
Prints every setting as `name = value`, sorted by name, after all configuration sources were
applied, then behaves like `check_config`.
""",
    ),
]
