"""Dirty Arbiter Hooks: callables run in the dirty arbiter and its workers."""

from __future__ import annotations

from typing import Any

from gunicorn.config.settings.server_hooks import hook

SECTION = "Dirty Arbiter Hooks"


def on_dirty_starting(arbiter: Any) -> None:
    """Does nothing."""


def dirty_post_fork(arbiter: Any, worker: Any) -> None:
    """Does nothing."""


def dirty_worker_init(worker: Any) -> None:
    """Does nothing."""


def dirty_worker_exit(arbiter: Any, worker: Any) -> None:
    """Does nothing."""


SETTINGS = [
    hook(
        on_dirty_starting,
        SECTION,
        "arbiter",
        "Runs in the dirty arbiter before it starts its workers.",
        """
`arbiter` is the dirty arbiter, in its own process.
""",
    ),
    hook(
        dirty_post_fork,
        SECTION,
        "arbiter, worker",
        "Runs in a dirty worker right after it was forked.",
        """
Runs before the dirty apps are loaded.
""",
    ),
    hook(
        dirty_worker_init,
        SECTION,
        "worker",
        "Runs in a dirty worker once its apps are initialised.",
        """
Runs after every dirty app's `init()` returned.
""",
    ),
    hook(
        dirty_worker_exit,
        SECTION,
        "arbiter, worker",
        "Runs in the dirty arbiter when a dirty worker exits.",
        """
Runs after the dirty worker process ended.
""",
    ),
]
