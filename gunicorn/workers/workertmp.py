"""The heartbeat file shared by a worker and its arbiter.

The arbiter creates one unlinked temporary file per worker before forking.
The worker bumps its modification time with :meth:`WorkerTmp.notify`; the
arbiter reads it with :meth:`WorkerTmp.last_update` and kills a silent worker.
The first bytes of the file carry two flags the worker sets for the arbiter:
its boot state (booted, or serving an error app after a failed load in
``--reload`` mode) and a request to reload the code.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from gunicorn import osutil

BOOTING = b""
BOOTED = b"B"
BROKEN = b"E"
RELOAD = b"R"
_NO_RELOAD = b"-"


class WorkerTmp:
    """Heartbeat file of one worker."""

    def __init__(self, cfg: Any) -> None:
        tmp_dir = cfg.worker_tmp_dir
        if tmp_dir and not os.path.isdir(tmp_dir):
            raise RuntimeError(f"{tmp_dir} doesn't exist. Can't create workertmp.")
        old_umask = os.umask(cfg.umask)
        try:
            fd, name = tempfile.mkstemp(prefix="wgunicorn-", dir=tmp_dir)
        finally:
            os.umask(old_umask)
        try:
            uid, gid = cfg.uid, cfg.gid
            if uid != os.geteuid() or gid != os.getegid():
                osutil.chown(name, uid, gid)
            os.unlink(name)
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd
        self.notify()

    def notify(self) -> None:
        """Record a sign of life (the file mtime becomes the monotonic clock)."""
        now = time.monotonic()
        os.utime(self.fileno(), (now, now))

    def last_update(self) -> float:
        """Monotonic time of the last :meth:`notify`."""
        return os.fstat(self.fileno()).st_mtime

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("heartbeat file is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    # -- flags the worker sets for the arbiter ------------------------------------------

    # A write sets the file's mtime to the wall clock, which is not the heartbeat's clock:
    # the worker's flags count as a heartbeat (it is alive); the arbiter's write keeps the
    # last heartbeat as it was.

    def mark_booted(self) -> None:
        """The worker loaded its application and is about to serve."""
        os.pwrite(self.fileno(), BOOTED, 0)
        self.notify()

    def mark_broken(self) -> None:
        """The application failed to load; the worker serves an error page."""
        os.pwrite(self.fileno(), BROKEN, 0)
        self.notify()

    def request_reload(self) -> None:
        """Ask the arbiter to replace the workers (code changed under ``--reload``)."""
        os.pwrite(self.fileno(), RELOAD, 1)
        self.notify()

    def clear_reload(self) -> None:
        last = self.last_update()
        os.pwrite(self.fileno(), _NO_RELOAD, 1)
        os.utime(self.fileno(), (last, last))

    def boot_state(self) -> bytes:
        """``BOOTING``, ``BOOTED`` or ``BROKEN``."""
        state = os.pread(self.fileno(), 1, 0)
        return state if state in (BOOTED, BROKEN) else BOOTING

    def reload_requested(self) -> bool:
        return os.pread(self.fileno(), 1, 1) == RELOAD
