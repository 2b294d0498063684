"""The dirty manager as the control socket uses it: `dirty add/remove`, `show dirty`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from support import wait_until

GUNICORNC = str(Path(sys.executable).with_name("gunicornc"))
ECHO = "dirty_apps:Echo"


def ctl(path: str, command: str) -> Any:
    done = subprocess.run(
        [GUNICORNC, "-j", "-s", path, "-c", command],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    reply = json.loads(done.stdout)
    assert reply["status"] == "ok", reply
    return reply["data"]


def test_scale_and_info_through_the_control_socket(dirty_server: Any) -> None:
    runtime = tempfile.mkdtemp(prefix="gdirty-", dir="/tmp")
    try:
        sock = os.path.join(runtime, "c.ctl")
        server = dirty_server(
            f"--control-socket {sock} --dirty-workers 2 --dirty-app {ECHO}",
            "--dirty-app dirty_apps:Limited:2 web_apps:app",
        )
        info = ctl(sock, "show dirty")
        assert info["enabled"] is True
        assert info["pid"] == server.dirty_arbiter().pid
        assert sorted(w["pid"] for w in info["workers"]) == server.dirty_workers()
        apps = {a["import_path"]: a for a in info["apps"]}
        assert apps["dirty_apps:Limited"]["worker_count"] == 2
        assert ctl(sock, "dirty add 1") == {"dirty_workers": 3}
        server.wait_dirty_workers(3)
        assert ctl(sock, "dirty remove 5") == {"dirty_workers": 2}  # floor: Limited:2
        server.wait_dirty_workers(2)

        def booted() -> Any:
            workers = ctl(sock, "show dirty")["workers"]
            return len(workers) == 2 and all(w["booted"] for w in workers)

        wait_until(booted, timeout=10)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
