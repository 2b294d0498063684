"""Property tests of the request reader: split independence, round trips and limits."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import h11
import pytest
from corpus import (
    Case,
    Outcome,
    drive,
    event_summary,
    general_parser_only,
    load_cases,
    make_connection,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine
from gunicorn.http.limits import Limits

# Modest, reproducible runs: the whole tests/http group stays within a few seconds.
FAST = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CASES = [case for case in load_cases("valid") + load_cases("invalid") if len(case.raw) < 20_000]


def cut(raw: bytes, positions: list[int]) -> list[bytes]:
    """``raw`` split at ``positions`` (any order, duplicates and out-of-range ignored)."""
    points = sorted({p for p in positions if 0 < p < len(raw)})
    bounds = [0, *points, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


def run(raw_pieces: list[bytes], limits: Limits | None = None) -> Outcome:
    return drive(make_connection(limits), raw_pieces)


def run_case_pieces(case: Case, raw_pieces: list[bytes]) -> Outcome:
    conn = make_connection(case.limits, case.policy, case.trusted_forwarder)
    return drive(conn, raw_pieces)


# ------------------------------------------------------------ corpus split independence


@FAST
@given(data=st.data())
def test_any_split_of_a_corpus_case_gives_the_same_events(data: st.DataObject) -> None:
    case = data.draw(st.sampled_from(CASES), label="case")
    positions = data.draw(
        st.lists(st.integers(0, len(case.raw)), max_size=40), label="split positions"
    )
    whole = event_summary(run_case_pieces(case, [case.raw]))
    assert event_summary(run_case_pieces(case, cut(case.raw, positions))) == whole


# ---------------------------------------------------------------- generated requests

TCHAR = "!#$%&'*+-.^`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PCHAR = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@%/"
VCHAR = "".join(chr(c) for c in range(0x21, 0x7F))
RESERVED = {
    "host",
    "content-length",
    "transfer-encoding",
    "content-type",
    "connection",
    "expect",
    "upgrade",
    "te",
    "trailer",
}


@dataclass
class Generated:
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]  # as the core reports them
    body: bytes
    trailers: list[tuple[bytes, bytes]]
    raw: bytes


field_names = st.text(TCHAR, min_size=1, max_size=12).filter(lambda n: n.lower() not in RESERVED)
field_values = st.builds(
    lambda core, pad_left, pad_right: (core, pad_left + core + pad_right),
    st.one_of(
        st.just(""),
        st.builds(
            lambda a, mid, b: a + mid + b,
            st.text(VCHAR, min_size=1, max_size=1),
            st.text(VCHAR + " \t" + "\x80\xe9\xff", max_size=20),
            st.text(VCHAR, min_size=1, max_size=1),
        ),
    ),
    st.sampled_from(["", " ", "  ", "\t"]),
    st.sampled_from(["", " ", "\t "]),
)


@st.composite
def generated_requests(draw: st.DrawFn) -> Generated:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "PROPFIND"]))
    path = "/" + draw(st.text(PCHAR, max_size=20))
    query = draw(st.one_of(st.none(), st.text(PCHAR + "?", max_size=12)))
    target = path if query is None else f"{path}?{query}"
    fields = draw(st.lists(st.tuples(field_names, field_values), max_size=8))
    body = draw(st.binary(max_size=60))
    framing = draw(
        st.sampled_from(["length", "chunked"] if body else ["none", "length", "chunked"])
    )
    lines = [f"{method} {target} HTTP/1.1", "Host: example.org"]
    headers = [(b"host", b"example.org")]
    for name, (value, sent) in fields:
        lines.append(f"{name}:{sent}")
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    trailers: list[tuple[bytes, bytes]] = []
    raw_body = b""
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
        headers.append((b"content-length", b"%d" % len(body)))
        raw_body = body
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        headers.append((b"transfer-encoding", b"chunked"))
        sizes = draw(st.lists(st.integers(1, 20), max_size=6))
        pos = 0
        for size in [*sizes, len(body)]:
            piece = body[pos : pos + size]
            if piece:
                raw_body += b"%x\r\n%b\r\n" % (len(piece), piece)
            pos += len(piece)
        raw_body += b"0\r\n"
        for name, (value, sent) in draw(st.lists(st.tuples(field_names, field_values), max_size=3)):
            raw_body += f"{name}:{sent}\r\n".encode("latin-1")
            trailers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        raw_body += b"\r\n"
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + raw_body
    return Generated(method.encode(), target.encode(), headers, body, trailers, raw)


@settings(FAST, max_examples=30)
@given(
    requests=st.lists(generated_requests(), min_size=1, max_size=3),
    positions=st.lists(st.integers(0, 2000), max_size=30),
)
def test_generated_requests_round_trip_under_any_split(
    requests: list[Generated], positions: list[int]
) -> None:
    raw = b"".join(request.raw for request in requests)
    outcome = run(cut(raw, positions))
    assert outcome.error is None
    assert outcome.closed
    seen = [
        (s.request.method, s.request.target, s.request.headers, s.body, s.trailers)
        for s in outcome.served
    ]
    assert seen == [(r.method, r.target, r.headers, r.body, r.trailers) for r in requests]


@settings(FAST, max_examples=25)
@given(request=generated_requests())
def test_generated_requests_agree_with_h11(request: Generated) -> None:
    """h11 as an independent server-side parser sees the same message."""
    outcome = run([request.raw])
    assert outcome.error is None
    (served,) = outcome.served
    server = h11.Connection(h11.SERVER)
    server.receive_data(request.raw)
    oracle = server.next_event()
    assert isinstance(oracle, h11.Request)
    body = b""
    while not isinstance(event := server.next_event(), h11.EndOfMessage):
        body += event.data
    assert served.request.method == oracle.method
    assert served.request.target == oracle.target
    assert served.request.headers == list(oracle.headers)
    assert served.body == body
    assert served.trailers == list(event.headers)


# ----------------------------------------------------------------------------- limits


def request_with_line_of(length: int) -> bytes:
    filler = length - len(b"GET / HTTP/1.1")
    return b"GET /" + b"a" * filler + b" HTTP/1.1\r\nHost: a\r\n\r\n"


def request_with_field_of(length: int) -> bytes:
    """A field line that takes ``length`` bytes with its CRLF (as gunicorn counts it)."""
    return b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * (length - 5) + b"\r\n\r\n"


def request_with_fields(count: int) -> bytes:
    others = b"".join(b"X-%d: v\r\n" % i for i in range(count - 1))
    return b"GET / HTTP/1.1\r\nHost: a\r\n" + others + b"\r\n"


def served_ok(outcome: Outcome) -> bool:
    return outcome.error is None and len(outcome.served) == 1


@pytest.mark.parametrize(
    ("build", "at_limit", "error"),
    [
        (request_with_line_of, 4094, LimitRequestLine),
        (request_with_field_of, 8190, LimitRequestHeaders),
        (request_with_fields, 100, LimitRequestHeaders),
    ],
    ids=["request-line", "field-size", "field-count"],
)
def test_default_limits_at_and_past_the_boundary(
    build: object, at_limit: int, error: type[Exception]
) -> None:
    assert callable(build)
    assert served_ok(run([build(at_limit)]))
    past = run([build(at_limit + 1)])
    assert isinstance(past.error, error)
    assert past.error.status == (414 if error is LimitRequestLine else 431)


@FAST
@given(limit=st.integers(14, 8190), positions=st.lists(st.integers(0, 9000), max_size=10))
def test_custom_request_line_limit(limit: int, positions: list[int]) -> None:
    limits = Limits.from_settings(limit_request_line=limit)
    assert served_ok(run(cut(request_with_line_of(limit), positions), limits))
    past = run(cut(request_with_line_of(limit + 1), positions), limits)
    assert isinstance(past.error, LimitRequestLine)


@FAST
# From 9: "Host: a" and its CRLF must fit too.
@given(limit=st.integers(9, 8190), positions=st.lists(st.integers(0, 9000), max_size=10))
def test_custom_field_size_limit(limit: int, positions: list[int]) -> None:
    limits = Limits.from_settings(limit_request_field_size=limit)
    assert served_ok(run(cut(request_with_field_of(limit), positions), limits))
    past = run(cut(request_with_field_of(limit + 1), positions), limits)
    assert isinstance(past.error, LimitRequestHeaders)


@FAST
@given(limit=st.integers(1, 300), positions=st.lists(st.integers(0, 4000), max_size=10))
def test_custom_field_count_limit(limit: int, positions: list[int]) -> None:
    limits = Limits.from_settings(limit_request_fields=limit)
    assert served_ok(run(cut(request_with_fields(limit), positions), limits))
    past = run(cut(request_with_fields(limit + 1), positions), limits)
    assert isinstance(past.error, LimitRequestHeaders)


def test_limit_settings_follow_gunicorn_semantics() -> None:
    assert Limits.from_settings(limit_request_line=10_000).max_request_line == 8190
    assert Limits.from_settings(limit_request_fields=0).max_header_fields == 32768
    assert Limits.from_settings(limit_request_fields=40_000).max_header_fields == 32768
    assert Limits.from_settings(limit_request_field_size=0).max_header_field_size == 8190
    # limit_request_line 0: no configured limit, a 8190-byte line passes.
    assert served_ok(run([request_with_line_of(8190)], Limits.from_settings(limit_request_line=0)))


# ------------------------------------------------- fast paths against the general parser

# Field lines made mostly of ordinary bytes, with the ones that decide how a line parses
# mixed in: "_" (header_map), the colon, whitespace, bare CR and LF, controls, DEL and
# obs-text. Most generated heads are valid, so both parsers' results are compared.
_ORDINARY = list(b"aZ1-;/=") * 20
_DECIDING = list(b"_: \t\r\n\x00\x0b\x7f\x80\xff#")
_VALUE = st.lists(st.sampled_from(_ORDINARY + _DECIDING), max_size=12).map(bytes)
_FIELD_LINE = st.tuples(
    st.sampled_from([b"X-A", b"Accept", b"Connection", b"Te", b"x_b", b"Content-Length", b""]),
    st.sampled_from([b": "] * 6 + [b":", b":\t", b" :", b" ", b""]),
    _VALUE,
    st.sampled_from([b""] * 6 + [b" ", b"\t "]),
).map(b"".join)
_REQUEST_LINE = st.sampled_from(
    [b"GET / HTTP/1.1"] * 3
    + [b"GET /a?b HTTP/1.0", b"DELETE /a?b HTTP/1.1", b"POST /a#c HTTP/1.1", b"get / HTTP/1.1"]
)


@settings(FAST, max_examples=300)
@given(line=_REQUEST_LINE, fields=st.lists(_FIELD_LINE, min_size=1, max_size=6))
# A bare CR and a bare LF that look like a line end between them (the CRs and LFs still
# alternate): only the CR-must-precede-LF rule refuses it.
@example(line=b"GET / HTTP/1.1", fields=[b"X-A: a\rb\nY: c"])
def test_fast_paths_agree_with_the_general_parser_on_generated_heads(
    line: bytes, fields: list[bytes]
) -> None:
    raw = b"\r\n".join([line, b"Host: a", *fields]) + b"\r\n\r\n"
    fast = run([raw])
    with general_parser_only():
        slow = run([raw])
    assert event_summary(fast) == event_summary(slow)
    assert str(fast.error) == str(slow.error)
