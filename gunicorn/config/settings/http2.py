"""HTTP/2: protocol selection and HTTP/2 connection settings."""

from __future__ import annotations

from gunicorn.config.core import Setting
from gunicorn.config.validators import (
    parse_int,
    validate_http2_cleartext,
    validate_http_protocols,
    validate_int_range,
)

SECTION = "HTTP/2"


def _int(name: str, default: int, low: int, high: int | None, short: str, desc: str) -> Setting:
    return Setting(
        name=name,
        section=SECTION,
        cli=(f"--{name.replace('_', '-')}",),
        meta="INT",
        validator=validate_int_range(low, high),
        type=parse_int,
        default=default,
        short=short,
        desc=desc,
    )


SETTINGS = [
    Setting(
        name="http_protocols",
        section=SECTION,
        cli=("--http-protocols",),
        meta="STRING",
        validator=validate_http_protocols,
        default="h1",
        short="HTTP versions offered, in order of preference: h1, h2.",
        desc="""
A comma separated list such as `h2,h1`. With TLS, the list is offered to clients through
ALPN; HTTP/1.1 clients are still served when only `h2` is listed. HTTP/2 needs the `h2`
package (`pip install 'gunicorn[http2]'`) and a worker that supports it (gthread, gevent,
asgi). Without TLS, see `http2_cleartext`. The value is kept as a list.
""",
    ),
    Setting(
        name="http2_cleartext",
        section=SECTION,
        cli=("--http2-cleartext",),
        meta="MODE",
        validator=validate_http2_cleartext,
        default="off",
        short="HTTP/2 without TLS (h2c): off, prior-knowledge, upgrade or both.",
        desc="""
`prior-knowledge` accepts connections that start with the HTTP/2 preface, `upgrade` accepts
HTTP/1.1 requests carrying `Upgrade: h2c`, `both` accepts either. Only peers in
`forwarded_allow_ips` may use h2c (it is meant for a trusted proxy); ignored when TLS is on.
""",
    ),
    _int(
        "http2_max_concurrent_streams",
        100,
        1,
        None,
        "Most HTTP/2 streams a client may have open at once.",
        """
Sent to clients as SETTINGS_MAX_CONCURRENT_STREAMS.
""",
    ),
    _int(
        "http2_initial_window_size",
        65535,
        0,
        2**31 - 1,
        "Initial HTTP/2 flow-control window per stream, in bytes.",
        """
Sent as SETTINGS_INITIAL_WINDOW_SIZE: how much request body a client may send on a stream
before the server grants more. At most 2147483647.
""",
    ),
    _int(
        "http2_max_frame_size",
        16384,
        16384,
        16777215,
        "Largest HTTP/2 frame payload the server accepts, in bytes.",
        """
Sent as SETTINGS_MAX_FRAME_SIZE; between 16384 and 16777215.
""",
    ),
    _int(
        "http2_max_header_list_size",
        65536,
        0,
        None,
        "Largest HTTP/2 header list the server accepts, in bytes.",
        """
Sent as SETTINGS_MAX_HEADER_LIST_SIZE. 0 means no limit (the setting is not sent).
""",
    ),
]
