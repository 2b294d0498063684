"""Helpers for control-socket and metrics tests: a private control directory per test,
the real ``gunicornc`` script, and servers started with that directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support import Gunicorn, wait_until

#: The console script of the project's virtualenv.
GUNICORNC = str(Path(sys.executable).with_name("gunicornc"))
APPS = os.path.dirname(os.path.abspath(__file__))


@contextmanager
def control_dir() -> Iterator[str]:
    """A short private directory standing for $XDG_RUNTIME_DIR (unix paths are short)."""
    path = tempfile.mkdtemp(prefix="gctl-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def env_for(runtime_dir: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "XDG_RUNTIME_DIR": runtime_dir, **extra}
    env.pop("GUNICORN_CMD_ARGS", None)
    return env


def server(runtime_dir: str, *args: str, app: str = "ctl_apps:app", **kwargs: Any) -> Gunicorn:
    """A gunicorn serving ``app`` with ``runtime_dir`` as its $XDG_RUNTIME_DIR."""
    env = {"XDG_RUNTIME_DIR": runtime_dir, **kwargs.pop("env", {})}
    return Gunicorn(*args, app, cwd=APPS, env=env, **kwargs)


def control_path(server: Gunicorn) -> str:
    """The control socket path the server logged."""
    log = server.wait_for(r"Control socket listening at: ")
    line = next(ln for ln in log.splitlines() if "Control socket listening at: " in ln)
    return line.split("Control socket listening at: ", 1)[1].strip()


def gunicornc(
    *args: str, runtime_dir: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``gunicornc`` (bounded in time)."""
    return subprocess.run(
        [GUNICORNC, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=30,
        env=env_for(runtime_dir, **(env or {})),
    )


def ctl_json(path: str, command: str, runtime_dir: str) -> Any:
    """``gunicornc -j -s PATH -c COMMAND``: the reply's data (asserts success)."""
    done = gunicornc("-j", "-s", path, "-c", command, runtime_dir=runtime_dir)
    assert done.returncode == 0, done.stderr + done.stdout
    reply = json.loads(done.stdout)
    assert reply["status"] == "ok"
    return reply["data"]


def wait_metric(path: str, runtime_dir: str, key: str, expected: int, timeout: float = 10) -> Any:
    """Wait until ``show metrics`` has ``data[key] == expected``; return the data."""

    def check() -> Any:
        data = ctl_json(path, "show metrics", runtime_dir)
        return data if data[key] == expected else None

    return wait_until(check, timeout=timeout)
