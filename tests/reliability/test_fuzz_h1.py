"""Differential fuzzing of our HTTP/1.1 reader against ``h11`` as the oracle (issue 15).

hypothesis builds requests from parts (``fuzz_h1.requests``: hostile bytes in the
request line and fields, Content-Length / chunked bodies, odd framing) and cuts them at
random points. Our reader (``H1Connection``, in-process) and ``h11`` read the first
request of each input:

- our reader never raises anything but a ``ProtocolError``, and reads the same request
  whatever the cuts (split independence);
- when both accept, (method, target, headers, body) are equal;
- when they disagree, the request carries a feature (``RequestParts.tags``) listed in
  ``DIFFERENCES`` below for that direction, each an RFC-justified difference. Anything
  else is a bug: fix it in ``gunicorn/http/h1`` and add the input to ``crashers/``.

The CI run is derandomized with ``FUZZ_EXAMPLES`` examples; a longer run:
``GUNICORN_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -p no:randomly -n0
tests/reliability/test_fuzz_h1.py``. ``crashers/*.http`` (inputs that once broke the
reader or showed an unexplained difference) are replayed by ``test_crashers``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gunicorn.http import errors
from tests.http.corpus import load_cases
from tests.reliability import figures
from tests.reliability.fuzz_h1 import (
    Outcome,
    Parsed,
    RequestParts,
    parse_h11,
    parse_ours,
    requests,
    splits,
)

FUZZ_EXAMPLES = int(os.environ.get("GUNICORN_FUZZ_EXAMPLES", "400"))
CRASHERS = Path(__file__).with_name("crashers")

OURS_REJECT = "ours-reject"  # we refuse what h11 accepts (we are stricter)
H11_REJECTS = "h11-rejects"  # h11 refuses what we accept
DIFFER = "differ"  # both accept, and read different requests


@dataclass(frozen=True)
class Difference:
    direction: str
    rule: str
    #: OURS_REJECT: the errors we may raise for it; DIFFER: h11's reading as ours is.
    errors: tuple[type[errors.ProtocolError], ...] = ()
    normalise: Callable[[Parsed, RequestParts], Parsed] | None = None


def _without_underscore_names(parsed: Parsed, parts: RequestParts) -> Parsed:
    kept = tuple((name, value) for name, value in parsed.headers if b"_" not in name)
    return replace(parsed, headers=kept)


def _authority_as_host(parsed: Parsed, parts: RequestParts) -> Parsed:
    authority = parts.target.split(b"//", 1)[1].split(b"/", 1)[0].split(b"?", 1)[0]
    headers = tuple(
        (name, authority if name == b"host" else value) for name, value in parsed.headers
    )
    return replace(parsed, headers=headers)


#: Every difference with h11 that the RFCs allow (we are stricter, or h11 normalises).
#: Keys are ``RequestParts.tags()``.
DIFFERENCES: dict[str, Difference] = {
    "bare-lf": Difference(
        OURS_REJECT,
        "RFC 9112 §2.2: a recipient MAY accept a bare LF as a line terminator; we refuse it "
        "(waitress CVE-2019-16785; h11 accepts it)",
        (errors.ProtocolError,),
    ),
    "method-unconventional": Difference(
        OURS_REJECT,
        "RFC 9110 §9.1: a method is any token and the server decides which it serves; "
        "gunicorn refuses non-conventional ones (3-20 upper-case letters) by default",
        (errors.InvalidRequestMethod,),
    ),
    "target-form": Difference(
        OURS_REJECT,
        "RFC 9112 §3.2: asterisk-form only with OPTIONS, authority-form only with CONNECT, "
        "no relative target; h11 checks the characters only",
        (errors.InvalidTarget,),
    ),
    "target-fragment": Difference(
        OURS_REJECT,
        "RFC 9112 §3.2: a request-target has no fragment (RFC 3986 §3.5)",
        (errors.InvalidTarget,),
    ),
    "target-chars": Difference(
        OURS_REJECT,
        "RFC 9112 §3.2 with RFC 3986 §3.3: only pchar, '/' and '?' form a path and query",
        (errors.InvalidTarget, errors.InvalidRequestLine),
    ),
    "version-other": Difference(
        OURS_REJECT,
        "RFC 9110 §15.6.6 and §2.5: a server MAY refuse a version it does not speak (505); "
        "gunicorn refuses HTTP/1.2+ unless permit_unconventional_http_version",
        (errors.InvalidHTTPVersion,),
    ),
    "value-ctl": Difference(
        OURS_REJECT,
        "RFC 9110 §5.5: field-value = *field-content (VCHAR, obs-text, SP, HTAB): CTLs are "
        "invalid; h11 deliberately admits any byte but NUL, CR and LF",
        (errors.InvalidHeader,),
    ),
    "host-invalid": Difference(
        OURS_REJECT,
        "RFC 9112 §3.2: a server MUST answer 400 to a Host that is not uri-host [':' port] "
        "(RFC 9110 §7.2); h11 does not check Host",
        (errors.InvalidHeader,),
    ),
    "dup-content-type": Difference(
        OURS_REJECT,
        "RFC 9110 §8.3: Content-Type is a singleton field; two make the body ambiguous",
        (errors.InvalidHeader,),
    ),
    "expect-other": Difference(
        OURS_REJECT,
        "RFC 9110 §10.1.1: a server MAY answer 417 to an expectation other than 100-continue",
        (errors.ExpectationFailed,),
    ),
    "cl-invalid": Difference(
        OURS_REJECT,
        "RFC 9110 §8.6: a recipient MAY either reject a Content-Length list of identical "
        "values or use the value; gunicorn rejects it (smuggling hardening)",
        (errors.InvalidContentLength,),
    ),
    "cl-te": Difference(
        OURS_REJECT,
        "RFC 9112 §6.3 item 3: with Transfer-Encoding and Content-Length a server MAY reject "
        "the request (and MUST close); h11 lets Transfer-Encoding win",
        (errors.InvalidHeader,),
    ),
    "te-not-chunked": Difference(
        OURS_REJECT,
        "RFC 9112 §6.1 and §6.3 item 4: empty list elements around chunked are refused "
        "(gunicorn #3144); h11 reads the list leniently",
        (errors.InvalidTransferEncoding,),
    ),
    "te-gzip-chunked": Difference(
        H11_REJECTS,
        "RFC 9112 §6.1: codings before a final chunked are valid; we read the chunked framing "
        "and close after the response, h11 supports chunked alone",
    ),
    "te-http10": Difference(
        OURS_REJECT,
        "RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing; the "
        "server MUST close (gunicorn refuses it; h11 reads the chunks)",
        (errors.InvalidTransferEncoding,),
    ),
    "chunk-size": Difference(
        OURS_REJECT,
        "RFC 9112 §7.1: chunk-size = 1*HEXDIG with nothing around it (waitress "
        "CVE-2022-24761); h11 allows trailing whitespace",
        (errors.InvalidChunkSize,),
    ),
    "chunk-extension": Difference(
        OURS_REJECT,
        "RFC 9112 §7.1.1: chunk-ext-name = token, chunk-ext-val = token / quoted-string; "
        "h11 skips extensions without checking them",
        (errors.InvalidChunkExtension, errors.InvalidChunkSize, errors.ProtocolError),
    ),
    "trailer": Difference(
        OURS_REJECT,
        "RFC 9110 §6.5.1: framing, routing and authentication fields are not allowed as "
        "trailers; h11 passes any trailer",
        (errors.InvalidTrailer,),
    ),
    "obs-fold": Difference(
        OURS_REJECT,
        "RFC 9112 §5.2: a server MUST reject obs-fold or replace it by SP; gunicorn rejects "
        "by default, h11 unfolds",
        (errors.ObsoleteFolding,),
    ),
    "name-underscore": Difference(
        DIFFER,
        "RFC 3875 §4.1.18: '_' and '-' name the same CGI variable, so an untrusted peer's "
        "underscore fields are dropped (gunicorn header_map=drop)",
        normalise=_without_underscore_names,
    ),
    "target-absolute": Difference(
        DIFFER,
        "RFC 9112 §3.2.2: with an absolute-form target the server MUST ignore Host and use "
        "the target's authority",
        normalise=_authority_as_host,
    ),
}


def _h11_view(parsed: Parsed) -> Parsed:
    """h11 lowercases Transfer-Encoding values (coding names are case-insensitive,
    RFC 9112 §7): compare them lowercased on both sides."""
    headers = tuple(
        (name, value.lower() if name == b"transfer-encoding" else value)
        for name, value in parsed.headers
    )
    return replace(parsed, headers=headers)


def explain(parts: RequestParts, ours: Outcome, theirs: Outcome) -> str | None:
    """The ``DIFFERENCES`` key that accounts for a disagreement; None if nothing does."""
    tags = sorted(parts.tags())
    if ours.error is not None and theirs.parsed is not None:
        error = getattr(errors, ours.error, None)
        for tag in tags:
            known = DIFFERENCES.get(tag)
            if (
                known
                and known.direction == OURS_REJECT
                and error is not None
                and issubclass(error, known.errors)
            ):
                return tag
        return None
    if ours.parsed is not None and theirs.error is not None:
        if b"gzip" in b"".join(parts.values(b"transfer-encoding")).lower():
            return "te-gzip-chunked"
        return None
    assert ours.parsed is not None and theirs.parsed is not None
    expected = _h11_view(theirs.parsed)
    used = []
    for tag in tags:
        known = DIFFERENCES.get(tag)
        if known and known.direction == DIFFER and known.normalise is not None:
            expected = known.normalise(expected, parts)
            used.append(tag)
    if used and expected == _h11_view(ours.parsed):
        return "+".join(used)
    return None


@dataclass
class Stats:
    examples: int = 0
    both_accept: int = 0
    both_reject: int = 0
    slowest_ms: float = 0.0
    disagreements: Counter[str] | None = None


def check_one(parts: RequestParts, pieces: list[bytes], stats: Stats) -> None:
    raw = parts.raw()
    start = time.perf_counter()
    ours = parse_ours(pieces)
    stats.slowest_ms = max(stats.slowest_ms, (time.perf_counter() - start) * 1000)
    assert parse_ours([raw]) == ours, "the reading depends on where the input is cut"
    theirs = parse_h11([raw])
    stats.examples += 1
    assert stats.disagreements is not None
    if ours.parsed is None and theirs.parsed is None:
        stats.both_reject += 1
        return
    if ours.parsed is not None and _h11_view(ours.parsed) == (
        theirs.parsed and _h11_view(theirs.parsed)
    ):
        stats.both_accept += 1
        return
    reason = explain(parts, ours, theirs)
    stats.disagreements[reason or "UNEXPLAINED"] += 1
    assert reason is not None, (
        f"unexplained difference with h11 for {raw!r}: ours={ours}, h11={theirs}, "
        f"tags={sorted(parts.tags())}"
    )


@pytest.mark.slow
def test_differential_against_h11() -> None:
    stats = Stats(disagreements=Counter())
    started = time.monotonic()

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def differential(data: st.DataObject) -> None:
        parts = data.draw(requests())
        check_one(parts, data.draw(splits(parts.raw())), stats)

    try:
        differential()
    finally:
        assert stats.disagreements is not None
        figures.record(
            "differential",
            "-",
            "h11",
            examples=stats.examples,
            both_accept=stats.both_accept,
            both_reject=stats.both_reject,
            disagreements=dict(stats.disagreements),
            unexplained=stats.disagreements["UNEXPLAINED"],
        )
        figures.record(
            "fuzzing",
            "-",
            "hypothesis-h1",
            examples=stats.examples,
            seconds=round(time.monotonic() - started, 1),
            slowest_ms=round(stats.slowest_ms, 2),
        )
    # The generator must reach every side of the comparison.
    assert stats.both_accept and stats.both_reject and stats.disagreements


def test_differences_cite_a_rule() -> None:
    for tag, difference in DIFFERENCES.items():
        assert "RFC " in difference.rule and "§" in difference.rule, tag


def _crashers() -> list[Path]:
    return sorted(CRASHERS.glob("*.http"))


@pytest.mark.parametrize("path", _crashers(), ids=lambda path: path.stem)
def test_crashers(path: Path) -> None:
    """Inputs that once broke the reader: refused with a ProtocolError or read, the
    same whole or byte by byte, and never slowly."""
    raw = path.read_bytes()
    start = time.perf_counter()
    whole = parse_ours([raw])
    assert time.perf_counter() - start < 0.1
    assert parse_ours([raw[i : i + 1] for i in range(len(raw))]) == whole
    expected = path.with_suffix(".expect").read_text().strip()
    assert (whole.error or "accepted") == expected


# ----------------------------------------------------------------------------- atheris

ATHERIS_HARNESS = Path(__file__).with_name("fuzz_atheris.py")
ATHERIS_SECONDS = 8
REPO = Path(__file__).resolve().parents[2]


def _atheris_python() -> str:
    """A Python with atheris: ``GUNICORN_ATHERIS_PYTHON`` if set, else this one."""
    python = os.environ.get("GUNICORN_ATHERIS_PYTHON")
    if python:
        return python
    pytest.importorskip("atheris")
    return sys.executable


@pytest.mark.slow
def test_fuzz_atheris(tmp_path: Path) -> None:
    """A short coverage-guided run over the reader, seeded with the request corpus."""
    python = _atheris_python()
    seeds = tmp_path / "corpus"
    seeds.mkdir()
    for case in load_cases("valid") + load_cases("invalid"):
        if len(case.raw) <= 16384:
            (seeds / case.name).write_bytes(b"\x80" + case.raw)  # cut in the middle
    slowest_file = tmp_path / "slowest"
    env = {**os.environ, "FUZZ_SLOWEST_FILE": str(slowest_file), "PYTHONPATH": str(REPO)}
    flags = [f"-max_total_time={ATHERIS_SECONDS}", "-seed=15", "-rss_limit_mb=1024"]
    flags += ["-timeout=5", f"-artifact_prefix={tmp_path}/"]
    done = subprocess.run(
        [python, str(ATHERIS_HARNESS), *flags, str(seeds)],
        capture_output=True,
        text=True,
        timeout=ATHERIS_SECONDS + 60,
        env=env,
        cwd=tmp_path,
    )
    runs = re.search(r"Done (\d+) runs in (\d+) second", done.stderr)
    crashes = sorted(path.name for path in tmp_path.glob("crash-*"))
    slowest = float(slowest_file.read_text()) if slowest_file.exists() else None
    figures.record(
        "fuzzing",
        "-",
        "atheris-h1",
        executions=int(runs.group(1)) if runs else None,
        seconds=int(runs.group(2)) if runs else None,
        crashes=len(crashes) + (done.returncode != 0 and not crashes),
        slowest_ms=slowest,
    )
    assert done.returncode == 0 and not crashes, done.stderr[-3000:]
    assert runs is not None and int(runs.group(1)) > 1000, done.stderr[-3000:]
    assert slowest is not None and slowest < 100, f"an input took {slowest} ms of CPU"


# ------------------------------------------------------------ worst cases of the reader


def _head(*lines: bytes, request_line: bytes = b"GET / HTTP/1.1") -> bytes:
    return b"\r\n".join([request_line, b"Host: a", *lines]) + b"\r\n\r\n"


#: Inputs that made regex-based header parsers slow (waitress CVE-2020-5236: runs of
#: spaces and tabs, many colons) and other long runs at the default limits.
WORST_CASES = {
    "value-spaces": _head(b"X: " + b" " * 8180 + b"x"),
    "value-tabs": _head(b"X:" + b"\t" * 8180 + b"x"),
    "value-spaces-then-ctl": _head(b"X: " + b" " * 8180 + b"\x01"),
    "value-space-vt": _head(b"X: " + b" \x0b" * 4090),
    "value-colons": _head(b"X: " + b":" * 8180),
    "name-colons": _head(b":" * 8180 + b": x"),
    "name-then-spaces": _head(b"X" + b" " * 8180 + b": x"),
    "name-long-token": _head(b"X" * 8180 + b": x"),
    "ninety-nine-long-values": _head(*(b"X-%d: " % i + b"a" * 8100 for i in range(99))),
    "hundred-whitespace-values": _head(*(b"X: " + b" \t" * 4080 + b"a" for _ in range(100))),
    "hundred-folds": _head(b"X: a", *(b" b" for _ in range(100))),
    "te-list": _head(b"Transfer-Encoding: " + b"chunked, " * 900),
    "cl-list": _head(b"Content-Length: " + b"1, " * 2700),
    "line-spaces": b" " * 4090 + b"\r\n",
    "target-slashes": _head(request_line=b"GET /" + b"/" * 4080 + b" HTTP/1.1"),
    "target-percent": _head(request_line=b"GET /" + b"%" * 4080 + b" HTTP/1.1"),
    "chunk-extensions": _head(b"Transfer-Encoding: chunked")
    + b"1;"
    + b"a=b;" * 4000
    + b"\r\nx\r\n0\r\n\r\n",
    "chunk-quoted-extension": _head(b"Transfer-Encoding: chunked")
    + b'1;a="'
    + b"\\x" * 4000
    + b'"\r\nx\r\n0\r\n\r\n',
    "chunk-size-zeros": _head(b"Transfer-Encoding: chunked") + b"0" * 8000 + b"1\r\nx\r\n0\r\n\r\n",
}


def _cpu_ms(pieces: list[bytes]) -> float:
    start = time.thread_time()
    parse_ours(pieces)
    return (time.thread_time() - start) * 1000


def test_reader_worst_cases_are_fast() -> None:
    """No input slower than 100 ms of CPU, whole, in 1 KiB pieces or byte by byte (its
    first 8 KiB: the per-byte cost is linear, the runs above are what could be worse)."""
    timings = {}
    for name, raw in WORST_CASES.items():
        cuts = {
            "whole": [raw],
            "kib": [raw[i : i + 1024] for i in range(0, len(raw), 1024)],
            "bytes": [raw[i : i + 1] for i in range(min(len(raw), 8192))],
        }
        for mode, pieces in cuts.items():
            timings[f"{name}/{mode}"] = min(_cpu_ms(pieces) for _ in range(2))
    slowest = max(timings, key=timings.__getitem__)
    figures.record(
        "fuzzing",
        "-",
        "reader-worst-cases",
        cases=len(timings),
        slowest_case=slowest,
        slowest_ms=round(timings[slowest], 2),
    )
    slow = {name: round(ms, 1) for name, ms in timings.items() if ms >= 100}
    assert not slow, f"slower than 100 ms: {slow}"
