"""The per-request cost of the HTTP/2 core (``gunicorn.http.h2.H2Connection``), in process.

A client-side ``h2`` connection sends batches of 8 GET requests (the header block h2load
sends). The server core receives each batch with one ``receive_data()`` call, takes its
events, and answers every request the way the driver does: ``Response(200)`` with
content-type and content-length, ``Data``, ``EndOfMessage`` and ``finish_stream``, then
one ``data_to_send()`` per batch. Only the server's calls are timed. The same loop runs
on a bare ``h2`` server connection with header validation off (``bare h2``): the ceiling
any server built on ``h2`` reaches; the ratio says how close the core gets.

``--instructions N`` counts instead of timing (needs valgrind): the client's request bytes
are recorded once, then replayed into a fresh server under callgrind, for 1 and for 1 + N
batches; the difference divided by 8N is the server's instructions per request, steady
on a shared machine where timings vary by 10-25 %.

Run with the project's interpreter from the repository root:
``.venv/bin/python benchmarks/h2_core_path.py --clock cpu --rounds 7`` or
``.venv/bin/python benchmarks/h2_core_path.py --instructions 200``.
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from h2.config import H2Configuration  # noqa: E402
from h2.connection import H2Connection as H2Engine  # noqa: E402
from h2.events import DataReceived, RequestReceived, ResponseReceived, StreamEnded  # noqa: E402
from h2.settings import SettingCodes, Settings  # noqa: E402

from gunicorn.http.connection import NEED_DATA  # noqa: E402
from gunicorn.http.events import Data, EndOfMessage, Request, Response  # noqa: E402
from gunicorn.http.h2 import H2Connection  # noqa: E402

Clock = Callable[[], float]
CLOCKS: dict[str, Clock] = {"perf": time.perf_counter, "cpu": time.process_time}

BATCH = 8
WARMUP_BATCHES = 64
# What h2load (nghttp2 1.52) sends for `h2load http://127.0.0.1:8765/`.
REQUEST_HEADERS = [
    (b":method", b"GET"),
    (b":path", b"/"),
    (b":scheme", b"http"),
    (b":authority", b"127.0.0.1:8765"),
    (b"user-agent", b"h2load nghttp2/1.52.0"),
]
BODY = b"Hello, world!\n"
RESPONSE_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(BODY))]
CLIENT_WINDOW = 2**30 - 1  # h2load opens a 1 GiB connection window


class Server:
    """The server side of one connection: ``serve`` is its whole job for one read."""

    def serve(self, data: bytes) -> bytes:
        raise NotImplementedError


class CoreServer(Server):
    def __init__(self) -> None:
        self.conn = H2Connection(clock=time.time)
        self.conn.initiate()

    def preface(self) -> bytes:
        return self.conn.data_to_send()

    def serve(self, data: bytes) -> bytes:
        conn = self.conn
        conn.receive_data(data)
        out = []
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            if type(event) is Request:
                sid = event.stream_id
                out.append(conn.send(Response(200, list(RESPONSE_HEADERS), stream_id=sid)))
                out.append(conn.send(Data(BODY, sid)))
                out.append(conn.send(EndOfMessage(None, sid)))
                conn.finish_stream(sid)
        out.append(conn.data_to_send())
        return b"".join(out)


class BareServer(Server):
    def __init__(self) -> None:
        self.conn = H2Engine(
            H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_inbound_headers=False,
                normalize_inbound_headers=False,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self.conn.initiate_connection()

    def preface(self) -> bytes:
        return self.conn.data_to_send()

    def serve(self, data: bytes) -> bytes:
        conn = self.conn
        headers = [(b":status", b"200"), *RESPONSE_HEADERS]
        for event in conn.receive_data(data):
            if type(event) is RequestReceived:
                sid = event.stream_id
                conn.send_headers(sid, headers)
                conn.send_data(sid, BODY, end_stream=True)
        return conn.data_to_send()


SERVERS: dict[str, Callable[[], CoreServer | BareServer]] = {
    "gunicorn core": CoreServer,
    "bare h2 (validation off)": BareServer,
}


class Pair:
    """A client and a server joined back to back, past the handshake. ``sent`` records
    every byte string the client gave the server."""

    def __init__(self, server: CoreServer | BareServer) -> None:
        self.server = server
        self.sent: list[bytes] = []
        client = H2Engine(H2Configuration(client_side=True, header_encoding=None))
        client.local_settings = Settings(
            client=True,
            initial_values={
                SettingCodes.ENABLE_PUSH: 0,
                SettingCodes.INITIAL_WINDOW_SIZE: CLIENT_WINDOW,
            },
        )
        client.initiate_connection()
        client.increment_flow_control_window(CLIENT_WINDOW + 1 - 65535)
        self.client = client
        to_client = server.preface()
        for _ in range(4):
            to_server = client.data_to_send()
            if to_server:
                self.sent.append(to_server)
                to_client += server.serve(to_server)
            client.receive_data(to_client)
            to_client = b""

    def requests(self) -> bytes:
        client = self.client
        for _ in range(BATCH):
            sid = client.get_next_available_stream_id()
            client.send_headers(sid, REQUEST_HEADERS, end_stream=True)
        data = client.data_to_send()
        self.sent.append(data)
        return data

    def check(self) -> None:
        """One batch end to end: every stream gets a 200 and the whole body."""
        statuses: dict[int, bytes] = {}
        bodies: dict[int, bytes] = {}
        ended: set[int] = set()
        for event in self.client.receive_data(self.server.serve(self.requests())):
            if isinstance(event, ResponseReceived):
                statuses[event.stream_id] = dict(event.headers or [])[b":status"]
            elif isinstance(event, DataReceived):
                bodies[event.stream_id] = bodies.get(event.stream_id, b"") + (event.data or b"")
            elif isinstance(event, StreamEnded):
                ended.add(event.stream_id)
        if len(ended) != BATCH or set(statuses.values()) != {b"200"}:
            raise SystemExit(f"unexpected replies: {statuses}, ended {sorted(ended)}")
        if set(bodies.values()) != {BODY}:
            raise SystemExit(f"unexpected bodies: {bodies}")

    def run(self, batches: int, clock: Clock) -> float:
        """Seconds the server spent on ``batches`` batches."""
        serve = self.server.serve
        client = self.client
        spent = 0.0
        for _ in range(batches):
            data = self.requests()
            start = clock()
            replies = serve(data)
            spent += clock() - start
            client.receive_data(replies)
        return spent


def replay(name: str, recording: list[bytes]) -> None:
    """Feed a fresh server what a client sent (the server's replies are dropped)."""
    serve = SERVERS[name]().serve
    for data in recording:
        serve(data)


def record(name: str, batches: int) -> list[bytes]:
    pair = Pair(SERVERS[name]())
    for _ in range(batches):
        pair.client.receive_data(pair.server.serve(pair.requests()))
    return pair.sent


# The callgrind child: replay the handshake and warm-up batches, then ``n`` more.
CHILD = """
import pickle, sys
sys.path.insert(0, {here!r})
import h2_core_path as bench
with open({recording!r}, "rb") as f:
    recording = pickle.load(f)
bench.replay({name!r}, recording[:len(recording) - {skip}])
"""


def instructions(name: str, batches: int, workdir: Path) -> float:
    """Server instructions per request, from callgrind runs over 1 and 1 + N batches."""
    recording = record(name, WARMUP_BATCHES + 1 + batches)
    path = workdir / "recording.pickle"
    path.write_bytes(pickle.dumps(recording))
    counts = []
    for skip in (batches, 0):
        script = workdir / "child.py"
        script.write_text(CHILD.format(here=str(HERE), recording=str(path), name=name, skip=skip))
        out = workdir / "callgrind.out"
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                str(script),
            ],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONHASHSEED="0"),
            timeout=900,
            check=True,
        )
        match = re.search(r"refs:\s+([\d,]+)", done.stderr)
        if match is None:
            raise SystemExit(f"no instruction count from callgrind:\n{done.stderr}")
        counts.append(int(match.group(1).replace(",", "")))
    return (counts[1] - counts[0]) / (batches * BATCH)


def measure(rounds: int, requests: int, clock: Clock) -> dict[str, list[float]]:
    """req/s of every server per round; the order alternates every round."""
    batches = max(1, requests // BATCH)
    rates: dict[str, list[float]] = {name: [] for name in SERVERS}
    names = list(SERVERS)
    for round_no in range(rounds):
        for name in names if round_no % 2 == 0 else names[::-1]:
            pair = Pair(SERVERS[name]())
            pair.check()
            pair.run(WARMUP_BATCHES, clock)
            gc.collect()
            rates[name].append(batches * BATCH / pair.run(batches, clock))
        print(f"round {round_no + 1}/{rounds} done", file=sys.stderr, flush=True)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument(
        "--requests", type=int, default=8_000, help="requests per server per round (8000)"
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: time.process_time (default, steadier on a shared machine); perf: wall",
    )
    parser.add_argument(
        "--instructions",
        type=int,
        metavar="N",
        help="count server instructions per request over N batches under callgrind instead",
    )
    args = parser.parse_args(argv)
    if args.instructions:
        if shutil.which("valgrind") is None:
            parser.error("--instructions needs valgrind")
        print("| server | instructions/request |")
        print("|---|---:|")
        with tempfile.TemporaryDirectory() as tmp:
            for name in SERVERS:
                count = instructions(name, args.instructions, Path(tmp))
                print(f"| {name} | {count:,.0f} |", flush=True)
        return 0
    if args.rounds < 1 or args.requests < BATCH:
        parser.error(f"--rounds must be positive and --requests at least {BATCH}")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    rates = measure(args.rounds, args.requests, CLOCKS[args.clock])
    print(
        f"Python {platform.python_version()}, h2 {metadata.version('h2')}, "
        f"hpack {metadata.version('hpack')}; load before {load}; {args.rounds} rounds of "
        f"{args.requests // BATCH * BATCH:,} requests (batches of {BATCH}), clock {args.clock}"
    )
    print("| server | median req/s | µs/request | req/s per round |")
    print("|---|---:|---:|---|")
    medians = {}
    for name, values in rates.items():
        median = statistics.median(values)
        medians[name] = median
        per_round = ", ".join(f"{value:,.0f}" for value in values)
        print(f"| {name} | {median:,.0f} | {1e6 / median:.1f} | {per_round} |")
    core, bare = medians.values()
    print(f"core / bare h2: {core / bare:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
