"""HTTP/2 throughput and latency under h2load: this checkout against upstream gunicorn.

h2load (pinned to core 1) loads one server at a time (pinned to core 0, one worker
process) over h2c with prior knowledge on 127.0.0.1. Servers run in interleaved rounds,
each round in a fresh process; the table gives median requests/s, median p99 latency
(computed from h2load's per-request log) and, for the download scenario, MiB/s.
Upstream gunicorn 27.0.1, uvicorn and h2 live in ``benchmarks/.venv-upstream``.

Run with the project's interpreter: ``.venv/bin/python benchmarks/h2load.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, ResponseReceived, StreamEnded, StreamReset
from h2_ceiling import reference_loop_us
from server import (
    CLIENT_CORE,
    OURS_VENV,
    SERVER_CORE,
    UPSTREAM_GUNICORN,
    UPSTREAM_VENV,
    BenchError,
    free_port,
    launched,
    machine_line,
    package_version,
    run_checked,
    upstream_version,
)

UPSTREAM_PACKAGES = (f"gunicorn=={UPSTREAM_GUNICORN}", "uvicorn[standard]", "h2")
HELLO_BODY = b"Hello, World!"
DOWNLOAD_SIZE = 1024 * 1024
DOWNLOAD_PATH = f"/bytes/{DOWNLOAD_SIZE}"
WARMUP_SECONDS = 1
WARMUP_DOWNLOADS = 5
CHECK_TIMEOUT = 10.0


@dataclass(frozen=True)
class ServerSpec:
    venv: Path
    worker: str
    app: str
    label: str


SERVERS = {
    "ours": ServerSpec(OURS_VENV, "gthread", "apps_h2:app", "ours gthread"),
    "upstream": ServerSpec(
        UPSTREAM_VENV, "gthread", "apps_h2:app", f"gunicorn {UPSTREAM_GUNICORN} gthread"
    ),
    "upstream-asgi": ServerSpec(
        UPSTREAM_VENV, "asgi", "apps_h2:asgi_app", f"gunicorn {UPSTREAM_GUNICORN} asgi"
    ),
    "ours-asgi": ServerSpec(OURS_VENV, "asgi", "apps_h2:asgi_app", "ours asgi"),
}
DEFAULT_SERVERS = "ours,upstream,upstream-asgi"


@dataclass(frozen=True)
class Settings:
    """What one run of the benchmark was asked to do."""

    threads: int
    upstream_threads: int
    connections: int
    streams: int
    duration: int
    requests: int | None
    downloads: int

    def threads_for(self, name: str) -> int:
        return self.upstream_threads if name.startswith("upstream") else self.threads


@dataclass(frozen=True)
class H2loadRun:
    rps: float
    p99_ms: float
    mib_s: float
    errors: int
    slowest_client_rps: float


@dataclass
class Result:
    runs: list[H2loadRun] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


# --- environment --------------------------------------------------------------------------


def upstream_has_h2() -> bool:
    python = UPSTREAM_VENV / "bin" / "python"
    try:
        run_checked([str(python), "-c", "import h2"], timeout=60)
    except (BenchError, OSError):
        return False
    return True


def ensure_upstream_venv() -> None:
    """benchmarks/.venv-upstream with gunicorn 27.0.1, uvicorn and h2 (server.py's venv + h2)."""
    ready = upstream_version() == UPSTREAM_GUNICORN and (UPSTREAM_VENV / "bin" / "uvicorn").exists()
    if ready and upstream_has_h2():
        return
    pip = str(UPSTREAM_VENV / "bin" / "pip")
    if not ready:
        print(f"creating {UPSTREAM_VENV}", file=sys.stderr)
        run_checked([sys.executable, "-m", "venv", "--clear", str(UPSTREAM_VENV)], timeout=300)
    print(f"installing {' '.join(UPSTREAM_PACKAGES)} into {UPSTREAM_VENV}", file=sys.stderr)
    run_checked([pip, "install", "--quiet", *UPSTREAM_PACKAGES], timeout=900)
    if upstream_version() != UPSTREAM_GUNICORN or not upstream_has_h2():
        raise BenchError(f"{UPSTREAM_VENV} lacks gunicorn {UPSTREAM_GUNICORN} or h2")


def require_tools() -> None:
    missing = [tool for tool in ("h2load", "taskset") if shutil.which(tool) is None]
    if missing:
        raise BenchError(f"missing {', '.join(missing)} (apt-get install -y nghttp2-client)")
    if (os.cpu_count() or 1) < 2:
        raise BenchError("needs 2 cores: the server is pinned to core 0 and h2load to core 1")


def gunicorn_version(venv: Path) -> str:
    try:
        out = run_checked([str(venv / "bin" / "gunicorn"), "--version"], timeout=60)
    except BenchError:
        return "?"
    found = re.search(r"version ([\w.+-]+)", out)
    return found.group(1) if found else out


# --- servers ------------------------------------------------------------------------------


def server_argv(name: str, settings: Settings, port: int) -> list[str]:
    spec = SERVERS[name]
    argv = [
        str(spec.venv / "bin" / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--worker-class",
        spec.worker,
        "--http-protocols",
        "h2,h1",
        "--http2-cleartext",
        "prior-knowledge",
        "--log-level",
        "warning",
        "--graceful-timeout",
        "3",
    ]
    if spec.worker == "gthread":
        argv += ["--threads", str(settings.threads_for(name))]
    return [*argv, spec.app]


@contextlib.contextmanager
def running_server(name: str, settings: Settings, log_dir: Path) -> Iterator[int]:
    """A server pinned to the server core, listening; yields its port."""
    port = free_port()
    with launched(name, server_argv(name, settings, port), port, log_dir / f"{name}-{port}.log"):
        yield port


def fetch_h2c(port: int, path: str) -> tuple[bytes, bytes]:
    """One GET over h2c prior knowledge with the h2 package: (status, body)."""
    conn = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    stream_id = conn.get_next_available_stream_id()
    headers = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", f"127.0.0.1:{port}".encode()),
        (b":path", path.encode()),
    ]
    conn.send_headers(stream_id, headers, end_stream=True)
    status = b""
    body = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=CHECK_TIMEOUT) as sock:
        sock.sendall(conn.data_to_send())
        while True:
            data = sock.recv(65536)
            if not data:
                raise BenchError(f"connection closed before the end of {path}")
            for event in conn.receive_data(data):
                if isinstance(event, ResponseReceived):
                    status = dict(event.headers or [])[b":status"]
                elif isinstance(event, DataReceived):
                    body += event.data or b""
                    conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                elif isinstance(event, StreamReset):
                    raise BenchError(f"stream reset with error {event.error_code!r}")
                elif isinstance(event, StreamEnded):
                    return status, bytes(body)
            sock.sendall(conn.data_to_send())


def check_server(port: int, scenario: str) -> None:
    """One request by hand, so a server that does not speak h2c fails loudly."""
    path, expected = ("/", HELLO_BODY) if scenario == "hello" else (DOWNLOAD_PATH, None)
    try:
        status, body = fetch_h2c(port, path)
    except (OSError, KeyError, BenchError) as exc:
        raise BenchError(f"h2c GET {path} failed: {exc}") from None
    if status != b"200":
        raise BenchError(f"h2c GET {path}: status {status!r}")
    if (expected is not None and body != expected) or (
        expected is None and len(body) != DOWNLOAD_SIZE
    ):
        raise BenchError(f"h2c GET {path}: unexpected body {body[:60]!r} ({len(body)} bytes)")


# --- h2load -------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def parse_h2load(output: str, log_file: Path) -> H2loadRun:
    finished = re.search(r"^finished in [\d.]+\w+, ([\d.]+) req/s", output, re.MULTILINE)
    requests = re.search(
        r"^requests: (\d+) total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        output,
        re.MULTILINE,
    )
    statuses = re.search(
        r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output, re.MULTILINE
    )
    traffic = re.search(r"^traffic: .*?, [\d.]+\w+ \((\d+)\) data", output, re.MULTILINE)
    clients = re.search(r"^req/s\s+:\s+([\d.]+)", output, re.MULTILINE)
    if not (finished and requests and statuses and traffic and clients):
        raise BenchError(f"cannot read h2load output:\n{output}")
    if "Application protocol: h2c" not in output:
        raise BenchError("h2load did not speak h2c")
    rps = float(finished.group(1))
    done = int(requests.group(2))
    errors = sum(int(value) for value in requests.groups()[2:])
    errors += sum(int(value) for value in statuses.groups()[1:])
    # Each log line: request start (µs since the epoch), status, duration (µs). Requests
    # cut short when a timed run stops are logged with status 0; they are left out.
    durations = []
    for line in log_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].startswith("2"):
            durations.append(int(parts[2]) / 1000.0)
    if not durations:
        raise BenchError("h2load logged no successful request")
    seconds = done / rps if rps else math.inf
    mib_s = int(traffic.group(1)) / seconds / (1024 * 1024)
    return H2loadRun(rps, percentile(durations, 0.99), mib_s, errors, float(clients.group(1)))


def run_h2load(args: list[str], url: str, log_file: Path | None, timeout: float) -> str:
    argv = ["taskset", "-c", CLIENT_CORE, "h2load", *args]
    if log_file is not None:
        argv += ["--log-file", str(log_file)]
    argv.append(url)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"h2load did not finish in {timeout:g} s") from None
    if proc.returncode != 0:
        raise BenchError(f"h2load exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def h2load_argv(scenario: str, settings: Settings) -> tuple[list[str], list[str] | None, float]:
    """h2load's arguments for the measured run, for a separate warm-up run, and a timeout."""
    if scenario == "download":
        return (
            ["-c1", "-m1", f"-n{settings.downloads}"],
            ["-c1", "-m1", f"-n{WARMUP_DOWNLOADS}"],
            60.0 + settings.downloads,
        )
    load = [f"-c{settings.connections}", f"-m{settings.streams}"]
    if settings.requests is not None:
        warmup = [*load, f"-D{WARMUP_SECONDS}"]
        return [*load, f"-n{settings.requests}"], warmup, 60.0 + settings.requests / 100
    measured = [*load, f"-D{settings.duration}", f"--warm-up-time={WARMUP_SECONDS}"]
    return measured, None, 60.0 + settings.duration


def measure_once(name: str, scenario: str, settings: Settings, log_dir: Path) -> H2loadRun:
    measured, warmup, timeout = h2load_argv(scenario, settings)
    path = "/" if scenario == "hello" else DOWNLOAD_PATH
    log_file = log_dir / f"{name}-{scenario}.tsv"
    log_file.unlink(missing_ok=True)
    with running_server(name, settings, log_dir) as port:
        check_server(port, scenario)
        url = f"http://127.0.0.1:{port}{path}"
        if warmup is not None:
            run_h2load(warmup, url, None, timeout)
        return parse_h2load(run_h2load(measured, url, log_file, timeout), log_file)


def run_scenario(
    scenario: str, servers: list[str], settings: Settings, rounds: int, log_dir: Path
) -> dict[str, Result]:
    results = {name: Result() for name in servers}
    for round_no in range(rounds):
        # Rotate the order each round so no server always runs first.
        offset = round_no % len(servers)
        for name in servers[offset:] + servers[:offset]:
            label = f"{scenario} round {round_no + 1}/{rounds}: {name}"
            try:
                run = measure_once(name, scenario, settings, log_dir)
            except BenchError as exc:
                print(f"{label}: FAILED: {exc}", file=sys.stderr, flush=True)
                results[name].failures.append(str(exc).splitlines()[0])
                continue
            extra = (
                f"{run.mib_s:,.1f} MiB/s"
                if scenario == "download"
                else f"slowest client {run.slowest_client_rps:,.0f} req/s"
            )
            print(
                f"{label}: {run.rps:,.0f} req/s, p99 {run.p99_ms:.2f} ms, {extra}, "
                f"{run.errors} errors",
                file=sys.stderr,
                flush=True,
            )
            results[name].runs.append(run)
    return results


# --- report -------------------------------------------------------------------------------


def server_label(name: str, settings: Settings) -> str:
    spec = SERVERS[name]
    label = spec.label
    if name.startswith("ours"):
        label += f" ({gunicorn_version(OURS_VENV)}, this checkout)"
    if spec.worker == "gthread":
        label += f", {settings.threads_for(name)} threads"
    return label


def describe(scenario: str, settings: Settings) -> str:
    measured, warmup, _ = h2load_argv(scenario, settings)
    path = "/" if scenario == "hello" else DOWNLOAD_PATH
    text = f"`h2load {' '.join(measured)} http://127.0.0.1:PORT{path}`"
    if warmup is not None:
        text += f" after a warm-up run `h2load {' '.join(warmup)}`"
    return text


def render(
    scenario: str,
    results: dict[str, Result],
    settings: Settings,
    rounds: int,
    reference: tuple[float, float],
) -> str:
    download = scenario == "download"
    lines = [
        f"h2load benchmark, {datetime.date.today().isoformat()}, {machine_line()}, "
        f"Python {platform.python_version()}, upstream h2 {package_version(UPSTREAM_VENV, 'h2')}.",
        f"Scenario {scenario}: {describe(scenario, settings)}, h2c prior knowledge; one worker "
        f"process on core {SERVER_CORE}, h2load on core {CLIENT_CORE}; {rounds} interleaved "
        "rounds, medians.",
        f"Reference loop of h2_ceiling.py: {reference[0]:.1f} µs before, {reference[1]:.1f} µs "
        "after (lower is quieter; 43 µs was the lowest seen here).",
        "",
    ]
    if download:
        lines += [
            "| server | MiB/s | req/s | p99 latency | MiB/s per round | errors |",
            "|---|---:|---:|---:|---|---:|",
        ]
    else:
        lines += [
            "| server | req/s | p99 latency | req/s per round | slowest client req/s | errors |",
            "|---|---:|---:|---|---:|---:|",
        ]
    starved = False
    for name, result in results.items():
        label = server_label(name, settings)
        runs = result.runs
        if not runs:
            reason = result.failures[0] if result.failures else "not run"
            lines.append(f"| {label} | n/a | n/a | n/a | failed: {reason} | n/a |")
            continue
        values = [run.mib_s if download else run.rps for run in runs]
        per_round = ", ".join(f"{value:,.{1 if download else 0}f}" for value in values)
        if result.failures:
            per_round += f" ({len(result.failures)} failed)"
        rps = f"{statistics.median(r.rps for r in runs):,.0f}"
        p99 = f"{statistics.median(r.p99_ms for r in runs):.2f} ms"
        errors = sum(r.errors for r in runs)
        if download:
            mib_s = f"{statistics.median(r.mib_s for r in runs):,.1f}"
            lines.append(f"| {label} | {mib_s} | {rps} | {p99} | {per_round} | {errors} |")
            continue
        slowest = min(r.slowest_client_rps for r in runs)
        starved = starved or slowest == 0
        lines.append(f"| {label} | {rps} | {p99} | {per_round} | {slowest:,.0f} | {errors} |")
    if starved:
        lines += [
            "",
            "A slowest client at 0 req/s means some connections were never served during the "
            "run (a server that gives each HTTP/2 connection a thread of its own, with fewer "
            "threads than connections).",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--servers",
        default=DEFAULT_SERVERS,
        help=f"comma-separated subset of {','.join(SERVERS)} (default {DEFAULT_SERVERS})",
    )
    parser.add_argument(
        "--scenario",
        choices=["hello", "download", "all"],
        default="all",
        help="hello: many small requests; download: 1 MiB bodies over one stream (default all)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (default 3)")
    parser.add_argument(
        "-D", "--duration", type=int, default=5, help="seconds per hello run (default 5)"
    )
    parser.add_argument(
        "-n",
        "--requests",
        type=int,
        default=None,
        help="hello: a fixed number of requests instead of --duration",
    )
    parser.add_argument(
        "--downloads", type=int, default=200, help="1 MiB downloads per run (default 200)"
    )
    parser.add_argument("--threads", type=int, default=4, help="ours gthread threads (default 4)")
    parser.add_argument(
        "--upstream-threads",
        type=int,
        default=None,
        help="upstream gthread threads (default: --threads); 27.0.1 serves one h2 connection "
        "per thread, so fewer threads than -c leaves connections waiting",
    )
    parser.add_argument("-c", "--connections", type=int, default=8, help="h2load -c (default 8)")
    parser.add_argument("-m", "--streams", type=int, default=8, help="h2load -m (default 8)")
    args = parser.parse_args(argv)
    args.servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = set(args.servers) - set(SERVERS)
    if unknown or not args.servers:
        parser.error(f"unknown servers: {', '.join(sorted(unknown)) or '(none)'}")
    numbers = [args.rounds, args.duration, args.downloads, args.threads]
    numbers += [args.connections, args.streams]
    numbers += [n for n in (args.requests, args.upstream_threads) if n is not None]
    if min(numbers) < 1:
        parser.error("every count and duration must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(
        threads=args.threads,
        upstream_threads=args.upstream_threads or args.threads,
        connections=args.connections,
        streams=args.streams,
        duration=args.duration,
        requests=args.requests,
        downloads=args.downloads,
    )
    try:
        require_tools()
        if any(name.startswith("upstream") for name in args.servers):
            ensure_upstream_venv()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scenarios = ["hello", "download"] if args.scenario == "all" else [args.scenario]
    with tempfile.TemporaryDirectory(prefix="gunicorn-h2load-") as tmp:
        for scenario in scenarios:
            before = reference_loop_us()
            results = run_scenario(scenario, args.servers, settings, args.rounds, Path(tmp))
            reference = (before, reference_loop_us())
            print(render(scenario, results, settings, args.rounds, reference), flush=True)
            print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
