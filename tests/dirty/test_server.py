"""A real server with dirty workers, called from HTTP workers (sync and gthread)."""

from __future__ import annotations

import os
import signal
import stat
import threading
from typing import Any

import psutil
import pytest
from support import wait_until

ECHO = "dirty_apps:Echo"
MODEL = "dirty_apps:Model"
BASE = ("-w", "2", "--dirty-workers", "2", "--dirty-app", ECHO, "--dirty-app", MODEL)
UNSUP = "Unsupported type for TLV encoding: object"


def base(*extra: str) -> tuple[str, ...]:
    return (*BASE, *extra, "--no-control-socket", "web_apps:app")


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_view_calls_dirty_app_round_robin(dirty_server: Any, worker_class: str) -> None:
    server = dirty_server(*base("-k", worker_class))
    dirty = server.dirty_workers()
    assert len(dirty) == 2
    seen = set()
    for i in range(4):
        answer = server.call(app=ECHO, action="ping", args=[i])
        assert answer["result"]["value"] == i
        seen.add(answer["result"]["pid"])
    assert seen == set(dirty)  # both dirty workers took calls


def test_allocation_class_attribute_and_spec(dirty_server: Any, tmp_path: Any) -> None:
    server = dirty_server(
        f"--dirty-workers 3 --dirty-app {ECHO} --dirty-app {MODEL}",
        "--dirty-app dirty_apps:Limited:2 --no-control-socket web_apps:app",
    )
    model = {server.call(app=MODEL, action="predict", args=[2])["result"]["pid"] for _ in range(4)}
    limited = {server.call(app="dirty_apps:Limited", action="where")["result"] for _ in range(6)}
    assert len(model) == 1
    assert len(limited) == 2
    inits = (tmp_path / "init.log").read_text().split("\n")
    assert sum(1 for line in inits if line.startswith("Model ")) == 1
    assert sum(1 for line in inits if line.startswith("Echo ")) == 3


def test_streaming_sync_async_and_coroutine(dirty_server: Any) -> None:
    server = dirty_server(*base())
    chunks = server.call(op="stream", app=ECHO, action="count", args=[3])["result"]
    assert chunks == ["chunk-0", "chunk-1", "chunk-2"]
    assert server.call(op="stream", app=ECHO, action="acount", args=[4])["result"] == [0, 1, 2, 3]
    assert server.call(app=ECHO, action="double", args=[21])["result"] == 42
    sizes = server.call(op="stream", app=ECHO, action="blob", args=[1 << 20, 65536], sizes=True)
    assert sum(sizes["result"]) == 1 << 20


def test_stash_shared_across_http_workers(dirty_server: Any) -> None:
    server = dirty_server(*base())
    put = server.call(op="put", table="sessions", key="abc", value={"user": 7})
    writer = put["worker"]

    def from_other_worker() -> dict[str, Any] | None:
        answer = server.call(op="get", table="sessions", key="abc")
        return answer if answer["worker"] != writer else None

    answer = wait_until(from_other_worker, timeout=10, interval=0)
    assert answer["result"] == {"user": 7}
    assert server.call(op="keys", table="sessions")["result"] == ["abc"]
    assert server.call(op="get", table="sessions", key="nope")["result"] == "<missing>"
    missing = server.call(op="info", table="no-such-table")
    assert missing["error"] == "StashTableNotFoundError"


def test_bad_calls_give_precise_errors(dirty_server: Any) -> None:
    server = dirty_server(*base())
    cases = [
        ({"app": "dirty_apps:Nope", "action": "x"}, "DirtyAppNotFoundError", "dirty_apps:Nope"),
        ({"app": ECHO, "action": "missing"}, "DirtyAppError", "Unknown action: 'missing'"),
        ({"app": ECHO, "action": "_secret"}, "DirtyAppError", "Unknown action: '_secret'"),
        ({"app": ECHO, "action": "fail", "args": ["bad"]}, "DirtyAppError", "ValueError: bad"),
        ({"app": ECHO, "action": "unencodable"}, "DirtyProtocolError", "Unsupported type"),
        ({"app": ECHO, "action": "ping", "unencodable_arg": True}, "DirtyProtocolError", UNSUP),
        ({"app": ECHO, "action": "ping", "huge_arg": True}, "DirtyProtocolError", "too large"),
    ]
    for query, error, message in cases:
        answer = server.call(**query)
        assert answer.get("error") == error, (query, answer)
        assert message in answer["message"], (query, answer)
    # each failure is one line in the server log, and the pool still works
    server.wait_for("Dirty call dirty_apps:Echo.fail failed: ValueError: bad")
    server.wait_for("Dirty call rejected: Dirty app not found: dirty_apps:Nope")
    assert server.call(app=ECHO, action="ping", args=[1])["result"]["value"] == 1


def test_broken_app_specs(dirty_server: Any) -> None:
    server = dirty_server(
        f"--dirty-workers 1 --dirty-app {ECHO} --dirty-app no_such_module:App",
        "--dirty-app dirty_apps:NotAnApp --dirty-app dirty_apps:BadInit",
        "--no-control-socket web_apps:app",
    )
    server.wait_for("Dirty app no_such_module:App cannot be loaded: cannot import 'no_such_module'")
    server.wait_for("Dirty app dirty_apps:NotAnApp cannot be loaded: .*not a dirty app")
    server.wait_for("Dirty app dirty_apps:BadInit failed to load in worker .*weights file missing")
    missing = server.call(app="no_such_module:App", action="x")
    assert missing["error"] == "DirtyAppNotFoundError"
    assert "No module named 'no_such_module'" in missing["message"]
    not_app = server.call(app="dirty_apps:NotAnApp", action="x")
    assert not_app["error"] == "DirtyAppNotFoundError"
    assert "not a dirty app" in not_app["message"]
    bad_init = server.call(app="dirty_apps:BadInit", action="go")
    assert bad_init["error"] == "DirtyAppNotFoundError"
    assert "weights file missing" in bad_init["message"]
    assert server.call(app=ECHO, action="ping", args=[2])["result"]["value"] == 2


def test_process_titles_and_socket_permissions(dirty_server: Any) -> None:
    server = dirty_server(*base())
    assert "dirty-arbiter" in " ".join(server.dirty_arbiter().cmdline())
    for pid in server.dirty_workers():
        assert "dirty-worker [" in " ".join(psutil.Process(pid).cmdline())
    path = server.socket_path()
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    sockets = [f for f in os.listdir(os.path.dirname(path)) if f.endswith(".sock")]
    assert "arbiter.sock" in sockets and any(f.startswith("worker-") for f in sockets)
    for name in sockets:
        assert stat.S_IMODE(os.stat(os.path.join(os.path.dirname(path), name)).st_mode) == 0o600


def test_killed_dirty_worker_fails_its_call_and_is_replaced(dirty_server: Any) -> None:
    server = dirty_server(*base())
    old = server.dirty_workers()
    results: list[dict[str, Any]] = []
    caller = threading.Thread(
        target=lambda: results.append(server.call(app=MODEL, action="predict", args=[1.0]))
    )
    # Model lives in one worker only: block it with a slow call first.
    slow: list[dict[str, Any]] = []
    blocker = threading.Thread(
        target=lambda: slow.append(server.call(app=ECHO, action="sleep", args=[30], timeout=20))
    )
    blocker.start()
    server.wait_for("Booting dirty worker")  # already there; wait for the call to land:
    victim = wait_until(lambda: _busy_worker(server, old), timeout=10)
    os.kill(victim, signal.SIGKILL)
    blocker.join(15)
    assert slow and slow[0]["error"] == "DirtyWorkerError", slow
    assert f"Dirty worker {victim}" in slow[0]["message"]
    server.wait_for(rf"Dirty worker \(pid:{victim}\) was sent SIGKILL")
    new = server.wait_dirty_workers(2, exclude=[victim])
    assert len(set(new) - set(old)) == 1
    caller.start()
    caller.join(15)
    assert "result" in results[0], results
    for i in range(4):
        assert server.call(app=ECHO, action="ping", args=[i])["result"]["value"] == i


def _busy_worker(server: Any, pids: list[int]) -> int | None:
    """The dirty worker currently sleeping in a call (state S with a running task)."""
    for pid in pids:
        if _in_sleep(pid):
            return pid
    return None


def _in_sleep(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
    except OSError:
        return False
    return "hrtimer" in wchan or "nanosleep" in wchan


def test_timeout_replaces_the_stuck_worker(dirty_server: Any) -> None:
    server = dirty_server(*base("--dirty-timeout", "1"))
    old = server.dirty_workers()
    answer = server.call(app=ECHO, action="sleep", args=[30])
    assert answer["error"] == "DirtyTimeoutError"
    assert answer["message"] == "Dirty call dirty_apps:Echo.sleep timed out after 1s"
    assert answer["details"] == {"timeout": 1}
    server.wait_for("Dirty call dirty_apps:Echo.sleep timed out after 1s on dirty worker")
    new = server.wait_dirty_workers(2, exclude=[p for p in old if p != _survivor(server, old)])
    assert len(set(old) & set(new)) == 1
    # the next calls get their own answers (no late reply from the killed task)
    for i in range(4):
        assert server.call(app=ECHO, action="ping", args=[i])["result"]["value"] == i


def _survivor(server: Any, old: list[int]) -> int:
    live = set(server.dirty_workers())
    survivors = [p for p in old if p in live]
    return survivors[0] if survivors else -1


def test_client_timeout_then_next_call_is_clean(dirty_server: Any) -> None:
    server = dirty_server("-w", "1", *base()[2:])
    late = server.call(app=ECHO, action="sleep", args=[1.5], client_timeout=0.3)
    assert late["error"] == "DirtyTimeoutError"
    assert "Timed out after 0.3s waiting for dirty_apps:Echo.sleep" in late["message"]
    # same HTTP worker, same thread: the next call must not see the late "slept" answer
    answer = server.call(app=ECHO, action="ping", args=["fresh"])
    assert answer["result"]["value"] == "fresh"


def test_dirty_arbiter_killed_is_respawned(dirty_server: Any) -> None:
    server = dirty_server(*base())
    arbiter = server.dirty_arbiter()
    old_workers = server.dirty_workers()
    assert server.call(app=ECHO, action="ping")["result"]
    running: list[dict[str, Any]] = []
    caller = threading.Thread(
        target=lambda: running.append(server.call(app=ECHO, action="sleep", args=[30]))
    )
    caller.start()
    wait_until(lambda: _busy_worker(server, old_workers), timeout=10)
    arbiter.kill()
    caller.join(15)
    assert running and running[0]["error"] == "DirtyConnectionError", running
    assert "closed the connection during dirty_apps:Echo.sleep" in running[0]["message"]
    server.wait_for(rf"Dirty arbiter \(pid:{arbiter.pid}\) was sent SIGKILL")
    # its workers notice and exit; a new arbiter starts new workers
    wait_until(lambda: not any(_alive(p) for p in old_workers), timeout=10)
    server.wait_for(r"Dirty arbiter booted", count=2)
    server.wait_for(r"Dirty worker \d+ ready", count=4)

    def works() -> dict[str, Any] | None:
        answer = server.call(app=ECHO, action="ping", args=["again"])
        return answer if "result" in answer else None

    assert wait_until(works, timeout=10)["result"]["value"] == "again"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_term_with_a_task_running_finishes_it(dirty_server: Any) -> None:
    server = dirty_server(*base())
    results: list[dict[str, Any]] = []
    caller = threading.Thread(
        target=lambda: results.append(server.call(app=ECHO, action="sleep", args=[1.0]))
    )
    caller.start()
    wait_until(lambda: _busy_worker(server, server.dirty_workers()), timeout=10)
    dirty = [server.dirty_arbiter().pid, *server.dirty_workers()]
    server.send(signal.SIGTERM)
    caller.join(15)
    assert results and results[0]["result"]["slept"] == 1.0, results
    assert server.wait() == 0
    assert not any(_alive(p) for p in dirty)
    assert "Dirty arbiter exiting" in server.log
