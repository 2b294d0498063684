"""The asgi worker against uvicorn and upstream gunicorn's asgi worker (HTTP/1.1).

Each server runs one process pinned to core 0, wrk runs pinned to core 1, in interleaved
rounds (each round a fresh server process); the table gives median requests/s and p99.
Servers: ``ours`` (this checkout, ``-k asgi``: uvloop when installed), ``gunicorn27``
(upstream 27.0.1 ``-k asgi`` with its C parser ``gunicorn-h1c``) and ``uvicorn``
(``uvicorn[standard]``: httptools + uvloop), the last two from benchmarks/.venv-upstream.
For ``Connection: close`` the worker's RSS is read before and after the run.

    .venv/bin/python benchmarks/asgi.py --rounds 3 --duration 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server as bench

SCENARIOS = {
    "hello": ("apps_asgi:app", True, None),
    "hello-close": ("apps_asgi:app", False, None),
    "echo-4k": ("apps_asgi:echo", True, bench.ECHO_LUA),
    "response-64k": ("apps_asgi:big", True, None),
}
SERVERS = ("ours", "gunicorn27", "uvicorn")


def argv_for(name: str, app: str, port: int) -> list[str]:
    if name == "uvicorn":
        return [
            str(bench.UPSTREAM_VENV / "bin" / "uvicorn"), app,
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
    venv = bench.OURS_VENV if name == "ours" else bench.UPSTREAM_VENV
    return [
        str(venv / "bin" / "gunicorn"), "-k", "asgi", "-w", "1",
        "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--graceful-timeout", "3",
        "--worker-connections", "10000", app,
    ]  # fmt: skip


def ensure_h1c() -> None:
    """gunicorn 27's asgi worker uses its C parser when ``gunicorn-h1c`` is installed."""
    python = str(bench.UPSTREAM_VENV / "bin" / "python")
    try:
        bench.run_checked([python, "-c", "import gunicorn_h1c"], timeout=60)
    except bench.BenchError:
        pip = str(bench.UPSTREAM_VENV / "bin" / "pip")
        bench.run_checked([pip, "install", "--quiet", "gunicorn-h1c"], timeout=900)


def serving_rss(root_pid: int) -> int:
    """RSS of the process that serves (the worker; uvicorn serves in its only process)."""
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
        return max(p.memory_info().rss for p in procs)
    except psutil.Error:
        return 0


def measure(name: str, scenario: str, duration: int, log_dir: Path) -> tuple[float, float, str]:
    app, keepalive, lua_text = SCENARIOS[scenario]
    port = bench.free_port()
    lua = None
    if lua_text is not None:
        lua = log_dir / "echo.lua"
        lua.write_text(lua_text)
    shape = bench.Scenario("asgi", 1, "hello", keepalive, duration, 64)
    note = ""
    with bench.launched(name, argv_for(name, app, port), port, log_dir / f"{name}.log"):
        pid = _listener_pid(port)
        bench.run_wrk(shape, port, bench.WARMUP_SECONDS, lua)
        before = serving_rss(pid) if pid else 0
        started = time.monotonic()
        run = bench.run_wrk(shape, port, duration, lua)
        if not keepalive:
            after = serving_rss(pid) if pid else 0
            served = int(run.rps * (time.monotonic() - started))
            note = f"RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB over ~{served:,} req"
        if run.errors:
            note += f" ({run.errors} errors)"
    return run.rps, run.p99_ms, note


def _listener_pid(port: int) -> int | None:
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN":
            pid = conn.pid
            if pid is None:
                continue
            try:
                parent = psutil.Process(pid).parent()
            except psutil.Error:
                return pid
            # gunicorn: the master listens too; return the master (RSS takes the max).
            return parent.pid if parent and "gunicorn" in " ".join(parent.cmdline()) else pid
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--server", action="append", choices=SERVERS)
    args = parser.parse_args()
    bench.require_tools()
    bench.ensure_upstream_venv()
    ensure_h1c()
    scenarios = args.scenario or list(SCENARIOS)
    servers = args.server or list(SERVERS)
    with tempfile.TemporaryDirectory(prefix="asgi-bench-") as tmp:
        log_dir = Path(tmp)
        for scenario in scenarios:
            rps: dict[str, list[float]] = {name: [] for name in servers}
            p99: dict[str, list[float]] = {name: [] for name in servers}
            notes: dict[str, str] = {}
            for round_no in range(args.rounds):
                offset = round_no % len(servers)
                for name in servers[offset:] + servers[:offset]:
                    try:
                        r, p, note = measure(name, scenario, args.duration, log_dir)
                    except bench.BenchError as exc:
                        print(f"{scenario} {name}: FAILED {exc}", file=sys.stderr)
                        continue
                    rps[name].append(r)
                    p99[name].append(p)
                    if note:
                        notes[name] = note
                    print(
                        f"{scenario} r{round_no + 1} {name}: {r:,.0f} req/s p99 {p:.2f} ms {note}",
                        file=sys.stderr,
                        flush=True,
                    )
            print(f"\n### {scenario} (wrk -t1 -c64 -d{args.duration}s, {args.rounds} rounds)")
            print("| server | req/s (median) | p99 ms (median) | notes |")
            print("|---|---:|---:|---|")
            for name in servers:
                if rps[name]:
                    print(
                        f"| {name} | {statistics.median(rps[name]):,.0f} | "
                        f"{statistics.median(p99[name]):.2f} | {notes.get(name, '')} |"
                    )


if __name__ == "__main__":
    main()
