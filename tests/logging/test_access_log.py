"""Access log: every atom on a real formatted line, escaping of hostile values, the json preset."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from logfakes import FakeRequest, FakeResponse, make_environ

from gunicorn.config import Config
from gunicorn.glogging import Logger

_calls = itertools.count()
DEFAULT_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


def access_lines(
    make_cfg: Callable[..., Config],
    tmp_path: Path,
    fmt: str = DEFAULT_FORMAT,
    resp: Any = None,
    req: Any = None,
    environ: dict[str, Any] | None = None,
    request_time: timedelta = timedelta(seconds=2, microseconds=345678),
) -> list[str]:
    path = tmp_path / f"access-{next(_calls)}.log"
    cfg = make_cfg(accesslog=str(path), access_log_format=fmt)
    logger = Logger(cfg)
    logger.access(
        resp or FakeResponse(),
        req or FakeRequest(),
        environ if environ is not None else make_environ(),
        request_time,
    )
    for handler in logger.access_log.handlers:
        handler.flush()
    return path.read_text().splitlines()


def one_line(*args: Any, **kwargs: Any) -> str:
    lines = access_lines(*args, **kwargs)
    assert len(lines) == 1, lines
    return lines[0]


def test_default_format_line(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    line = one_line(make_cfg, tmp_path)
    pattern = (
        r"192\.0\.2\.10 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "
        r'"GET /items/7\?full=1 HTTP/1\.1" 200 1234 "http://example\.com/list" "curl/8\.5\.0"'
    )
    assert re.fullmatch(pattern, line), line


@pytest.mark.parametrize(
    ("atom", "expected"),
    [
        ("h", "192.0.2.10"),
        ("l", "-"),
        ("u", "-"),
        ("r", "GET /items/7?full=1 HTTP/1.1"),
        ("m", "GET"),
        ("U", "/items/7"),
        ("q", "full=1"),
        ("H", "HTTP/1.1"),
        ("s", "200"),
        ("B", "1234"),
        ("b", "1234"),
        ("f", "http://example.com/list"),
        ("a", "curl/8.5.0"),
        ("T", "2"),
        ("M", "2345"),
        ("D", "2345678"),
        ("L", "2.345678"),
        ("p", "<PID>"),  # this process's pid (filled in by the test)
        ("{host}i", "example.com"),
        ("{Host}i", "example.com"),
        ("{content-type}o", "text/plain"),
        ("{remote_addr}e", "192.0.2.10"),
        ("{missing}i", "-"),
        ("{missing}o", "-"),
        ("{missing}e", "-"),
        ("nonsense", "-"),
    ],
)
def test_each_atom(
    make_cfg: Callable[..., Config], tmp_path: Path, atom: str, expected: str
) -> None:
    expected = expected.replace("PID", str(os.getpid()))
    assert one_line(make_cfg, tmp_path, fmt=f"[%({atom})s]") == f"[{expected}]"


def test_time_atom(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    line = one_line(make_cfg, tmp_path, fmt="%(t)s")
    assert re.fullmatch(r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]", line)


def test_basic_auth_user(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    token = base64.b64encode(b"alice:secret").decode()
    environ = make_environ(HTTP_AUTHORIZATION=f"Basic {token}")
    assert one_line(make_cfg, tmp_path, fmt="%(u)s", environ=environ) == "alice"


def test_bearer_auth_is_not_a_user(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    environ = make_environ(HTTP_AUTHORIZATION="Bearer abc.def")
    assert one_line(make_cfg, tmp_path, fmt="%(u)s", environ=environ) == "-"


def test_bytes_atoms_when_nothing_sent(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    line = one_line(make_cfg, tmp_path, fmt="%(b)s %(B)s", resp=FakeResponse(sent=None))
    assert line == "- None"
    line = one_line(make_cfg, tmp_path, fmt="%(b)s %(B)s", resp=FakeResponse(sent=0))
    assert line.endswith("0 0")


def test_missing_environ_values_are_dashes(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    environ = make_environ(REMOTE_ADDR=None, HTTP_REFERER=None, HTTP_USER_AGENT=None)
    assert one_line(make_cfg, tmp_path, fmt="%(h)s %(f)s %(a)s", environ=environ) == "- - -"


def test_duplicate_request_headers_are_joined(
    make_cfg: Callable[..., Config], tmp_path: Path
) -> None:
    req = FakeRequest(headers=[("X-FORWARDED-FOR", "10.0.0.1"), ("X-FORWARDED-FOR", "10.0.0.2")])
    line = one_line(make_cfg, tmp_path, fmt="%({x-forwarded-for}i)s", req=req)
    assert line == "10.0.0.1,10.0.0.2"


def test_status_from_status_line_only(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    class StatusOnly:
        status = "404 Not Found"
        sent = 9
        headers: list[tuple[str, str]] = []

    assert one_line(make_cfg, tmp_path, fmt="%(s)s", resp=StatusOnly()) == "404"


# -- hostile values (R4): nothing may forge or split a log line --------------------------


def test_escape_sequence_in_path(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    environ = make_environ(RAW_URI="/\x1b[31mred", PATH_INFO="/\x1b[31mred", QUERY_STRING="")
    line = one_line(make_cfg, tmp_path, fmt='"%(r)s" %(U)s', environ=environ)
    assert "\x1b" not in line
    assert line == '"GET /\\x1b[31mred HTTP/1.1" /\\x1b[31mred'


def test_decoded_crlf_in_path_cannot_split_the_line(
    make_cfg: Callable[..., Config], tmp_path: Path
) -> None:
    forged = '/a\r\n127.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "GET /admin HTTP/1.1" 200 0'
    environ = make_environ(RAW_URI="/a%0d%0aforged", PATH_INFO=forged)
    lines = access_lines(make_cfg, tmp_path, fmt="%(U)s", environ=environ)
    assert len(lines) == 1
    assert lines[0].startswith("/a\\x0d\\x0a127.0.0.1")
    assert '\\"GET /admin HTTP/1.1\\"' in lines[0]


def test_quotes_and_backslashes_in_user_agent(
    make_cfg: Callable[..., Config], tmp_path: Path
) -> None:
    environ = make_environ(HTTP_USER_AGENT='evil" 200 0 "x\\')
    line = one_line(make_cfg, tmp_path, environ=environ)
    assert line.endswith('"evil\\" 200 0 \\"x\\\\"')
    # the line still splits into exactly the default format's quoted fields
    assert len(re.findall(r'"(?:[^"\\]|\\.)*"', line)) == 3


def test_hostile_header_and_response_header_atoms(
    make_cfg: Callable[..., Config], tmp_path: Path
) -> None:
    req = FakeRequest(headers=[("X-ID", "a\nb\x00c\x9bd")])
    resp = FakeResponse(headers=[("X-Out", 'q"\t')])
    line = one_line(make_cfg, tmp_path, fmt="%({x-id}i)s %({x-out}o)s", req=req, resp=resp)
    assert line == 'a\\x0ab\\x00c\\x9bd q\\"\\x09'


def test_non_ascii_text_is_kept(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    environ = make_environ(HTTP_USER_AGENT="caf\xe9")
    assert one_line(make_cfg, tmp_path, fmt="%(a)s", environ=environ) == "caf\xe9"


# -- json preset ----------------------------------------------------------------------------


def test_json_preset(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    token = base64.b64encode(b"bob:pw").decode()
    environ = make_environ(HTTP_AUTHORIZATION=f"Basic {token}")
    record = json.loads(one_line(make_cfg, tmp_path, fmt="json", environ=environ))
    assert record == {
        "time": record["time"],
        "remote_addr": "192.0.2.10",
        "user": "bob",
        "request": "GET /items/7?full=1 HTTP/1.1",
        "method": "GET",
        "path": "/items/7",
        "query": "full=1",
        "protocol": "HTTP/1.1",
        "status": 200,
        "bytes": 1234,
        "referer": "http://example.com/list",
        "user_agent": "curl/8.5.0",
        "request_time": 2.345678,
        "request_time_us": 2345678,
        "pid": os.getpid(),
    }
    assert re.fullmatch(r"\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}", record["time"])


def test_json_preset_hostile_values(make_cfg: Callable[..., Config], tmp_path: Path) -> None:
    agent = 'x"}, "status": 500, "a": "\r\n\x1b'
    environ = make_environ(HTTP_USER_AGENT=agent, PATH_INFO="/p\r\nq", HTTP_REFERER=None)
    lines = access_lines(make_cfg, tmp_path, fmt="json", environ=environ)
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["user_agent"] == agent
    assert record["path"] == "/p\r\nq"
    assert record["status"] == 200
    assert record["referer"] is None


# -- when the access log is written ----------------------------------------------------------


def test_access_log_off_by_default(make_cfg: Callable[..., Config], capsys: Any) -> None:
    logger = Logger(make_cfg())
    assert logger.access_log_enabled is False
    logger.access(FakeResponse(), FakeRequest(), make_environ(), timedelta(0))
    captured = capsys.readouterr()
    assert captured.out == "" and "GET" not in captured.err


def test_access_log_to_stdout(make_cfg: Callable[..., Config], capsys: Any) -> None:
    logger = Logger(make_cfg(accesslog="-"))
    logger.access(FakeResponse(), FakeRequest(), make_environ(), timedelta(0))
    out = capsys.readouterr().out
    assert '"GET /items/7?full=1 HTTP/1.1" 200 1234' in out
