"""The unix socket file is deleted under a running server (what a user expects).

The master notices within a loop turn (about a second), logs one warning naming the path,
binds a new socket there and hands it to a new generation of workers, the route a HUP
takes; the current workers finish what they hold and stop. So: requests in flight on the
old socket and on the other listener (TCP) are answered, new clients can connect to the
path again, and nothing is lost.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from tests.reliability.fault_harness import (
    WORKERS,
    bad_statuses,
    matrix,
    record_faults,
    server_args,
)
from tests.reliability.load import Load
from tests.support import Gunicorn, parse_url, request

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("worker", matrix(*WORKERS))
def test_deleted_unix_socket_is_bound_again(worker: str, tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    args = server_args(worker, "-b", f"unix:{path}", "-b", "127.0.0.1:0")
    with Gunicorn(*args) as server:
        server.wait_workers(2, timeout=20)
        listening = re.search(r"Listening at: (\S+)", server.log)
        assert listening is not None
        tcp = parse_url(listening.group(1).split(",")[1])
        in_flight: list[tuple[int, bytes]] = []

        def slow_request() -> None:
            in_flight.append(request(str(path), "/sleep?t=1.5", timeout=20))

        with Load(tcp, lanes=4) as other_listener:
            other_listener.wait_answered(30)
            slow = threading.Thread(target=slow_request, daemon=True)
            slow.start()
            server.wait_for("in flight: t=1.5", timeout=10)
            os.unlink(path)
            server.wait_for(f"Unix socket {re.escape(str(path))} was removed", timeout=10)
            with Load(str(path), lanes=4) as again:
                again.wait_answered(30, timeout=20)
            slow.join(20)
            other_listener.wait_answered(20)
        record_faults(worker, "unix socket file deleted (TCP listener)", other_listener)
        record_faults(worker, "unix socket file deleted (new clients)", again)
        assert other_listener.lost == [] and bad_statuses(other_listener) == {}
        assert again.lost == [] and bad_statuses(again) == {}
        assert [status for status, _ in in_flight] == [200]
        assert server.count(r"\[WARNING\] Unix socket .* was removed") == 1
        assert "listening there again" in server.log
        assert path.exists()
        server.stop()
        assert not path.exists()  # the new socket file is ours: removed at exit
