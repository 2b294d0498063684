"""The hostile HTTP/1.1 battery (hostile-inputs §2): the request corpus of
``tests/requests`` replayed over real sockets against a real server.

One table-driven test (``battery_test``) per worker class module
(``test_hostile_h1_<worker>.py``, so xdist runs the classes side by side), parametrised
over the socket kind (TCP 127.0.0.1, unix) and the feed modes of ``wire.MODES``. Every
case of the corpus that the default settings apply to runs once per parameter, all at
once over many connections. The oracle is the protocol core itself, run in-process with
the same trust the server gives the peer (a unix socket peer is trusted):

- a case the core refuses must be REJECTED (§0): the requests before it answered, then
  the error status with ``Connection: close``, then FIN, and nothing after it answered;
  the application is never invoked for the refused message (a refused *body* may follow a
  head the application already got: then the application never sees the body complete);
- a case the core accepts must reach the application as the core parsed it (method,
  target, body, per request).

The application (``hostile_app``) logs every call; the log is read over a fresh connection
after each batch and matched against the answers, so a call for a refused message shows.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gunicorn.http.errors import ProtocolError
from gunicorn.http.events import EndOfMessage, Request, Response
from gunicorn.http.h1 import NEED_DATA, PAUSED, H1Connection
from gunicorn.http.limits import Limits, Policy
from tests.http.corpus import CORPUS_DIR, Case, drive, load_cases, pieces
from tests.reliability import figures, wire
from tests.support import Address, Gunicorn

REPO = Path(__file__).resolve().parents[2]
SOCKETS = ("tcp", "unix")
#: Worker classes that keep a connection open between requests (sync answers one).
KEEPS_ALIVE = frozenset({"gthread", "gevent", "eventlet", "asgi"})
#: The §2 rows that are request smuggling or framing (S, C and K ids).
SMUGGLING_PREFIXES = ("S", "C", "K")
EXCHANGE_TIMEOUT = 15.0  # generous: a loaded machine; a hang still fails
#: A refused input longer than this may end in a reset rather than FIN: the server
#: lingers to drain what the client still sends, but only for a bounded time, and closing
#: with bytes unread resets the connection (on a unix socket even after a shutdown).
DRAIN_BOUND = 64 * 1024
#: Refusals above the core, by the WSGI/ASGI layer: (case name, trusted peer) -> status.
#: RFC 9110 §7.2: a trusted forwarder's conflicting scheme headers cannot be believed
#: (gunicorn's InvalidSchemeHeaders).
ABOVE_CORE: dict[tuple[str, bool], int] = {("h9_scheme_headers_untrusted", True): 400}

#: Cases a worker class is known to fail (strict: a known failure that passes fails the
#: test). Keys: (worker, case name, socket or "*", mode or "*") -> the bug.
KNOWN_FAILURES: dict[tuple[str, str, str, str], str] = {}


def _default_settings(case: Case) -> bool:
    return case.limits == Limits() and case.policy == Policy()


CASES = [c for c in load_cases("valid") + load_cases("invalid") if _default_settings(c)]


# ------------------------------------------------------------------------ the oracle


class _Watched(H1Connection):
    """An ``H1Connection`` that remembers the last ``Request`` it produced."""

    last_request: Request | None = None

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, Request):
            self.last_request = event
        return event


def _connection(trusted: bool) -> _Watched:
    return _Watched(Limits(), Policy(), clock=lambda: 0.0, trusted_forwarder=trusted)


def _refused_before_eof(raw: bytes, trusted: bool) -> bool:
    """Does the core refuse ``raw`` without needing the end of the input?"""
    conn = _connection(trusted)
    conn.receive_data(raw)
    while True:
        try:
            event = conn.next_event()
        except ProtocolError:
            return True
        if event is NEED_DATA:
            return False
        if event is PAUSED:
            conn.send(Response(200, [(b"content-length", b"0")]))
            conn.send(EndOfMessage())
            if not conn.keep_alive:
                return False
            conn.start_next_cycle()
        elif not isinstance(event, Request) and type(event).__name__ == "ConnectionClosed":
            return False


def app_target(request: Request, worker: str) -> bytes:
    """The target as the application reports it (an ASGI scope has the path and query)."""
    if worker != "asgi":
        return request.target
    return request.path + (b"?" + request.query if request.query else b"")


@dataclass
class Plan:
    """What a case must produce on the wire for one worker class and peer trust."""

    case: Case
    #: (method, target as the app sees it, body) of each request the app must answer.
    served: list[tuple[bytes, bytes, bytes]]
    error_status: int | None  # the status of the refusal, if the core answers one
    refused: bool  # the core refuses the input (an invalid case)
    half_close: bool  # the client must end its input to get the outcome
    #: (method, target) of a request whose head the app may have got before its body was
    #: refused, and of WebSocket handshakes (an ASGI app is invoked, then refuses).
    may_enter: list[tuple[bytes, bytes]] = field(default_factory=list)
    websocket_at: int | None = None  # index of a reply that is a refused handshake


@functools.cache
def plans_for(worker: str, trusted: bool) -> tuple[Plan, ...]:
    return tuple(plan(case, worker, trusted) for case in CASES)


def plan(case: Case, worker: str, trusted: bool) -> Plan:
    conn = _connection(trusted)
    outcome = drive(conn, pieces(case.raw, "whole"))
    served = outcome.served
    error_status = None
    if outcome.error is not None and outcome.error_response:
        error_status = int(outcome.error_response.split(b" ", 2)[1])
    may_enter = []
    last = conn.last_request
    if (
        outcome.error is not None
        and last is not None
        and all(s.request is not last for s in served)
    ):
        may_enter.append((last.method, app_target(last, worker)))
    if worker not in KEEPS_ALIVE and served:
        served, error_status = served[:1], None  # sync: one request per connection
    websocket_at = None
    if worker == "asgi":
        upgrades = [i for i, s in enumerate(served) if s.request.upgrade == b"websocket"]
        if upgrades:  # a WebSocket handshake ends the HTTP exchange
            websocket_at = upgrades[0]
            served, error_status = served[: websocket_at + 1], None
            request = served[websocket_at].request
            may_enter.append((request.method, app_target(request, worker)))
    refused = outcome.error is not None
    above = ABOVE_CORE.get((case.name, trusted))
    if above is not None:
        served, error_status, refused = [], above, True
    return Plan(
        case=case,
        served=[(s.request.method, app_target(s.request, worker), s.body) for s in served],
        error_status=error_status,
        refused=refused,
        half_close=not (refused and (above is not None or _refused_before_eof(case.raw, trusted))),
        may_enter=may_enter,
        websocket_at=websocket_at,
    )


# -------------------------------------------------------------------------- checking


def reset_tolerated(plan: Plan) -> bool:
    """May this refusal end with a reset rather than FIN? Only for a flood longer than a
    server drains, and for a body refused after its head reached the application (the
    asgi worker sometimes closes such a connection before a late client byte: reported,
    counted in the figures as ``refusals_reset``)."""
    return len(plan.case.raw) > DRAIN_BOUND or bool(plan.may_enter)


def check(plan: Plan, got: wire.Exchange) -> tuple[list[str], list[tuple[bytes, bytes, bytes]]]:
    """Problems with one exchange (empty: it passed), and the echoes the app sent."""
    methods = [method for method, _, _ in plan.served]
    try:
        replies = wire.parse_replies(got.data, methods)
    except (wire.Garbled, ValueError) as exc:
        return [f"garbled answer: {exc}"], []
    finals = [reply for reply in replies if reply.status >= 200]
    problems: list[str] = []
    echoes: list[tuple[bytes, bytes, bytes]] = []
    expected = len(plan.served) + (plan.error_status is not None)
    if len(finals) != expected:
        statuses = [reply.status for reply in finals]
        problems.append(f"{len(finals)} responses {statuses}, expected {expected}")
    for index, (reply, (method, target, body)) in enumerate(zip(finals, plan.served, strict=False)):
        if index == plan.websocket_at:
            if reply.status not in (400, 403, 426, 500):
                problems.append(f"handshake answered {reply.status}")
            continue
        if reply.status != 200:
            problems.append(f"request {index} answered {reply.status}")
            continue
        if method in (b"HEAD", b"CONNECT"):
            echoes.append((method, target, body))  # no body to echo: the status says it
            continue
        try:
            seen = json.loads(reply.body)
        except ValueError:
            problems.append(f"request {index}: not an echo: {reply.body[:100]!r}")
            continue
        echo = tuple(seen[k].encode("latin-1") for k in ("method", "target", "body"))
        echoes.append((echo[0], echo[1], echo[2]))
        if echo != (method, target, body):
            problems.append(f"request {index}: the app saw {echo!r}, not {(method, target)!r}")
    if plan.error_status is not None and len(finals) == expected:
        last = finals[-1]
        if last.status != plan.error_status:
            problems.append(f"refused with {last.status}, expected {plan.error_status}")
        if last.header(b"connection") != b"close":
            problems.append("the refusal lacks Connection: close")
    if got.ended == "timeout":
        problems.append("the server never closed the connection")
    elif got.ended == "reset" and plan.error_status is not None and not reset_tolerated(plan):
        problems.append("the refusal ended with a reset, not FIN")
    return problems, echoes


# ---------------------------------------------------------------------------- server


@dataclass
class Battery:
    server: Gunicorn
    calls_file: Path
    addresses: dict[str, Address]


def server_args(worker: str, unix_path: str) -> list[str]:
    args = ["-k", worker, "--chdir", str(REPO), "--timeout", "30"]
    args += ["-b", "127.0.0.1:0", "-b", f"unix:{unix_path}"]
    # A TCP peer (127.0.0.1) is no trusted forwarder; a unix socket peer always is.
    args += ["--forwarded-allow-ips", "10.255.255.254"]
    if worker == "sync":
        args += ["-w", "4"]  # one connection at a time each
    elif worker == "gthread":
        args += ["--threads", "8"]
    app = "tests.reliability.hostile_app:" + ("asgi" if worker == "asgi" else "app")
    return [*args, app]


def server_fixture(worker: str) -> Callable[[], Iterator[Battery]]:
    """A module-scoped fixture: one server of ``worker`` on TCP and on a unix socket."""

    @pytest.fixture(scope="module")
    def battery() -> Iterator[Battery]:
        with tempfile.TemporaryDirectory(prefix="hostile-") as directory:
            unix_path = str(Path(directory) / "s.sock")
            calls_file = Path(directory) / "calls.jsonl"
            env = {"HOSTILE_CALLS_FILE": str(calls_file)}
            with Gunicorn(*server_args(worker, unix_path), env=env) as server:
                assert server.address is not None
                yield Battery(server, calls_file, {"tcp": server.address, "unix": unix_path})
                server.send(signal.SIGQUIT)  # a fast stop: nothing is in flight any more
                server.wait(timeout=30)

    return battery


# ----------------------------------------------------------------------------- a run


@dataclass
class Result:
    plan: Plan
    problems: list[str]
    echoes: list[tuple[bytes, bytes, bytes]]
    seconds: float
    reset: bool  # the connection ended with a reset


async def _run_all(address: Address, plans: list[Plan], mode: str, limit: int) -> list[Result]:
    gate = asyncio.Semaphore(limit)

    async def one(plan: Plan) -> Result:
        async with gate:
            start = time.monotonic()
            got = await wire.exchange(
                address,
                wire.pieces_for(plan.case.raw, mode),
                half_close=plan.half_close,
                timeout=EXCHANGE_TIMEOUT,
            )
        seconds = time.monotonic() - start
        problems, echoes = check(plan, got)
        return Result(plan, problems, echoes, seconds, got.ended == "reset")

    return list(await asyncio.gather(*(one(p) for p in plans)))


async def _calls(address: Address) -> list[dict[str, str]]:
    request = b"GET /__calls HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    got = await wire.exchange(address, iter([request]), half_close=False, timeout=30)
    (reply,) = wire.parse_replies(got.data, [b"GET"])
    calls: list[dict[str, str]] = json.loads(reply.body)
    return calls


def _unexpected_calls(calls: list[dict[str, str]], results: list[Result]) -> list[dict[str, str]]:
    """Calls of the app that no answer accounts for (an invoked app for a refused
    message, or a body it read complete although the core refused it)."""
    done = Counter((c["method"], c["target"], c["body"]) for c in calls if c["event"] == "done")
    echoed = Counter(
        tuple(part.decode("latin-1") for part in echo) for r in results for echo in r.echoes
    )
    entered_allowed = Counter((m, t) for m, t, _ in echoed.elements())
    for result in results:
        for method, target in result.plan.may_enter:
            entered_allowed[(method.decode("latin-1"), target.decode("latin-1"))] += 1
    unexpected = [
        {"event": "done", "method": m, "target": t, "body": b}
        for (m, t, b) in (done - echoed).elements()
    ]
    entered = Counter((c["method"], c["target"]) for c in calls if c["event"] == "enter")
    unexpected += [
        {"event": "enter", "method": m, "target": t} for (m, t) in (entered - entered_allowed)
    ]
    return unexpected


def known_failure(worker: str, name: str, socket_kind: str, mode: str) -> str | None:
    for key in (
        (worker, name, socket_kind, mode),
        (worker, name, socket_kind, "*"),
        (worker, name, "*", mode),
        (worker, name, "*", "*"),
    ):
        if key in KNOWN_FAILURES:
            return KNOWN_FAILURES[key]
    return None


def run_battery(battery: Battery, worker: str, socket_kind: str, mode: str) -> None:
    trusted = socket_kind == "unix"
    plans = list(plans_for(worker, trusted))
    address = battery.addresses[socket_kind]
    limit = 16 if worker == "sync" else 64

    async def main() -> tuple[list[Result], list[dict[str, str]]]:
        before = len(await _calls(address))
        results = await _run_all(address, plans, mode, limit)
        return results, (await _calls(address))[before:]

    results, calls = asyncio.run(main())
    unexpected = _unexpected_calls(calls, results)

    invalid = [r for r in results if r.plan.refused]
    valid = [r for r in results if not r.plan.refused]
    smuggling = [r for r in results if r.plan.case.id.startswith(SMUGGLING_PREFIXES)]
    item = f"{socket_kind}-{mode}"
    figures.record(
        "h1-battery",
        worker,
        item,
        invalid_tried=len(invalid),
        rejected_correctly=sum(not r.problems for r in invalid),
        valid_tried=len(valid),
        valid_served=sum(not r.problems for r in valid),
        unexpected_app_calls=len(unexpected),
        refusals_reset=sum(r.reset for r in invalid),
    )
    figures.record(
        "smuggling",
        worker,
        item,
        tried=len(smuggling),
        passed=sum(not r.problems for r in smuggling),
    )

    failed, passed_known = {}, []
    for result in results:
        name = f"{result.plan.case.kind}/{result.plan.case.name}"
        reason = known_failure(worker, result.plan.case.name, socket_kind, mode)
        if result.problems and reason is None:
            failed[name] = result.problems
        elif not result.problems and reason is not None:
            passed_known.append(f"{name} (known: {reason})")
    assert not failed, f"{len(failed)} of {len(results)} cases failed: {failed}"
    assert not passed_known, f"known failures that now pass (update KNOWN_FAILURES): {passed_known}"
    assert not unexpected, f"the app was called for what it must never see: {unexpected}"


RULE_RE = re.compile(r"RFC \d+ §\d+(\.\d+)*")


def corpus_rules() -> dict[str, str]:
    """Every corpus case (its JSON file's name) -> the rule it states (``""``: none)."""
    return {
        f"{path.parent.name}/{path.stem}": json.loads(path.read_text("ascii")).get("rule", "")
        for path in sorted(CORPUS_DIR.glob("*/*.json"))
    }


def battery_test(worker: str) -> Callable[..., None]:
    """The battery's test function for one worker class (its module needs the
    ``battery`` fixture of ``server_fixture(worker)``)."""

    @pytest.mark.slow
    @pytest.mark.parametrize("mode", wire.MODES)
    @pytest.mark.parametrize("socket_kind", SOCKETS)
    def test_hostile_h1(battery: Battery, socket_kind: str, mode: str) -> None:
        run_battery(battery, worker, socket_kind, mode)

    return test_hostile_h1
