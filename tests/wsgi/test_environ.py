"""The environ an application sees (PEP 3333 and gunicorn's extra keys)."""

from __future__ import annotations

import io
import sys
from typing import Any
from wsgiref.validate import validator

import pytest
from wsgi_harness import capture_app, make_request, run_wsgi

from gunicorn import SERVER_SOFTWARE
from gunicorn.http.errors import InvalidSchemeHeaders
from gunicorn.http.limits import Policy
from gunicorn.wsgi import ConfigurationProblem, EnvironConfig, FileWrapper
from gunicorn.wsgi.errors import WSGIErrors

SCHEME_HEADERS = EnvironConfig.scheme_headers(
    {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}
)


def environ_for(raw: bytes, **kwargs: Any) -> dict[str, Any]:
    store: dict[str, Any] = {}
    result = run_wsgi(capture_app(store), raw, **kwargs)
    assert result.status == 200
    return store


def test_pep3333_keys_and_values() -> None:
    sock = object()
    errors = io.StringIO()
    config = EnvironConfig(errors=errors, multiprocess=True)
    env = environ_for(
        make_request("GET", "/a/b?x=1&y=2", [("User-Agent", "t/1")]), config=config, sock=sock
    )
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.errors"] is errors
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is True
    assert env["wsgi.run_once"] is False
    assert env["wsgi.file_wrapper"] is FileWrapper
    assert env["wsgi.input_terminated"] is True
    assert callable(env["wsgi.early_hints"])
    assert env["gunicorn.socket"] is sock
    assert env["SERVER_SOFTWARE"] == SERVER_SOFTWARE
    assert env["REQUEST_METHOD"] == "GET"
    assert env["RAW_URI"] == "/a/b?x=1&y=2"
    assert env["PATH_INFO"] == "/a/b"
    assert env["QUERY_STRING"] == "x=1&y=2"
    assert env["SCRIPT_NAME"] == ""
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == "8000"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == "51234"
    assert env["HTTP_HOST"] == "example.com"
    assert env["HTTP_USER_AGENT"] == "t/1"
    assert "CONTENT_LENGTH" not in env
    assert all(type(value) is str for key, value in env.items() if key.isupper())


def test_http10_protocol_and_no_host() -> None:
    env = environ_for(make_request("GET", "/", version="HTTP/1.0"))
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert "HTTP_HOST" not in env


def test_path_info_is_percent_decoded_latin1() -> None:
    env = environ_for(make_request("GET", "/caf%C3%A9/a%20b%2Fc?q=%20"))
    assert env["PATH_INFO"] == "/caf\xc3\xa9/a b/c"
    assert env["RAW_URI"] == "/caf%C3%A9/a%20b%2Fc?q=%20"
    assert env["QUERY_STRING"] == "q=%20"


def test_absolute_form_target_gives_path() -> None:
    env = environ_for(make_request("GET", "http://example.com/x/y?z=1"))
    assert env["PATH_INFO"] == "/x/y"
    assert env["QUERY_STRING"] == "z=1"
    assert env["RAW_URI"] == "http://example.com/x/y?z=1"


def test_content_headers_and_repeated_headers() -> None:
    raw = make_request(
        "POST",
        "/",
        [
            ("Content-Type", "application/json"),
            ("Accept", "text/html"),
            ("Accept", "application/json"),
            ("X-Multi", "a"),
            ("x-multi", "b"),
        ],
        body=b'{"a": 1}',
    )
    env = environ_for(raw)
    assert env["CONTENT_TYPE"] == "application/json"
    assert env["CONTENT_LENGTH"] == "8"
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_ACCEPT"] == "text/html,application/json"
    assert env["HTTP_X_MULTI"] == "a,b"
    assert env["body"] == b'{"a": 1}'


def test_header_values_are_latin1_strings() -> None:
    raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xe9\r\n\r\n"
    env = environ_for(raw)
    assert env["HTTP_X_NAME"] == "caf\xe9"


def test_https_transport_scheme() -> None:
    env = environ_for(make_request(), url_scheme="https")
    assert env["wsgi.url_scheme"] == "https"


@pytest.mark.parametrize(
    ("header", "scheme"),
    [
        (("X-Forwarded-Proto", "https"), "https"),
        (("X-Forwarded-Proto", "http"), "http"),
        (("X-Forwarded-Ssl", "on"), "https"),
        (("X-Forwarded-Protocol", "ssl"), "https"),
    ],
)
def test_secure_scheme_headers_from_trusted_peer(header: tuple[str, str], scheme: str) -> None:
    config = EnvironConfig(secure_scheme_headers=SCHEME_HEADERS)
    env = environ_for(make_request(headers=[header]), config=config, trusted=True)
    assert env["wsgi.url_scheme"] == scheme


def test_secure_scheme_headers_ignored_from_untrusted_peer() -> None:
    config = EnvironConfig(secure_scheme_headers=SCHEME_HEADERS)
    env = environ_for(
        make_request(headers=[("X-Forwarded-Proto", "https")]), config=config, trusted=False
    )
    assert env["wsgi.url_scheme"] == "http"
    assert env["HTTP_X_FORWARDED_PROTO"] == "https"


def test_conflicting_scheme_headers_are_refused_with_400() -> None:
    config = EnvironConfig(secure_scheme_headers=SCHEME_HEADERS)
    raw = make_request(headers=[("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")])
    called: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(True)
        return []

    result = run_wsgi(app, raw, config=config, trusted=True, catch=True)
    assert isinstance(result.error, InvalidSchemeHeaders)
    assert result.status == 400
    assert result.header(b"connection") == b"close"
    assert called == []


def test_script_name_from_environment_setting() -> None:
    config = EnvironConfig(script_name="/app")
    env = environ_for(make_request("GET", "/app/page?x=1"), config=config)
    assert env["SCRIPT_NAME"] == "/app"
    assert env["PATH_INFO"] == "/page"


def test_path_outside_script_name_is_a_500() -> None:
    config = EnvironConfig(script_name="/app")
    result = run_wsgi(capture_app({}), make_request("GET", "/other"), config=config, catch=True)
    assert isinstance(result.error, ConfigurationProblem)
    assert result.status == 500


FORWARDERS = EnvironConfig.forwarder_names("SCRIPT_NAME,PATH_INFO,REMOTE_USER")


def test_forwarder_headers_from_trusted_peer_go_straight_into_environ() -> None:
    policy = Policy(forwarder_headers=FORWARDERS)
    config = EnvironConfig(forwarder_headers=FORWARDERS)
    raw = make_request(
        "GET", "/prefix/page", [("SCRIPT_NAME", "/prefix"), ("REMOTE_USER", "alice")]
    )
    env = environ_for(raw, config=config, policy=policy, trusted=True)
    assert env["SCRIPT_NAME"] == "/prefix"
    assert env["PATH_INFO"] == "/page"
    assert env["REMOTE_USER"] == "alice"
    assert "HTTP_SCRIPT_NAME" not in env


def test_forwarder_headers_from_untrusted_peer_are_dropped() -> None:
    policy = Policy(forwarder_headers=FORWARDERS)
    config = EnvironConfig(forwarder_headers=FORWARDERS)
    raw = make_request("GET", "/page", [("SCRIPT_NAME", "/prefix"), ("REMOTE_USER", "eve")])
    env = environ_for(raw, config=config, policy=policy, trusted=False)
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/page"
    assert "REMOTE_USER" not in env
    assert "HTTP_REMOTE_USER" not in env


def test_dangerous_header_map_never_sets_environ_keys_for_untrusted_peers() -> None:
    policy = Policy(header_map="dangerous", forwarder_headers=FORWARDERS)
    config = EnvironConfig(forwarder_headers=FORWARDERS)
    raw = make_request("GET", "/page", [("REMOTE_USER", "eve"), ("X_Custom", "1")])
    env = environ_for(raw, config=config, policy=policy, trusted=False)
    assert "REMOTE_USER" not in env
    assert env["HTTP_REMOTE_USER"] == "eve"
    assert env["HTTP_X_CUSTOM"] == "1"


def test_forwarded_path_info_replaces_the_path() -> None:
    policy = Policy(forwarder_headers=FORWARDERS)
    config = EnvironConfig(forwarder_headers=FORWARDERS)
    raw = make_request("GET", "/x", [("PATH_INFO", "/real")])
    env = environ_for(raw, config=config, policy=policy, trusted=True)
    assert env["PATH_INFO"] == "/real"


@pytest.mark.parametrize(
    ("host", "scheme", "name", "port"),
    [
        ("example.com", "http", "example.com", "80"),
        ("example.com", "https", "example.com", "443"),
        ("example.com:8080", "http", "example.com", "8080"),
        ("[::1]:9000", "http", "[::1]", "9000"),
        ("[::1]", "https", "[::1]", "443"),
    ],
)
def test_unix_socket_server_name_comes_from_host(
    host: str, scheme: str, name: str, port: str
) -> None:
    env = environ_for(
        make_request(headers=[("Host", host)]), peer="", server="/tmp/g.sock", url_scheme=scheme
    )
    assert env["SERVER_NAME"] == name
    assert env["SERVER_PORT"] == port
    assert env["REMOTE_ADDR"] == ""
    assert "REMOTE_PORT" not in env


def test_unix_socket_without_host() -> None:
    env = environ_for(make_request(version="HTTP/1.0"), peer="", server="/tmp/g.sock")
    assert env["SERVER_NAME"] == "/tmp/g.sock"
    assert env["SERVER_PORT"] == ""


def test_ipv6_peer_and_listener() -> None:
    env = environ_for(make_request(), peer=("::1", 4000, 0, 0), server=("::1", 8080, 0, 0))
    assert env["REMOTE_ADDR"] == "::1"
    assert env["REMOTE_PORT"] == "4000"
    assert env["SERVER_NAME"] == "::1"
    assert env["SERVER_PORT"] == "8080"


def test_extra_entries_replace_the_peer_address() -> None:
    extra = {
        "REMOTE_ADDR": "203.0.113.7",
        "REMOTE_PORT": "4444",
        "PROXY_PROTOCOL": "TCP4",
        "PROXY_ADDR": "198.51.100.1",
        "PROXY_PORT": "443",
    }
    env = environ_for(make_request(), extra=extra)
    assert env["REMOTE_ADDR"] == "203.0.113.7"
    assert env["REMOTE_PORT"] == "4444"
    assert env["PROXY_PROTOCOL"] == "TCP4"
    assert env["PROXY_ADDR"] == "198.51.100.1"


def test_wsgi_errors_writes_to_the_logger_streams() -> None:
    import logging

    stream = io.StringIO()
    logger = logging.getLogger("test.wsgi.errors")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        errors = WSGIErrors(logger)
        errors.write("one\n")
        errors.writelines(["two\n", "three\n"])
        errors.flush()
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "one\ntwo\nthree\n"


def test_wsgi_errors_falls_back_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    WSGIErrors(None).write("to stderr\n")
    assert capsys.readouterr().err == "to stderr\n"
    assert sys.stderr is not None


def test_wsgiref_validator_accepts_environ_and_response() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]

    config = EnvironConfig(errors=WSGIErrors(None))
    result = run_wsgi(validator(app), make_request("PUT", "/v?q=1", body=b"payload"), config=config)
    assert result.status == 200
    assert result.body == b"payload"
