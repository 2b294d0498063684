"""A real ``gunicorn`` process for tests: started on 127.0.0.1:0, stopped and reaped always.

The application source is written into a temporary directory and loaded with ``--chdir``.
The bound address and worker pids are read from the error log, as an operator would.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import TracebackType

GUNICORN = [sys.executable, "-m", "gunicorn"]
_LISTENING = re.compile(r"Listening at: (\S+) \((\d+)\)")
_BOOTING = re.compile(r"Booting worker with pid: (\d+)")


class GunicornProcess:
    """``with GunicornProcess(tmp_path, APP, "-k", "gthread") as server: ...``"""

    def __init__(self, directory: Path, app_source: str, *args: str, app: str = "app:app") -> None:
        self.directory = directory
        self.args = list(args)
        self.app = app
        (directory / "app.py").write_text(textwrap.dedent(app_source))
        self.log_path = directory / "gunicorn.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.host = "127.0.0.1"
        self.port = 0
        self.master_pid = 0

    def __enter__(self) -> GunicornProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 15.0) -> None:
        command = [
            *GUNICORN,
            "--bind",
            "127.0.0.1:0",
            "--chdir",
            str(self.directory),
            "--log-level",
            "debug",
            "--error-logfile",
            str(self.log_path),
            *self.args,
            self.app,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("WEB_CONCURRENCY", None)
        env.pop("GUNICORN_CMD_ARGS", None)
        self.proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env
        )
        match = self.wait_for(_LISTENING, timeout)
        self.url = match.group(1)
        self.master_pid = int(match.group(2))
        self.port = int(self.url.rsplit(":", 1)[1])
        self.wait_for(_BOOTING, timeout)
        self.wait_until_serving(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, pattern: re.Pattern[str] | str, timeout: float = 10.0) -> re.Match[str]:
        """Wait until the error log matches ``pattern``; fail if the server died first."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log())
            if match:
                return match
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited ({self.proc.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{regex.pattern!r} not logged in {timeout}s:\n{self.log()}")
            time.sleep(0.02)

    def worker_pids(self) -> list[int]:
        return [int(pid) for pid in _BOOTING.findall(self.log())]

    def wait_until_serving(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def signal(self, sig: signal.Signals) -> None:
        """Signal the master (the pid it logs, which may differ from the launched one)."""
        os.kill(self.master_pid or self._launched_pid(), sig)

    def _launched_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def master_alive(self) -> bool:
        try:
            os.kill(self.master_pid, 0)
        except ProcessLookupError:
            return False
        return _state(self.master_pid) not in ("Z", "X", "")

    def wait(self, timeout: float = 15.0) -> int:
        """Wait until the master is gone; the launched process's exit status."""
        deadline = time.monotonic() + timeout
        while self.master_pid and self.master_alive():
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("gunicorn master", timeout)
            time.sleep(0.02)
        assert self.proc is not None
        return self.proc.wait(max(0.1, deadline - time.monotonic()))

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        for pid in {self.master_pid, proc.pid} - {0}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.wait(10)
        except subprocess.TimeoutExpired:
            for pid in {self.master_pid, proc.pid} - {0}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait(5)


def _state(pid: int) -> str:
    """The process state letter from /proc (empty when the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""
