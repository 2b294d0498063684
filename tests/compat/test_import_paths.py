"""gunicorn's import paths as plugins and scripts use them: ``gunicorn.util``,
``gunicorn.debug``, ``gunicorn.http.wsgi``/``message``/``body`` and the version names."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gunicorn
from gunicorn import util
from gunicorn.http import body as http_body
from gunicorn.http import wsgi as http_wsgi


def test_version_names() -> None:
    assert gunicorn.version_info[0] == 27
    assert gunicorn.__version__ == ".".join(map(str, gunicorn.version_info))
    assert gunicorn.SERVER_SOFTWARE.split("/") == ["gunicorn", gunicorn.__version__]


def test_plugin_parsing_bind_addresses() -> None:
    """What a worker plugin does with cfg.bind: parse each entry like gunicorn."""
    assert util.parse_address("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert util.parse_address("Example.COM") == ("example.com", 8000)
    assert util.parse_address("[::1]:9000") == ("::1", 9000)
    assert util.parse_address("tcp://0.0.0.0:5000") == ("0.0.0.0", 5000)
    assert util.parse_address("unix:/run/app.sock") == "/run/app.sock"
    assert util.parse_address("unix:///run/app.sock") == "/run/app.sock"
    assert util.parse_address("fd://3") == 3
    assert util.parse_address("", "9999") == ("0.0.0.0", 9999)
    for bad in ("localhost:http", "fd://three"):
        with pytest.raises(RuntimeError):  # gunicorn raises RuntimeError
            util.parse_address(bad)
    assert util.is_ipv6("::1") and not util.is_ipv6("127.0.0.1")


def test_request_helpers() -> None:
    assert util.http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"
    parts = util.split_request_uri("//cdn/a.js?v=2#top")
    assert (parts.path, parts.query, parts.fragment) == ("//cdn/a.js", "v=2", "top")
    assert util.split_request_uri("/p?q=1").path == "/p"
    assert util.unquote_to_wsgi_str("/caf%C3%A9") == "/caf\xc3\xa9"
    assert util.is_hoppish("Transfer-Encoding ") and util.is_hoppish("server")
    assert not util.is_hoppish("Content-Type")
    assert util.to_bytestring("é") == b"\xc3\xa9" and util.to_bytestring(b"x") == b"x"
    assert util.bytes_to_str(b"\xe9") == "\xe9"
    with pytest.raises(TypeError):
        util.to_bytestring(3)  # type: ignore[arg-type]


def test_write_error_sends_a_complete_response() -> None:
    server, client = socket.socketpair()
    with server, client:
        util.write_error(server, 403, "Forbidden", "<not yours>")
        util.close(server)
        util.close(server)  # closing twice is harmless
        data = b""
        while chunk := client.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 403 Forbidden"
    assert b"Connection: close" in head and b"Content-Type: text/html" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"&lt;not yours&gt;" in body and b"<title>Forbidden</title>" in body


def test_write_chunked() -> None:
    server, client = socket.socketpair()
    with server, client:
        util.write(server, b"hello", chunked=True)
        util.write(server, b"!")
        assert client.recv(100) == b"5\r\nhello\r\n!"


def test_import_app_and_getcwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "compat_util_app.py").write_text("def app(environ, start_response):\n  pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PWD", str(tmp_path))
    try:
        assert util.import_app("compat_util_app:app").__name__ == "app"
        assert util.import_app(module="compat_util_app").__name__ == "app"
    finally:
        sys.modules.pop("compat_util_app", None)
    assert util.getcwd() == str(tmp_path)
    assert util.load_class("sync").__name__ == "SyncWorker"


def test_process_helpers_are_there() -> None:
    for name in ("set_owner_process", "daemonize", "seed", "close_on_exec", "set_non_blocking"):
        assert callable(getattr(util, name))
    util.seed()


def test_spew_traces_lines(tmp_path: Path) -> None:
    script = tmp_path / "traced.py"
    script.write_text(
        textwrap.dedent(
            """
            from gunicorn import debug

            def double(x):
                y = x * 2
                return y

            debug.spew(trace_names=["__main__"], show_values=True)
            double(21)
            debug.unspew()
            double(1)
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert out == "__main__:5:     y = x * 2\n\tx=21\n__main__:6:     return y\n\ty=42\n"


def test_file_wrapper_and_environ_helpers() -> None:
    wrapper = http_wsgi.FileWrapper(io.BytesIO(b"abcdef"), 4)
    assert list(wrapper) == [b"abcd", b"ef"]

    class Cfg:
        workers = 3

    class Req:
        body = io.BytesIO(b"")
        method, query, uri, version = "PUT", "a=1", "/x?a=1", (1, 0)

    environ = http_wsgi.default_environ(Req(), None, Cfg())
    assert environ["wsgi.multiprocess"] is True and environ["wsgi.version"] == (1, 0)
    assert environ["REQUEST_METHOD"] == "PUT" and environ["RAW_URI"] == "/x?a=1"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert environ["SERVER_SOFTWARE"] == gunicorn.SERVER_SOFTWARE
    assert environ["wsgi.file_wrapper"] is http_wsgi.FileWrapper
    assert isinstance(environ["wsgi.errors"], http_wsgi.WSGIErrorsWrapper)


def test_body_reads_a_reader() -> None:
    class Reader:
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def read(self, size: int) -> bytes:
            return self.data.read(min(size, 3))

    body = http_body.Body(Reader(b"line one\nline two\nrest"))
    assert body.readline() == b"line one\n"
    assert body.read(4) == b"line"
    assert list(body) == [b" two\n", b"rest"]
    assert body.read() == b""
    assert http_body.Body(Reader(b"a\nb\n")).readlines() == [b"a\n", b"b\n"]


def test_http_package_names_request_lazily() -> None:
    code = (
        "import sys, gunicorn.http\n"
        "print('gunicorn.http.message' in sys.modules)\n"
        "from gunicorn.http import Request\n"
        "import gunicorn.http.message as m\n"
        "print(Request is m.Request, 'gunicorn.http.message' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    ).stdout.split()
    assert out == ["False", "True", "True"]
