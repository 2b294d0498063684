"""The request corpus of ``tests/requests`` and a server-like driver for ``H1Connection``.

Each case is one JSON file (``valid/NAME.json`` or ``invalid/NAME.json``)::

    {"id": "S1", "description": "...",
     "policy": {Policy fields}, "limits": {Limits.from_settings kwargs},
     "trusted_forwarder": false,
     "raw": ["GET / HTTP/1.1\\r\\n", ...],
     "expect": {...}}

``raw`` items are strings encoded as latin-1 (so any byte is expressible) and
concatenated; an item may also be ``{"repeat": "text", "count": N}`` for large inputs.

Valid cases expect ``{"requests": [{...}, ...]}``: one entry per request served, with
the keys ``method``, ``target``, ``version``, ``headers`` and ``body`` always compared,
and any of ``path``, ``query``, ``fragment``, ``scheme``, ``authority``,
``content_length``, ``chunked``, ``has_body``, ``keep_alive``, ``expect_continue``,
``upgrade``, ``trailers`` and ``conn_keep_alive`` (the connection's ``keep_alive`` once the
response was sent) compared when present.

Invalid cases expect ``{"error": "ClassName", "status": 400, "requests_before": 0}``:
the error is raised (a subclass passes) after ``requests_before`` complete requests.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gunicorn.http.errors import ProtocolError
from gunicorn.http.events import ConnectionClosed, Data, EndOfMessage, Request, Response
from gunicorn.http.h1 import NEED_DATA, PAUSED, H1Connection, reader
from gunicorn.http.limits import Limits, Policy

CORPUS_DIR = Path(__file__).resolve().parent.parent / "requests"
RANDOM_SEEDS = (1, 2, 3)
FEED_MODES = ("whole", "lines", "bytes", *(f"random-{seed}" for seed in RANDOM_SEEDS))

REQUEST_KEYS = (
    "method",
    "target",
    "version",
    "headers",
    "path",
    "query",
    "fragment",
    "scheme",
    "authority",
    "content_length",
    "chunked",
    "has_body",
    "keep_alive",
    "expect_continue",
    "upgrade",
)
REQUIRED_KEYS = ("method", "target", "version", "headers", "body")


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    id: str
    description: str
    raw: bytes
    limits: Limits
    policy: Policy
    trusted_forwarder: bool
    expect: dict[str, Any]


def _raw_bytes(items: list[Any]) -> bytes:
    parts = []
    for item in items:
        if isinstance(item, str):
            parts.append(item.encode("latin-1"))
        else:
            parts.append(item["repeat"].encode("latin-1") * item["count"])
    return b"".join(parts)


def _policy(fields: dict[str, Any]) -> Policy:
    values: dict[str, Any] = {
        name: frozenset(v.encode("latin-1") for v in value) if isinstance(value, list) else value
        for name, value in fields.items()
    }
    return Policy(**values)


def load_case(path: Path) -> Case:
    data = json.loads(path.read_text(encoding="ascii"))
    return Case(
        name=path.stem,
        kind=path.parent.name,
        id=data["id"],
        description=data["description"],
        raw=_raw_bytes(data["raw"]),
        limits=Limits.from_settings(**data.get("limits", {})),
        policy=_policy(data.get("policy", {})),
        trusted_forwarder=data.get("trusted_forwarder", False),
        expect=data["expect"],
    )


def load_cases(kind: str) -> list[Case]:
    return [load_case(path) for path in sorted((CORPUS_DIR / kind).glob("*.json"))]


# ------------------------------------------------------------------------ feed modes


def _lines(raw: bytes) -> Iterator[bytes]:
    start = 0
    while start < len(raw):
        end = raw.find(b"\n", start)
        end = len(raw) if end < 0 else end + 1
        yield raw[start:end]
        start = end


def _bytes(raw: bytes) -> Iterator[bytes]:
    for index in range(len(raw)):
        yield raw[index : index + 1]


def _random(raw: bytes, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    start = 0
    while start < len(raw):
        size = rng.choice((1, 2, 3, rng.randint(1, 16), rng.randint(1, 256)))
        yield raw[start : start + size]
        start += size


def pieces(raw: bytes, mode: str) -> Iterator[bytes]:
    """``raw`` cut the way ``mode`` says (lazily, so huge inputs stay cheap)."""
    if mode == "whole":
        return iter([raw] if raw else [])
    if mode == "lines":
        return _lines(raw)
    if mode == "bytes":
        return _bytes(raw)
    kind, _, seed = mode.partition("-")
    assert kind == "random", mode
    return _random(raw, int(seed))


# ---------------------------------------------------------------------------- driver


@dataclass
class Served:
    """One request as a server saw it."""

    request: Request
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    complete: bool = False
    conn_keep_alive: bool | None = None


@dataclass
class Outcome:
    served: list[Served] = field(default_factory=list)
    error: ProtocolError | None = None
    error_response: bytes = b""
    closed: bool = False  # ConnectionClosed was reported
    stopped: bool = False  # the server stopped because keep_alive was false


@contextlib.contextmanager
def general_parser_only() -> Iterator[None]:
    """Switch off the request-line and header fast paths of ``h1`` (their regexes
    never match), so every head goes through the general parser."""
    never = re.compile(rb"(?!)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(reader, "_FAST_LINE_RE", never)
        patch.setattr(reader, "_FIELD_LINE_RE", never)
        yield


def make_connection(
    limits: Limits | None = None, policy: Policy | None = None, trusted: bool = False
) -> H1Connection:
    return H1Connection(
        limits=limits or Limits(),
        policy=policy or Policy(),
        clock=lambda: 0.0,
        trusted_forwarder=trusted,
    )


def drive(conn: H1Connection, chunks: Iterable[bytes], max_steps: int = 10_000_000) -> Outcome:
    """Serve ``conn`` like a server would: feed a piece whenever the core needs data
    (EOF once the pieces run out), answer each complete request with an empty 200,
    and stop on an error, on ConnectionClosed or when the connection is not reusable."""
    outcome = Outcome()
    feed = iter(chunks)
    eof = False
    current: Served | None = None
    for _ in range(max_steps):
        try:
            event = conn.next_event()
        except ProtocolError as exc:
            outcome.error = exc
            outcome.error_response = conn.error_response(exc)
            return outcome
        if event is NEED_DATA:
            assert not eof, "NEED_DATA after EOF"
            piece = next(feed, None)
            if piece is None:
                eof = True
                conn.receive_data(b"")
            else:
                conn.receive_data(piece)
        elif isinstance(event, Request):
            assert current is None, "a Request before the previous one completed"
            current = Served(event)
        elif isinstance(event, Data):
            assert current is not None and not current.complete
            current.body += event.data
        elif isinstance(event, EndOfMessage):
            assert current is not None and not current.complete
            current.trailers = list(event.trailers)
            current.complete = True
        elif event is PAUSED:
            assert current is not None and current.complete, "PAUSED before EndOfMessage"
            conn.send(Response(200, [(b"content-length", b"0")]))
            conn.send(EndOfMessage())
            current.conn_keep_alive = conn.keep_alive
            outcome.served.append(current)
            current = None
            if not conn.keep_alive:
                outcome.stopped = True
                return outcome
            conn.start_next_cycle()
        elif isinstance(event, ConnectionClosed):
            assert current is None, "ConnectionClosed in the middle of a request"
            outcome.closed = True
            return outcome
        else:
            raise AssertionError(f"unexpected event {event!r}")
    raise AssertionError("the connection never settled")


def run_case(case: Case, mode: str) -> Outcome:
    conn = make_connection(case.limits, case.policy, case.trusted_forwarder)
    return drive(conn, pieces(case.raw, mode))


# ----------------------------------------------------------------------- expectations


def _to_bytes(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("latin-1")
    return value


def _pairs(value: list[list[str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), val.encode("latin-1")) for name, val in value]


def expected_view(expect: dict[str, Any]) -> dict[str, Any]:
    """An expectation dict with its values converted to what the core produces."""
    missing = [key for key in REQUIRED_KEYS if key not in expect]
    assert not missing, f"expectation lacks {missing}"
    view: dict[str, Any] = {}
    for key, value in expect.items():
        if key in ("headers", "trailers"):
            view[key] = _pairs(value)
        elif key == "version":
            view[key] = tuple(value)
        else:
            view[key] = _to_bytes(value)
    return view


def actual_view(served: Served, keys: Iterable[str]) -> dict[str, Any]:
    """The same keys read from what the server saw."""
    view: dict[str, Any] = {}
    for key in keys:
        if key == "body":
            view[key] = served.body
        elif key == "trailers":
            view[key] = served.trailers
        elif key == "conn_keep_alive":
            view[key] = served.conn_keep_alive
        else:
            assert key in REQUEST_KEYS, f"unknown expectation key {key!r}"
            view[key] = getattr(served.request, key)
    return view


def event_summary(outcome: Outcome) -> list[Any]:
    """Everything observable about an outcome, for split-independence comparisons."""
    summary: list[Any] = [
        (s.request, s.body, s.trailers, s.conn_keep_alive) for s in outcome.served
    ]
    summary.append(type(outcome.error).__name__ if outcome.error else None)
    summary.append((outcome.closed, outcome.stopped))
    return summary
