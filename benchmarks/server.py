"""Server throughput and latency: this checkout's gunicorn against upstream gunicorn.

wrk (pinned to core 1) loads one server at a time (pinned to core 0) on 127.0.0.1.
Servers run in interleaved rounds, each round in a fresh process, and the table gives
the median requests/s and the median p99 latency. Upstream gunicorn and uvicorn are
installed by this script into ``benchmarks/.venv-upstream`` (never the project venv).

Run with the project's interpreter: ``.venv/bin/python benchmarks/server.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OURS_VENV = ROOT / ".venv"
UPSTREAM_VENV = BENCH_DIR / ".venv-upstream"
UPSTREAM_GUNICORN = "27.0.1"
UPSTREAM_PACKAGES = (f"gunicorn=={UPSTREAM_GUNICORN}", "uvicorn[standard]")

SERVER_CORE = "0"
CLIENT_CORE = "1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
WARMUP_SECONDS = 2
POST_SIZE = 4096

ECHO_LUA = f"""\
wrk.method = "POST"
wrk.body = string.rep("x", {POST_SIZE})
wrk.headers["Content-Type"] = "application/octet-stream"
"""


@dataclass(frozen=True)
class Scenario:
    worker: str
    threads: int
    app: str
    keepalive: bool
    duration: int
    connections: int

    def describe(self) -> str:
        worker = self.worker + (f" --threads {self.threads}" if self.worker == "gthread" else "")
        app = "hello world" if self.app == "hello" else f"{POST_SIZE // 1024} KiB POST echo"
        conn = "keep-alive" if self.keepalive else "Connection: close"
        return (
            f"worker {worker}, 1 worker process, app {app}, {conn}, "
            f"wrk -t1 -c{self.connections} -d{self.duration}s"
        )


@dataclass
class Result:
    rps: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WrkRun:
    rps: float
    p99_ms: float
    errors: int


class BenchError(Exception):
    """A server or wrk run that did not produce a measurement."""


# --- environment --------------------------------------------------------------------------


def run_checked(argv: list[str], timeout: float, cwd: Path = BENCH_DIR) -> str:
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def upstream_version() -> str | None:
    python = UPSTREAM_VENV / "bin" / "python"
    if not python.exists():
        return None
    try:
        return run_checked(
            [str(python), "-c", "import gunicorn; print(gunicorn.__version__)"], timeout=60
        )
    except BenchError:
        return None


def ensure_upstream_venv() -> None:
    """Create benchmarks/.venv-upstream with upstream gunicorn and uvicorn if needed."""
    if upstream_version() == UPSTREAM_GUNICORN and (UPSTREAM_VENV / "bin" / "uvicorn").exists():
        return
    print(f"installing {' '.join(UPSTREAM_PACKAGES)} into {UPSTREAM_VENV}", file=sys.stderr)
    run_checked([sys.executable, "-m", "venv", "--clear", str(UPSTREAM_VENV)], timeout=300)
    pip = str(UPSTREAM_VENV / "bin" / "pip")
    run_checked([pip, "install", "--quiet", *UPSTREAM_PACKAGES], timeout=900)
    found = upstream_version()
    if found != UPSTREAM_GUNICORN:
        raise BenchError(f"upstream venv has gunicorn {found}, wanted {UPSTREAM_GUNICORN}")


def require_tools() -> None:
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing:
        raise BenchError(f"missing {', '.join(missing)} (apt-get install -y wrk util-linux)")
    if (os.cpu_count() or 1) < 2:
        raise BenchError("needs 2 cores: the server is pinned to core 0 and wrk to core 1")


def package_version(venv: Path, dist: str) -> str:
    code = f"from importlib.metadata import version; print(version({dist!r}))"
    try:
        return run_checked([str(venv / "bin" / "python"), "-c", code], timeout=60)
    except BenchError:
        return "?"


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_argv(name: str, scenario: Scenario, port: int) -> list[str]:
    if name == "uvicorn":
        app = "apps_asgi:app" if scenario.app == "hello" else "apps_asgi:echo"
        return [
            str(UPSTREAM_VENV / "bin" / "uvicorn"),
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    venv = OURS_VENV if name == "ours" else UPSTREAM_VENV
    argv = [
        str(venv / "bin" / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--worker-class",
        scenario.worker,
        "--log-level",
        "warning",
        "--graceful-timeout",
        "3",
    ]
    if scenario.worker == "gthread":
        argv += ["--threads", str(scenario.threads)]
    return [*argv, f"apps:{scenario.app}"]


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode} before listening")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise BenchError(f"server not listening on port {port} after {timeout:g} s")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server we started, then SIGKILL its process group if it lingers.

    The server was started in a new session, so its process group id is its pid and
    the group holds only the server and the workers it forked.
    """
    pgid = proc.pid
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def running_server(name: str, scenario: Scenario, log_dir: Path) -> Iterator[int]:
    """A server pinned to the server core, listening; yields its port."""
    port = free_port()
    with launched(name, server_argv(name, scenario, port), port, log_dir / f"{name}.log"):
        yield port


@contextlib.contextmanager
def launched(name: str, argv: list[str], port: int, log_path: Path) -> Iterator[None]:
    """Run ``argv`` pinned to the server core until it listens on ``port``; on failure the
    server's last log lines say why. Shared by the HTTP/1 and HTTP/2 benchmarks."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(BENCH_DIR)
    env.pop("GUNICORN_CMD_ARGS", None)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *argv],
            cwd=BENCH_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_listening(proc, port, START_TIMEOUT)
            yield
            if proc.poll() is not None:
                raise BenchError(f"server exited with {proc.returncode} during the run")
        except BenchError as exc:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
            raise BenchError(f"{name}: {exc}\n    " + "\n    ".join(tail)) from None
    finally:
        stop_server(proc)


# --- wrk ----------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(output: str) -> WrkRun:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if rps is None or p99 is None:
        raise BenchError(f"cannot read wrk output:\n{output}")
    errors = 0
    sock_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sock_errors:
        errors += sum(int(value) for value in sock_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return WrkRun(float(rps.group(1)), float(p99.group(1)) * _UNITS_MS[p99.group(2)], errors)


def run_wrk(scenario: Scenario, port: int, duration: int, lua: Path | None) -> WrkRun:
    argv = [
        "taskset",
        "-c",
        CLIENT_CORE,
        "wrk",
        "-t1",
        f"-c{scenario.connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    if lua is not None:
        argv += ["-s", str(lua)]
    if not scenario.keepalive:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/")
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError("wrk did not finish in time") from None
    if proc.returncode != 0:
        raise BenchError(f"wrk exited {proc.returncode}: {proc.stderr.strip()}")
    return parse_wrk(proc.stdout)


def check_response(scenario: Scenario, port: int) -> None:
    """One request by hand, so a broken app fails loudly instead of benchmarking errors."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if scenario.app == "hello":
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            expected = b"Hello, World!"
        else:
            expected = b"x" * POST_SIZE
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (POST_SIZE, expected)
            )
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    reply = b"".join(chunks)
    if not reply.startswith(b"HTTP/1.1 200") or not reply.endswith(b"\r\n\r\n" + expected):
        raise BenchError(f"unexpected response: {reply[:200]!r}")


# --- driver -------------------------------------------------------------------------------


def measure_once(name: str, scenario: Scenario, log_dir: Path, lua: Path | None) -> WrkRun:
    with running_server(name, scenario, log_dir) as port:
        check_response(scenario, port)
        run_wrk(scenario, port, WARMUP_SECONDS, lua)
        return run_wrk(scenario, port, scenario.duration, lua)


def run_scenario(
    scenario: Scenario, servers: list[str], rounds: int, log_dir: Path
) -> dict[str, Result]:
    lua: Path | None = None
    if scenario.app == "echo":
        lua = log_dir / "echo.lua"
        lua.write_text(ECHO_LUA)
    results = {name: Result() for name in servers}
    for round_no in range(rounds):
        # Rotate the order each round so no server always runs first.
        offset = round_no % len(servers)
        for name in servers[offset:] + servers[:offset]:
            label = f"round {round_no + 1}/{rounds}: {name}"
            try:
                run = measure_once(name, scenario, log_dir, lua)
            except BenchError as exc:
                print(f"{label}: FAILED: {exc}", file=sys.stderr, flush=True)
                results[name].failures.append(str(exc).splitlines()[0])
                continue
            print(
                f"{label}: {run.rps:,.0f} req/s, p99 {run.p99_ms:.2f} ms, {run.errors} errors",
                file=sys.stderr,
                flush=True,
            )
            results[name].rps.append(run.rps)
            results[name].p99_ms.append(run.p99_ms)
            results[name].errors.append(run.errors)
    return results


def server_label(name: str) -> str:
    if name == "ours":
        return "ours (this checkout)"
    if name == "upstream":
        return f"gunicorn {UPSTREAM_GUNICORN} (PyPI)"
    return f"uvicorn {package_version(UPSTREAM_VENV, 'uvicorn')} (reference, ASGI)"


def machine_line() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, load average {load}"


def render(scenario: Scenario, results: dict[str, Result], rounds: int) -> str:
    lines = [
        f"Server benchmark, {datetime.date.today().isoformat()}, {machine_line()}, "
        f"Python {platform.python_version()}.",
        f"Scenario: {scenario.describe()}; server on core {SERVER_CORE}, wrk on core "
        f"{CLIENT_CORE}; {rounds} interleaved rounds, medians.",
        "",
        "| server | req/s | p99 latency | req/s per round | errors |",
        "|---|---:|---:|---|---:|",
    ]
    medians: dict[str, float] = {}
    for name, result in results.items():
        if not result.rps:
            reason = result.failures[0] if result.failures else "not run"
            lines.append(f"| {server_label(name)} | n/a | n/a | failed: {reason} | n/a |")
            continue
        medians[name] = statistics.median(result.rps)
        per_round = ", ".join(f"{value:,.0f}" for value in result.rps)
        if result.failures:
            per_round += f" ({len(result.failures)} failed)"
        lines.append(
            f"| {server_label(name)} | {medians[name]:,.0f} | "
            f"{statistics.median(result.p99_ms):.2f} ms | {per_round} | {sum(result.errors)} |"
        )
    if "ours" in medians and "upstream" in medians:
        lines.append("")
        lines.append(f"ours / upstream req/s: {medians['ours'] / medians['upstream']:.2f}x")
    return "\n".join(lines)


def render_summary(
    all_results: list[tuple[Scenario, dict[str, Result]]], servers: list[str]
) -> str:
    """One row per scenario: median req/s and p99 of every server."""
    header = ["worker", "app", "connection"]
    header += [f"{name} req/s" for name in servers] + [f"{name} p99" for name in servers]
    if "ours" in servers and "upstream" in servers:
        header.append("ours/upstream")
    lines = [
        "| " + " | ".join(header) + " |",
        "|---|---|---|" + "---:|" * (len(header) - 3),
    ]
    for scenario, results in all_results:
        worker = scenario.worker + (
            f" ({scenario.threads} threads)" if scenario.worker == "gthread" else ""
        )
        cells = [worker, scenario.app, "keep-alive" if scenario.keepalive else "close"]
        rps = {n: statistics.median(r.rps) for n, r in results.items() if r.rps}
        p99 = {n: statistics.median(r.p99_ms) for n, r in results.items() if r.p99_ms}
        cells += [f"{rps[n]:,.0f}" if n in rps else "n/a" for n in servers]
        cells += [f"{p99[n]:.1f} ms" if n in p99 else "n/a" for n in servers]
        if "ours" in servers and "upstream" in servers:
            both = "ours" in rps and "upstream" in rps
            cells.append(f"{rps['ours'] / rps['upstream']:.2f}x" if both else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["sync", "gthread"], default="sync")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads (default 4)")
    parser.add_argument(
        "--app", choices=["hello", "echo"], default="hello", help="hello world or 4 KiB echo"
    )
    conn = parser.add_mutually_exclusive_group()
    conn.add_argument("--keepalive", dest="keepalive", action="store_true", default=True)
    conn.add_argument(
        "--close", dest="keepalive", action="store_false", help="send Connection: close"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (default 3)")
    parser.add_argument(
        "--servers",
        default="ours,upstream,uvicorn",
        help="comma-separated subset of ours,upstream,uvicorn (default all)",
    )
    parser.add_argument(
        "--matrix",
        action="store_true",
        help="run every worker x app x keepalive/close scenario (ignores those flags)",
    )
    args = parser.parse_args(argv)
    args.servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = set(args.servers) - {"ours", "upstream", "uvicorn"}
    if unknown or not args.servers:
        parser.error(f"unknown servers: {', '.join(sorted(unknown)) or '(none)'}")
    if args.duration < 1 or args.rounds < 1 or args.connections < 1 or args.threads < 1:
        parser.error("--duration, --rounds, --connections and --threads must be positive")
    return args


def scenarios_from(args: argparse.Namespace) -> list[Scenario]:
    def make(worker: str, app: str, keepalive: bool) -> Scenario:
        return Scenario(worker, args.threads, app, keepalive, args.duration, args.connections)

    if not args.matrix:
        return [make(args.worker, args.app, args.keepalive)]
    return [
        make(worker, app, keepalive)
        for worker in ("sync", "gthread")
        for app in ("hello", "echo")
        for keepalive in (True, False)
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        require_tools()
        if {"upstream", "uvicorn"} & set(args.servers):
            ensure_upstream_venv()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    all_results: list[tuple[Scenario, dict[str, Result]]] = []
    with tempfile.TemporaryDirectory(prefix="gunicorn-bench-") as tmp:
        for scenario in scenarios_from(args):
            print(f"scenario: {scenario.describe()}", file=sys.stderr, flush=True)
            results = run_scenario(scenario, args.servers, args.rounds, Path(tmp))
            all_results.append((scenario, results))
            print(render(scenario, results, args.rounds), flush=True)
            print(flush=True)
    if len(all_results) > 1:
        print(render_summary(all_results, args.servers), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
