"""Behind real proxies: nginx and HAProxy in front of every worker class (issue 15).

For each worker class, two gunicorn backends run (one plain, one with
``--proxy-protocol``), each on TCP and on a unix socket; one nginx and one HAProxy, started
here as foreground children, front them (``proxy_servers.ROUTES``). Every smuggling and
framing case of the corpus (ids S*, C*, K* in ``tests/requests``; hostile-inputs §2) is
sent through each route, followed by a normal request on the same connection, and then a
normal request on a second connection. The proxy/backend pair is in sync when:

- every response that echoes a request belongs to a request this connection sent (a
  response to another client's request, or two responses for one, is a desync);
- the second connection's request gets its own response (the proxy reuses its backend
  connections: ``keepalive`` in nginx, ``http-reuse always`` in HAProxy);
- no smuggled request reaches the application: each ``/smuggled`` target hidden in a
  body or after a refused message is renamed ``/smugNNNN`` (same length, so no
  Content-Length changes) and the application's log must never hold one.

The normal requests also show that the application sees the real client (``127.0.0.2``):
``REMOTE_ADDR``/``REMOTE_PORT`` (ASGI ``client``) through a PROXY protocol header, else the
``X-Forwarded-For`` and ``X-Client-Port`` fields the proxy set, sent by a peer listed in
``forwarded_allow_ips``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.http.corpus import Case, load_cases
from tests.reliability.figures import record
from tests.reliability.proxy_client import CLIENT_HOST, Exchanged, exchange
from tests.reliability.proxy_servers import (
    ROUTES,
    Backends,
    Proxy,
    haproxy,
    has_stream_module,
    nginx,
)
from tests.support import Gunicorn

pytestmark = pytest.mark.slow

WORKERS = ("sync", "gthread", "gevent", "eventlet", "asgi")
REPO = Path(__file__).resolve().parents[2]
#: Cases in flight per route at once: enough to overlap the proxies' 3 s timeouts, few
#: enough that the proxies' pooled backend connections are reused by later cases.
PER_ROUTE = 6
SMUGGLED = b"/smuggled"


def smuggling_cases() -> list[Case]:
    cases = [c for c in load_cases("invalid") + load_cases("valid") if re.match(r"[SCK]\d", c.id)]
    return sorted(cases, key=lambda c: c.name)


@pytest.fixture(scope="module", params=WORKERS)
def worker(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def backend_args(worker: str, socket_path: str) -> list[str]:
    args = ["-k", worker, "--chdir", str(REPO), "--timeout", "30", "--graceful-timeout", "2"]
    args += ["-b", "127.0.0.1:0", "-b", f"unix:{socket_path}"]
    args += ["-w", "4" if worker == "sync" else "2", "--forwarded-allow-ips", "127.0.0.1"]
    # Longer than the proxies keep idle backend connections (HAProxy: 5 s), as a server
    # behind a proxy should be: otherwise a reused connection may close under a request.
    args += ["--keep-alive", "30"]
    if worker == "gthread":
        args += ["--threads", "8"]
    app = "asgi_app" if worker == "asgi" else "app"
    return [*args, f"tests.reliability.proxy_apps:{app}"]


@dataclass
class Sandwich:
    worker: str
    proxies: dict[str, Proxy]
    app_log: Path
    backends: list[Gunicorn]

    def logs(self) -> str:
        """What the backends and proxies logged beyond INFO (for a failure message)."""
        lines = [
            f"{g.args[-1]} {g.args[:3]}: {line}"
            for g in self.backends
            for line in g.log.splitlines()
        ]
        lines = [line for line in lines if "[INFO]" not in line]
        serious = ("[alert]", "[crit]", "[emerg]", "ALERT", "WARNING")
        lines += [
            f"{name}: {line}"
            for name, p in self.proxies.items()
            for line in p.log.splitlines()
            if any(word in line for word in serious)
        ]
        return "\n".join(lines[-60:])


@pytest.fixture(scope="module")
def sandwich(worker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandwich]:
    directory = tmp_path_factory.mktemp(f"proxies-{worker}")
    sockets = tempfile.mkdtemp(prefix="gpx-")  # short: a unix socket path has 108 bytes
    app_log = directory / "app.jsonl"
    env = {"PROXY_APP_LOG": str(app_log)}
    plain_sock, pp_sock = f"{sockets}/plain.sock", f"{sockets}/pp.sock"
    pp_args = ["--proxy-protocol", "auto", "--proxy-allow-from", "127.0.0.1"]
    try:
        with (
            Gunicorn(
                *backend_args(worker, plain_sock), env=env, default_bind=False, timeout=30
            ) as plain,
            Gunicorn(
                *pp_args, *backend_args(worker, pp_sock), env=env, default_bind=False, timeout=30
            ) as pp,
        ):
            assert isinstance(plain.address, tuple) and isinstance(pp.address, tuple)
            backends = Backends(plain.address[1], plain_sock, pp.address[1], pp_sock)
            with (
                nginx(backends, directory / "nginx") as front_nginx,
                haproxy(backends, directory / "haproxy") as front_haproxy,
            ):
                proxies = {"nginx": front_nginx, "haproxy": front_haproxy}
                yield Sandwich(worker, proxies, app_log, [plain, pp])
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


# ------------------------------------------------------------------------------ the run


def item_name(proxy: str, route: str) -> str:
    transport = route.removeprefix("pp-")
    return f"proxy-{proxy}-{transport}-pp-{'on' if route.startswith('pp-') else 'off'}"


@dataclass
class RouteResult:
    cases: int = 0
    mismatches: list[str] = field(default_factory=list)
    address_errors: list[str] = field(default_factory=list)
    answered_by_app: int = 0  # hostile messages the proxy and the backend both let through


@dataclass
class Run:
    sandwich: Sandwich
    routes: dict[str, RouteResult]  # by item name
    tags: dict[int, tuple[str, str]]  # tag -> (item name, case name)


def normal(tag: int, n: int) -> tuple[str, bytes]:
    target = f"/normal-{tag}-{n}"
    return target, f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\n".encode()


def check_address(got: Exchanged, target: str, via_pp: bool) -> str | None:
    seen = next((r.seen for r in got.replies if r.seen and r.seen["target"] == target), None)
    if seen is None:
        return None  # counted as a mismatch already
    if via_pp:
        expected = {"remote_addr": CLIENT_HOST, "remote_port": str(got.port)}
    else:
        expected = {"forwarded_for": CLIENT_HOST, "client_port": str(got.port)}
    wrong = {key: seen.get(key) for key, value in expected.items() if seen.get(key) != value}
    return f"expected {expected}, the app saw {wrong}" if wrong else None


async def one_case(
    case: Case, tag: int, route: tuple[str, int], via_pp: bool, result: RouteResult
) -> None:
    hostile = case.raw.replace(SMUGGLED, b"/smug%04d" % tag)
    first, first_bytes = normal(tag, 1)
    second, second_bytes = normal(tag, 2)
    got = await exchange(route, hostile + first_bytes, until=first)
    problems = []
    if got.garbled:
        problems.append(f"garbled response on the first connection: {got.garbled}")
    foreign = [t for t in got.targets() if t.startswith(("/smug", "/normal")) and t != first]
    if foreign:
        problems.append(f"the first connection got responses for {foreign}")
    if got.targets().count(first) > 1:
        problems.append("two responses to one request")
    result.answered_by_app += sum(1 for t in got.targets() if not t.startswith("/normal"))
    # A plain request: it may wait its turn behind stalled ones, never be cut for idling.
    again = await exchange(route, second_bytes, until=second, idle=8.0)
    if again.targets() != [second]:
        statuses = [r.status for r in again.replies]
        problems.append(
            f"the next connection got {again.targets()} (statuses {statuses}), not {second}"
        )
    if problems:
        result.mismatches.append(f"{case.name}: {'; '.join(problems)}")
    wrong_address = check_address(again, second, via_pp)
    if wrong_address:
        result.address_errors.append(f"{case.name}: {wrong_address}")


async def run_route(
    cases: list[tuple[Case, int]], route: tuple[str, int], via_pp: bool, result: RouteResult
) -> None:
    gate = asyncio.Semaphore(PER_ROUTE)

    async def guarded(case: Case, tag: int) -> None:
        async with gate:
            try:
                await one_case(case, tag, route, via_pp, result)
            except (OSError, TimeoutError) as exc:
                result.mismatches.append(f"{case.name}: {type(exc).__name__}: {exc}")

    result.cases = len(cases)
    await asyncio.gather(*(guarded(case, tag) for case, tag in cases))


async def ready(route: tuple[str, int], timeout: float = 30.0) -> None:
    """Wait (bounded) until a plain request through ``route`` reaches the app: workers boot
    slowly on a loaded machine. A route that never answers fails its cases."""
    deadline = time.monotonic() + timeout
    request = b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n"
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, TimeoutError):
            if "/ready" in (await exchange(route, request, until="/ready")).targets():
                return
        await asyncio.sleep(0.2)


def smuggled_in_app_log(app_log: Path, run: Run) -> None:
    """Charge every smuggled target the application saw to its route and case."""
    lines = app_log.read_text().splitlines() if app_log.exists() else []
    for line in lines:
        target = json.loads(line)["target"]
        if target.startswith("/smug"):
            item, case = run.tags[int(target[5:9])]
            run.routes[item].mismatches.append(f"{case}: the app served {target}")


@pytest.fixture(scope="module")
def run(sandwich: Sandwich) -> Run:
    """Every case through every route once; the figures are recorded before any assert."""
    cases = smuggling_cases()
    jobs = []
    result = Run(sandwich, {}, {})
    tag = 0
    for proxy_name, proxy in sandwich.proxies.items():
        for route, port in proxy.ports.items():
            item = item_name(proxy_name, route)
            result.routes[item] = RouteResult()
            tagged = []
            for case in cases:
                tag += 1
                result.tags[tag] = (item, case.name)
                tagged.append((case, tag))
            address = ("127.0.0.1", port)
            jobs.append((tagged, address, route.startswith("pp-"), result.routes[item]))

    async def everything() -> None:
        await asyncio.gather(*(ready(job[1]) for job in jobs))
        await asyncio.gather(*(run_route(*job) for job in jobs))

    asyncio.run(everything())
    smuggled_in_app_log(sandwich.app_log, result)
    for item, outcome in result.routes.items():
        record(
            "smuggling",
            sandwich.worker,
            item,
            cases=outcome.cases,
            mismatches=len(outcome.mismatches),
            address_errors=len(outcome.address_errors),
            answered_by_app=outcome.answered_by_app,
        )
    return result


def report(run: Run, problems: dict[str, list[str]]) -> str:
    found = "\n".join(f"{item}: {p}" for item, cases in problems.items() for p in cases[:10])
    return f"{found}\n--- logs:\n{run.sandwich.logs()}"


def routes_of(run: Run, pp: str) -> dict[str, RouteResult]:
    """The routes with the PROXY protocol ``pp`` ("on"/"off")."""
    return {item: found for item, found in run.routes.items() if item.endswith(f"-pp-{pp}")}


@pytest.mark.parametrize("pp", ["off", "on"])
def test_smuggling_through_a_proxy_keeps_the_pair_in_step(run: Run, pp: str) -> None:
    routes = routes_of(run, pp)
    expected = {item_name(p, r) for p in ("nginx", "haproxy") for r in ROUTES}
    if not has_stream_module():
        expected -= {item_name("nginx", r) for r in ROUTES if r.startswith("pp-")}
    assert set(routes) == {item for item in expected if item.endswith(f"-pp-{pp}")}
    assert all(outcome.cases > 50 for outcome in routes.values())
    problems = {item: outcome.mismatches for item, outcome in routes.items()}
    assert not any(problems.values()), report(run, problems)


@pytest.mark.parametrize("pp", ["off", "on"])
def test_the_app_sees_the_real_client_address(run: Run, pp: str) -> None:
    routes = routes_of(run, pp)
    problems = {item: outcome.address_errors for item, outcome in routes.items()}
    answered = sum(outcome.cases - len(outcome.mismatches) for outcome in routes.values())
    assert answered > 0, "no request came through"
    assert not any(problems.values()), report(run, problems)


def test_nginx_can_send_the_proxy_protocol() -> None:
    """nginx's http proxy cannot send a PROXY header; its stream module (Debian package
    libnginx-mod-stream) can, and the PROXY-protocol routes through nginx need it."""
    assert has_stream_module(), "install libnginx-mod-stream (see .ci/system-tools)"
