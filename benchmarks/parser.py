"""Requests parsed per second, in process: our HTTP/1.1 core against h11 and httptools.

Each iteration feeds one complete request, reads events until the end of the message,
then (for ours and h11) serialises a minimal response and starts the next cycle, the
way a keep-alive server drives its protocol object. httptools only parses (it has no
response side) and is listed for reference: it is C.

Run with the project's interpreter: ``.venv/bin/python benchmarks/parser.py``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

Clock = Callable[[], float]
Runner = Callable[[bytes, int, Clock], float]

CLOCKS: dict[str, Clock] = {
    "perf": time.perf_counter,
    "cpu": time.process_time,
}

GET_8_HEADERS = (
    b"GET /api/items?id=42&sort=desc HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"User-Agent: bench-client/1.0\r\n"
    b"Accept: application/json\r\n"
    b"Accept-Encoding: gzip, deflate\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Connection: keep-alive\r\n"
    b"Cache-Control: no-cache\r\n"
    b"X-Request-Id: 0f8fad5b-d9cb-469f-a165-70867728950e\r\n"
    b"\r\n"
)

GET_20_HEADERS = (
    b"GET /articles/2024/05/how-to-benchmark?utm_source=news&utm_medium=email HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"Connection: keep-alive\r\n"
    b'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"\r\n'
    b"sec-ch-ua-mobile: ?0\r\n"
    b'sec-ch-ua-platform: "Linux"\r\n'
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/124.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    b"image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-User: ?1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Referer: https://www.example.com/articles/\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Accept-Language: en-GB,en-US;q=0.9,en;q=0.8,fr;q=0.7\r\n"
    b"Cookie: sessionid=3c6f1a2b9d8e7f60a1b2c3d4e5f60718; csrftoken=Zk3pQ9rT2vX8yB1nM4cL7"
    b"hJ6gF5dS0aW; theme=dark; _ga=GA1.2.1234567890.1700000000\r\n"
    b"Cache-Control: max-age=0\r\n"
    b"Pragma: no-cache\r\n"
    b"DNT: 1\r\n"
    b'If-None-Match: W/"5e15153d-120f"\r\n'
    b"\r\n"
)

CHUNK_SIZES = (1500, 1500, 1096)
POST_BODY = bytes(range(256)) * 16  # 4 KiB


def _chunked(body: bytes, sizes: tuple[int, ...]) -> bytes:
    assert sum(sizes) == len(body)
    out = []
    start = 0
    for size in sizes:
        out.append(b"%x\r\n%s\r\n" % (size, body[start : start + size]))
        start += size
    out.append(b"0\r\n\r\n")
    return b"".join(out)


POST_CHUNKED = (
    b"POST /upload HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"User-Agent: bench-client/1.0\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"Accept: */*\r\n"
    b"\r\n" + _chunked(POST_BODY, CHUNK_SIZES)
)


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    method: bytes
    body_size: int


CASES = (
    Case("GET, 8 headers", GET_8_HEADERS, b"GET", 0),
    Case("GET, 20 browser headers", GET_20_HEADERS, b"GET", 0),
    Case(f"POST, 4 KiB chunked ({len(CHUNK_SIZES)} chunks)", POST_CHUNKED, b"POST", 4096),
)


# --- ours ---------------------------------------------------------------------------------


def _ours_factory() -> Callable[[], Any]:
    from gunicorn.http.h1 import H1Connection
    from gunicorn.http.limits import Limits, Policy

    limits = Limits()
    policy = Policy()
    clock = time.time

    def make() -> Any:
        return H1Connection(limits=limits, policy=policy, clock=clock, trusted_forwarder=False)

    return make


def _ours_cycle() -> Callable[[Any, bytes], None]:
    from gunicorn.http.events import EndOfMessage, Response
    from gunicorn.http.h1 import NEED_DATA, PAUSED

    def cycle(conn: Any, raw: bytes) -> None:
        conn.receive_data(raw)
        next_event = conn.next_event
        while True:
            event = next_event()
            if event.__class__ is EndOfMessage:
                break
            if event is NEED_DATA or event is PAUSED:
                raise RuntimeError(f"request incomplete: {event!r}")
        conn.send(Response(200, [(b"content-length", b"0")]))
        conn.send(EndOfMessage())

    return cycle


def ours_keepalive(raw: bytes, n: int, timer: Clock) -> float:
    conn = _ours_factory()()
    cycle = _ours_cycle()
    start_next_cycle = conn.start_next_cycle
    started = timer()
    for _ in range(n):
        cycle(conn, raw)
        start_next_cycle()
    return timer() - started


def ours_fresh(raw: bytes, n: int, timer: Clock) -> float:
    make = _ours_factory()
    cycle = _ours_cycle()
    started = timer()
    for _ in range(n):
        cycle(make(), raw)
    return timer() - started


def ours_check(case: Case) -> None:
    from gunicorn.http.events import Data, EndOfMessage, Request, Response
    from gunicorn.http.h1 import NEED_DATA, PAUSED

    conn = _ours_factory()()
    for _ in range(3):
        conn.receive_data(case.raw)
        events = []
        while True:
            event = conn.next_event()
            if event is NEED_DATA or event is PAUSED:
                raise AssertionError(f"ours: request incomplete: {event!r}")
            events.append(event)
            if isinstance(event, EndOfMessage):
                break
        request = events[0]
        assert isinstance(request, Request), events
        assert request.method == case.method, request
        body = b"".join(e.data for e in events if isinstance(e, Data))
        assert len(body) == case.body_size, len(body)
        head = conn.send(Response(200, [(b"content-length", b"0")]))
        assert head.startswith(b"HTTP/1.1 200 "), head
        conn.send(EndOfMessage())
        assert conn.keep_alive, "ours: connection not kept alive"
        conn.start_next_cycle()


# --- h11 ----------------------------------------------------------------------------------


def _h11_cycle() -> Callable[[Any, bytes], None]:
    import h11

    need_data = h11.NEED_DATA
    paused = h11.PAUSED
    end = h11.EndOfMessage
    response = h11.Response

    def cycle(conn: Any, raw: bytes) -> None:
        conn.receive_data(raw)
        next_event = conn.next_event
        while True:
            event = next_event()
            if event.__class__ is end:
                break
            if event is need_data or event is paused:
                raise RuntimeError(f"request incomplete: {event!r}")
        conn.send(response(status_code=200, headers=[(b"content-length", b"0")]))
        conn.send(end())

    return cycle


def h11_keepalive(raw: bytes, n: int, timer: Clock) -> float:
    import h11

    conn = h11.Connection(h11.SERVER)
    cycle = _h11_cycle()
    start_next_cycle = conn.start_next_cycle
    started = timer()
    for _ in range(n):
        cycle(conn, raw)
        start_next_cycle()
    return timer() - started


def h11_fresh(raw: bytes, n: int, timer: Clock) -> float:
    import h11

    cycle = _h11_cycle()
    connection = h11.Connection
    server = h11.SERVER
    started = timer()
    for _ in range(n):
        cycle(connection(server), raw)
    return timer() - started


def h11_check(case: Case) -> None:
    import h11

    conn = h11.Connection(h11.SERVER)
    for _ in range(3):
        conn.receive_data(case.raw)
        events = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                raise AssertionError(f"h11: request incomplete: {event!r}")
            events.append(event)
            if isinstance(event, h11.EndOfMessage):
                break
        request = events[0]
        assert isinstance(request, h11.Request), events
        assert request.method == case.method, request
        body = b"".join(bytes(e.data) for e in events if isinstance(e, h11.Data))
        assert len(body) == case.body_size, len(body)
        conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
        conn.send(h11.EndOfMessage())
        conn.start_next_cycle()


# --- httptools ----------------------------------------------------------------------------


class _Collector:
    """httptools callbacks keeping what a server would keep."""

    __slots__ = ("body", "complete", "headers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.complete = 0

    def on_message_begin(self) -> None:
        self.headers = []
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete += 1


def httptools_keepalive(raw: bytes, n: int, timer: Clock) -> float:
    import httptools

    collector = _Collector()
    parser = httptools.HttpRequestParser(collector)
    feed = parser.feed_data
    get_method = parser.get_method
    started = timer()
    for _ in range(n):
        feed(raw)
        get_method()
    elapsed = timer() - started
    if collector.complete != n:
        raise RuntimeError(f"httptools completed {collector.complete} of {n} requests")
    return elapsed


def httptools_check(case: Case) -> None:
    import httptools

    collector = _Collector()
    parser = httptools.HttpRequestParser(collector)
    for count in range(1, 4):
        parser.feed_data(case.raw)
        assert collector.complete == count
        assert parser.get_method() == case.method
        assert len(b"".join(collector.body)) == case.body_size
        assert parser.should_keep_alive()


# --- driver -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    name: str
    run: Runner
    check: Callable[[Case], None]


VARIANTS = (
    Variant("ours keep-alive", ours_keepalive, ours_check),
    Variant("ours fresh", ours_fresh, ours_check),
    Variant("h11 keep-alive", h11_keepalive, h11_check),
    Variant("h11 fresh", h11_fresh, h11_check),
    Variant("httptools (C, parse only)", httptools_keepalive, httptools_check),
)


def iterations_for(run: Runner, raw: bytes, round_time: float, clock: Clock) -> int:
    """How many iterations take about ``round_time`` seconds."""
    n = 100
    while True:
        elapsed = run(raw, n, clock)
        if elapsed >= 0.05 or n >= 10_000_000:
            return max(100, int(n * round_time / elapsed))
        n *= 4


def available_variants() -> tuple[list[Variant], list[str]]:
    """The variants whose library imports, and notes about the others."""
    found = []
    notes = []
    for variant in VARIANTS:
        module = variant.run.__name__.split("_")[0]
        try:
            if module == "ours":
                import gunicorn.http.h1  # noqa: F401
            else:
                __import__(module)
        except ImportError as exc:
            notes.append(f"{variant.name}: not measured ({exc})")
        else:
            found.append(variant)
    return found, notes


def measure(
    case: Case, variants: list[Variant], rounds: int, round_time: float, clock: Clock
) -> dict[str, list[float]]:
    """Requests per second of each variant, rounds interleaved across variants."""
    counts = {v.name: iterations_for(v.run, case.raw, round_time, clock) for v in variants}
    rates: dict[str, list[float]] = {v.name: [] for v in variants}
    for round_no in range(rounds):
        # Rotate the order so no variant always runs first (or right after another).
        offset = round_no % len(variants)
        for variant in variants[offset:] + variants[:offset]:
            n = counts[variant.name]
            rates[variant.name].append(n / variant.run(case.raw, n, clock))
    return rates


def _fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _ratio(medians: dict[str, float], ours: str, theirs: str) -> str:
    if ours not in medians or theirs not in medians:
        return "n/a"
    return f"{medians[ours] / medians[theirs]:.2f}x"


def render(
    results: dict[str, dict[str, list[float]]],
    notes: list[str],
    rounds: int,
    round_time: float,
    load_before: str,
    clock: str,
) -> str:
    names = [v.name for v in VARIANTS]
    lines = [
        f"Parser benchmark, {datetime.date.today().isoformat()}: "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"h11 {_version('h11')}, httptools {_version('httptools')}, "
        f"{rounds} rounds of ~{round_time:g} s per cell, clock {clock}, median requests/s "
        f"(load average before: {load_before}).",
        "",
        "| request | " + " | ".join(names) + " | ours/h11 keep-alive | ours/h11 fresh |",
        "|---|" + "---:|" * (len(names) + 2),
    ]
    for case_name, rates in results.items():
        medians = {name: statistics.median(values) for name, values in rates.items()}
        cells = [_fmt_rate(medians[name]) if name in medians else "n/a" for name in names]
        ratios = [
            _ratio(medians, "ours keep-alive", "h11 keep-alive"),
            _ratio(medians, "ours fresh", "h11 fresh"),
        ]
        lines.append(f"| {case_name} | " + " | ".join(cells + ratios) + " |")
    if notes:
        lines.append("")
        lines.extend(f"- {note}" for note in notes)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per cell (default 7)")
    parser.add_argument(
        "--round-time", type=float, default=0.25, help="seconds per timed round (default 0.25)"
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="perf",
        help="perf: time.perf_counter (wall, default); cpu: time.process_time, steadier "
        "when other jobs share the cores",
    )
    parser.add_argument(
        "--case",
        action="append",
        choices=["get8", "get20", "post"],
        help="run only these requests (repeatable; default all)",
    )
    args = parser.parse_args(argv)
    keys = {"get8": CASES[0], "get20": CASES[1], "post": CASES[2]}
    cases = [keys[k] for k in args.case] if args.case else list(CASES)

    load_before = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    variants, notes = available_variants()
    for case in cases:
        for variant in variants:
            variant.check(case)

    results = {}
    for case in cases:
        print(f"measuring: {case.name} ...", file=sys.stderr, flush=True)
        results[case.name] = measure(
            case, variants, args.rounds, args.round_time, CLOCKS[args.clock]
        )
    print(render(results, notes, args.rounds, args.round_time, load_before, args.clock))
    return 0


if __name__ == "__main__":
    sys.exit(main())
