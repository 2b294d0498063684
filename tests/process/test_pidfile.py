"""gunicorn.pidfile with real processes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gunicorn.pidfile import Pidfile


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_create_writes_pid_with_mode_0644(tmp_path: Path) -> None:
    path = tmp_path / "g.pid"
    old = os.umask(0o077)
    try:
        Pidfile(str(path)).create(os.getpid())
    finally:
        os.umask(old)
    assert path.read_text() == f"{os.getpid()}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["g.pid"]  # no temp file left


def test_stale_pid_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "g.pid"
    path.write_text(f"{dead_pid()}\n")
    Pidfile(str(path)).create(os.getpid())
    assert path.read_text() == f"{os.getpid()}\n"


def test_garbage_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "g.pid"
    path.write_text("not a pid")
    Pidfile(str(path)).create(os.getpid())
    assert int(path.read_text()) == os.getpid()


def test_live_pid_of_another_process_is_refused(tmp_path: Path, live_pid: int) -> None:
    path = tmp_path / "g.pid"
    path.write_text(f"{live_pid}\n")
    with pytest.raises(RuntimeError) as info:
        Pidfile(str(path)).create(os.getpid())
    assert str(info.value) == f"Already running on PID {live_pid} (or pid file '{path}' is stale)"
    assert path.read_text() == f"{live_pid}\n"


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="doesn't exist"):
        Pidfile(str(tmp_path / "nope" / "g.pid")).create(os.getpid())


def test_unlink_only_when_it_holds_our_pid(tmp_path: Path, live_pid: int) -> None:
    path = tmp_path / "g.pid"
    pidfile = Pidfile(str(path))
    pidfile.create(os.getpid())
    path.write_text(f"{live_pid}\n")  # someone else took the file over
    pidfile.unlink()
    assert path.exists()
    path.write_text(f"{os.getpid()}\n")
    pidfile.unlink()
    assert not path.exists()


def test_rename_moves_the_pid(tmp_path: Path) -> None:
    pidfile = Pidfile(str(tmp_path / "g.pid"))
    pidfile.create(os.getpid())
    pidfile.rename(str(tmp_path / "g.pid.oldbin"))
    assert not (tmp_path / "g.pid").exists()
    assert (tmp_path / "g.pid.oldbin").read_text() == f"{os.getpid()}\n"
    assert pidfile.fname == str(tmp_path / "g.pid.oldbin")


def test_validate(tmp_path: Path, live_pid: int) -> None:
    path = tmp_path / "g.pid"
    pidfile = Pidfile(str(path))
    assert pidfile.validate() is None
    path.write_text(str(live_pid))
    assert pidfile.validate() == live_pid
    path.write_text(str(dead_pid()))
    assert pidfile.validate() is None
