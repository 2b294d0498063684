"""The Date field of responses (RFC 9110 §6.6.1), formatted once per second."""

from __future__ import annotations

import time

_WEEKDAYS = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTHS = (
    b"Jan",
    b"Feb",
    b"Mar",
    b"Apr",
    b"May",
    b"Jun",
    b"Jul",
    b"Aug",
    b"Sep",
    b"Oct",
    b"Nov",
    b"Dec",
)

_date_second = -1
_date_value = b""
_date_line = b""
_line_second = -1.0


def http_date(now: float) -> bytes:
    """The IMF-fixdate (RFC 9110 §5.6.7) for the time ``now``, formatted once per second."""
    global _date_second, _date_value
    second = int(now)
    if second != _date_second:
        t = time.gmtime(second)
        _date_value = b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
            _WEEKDAYS[t.tm_wday],
            t.tm_mday,
            _MONTHS[t.tm_mon - 1],
            t.tm_year,
            t.tm_hour,
            t.tm_min,
            t.tm_sec,
        )
        _date_second = second
    return _date_value


def date_line(now: float) -> bytes:
    """``Date: <IMF-fixdate>`` and CRLF for ``now``, built once per second."""
    global _line_second, _date_line
    if not 0.0 <= now - _line_second < 1.0:
        second = int(now)
        _date_line = b"Date: " + http_date(second) + b"\r\n"
        _line_second = float(second)
    return _date_line
