"""Security: limits on the size of requests."""

from __future__ import annotations

from gunicorn.config.core import Setting
from gunicorn.config.validators import parse_int, validate_pos_int

SECTION = "Security"

SETTINGS = [
    Setting(
        name="limit_request_line",
        section=SECTION,
        cli=("--limit-request-line",),
        meta="INT",
        validator=validate_pos_int,
        type=parse_int,
        default=4094,
        short="Longest request line accepted, in bytes.",
        desc="""
Longest request line (method, target and version) accepted; longer ones get 414 URI Too
Long. Values above 8190 are treated as 8190, and 0 means no limit other than that cap. This
is a guard against oversized requests used in denial-of-service attacks.
""",
    ),
    Setting(
        name="limit_request_fields",
        section=SECTION,
        cli=("--limit-request-fields",),
        meta="INT",
        validator=validate_pos_int,
        type=parse_int,
        default=100,
        short="Most header fields accepted in one request.",
        desc="""
Most header fields accepted in one request; more gets 431. 0 or values above 32768 mean
32768.
""",
    ),
    Setting(
        name="limit_request_field_size",
        section=SECTION,
        cli=("--limit-request-field_size",),
        meta="INT",
        validator=validate_pos_int,
        type=parse_int,
        default=8190,
        short="Largest header field line accepted, in bytes.",
        desc="""
Largest single header line (name and value) accepted, in bytes; larger gets 431. 0 means
the default of 8190, not "unlimited". Note the underscore in the command-line flag.
""",
    ),
]
