"""The access log cannot be written (a full disk): the server keeps answering every request
and says so once per worker process, in one line, never a traceback per request.

Two full devices: ``/dev/full`` (every write fails with ENOSPC) and a file on a tiny tmpfs
filled to the last block; on the tmpfs the space is then freed, and the log says it works
again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.fault_harness import WORKERS, bad_statuses, matrix, pids_seen, start
from tests.reliability.fault_harness import record_faults as record
from tests.reliability.load import Load
from tests.support import Gunicorn

WARNING = r"\[WARNING\] Cannot write to the access log '{path}' \(No space left on device\)"


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path) as mount:
        yield mount


@contextlib.contextmanager
def mounted_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root can mount one; elsewhere the test is skipped, saying why)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
        timeout=10,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=10)


def _fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` up to the last byte; returns the filler."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        block = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, block)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0")
    finally:
        os.close(fd)
    with pytest.raises(OSError) as full:
        (directory / "probe").write_bytes(b"x")
    assert full.value.errno == errno.ENOSPC
    return filler


def _check(server: Gunicorn, load: Load, worker: str, item: str, path: str) -> None:
    warnings = re.findall(WARNING.format(path=re.escape(path)), server.log)
    record(worker, item, load, warnings=len(warnings))
    assert load.lost == []
    assert bad_statuses(load) == {}
    # One line per worker process that tried to write, nothing per request.
    assert 1 <= len(warnings) <= len(pids_seen(load)) + 1
    assert "Traceback" not in server.log
    assert "Logging error" not in server.log


@pytest.mark.parametrize("worker", matrix(*WORKERS))
def test_access_log_on_dev_full(worker: str) -> None:
    server = start(worker, "--access-logfile", "/dev/full")
    try:
        with Load(server.address, lanes=4) as load:
            load.wait_answered(60)
        _check(server, load, worker, "access log on /dev/full", "/dev/full")
    finally:
        server.stop()


@pytest.mark.parametrize("worker", matrix(*WORKERS))
def test_access_log_on_a_full_tmpfs(worker: str, tiny_tmpfs: Path) -> None:
    log_path = tiny_tmpfs / "access.log"
    log_path.touch()
    filler = _fill(tiny_tmpfs)
    server = start(worker, "--access-logfile", str(log_path))
    try:
        with Load(server.address, lanes=4) as load:
            load.wait_answered(60)
            filler.unlink()
            server.wait_for("Writing to the access log .* works again", timeout=15)
            load.wait_answered(20)
        _check(server, load, worker, "access log on a full tmpfs", str(log_path))
        assert "GET /?id=" in log_path.read_text()
    finally:
        server.stop()
