"""Code reloading for development (``--reload``): watch source files, report changes.

A reloader is a daemon thread started in each worker. It calls ``callback(path)``
when a watched file changes and keeps watching afterwards. Watched: the files of
every imported module plus ``reload_extra_files``; entries containing ``*``, ``?``
or ``[`` are glob patterns (``**`` is recursive) expanded again at every check.
"""

from __future__ import annotations

import glob
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

Callback = Callable[[str], None]

_GLOB_CHARS = frozenset("*?[")


def _is_glob(entry: str) -> bool:
    return any(ch in _GLOB_CHARS for ch in entry)


def _module_files() -> set[str]:
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        if path.endswith((".pyc", ".pyo")):
            path = path[:-1]
        files.add(path)
    return files


class Reloader(threading.Thread):
    """Polling reloader: compares modification times every ``interval`` seconds."""

    def __init__(
        self,
        extra_files: Iterable[str] | None = None,
        interval: float = 1.0,
        callback: Callback | None = None,
    ) -> None:
        super().__init__(name="gunicorn-reloader", daemon=True)
        self._extra: list[str] = list(extra_files or [])
        self._interval = interval
        self._callback = callback
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def add_extra_file(self, filename: str) -> None:
        """Watch one more path or glob pattern."""
        with self._lock:
            self._extra.append(filename)

    def get_files(self) -> list[str]:
        """Every path watched right now (globs expanded)."""
        with self._lock:
            extra = list(self._extra)
        files = _module_files()
        for entry in extra:
            if _is_glob(entry):
                files.update(glob.glob(entry, recursive=True))
            else:
                files.add(entry)
        return sorted(files)

    def stop(self) -> None:
        self._stopped.set()

    def _notify(self, path: str) -> None:
        if self._callback is not None:
            self._callback(path)

    def start(self) -> None:
        # The first scan happens before the worker serves anything, so a file changed
        # after the first response is always a change (never mistaken for the baseline).
        self._mtimes: dict[str, float] = {}
        self._scan(first=True)
        super().start()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            self._scan(first=False)

    def _scan(self, first: bool) -> None:
        mtimes = self._mtimes
        for path in self.get_files():
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            previous = mtimes.get(path)
            mtimes[path] = mtime
            # A file seen for the first time is only a change when a glob found it
            # after the first scan (a new file matching a watched pattern).
            if previous is None:
                if not first and self._matches_glob(path):
                    self._notify(path)
                continue
            if mtime != previous:
                self._notify(path)

    def _matches_glob(self, path: str) -> bool:
        with self._lock:
            patterns = [e for e in self._extra if _is_glob(e)]
        return any(path in glob.glob(p, recursive=True) for p in patterns)


try:
    import inotify.adapters as _inotify_adapters
    import inotify.constants as _inotify_constants

    has_inotify = True
except ImportError:
    _inotify_adapters = None
    _inotify_constants = None
    has_inotify = False


class InotifyReloader(threading.Thread):
    """inotify-based reloader (needs the ``inotify`` package): watches module directories."""

    def __init__(
        self, extra_files: Iterable[str] | None = None, callback: Callback | None = None
    ) -> None:
        if not has_inotify:
            raise ImportError(
                "You must have the inotify module installed to use the inotify reloader"
            )
        super().__init__(name="gunicorn-reloader", daemon=True)
        self._callback = callback
        self._extra: list[str] = list(extra_files or [])
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        c = _inotify_constants
        self._mask = (
            c.IN_CREATE
            | c.IN_DELETE
            | c.IN_DELETE_SELF
            | c.IN_MODIFY
            | c.IN_MOVE_SELF
            | c.IN_MOVED_FROM
            | c.IN_MOVED_TO
            | c.IN_CLOSE_WRITE
        )
        self._watcher: Any = _inotify_adapters.Inotify()
        self._dirs: set[str] = set()

    def add_extra_file(self, filename: str) -> None:
        with self._lock:
            self._extra.append(filename)

    def stop(self) -> None:
        self._stopped.set()

    def _watched_files(self) -> set[str]:
        with self._lock:
            extra = list(self._extra)
        files = set()
        for path in _module_files():
            files.add(os.path.realpath(path))
        for entry in extra:
            if _is_glob(entry):
                files.update(os.path.realpath(p) for p in glob.glob(entry, recursive=True))
            else:
                files.add(os.path.realpath(entry))
        return files

    def _refresh_watches(self) -> set[str]:
        files = self._watched_files()
        for path in files:
            directory = os.path.dirname(path) or "."
            if directory not in self._dirs and os.path.isdir(directory):
                try:
                    self._watcher.add_watch(directory, mask=self._mask)
                except Exception:  # directory vanished or watch limit reached
                    continue
                self._dirs.add(directory)
        return files

    def start(self) -> None:
        # Watch before the worker serves anything: no change made after that is missed.
        self._files = self._refresh_watches()
        super().start()

    def run(self) -> None:
        files = self._files
        while not self._stopped.is_set():
            for event in self._watcher.event_gen(timeout_s=1, yield_nones=False):
                _header, _types, directory, name = event
                path = os.path.join(directory, name) if name else directory
                if os.path.realpath(path) in files and self._callback is not None:
                    self._callback(path)
                if self._stopped.is_set():
                    break
            files = self._refresh_watches()


def preferred_reloader() -> type[threading.Thread]:
    return InotifyReloader if has_inotify else Reloader


reloader_engines: dict[str, Any] = {
    "auto": lambda **kw: preferred_reloader()(**kw),
    "poll": Reloader,
    "inotify": InotifyReloader,
}


def make_reloader(engine: str, extra_files: Iterable[str], callback: Callback) -> Any:
    """Build the reloader for ``--reload-engine`` (``auto`` falls back to polling)."""
    factory = reloader_engines.get(engine, reloader_engines["auto"])
    return factory(extra_files=list(extra_files or []), callback=callback)
