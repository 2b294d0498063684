"""Real HTTP/2 clients against the real server: curl, httpx, nghttp and h2load.

curl, nghttp and h2load come from Debian packages (curl, nghttp2-client) that ``.ci/run``
installs; a missing tool fails the test with the package to install, it never skips.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.certs import TestCerts
from tests.http2.apps import LARGE_DEFAULT, pattern
from tests.http2.asgi_apps import request_view
from tests.http2.frames import Target

HELLO = b"hello world\n"
PACKAGES = {"curl": "curl", "nghttp": "nghttp2-client", "h2load": "nghttp2-client"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y {PACKAGES[name]} (see .ci/run)")
    return path


def run(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    assert done.returncode == 0, (
        f"{command} exited {done.returncode}:\n{done.stdout[-2000:]!r}\n{done.stderr[-2000:]!r}"
    )
    return done


def curl(target: Target, certs: TestCerts, path: str, *args: str) -> tuple[str, bytes]:
    """Run curl over the target's transport; returns (the -w summary, the body)."""
    flags = ["--http2", "--cacert", str(certs.ca)] if target.tls else ["--http2-prior-knowledge"]
    summary = "\n%{http_version} %{http_code} %{size_download}"
    done = run([tool("curl"), "-sS", *flags, *args, "-w", summary, target.url + path])
    body, _, written = done.stdout.rpartition(b"\n")
    return written.decode(), body


def test_curl_get_speaks_http2(target: Target, certs: TestCerts) -> None:
    summary, body = curl(target, certs, "/hello")
    assert summary == f"2 200 {len(HELLO)}"
    assert body == HELLO


def test_curl_post_body_is_echoed(target: Target, certs: TestCerts, tmp_path: Path) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(pattern(300_000))
    summary, body = curl(target, certs, "/echo", "--data-binary", f"@{upload}")
    assert summary.startswith("2 200 ")
    assert body == pattern(300_000)


def test_curl_downloads_1_mib_byte_for_byte(
    app_target: Target, certs: TestCerts, tmp_path: Path
) -> None:
    out = tmp_path / "large.bin"
    summary, _ = curl(app_target, certs, "/large", "-o", str(out))
    assert summary == f"2 200 {LARGE_DEFAULT}"
    assert out.read_bytes() == pattern(LARGE_DEFAULT)


def test_curl_head_and_204_have_no_body(app_target: Target, certs: TestCerts) -> None:
    summary, body = curl(app_target, certs, "/hello", "-I")
    assert summary.startswith("2 200 ") and body.startswith(b"HTTP/2 200")
    summary, body = curl(app_target, certs, "/status?code=204")
    assert summary == "2 204 0" and body == b""


def _httpx_options(target: Target) -> dict[str, Any]:
    if target.tls:
        return {"http2": True, "verify": target.tls, "timeout": 10}
    return {"http1": False, "http2": True, "timeout": 10}  # h2c with prior knowledge


def test_httpx_concurrent_requests(target: Target) -> None:
    """40 requests in flight at once, multiplexed on one connection."""

    async def main() -> list[tuple[str, bytes]]:
        async with httpx.AsyncClient(**_httpx_options(target)) as client:

            async def echo(i: int) -> tuple[str, bytes]:
                response = await client.post(f"{target.url}/echo", content=f"request {i}".encode())
                return response.http_version, response.content

            return await asyncio.gather(*(echo(i) for i in range(40)))

    results = asyncio.run(main())
    assert results == [("HTTP/2", f"request {i}".encode()) for i in range(40)]


def test_httpx_reads_the_request_over_http2(app_target: Target) -> None:
    """The WSGI environ (``SERVER_PROTOCOL`` ``HTTP/2.0`` as gunicorn 27 reports it) or the
    ASGI scope (``http_version`` ``2``) describes the request; Host comes from :authority."""
    with httpx.Client(**_httpx_options(app_target)) as client:
        response = client.get(f"{app_target.url}/headers?a=1", headers={"x-custom": "v"})
    assert response.http_version == "HTTP/2"
    seen = request_view(response.json())
    assert seen["protocol"] in ("HTTP/2.0", "HTTP/2")
    assert seen["query"] == "a=1"
    assert seen["header:x-custom"] == "v"
    assert seen["header:host"].startswith(("localhost", "127.0.0.1"))
    assert seen["scheme"] == ("https" if app_target.tls else "http")


def nghttp(target: Target, path: str, *args: str) -> str:
    done = run([tool("nghttp"), "-nv", *args, target.url + path])
    return done.stdout.decode("utf-8", "replace")


def test_nghttp_verbose_exchange(target: Target) -> None:
    out = nghttp(target, "/hello")
    assert "recv SETTINGS frame" in out
    assert ":status: 200" in out
    # nghttp's first request is stream 13: it keeps 3-11 as idle anchors of its priority tree.
    assert re.search(r"recv (DATA|HEADERS) frame <length=\d+, flags=0x0[15], stream_id=13>", out)


def test_nghttp_sees_103_early_hints(app_target: Target) -> None:
    out = nghttp(app_target, "/early-hints")
    hints = out.index(":status: 103")
    final = out.index(":status: 200")
    assert hints < final
    assert "link: </style.css>; rel=preload; as=style" in out[hints:final]


def test_nghttp_sees_trailers(app_target: Target) -> None:
    out = nghttp(app_target, "/trailers")
    data = out.rindex("recv DATA frame")
    assert "x-checksum: c0ffee" in out[data:]


def test_h2load_2000_requests(target: Target) -> None:
    done = run([tool("h2load"), "-n", "2000", "-c", "4", "-m", "8", target.url + "/hello"])
    out = done.stdout.decode()
    assert "2000 succeeded, 0 failed, 0 errored" in out, out[-1500:]
    assert "Application protocol: h2" in out or "Application protocol: h2c" in out, out[-1500:]
