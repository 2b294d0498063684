"""The control commands, run in the arbiter's loop (never in a signal handler).

A request's ``command`` and ``args`` are read as one list of words (``"worker add"`` with
``["2"]`` is ``worker add 2``); the longest known command that starts the list is run with
the rest as its arguments. Commands that act on the master (reload, reopen, shutdown) queue
the same signal a user would send, so the loop does the work on its next turn, after the
answer went out.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from gunicorn import __version__
from gunicorn.ctl import protocol
from gunicorn.instrument.metrics import FINISHED, STARTED


class CommandError(Exception):
    """A command that cannot be run; its text is the error reply."""


Handler = Callable[[Any, list[str]], Any]
COMMANDS: dict[tuple[str, ...], tuple[Handler, str]] = {}


def command(*words: str, doc: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        COMMANDS[words] = (func, doc)
        return func

    return register


def run(control: Any, message: dict[str, Any]) -> dict[str, Any]:
    """Answer one request message (``control`` is the master's MasterControl)."""
    request_id = message.get("id")
    text = message.get("command")
    args = message.get("args") or []
    if not isinstance(text, str) or not isinstance(args, list):
        return protocol.error(request_id, "a request needs a 'command' string and 'args' list")
    words = text.split() + [str(a) for a in args]
    for size in range(min(len(words), 2), 0, -1):
        entry = COMMANDS.get(tuple(w.lower() for w in words[:size]))
        if entry is not None:
            try:
                return protocol.ok(request_id, entry[0](control, words[size:]))
            except CommandError as exc:
                return protocol.error(request_id, str(exc))
    shown = " ".join(words) or "(empty)"
    return protocol.error(request_id, f"unknown command: {shown} (try 'help')")


def _count(args: list[str], default: int = 1) -> int:
    if not args:
        return default
    if len(args) > 1 or not args[0].isdigit() or int(args[0]) < 1:
        raise CommandError(f"expected a positive count, got {' '.join(args)!r}")
    return int(args[0])


def _no_args(args: list[str]) -> None:
    if args:
        raise CommandError(f"unexpected arguments: {' '.join(args)}")


# -- show ---------------------------------------------------------------------------------


def workers(control: Any) -> list[dict[str, Any]]:
    arbiter = control.arbiter
    now = time.monotonic()
    rows = []
    for child in sorted(arbiter.children, key=lambda c: c.age):
        metrics = getattr(child.worker, "metrics", None)
        served = in_flight = 0
        if metrics is not None and not metrics.closed:
            totals = metrics.totals()
            served, in_flight = totals[FINISHED], totals[STARTED] - totals[FINISHED]
        rows.append(
            {
                "pid": child.pid,
                "age": child.age,
                "booted": child.booted,
                "aborted": bool(getattr(child.worker, "aborted", False)),
                "retiring": child.retiring,
                "generation": child.generation,
                "last_heartbeat": round(child.silence(now), 2),
                "requests": served,
                "in_flight": in_flight,
            }
        )
    return rows


@command("show", "workers", doc="HTTP workers: pid, age, boot state, heartbeat, requests")
def show_workers(control: Any, args: list[str]) -> Any:
    _no_args(args)
    rows = workers(control)
    return {"workers": rows, "count": len(rows)}


def dirty_info(control: Any) -> dict[str, Any]:
    dirty = getattr(control.arbiter, "dirty", None)
    if dirty is None:
        return {"enabled": False, "pid": None, "workers": [], "apps": []}
    info = dict(dirty.info())
    info.setdefault("workers", [])
    info.setdefault("apps", [])
    return {**info, "enabled": True, "pid": dirty.pid}


@command("show", "dirty", doc="the dirty arbiter, its workers and apps")
def show_dirty(control: Any, args: list[str]) -> Any:
    _no_args(args)
    return dirty_info(control)


_CONFIG_KEYS = (
    "bind",
    "workers",
    "worker_class",
    "threads",
    "timeout",
    "graceful_timeout",
    "keepalive",
    "max_requests",
    "max_requests_jitter",
    "worker_connections",
    "preload_app",
    "daemon",
    "pidfile",
    "proc_name",
    "reload",
    "dirty_apps",
    "dirty_workers",
    "dirty_timeout",
    "control_socket_disable",
    "metrics_bind",
)


@command("show", "config", doc="the main settings in effect")
def show_config(control: Any, args: list[str]) -> Any:
    _no_args(args)
    cfg = control.arbiter.cfg
    data: dict[str, Any] = {}
    for key in _CONFIG_KEYS:
        if key not in cfg.settings:
            continue
        value = getattr(cfg, key)
        data[key] = (
            value
            if isinstance(value, (int, float, str, bool, list)) or value is None
            else str(value)
        )
    data["worker_class"] = cfg.worker_class_str
    data["workers"] = control.arbiter.num_workers
    data["control_socket"] = control.path
    return data


@command("show", "stats", doc="uptime, worker counts, spawns, kills, reloads")
def show_stats(control: Any, args: list[str]) -> Any:
    _no_args(args)
    arbiter = control.arbiter
    dirty = getattr(arbiter, "dirty", None)
    return {
        "version": __version__,
        "pid": arbiter.pid,
        "uptime": round(time.monotonic() - control.started_at, 3),
        "workers_current": len(arbiter.children.serving(arbiter.generation)),
        "workers_target": arbiter.num_workers,
        "workers_spawned": arbiter.worker_age,
        "workers_killed": control.workers_killed,
        "reloads": arbiter.generation,
        "dirty_arbiter_pid": getattr(dirty, "pid", None),
    }


def listeners(control: Any) -> list[dict[str, Any]]:
    rows = []
    for listener in control.arbiter.LISTENERS:
        family = getattr(listener, "FAMILY", None) or listener.family
        kind = {socket.AF_UNIX: "unix", socket.AF_INET6: "tcp6"}.get(family, "tcp")
        rows.append({"address": str(listener), "fd": listener.fileno(), "type": kind})
    return rows


@command("show", "listeners", doc="the sockets the server listens on")
def show_listeners(control: Any, args: list[str]) -> Any:
    _no_args(args)
    rows = listeners(control)
    return {"listeners": rows, "count": len(rows)}


@command("show", "metrics", doc="request counters and histograms of all workers")
def show_metrics(control: Any, args: list[str]) -> Any:
    _no_args(args)
    return control.snapshot()


@command("show", "all", doc="the process tree: arbiter, workers, dirty arbiter")
def show_all(control: Any, args: list[str]) -> Any:
    _no_args(args)
    arbiter = control.arbiter
    return {
        "arbiter": {
            "pid": arbiter.pid,
            "proc_name": arbiter.proc_name,
            "worker_class": arbiter.cfg.worker_class_str,
            "workers_target": arbiter.num_workers,
            "control_socket": control.path,
        },
        "workers": workers(control),
        "dirty": dirty_info(control),
    }


# -- act ----------------------------------------------------------------------------------


@command("worker", "add", doc="worker add [N]: N more workers (default 1)")
def worker_add(control: Any, args: list[str]) -> Any:
    count = _count(args)
    arbiter = control.arbiter
    arbiter.num_workers += count
    arbiter.wakeup()
    return {"added": count, "workers_target": arbiter.num_workers}


@command("worker", "remove", doc="worker remove [N]: N workers fewer (never below 1)")
def worker_remove(control: Any, args: list[str]) -> Any:
    count = _count(args)
    arbiter = control.arbiter
    target = max(1, arbiter.num_workers - count)
    removed = arbiter.num_workers - target
    if removed:
        arbiter.num_workers = target
        arbiter.wakeup()
    return {"removed": removed, "workers_target": arbiter.num_workers}


@command("worker", "kill", doc="worker kill PID: stop one worker gracefully (it is replaced)")
def worker_kill(control: Any, args: list[str]) -> Any:
    if len(args) != 1 or not args[0].isdigit():
        raise CommandError("usage: worker kill PID")
    pid = int(args[0])
    arbiter = control.arbiter
    child = arbiter.children.get(pid)
    if child is None:
        raise CommandError(f"no worker with pid {pid}")
    control.killed.add(pid)
    arbiter.retire(child)
    arbiter.wakeup()
    return {"killed": pid}


def _dirty(control: Any) -> Any:
    dirty = getattr(control.arbiter, "dirty", None)
    if dirty is None:
        raise CommandError("no dirty arbiter is running (set dirty_apps and dirty_workers)")
    return dirty


@command("dirty", "add", doc="dirty add [N]: N more dirty workers")
def dirty_add(control: Any, args: list[str]) -> Any:
    count = _count(args)
    return {"dirty_workers": _dirty(control).scale(count)}


@command("dirty", "remove", doc="dirty remove [N]: N dirty workers fewer")
def dirty_remove(control: Any, args: list[str]) -> Any:
    count = _count(args)
    return {"dirty_workers": _dirty(control).scale(-count)}


def _queue(control: Any, sig: int) -> None:
    arbiter = control.arbiter
    arbiter.SIG_QUEUE.put(sig)
    arbiter.wakeup()


@command("reload", doc="reload the configuration and replace the workers (HUP)")
def reload(control: Any, args: list[str]) -> Any:
    _no_args(args)
    _queue(control, signal.SIGHUP)
    return {"reloading": True}


@command("reopen", doc="reopen the log files (USR1)")
def reopen(control: Any, args: list[str]) -> Any:
    _no_args(args)
    _queue(control, signal.SIGUSR1)
    return {"reopening": True}


@command("shutdown", doc="shutdown [graceful|quick]: stop the server (TERM or INT)")
def shutdown(control: Any, args: list[str]) -> Any:
    mode = args[0].lower() if args else "graceful"
    if len(args) > 1 or mode not in ("graceful", "quick"):
        raise CommandError("usage: shutdown [graceful|quick]")
    _queue(control, signal.SIGTERM if mode == "graceful" else signal.SIGINT)
    return {"shutdown": mode, "pid": os.getpid()}


@command("help", doc="this list")
def help_(control: Any, args: list[str]) -> Any:
    return {"commands": [{"command": " ".join(w), "help": doc} for w, (_, doc) in COMMANDS.items()]}
