"""The polling reloader: watched files, globs re-expanded on every check, engine choice."""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

from gunicorn import reloader


def touch(path: Path, delta: float = 2.0) -> None:
    """Change the mtime of ``path`` (creating it) by a visible amount."""
    if not path.exists():
        path.write_text("x")
        return
    mtime = path.stat().st_mtime + delta
    os.utime(path, (mtime, mtime))


@pytest.fixture
def changes() -> queue.SimpleQueue[str]:
    return queue.SimpleQueue()


@pytest.fixture
def start(changes: queue.SimpleQueue[str]) -> Iterator[object]:
    started: list[reloader.Reloader] = []

    def run(*extra: str) -> reloader.Reloader:
        r = reloader.Reloader(extra_files=list(extra), interval=0.05, callback=changes.put)
        r.start()
        started.append(r)
        return r

    yield run
    for r in started:
        r.stop()
        r.join(timeout=2)


def next_change(changes: queue.SimpleQueue[str], timeout: float = 3.0) -> str:
    return changes.get(timeout=timeout)


def test_extra_file_change_is_reported_and_watching_goes_on(
    start: object, changes: queue.SimpleQueue[str], tmp_path: Path
) -> None:
    target = tmp_path / "settings.toml"
    target.write_text("a")
    start(str(target))  # type: ignore[operator]
    with pytest.raises(queue.Empty):
        next_change(changes, timeout=0.3)  # nothing changed yet
    touch(target)
    assert next_change(changes) == str(target)
    touch(target)  # still watched after the first change
    assert next_change(changes) == str(target)


def test_glob_is_expanded_again_on_each_check(
    start: object, changes: queue.SimpleQueue[str], tmp_path: Path
) -> None:
    (tmp_path / "a.html").write_text("a")
    start(str(tmp_path / "*.html"))  # type: ignore[operator]
    with pytest.raises(queue.Empty):
        next_change(changes, timeout=0.3)
    new = tmp_path / "b.html"
    new.write_text("b")  # created after the watch started
    assert next_change(changes) == str(new)
    touch(new)
    assert next_change(changes) == str(new)
    (tmp_path / "ignored.txt").write_text("no")
    with pytest.raises(queue.Empty):
        next_change(changes, timeout=0.3)


def test_double_star_is_recursive(
    start: object, changes: queue.SimpleQueue[str], tmp_path: Path
) -> None:
    deep = tmp_path / "templates" / "emails" / "en" / "welcome.txt"
    deep.parent.mkdir(parents=True)
    deep.write_text("hi")
    start(str(tmp_path / "templates" / "**" / "*.txt"))  # type: ignore[operator]
    next_change_absent(changes)
    touch(deep)
    assert next_change(changes) == str(deep)


def next_change_absent(changes: queue.SimpleQueue[str]) -> None:
    with pytest.raises(queue.Empty):
        next_change(changes, timeout=0.3)


def test_imported_modules_are_watched(tmp_path: Path) -> None:
    r = reloader.Reloader()
    files = r.get_files()
    assert reloader.__file__ in files
    assert all(not f.endswith(".pyc") for f in files)


def test_added_file_is_watched(
    start: object, changes: queue.SimpleQueue[str], tmp_path: Path
) -> None:
    target = tmp_path / "broken.py"
    target.write_text("x =")
    r = start()  # type: ignore[operator]
    r.add_extra_file(str(target))
    next_change_absent(changes)
    touch(target)
    assert next_change(changes) == str(target)


def test_engine_choice() -> None:
    poll = reloader.make_reloader("poll", [], print)
    assert type(poll) is reloader.Reloader
    auto = reloader.make_reloader("auto", [], print)
    assert isinstance(auto, reloader.InotifyReloader if reloader.has_inotify else reloader.Reloader)
    if not reloader.has_inotify:
        with pytest.raises(ImportError, match="inotify"):
            reloader.make_reloader("inotify", [], print)
