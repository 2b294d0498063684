"""A coverage-guided atheris (libFuzzer) harness for the HTTP/1.1 reader.

Each input is cut in two at a point its first byte chooses and fed to ``H1Connection``
like a server would (answering each request, reading pipelined ones), then ended. The
reader may refuse an input only with a ``ProtocolError``; any other exception is a crash
(libFuzzer saves the input and exits non-zero). The slowest input's CPU time is written to
the file named by ``FUZZ_SLOWEST_FILE`` whenever it grows.

Run: ``python tests/reliability/fuzz_atheris.py [libFuzzer flags] [corpus dirs]``, e.g.
``-runs=100000 -max_total_time=600 -seed=1 /tmp/corpus`` (``test_fuzz_atheris`` runs it
briefly in CI when atheris is installed).
"""

from __future__ import annotations

import os
import sys
import time

import atheris

with atheris.instrument_imports():
    from gunicorn.http.errors import ProtocolError
    from gunicorn.http.events import ConnectionClosed, EndOfMessage, Response
    from gunicorn.http.h1 import NEED_DATA, PAUSED, H1Connection
    from gunicorn.http.limits import Limits, Policy

SLOWEST_FILE = os.environ.get("FUZZ_SLOWEST_FILE")
_slowest = 0.0


def serve(pieces: list[bytes]) -> None:
    """Read every request of ``pieces`` (then EOF), answering each with an empty 200."""
    conn = H1Connection(Limits(), Policy(), clock=lambda: 0.0)
    feed = iter(pieces)
    for _ in range(100_000):
        try:
            event = conn.next_event()
        except ProtocolError:
            conn.error_response(ProtocolError())
            return
        if event is NEED_DATA:
            conn.receive_data(next(feed, b""))
        elif event is PAUSED:
            conn.send(Response(200, [(b"content-length", b"0")]))
            conn.send(EndOfMessage())
            if not conn.keep_alive:
                return
            conn.start_next_cycle()
        elif isinstance(event, ConnectionClosed):
            return
    raise AssertionError("the reader never settled")


def one_input(data: bytes) -> None:
    global _slowest
    if not data:
        return
    cut = 1 + data[0] * len(data) // 256
    start = time.thread_time()  # CPU time: a loaded machine does not inflate it
    serve([data[1:cut], data[cut:]])
    elapsed = time.thread_time() - start
    if elapsed > _slowest:
        _slowest = elapsed
        if SLOWEST_FILE:
            with open(SLOWEST_FILE, "w") as f:
                f.write(f"{elapsed * 1000:.3f}\n")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
