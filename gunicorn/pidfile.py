"""The master's PID file: written atomically, refused when another live process owns it."""

from __future__ import annotations

import errno
import os
import tempfile


class Pidfile:
    """Manage one PID file path for one process."""

    def __init__(self, fname: str) -> None:
        self.fname = fname
        self.pid: int | None = None

    def create(self, pid: int) -> None:
        """Write ``pid`` to the file (mode 0644, atomic rename).

        Raises RuntimeError when the file names another live process.
        """
        other = self.validate()
        if other and other != os.getpid():
            raise RuntimeError(
                f"Already running on PID {other} (or pid file '{self.fname}' is stale)"
            )
        self.pid = pid
        directory = os.path.dirname(self.fname)
        if directory and not os.path.isdir(directory):
            raise RuntimeError(f"{directory} doesn't exist. Can't create pidfile.")
        fd, tmp_name = tempfile.mkstemp(prefix=".pid-", dir=directory or None)
        try:
            os.write(fd, f"{pid}\n".encode())
            os.fchmod(fd, 0o644)
        finally:
            os.close(fd)
        try:
            os.rename(tmp_name, self.fname)
        except BaseException:
            os.unlink(tmp_name)
            raise

    def rename(self, path: str) -> None:
        """Move our PID to ``path`` (used around a USR2 upgrade)."""
        self.unlink()
        self.fname = path
        if self.pid is not None:
            self.create(self.pid)

    def unlink(self) -> None:
        """Remove the file if it still holds our PID."""
        if self.pid is None:
            return
        try:
            with open(self.fname) as f:
                content = f.read().strip()
            if content and int(content) == self.pid:
                os.unlink(self.fname)
        except (OSError, ValueError):
            pass

    def validate(self) -> int | None:
        """The PID in the file if that process is alive, else None (missing or stale)."""
        if not self.fname:
            return None
        try:
            with open(self.fname) as f:
                content = f.read().strip()
        except FileNotFoundError:
            return None
        try:
            pid = int(content)
        except ValueError:
            return None
        if pid <= 0:
            return None
        try:
            os.kill(pid, 0)
        except OSError as exc:
            if exc.errno == errno.ESRCH:
                return None
            if exc.errno == errno.EPERM:
                return pid
            raise
        return pid
