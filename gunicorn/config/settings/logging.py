"""Logging: error log, access log, syslog and statsd."""

from __future__ import annotations

import sys

from gunicorn.config.core import Setting, flag_setting
from gunicorn.config.validators import (
    validate_class,
    validate_dict,
    validate_loglevel,
    validate_statsd_address,
    validate_string,
)

SECTION = "Logging"

ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'


def default_syslog_addr() -> str:
    """The local syslog socket on BSD and macOS, UDP to localhost elsewhere."""
    if sys.platform == "darwin":
        return "unix:///var/run/syslog"
    if sys.platform.startswith(("freebsd", "dragonfly")):
        return "unix:///var/run/log"
    if sys.platform.startswith("openbsd"):
        return "unix:///dev/log"
    return "udp://localhost:514"


def _flag(name: str, cli: tuple[str, ...], short: str, desc: str) -> Setting:
    return flag_setting(SECTION, name, cli, short, desc)


def _string(
    name: str, cli: tuple[str, ...], meta: str, default: str | None, short: str, desc: str
) -> Setting:
    return Setting(
        name=name,
        section=SECTION,
        cli=cli,
        meta=meta,
        validator=validate_string,
        default=default,
        short=short,
        desc=desc,
    )


SETTINGS = [
    _string(
        "accesslog",
        ("--access-logfile",),
        "FILE",
        None,
        "Where to write the access log ('-' for stdout).",
        """
Path of the access log file, or `-` for standard output. Access logging is off unless this
(or a logging configuration, or syslog) is set.
""",
    ),
    _flag(
        "disable_redirect_access_to_syslog",
        ("--disable-redirect-access-to-syslog",),
        "Do not send access log lines to syslog.",
        """
With `syslog` on, access log lines go to syslog as well; this keeps them out.
""",
    ),
    _string(
        "access_log_format",
        ("--access-logformat",),
        "STRING",
        ACCESS_LOG_FORMAT,
        "Format of access log lines, built from the atoms listed below.",
        """
A Python `%`-format string over named atoms. The default is the Apache/NCSA "combined"
format. Atoms:

| Atom | Meaning |
|---|---|
| `h` | remote address |
| `l` | `-` |
| `u` | user name from Basic authentication |
| `t` | time of the request |
| `r` | request line |
| `m` | request method |
| `U` | URL path without the query |
| `q` | query string |
| `H` | protocol |
| `s` | status code |
| `B` | response body length |
| `b` | response body length, or `-` |
| `f` | referrer |
| `a` | user agent |
| `T` | request time in whole seconds |
| `M` | request time in milliseconds |
| `D` | request time in microseconds |
| `L` | request time in decimal seconds |
| `p` | worker process id |
| `{header}i` | a request header |
| `{header}o` | a response header |
| `{variable}e` | an environment variable |

Example: `%(h)s "%(r)s" %(s)s %(M)sms %({x-request-id}i)s`.
""",
    ),
    _string(
        "errorlog",
        ("--error-logfile", "--log-file"),
        "FILE",
        "-",
        "Where to write the error log ('-' for stderr).",
        """
Path of the error log file, or `-` (the default) for standard error.
""",
    ),
    Setting(
        name="loglevel",
        section=SECTION,
        cli=("--log-level",),
        meta="LEVEL",
        validator=validate_loglevel,
        default="info",
        short="The lowest level written to the error log.",
        desc="""
One of `debug`, `info`, `warning`, `error`, `critical`.
""",
    ),
    _flag(
        "capture_output",
        ("--capture-output",),
        "Send the standard output and error of the application to the error log.",
        """
Redirects file descriptors 1 and 2 of the workers into the error log file, so `print()` output
and tracebacks written by the application end up there.
""",
    ),
    Setting(
        name="logger_class",
        section=SECTION,
        cli=("--logger-class",),
        meta="STRING",
        validator=validate_class,
        default="gunicorn.glogging.Logger",
        short="The logger class used for error and access logs.",
        desc="""
Dotted path of a subclass of `gunicorn.glogging.Logger` (or an `egg:dist#name` entry point in
the `gunicorn.loggers` group). `simple` means the default. With the default class and
`statsd_host` set, the statsd-emitting logger is used instead.
""",
    ),
    _string(
        "logconfig",
        ("--log-config",),
        "FILE",
        None,
        "A logging configuration file in the ini format of logging.config.fileConfig.",
        """
Configures Python logging from an ini file with `logging.config.fileConfig`, replacing the
built-in handlers.
""",
    ),
    Setting(
        name="logconfig_dict",
        section=SECTION,
        validator=validate_dict,
        default={},
        short="A dictionary for logging.config.dictConfig.",
        desc="""
A `logging.config.dictConfig` dictionary, merged over gunicorn's own logging defaults. Takes
precedence over `logconfig_json` and `logconfig`. Config file only.
""",
    ),
    _string(
        "logconfig_json",
        ("--log-config-json",),
        "FILE",
        None,
        "A JSON file holding a logging.config.dictConfig dictionary.",
        """
Like `logconfig_dict`, read from a JSON file. Takes precedence over `logconfig`.
""",
    ),
    Setting(
        name="syslog_addr",
        section=SECTION,
        cli=("--log-syslog-to",),
        meta="SYSLOG_ADDR",
        validator=validate_string,
        default_factory=default_syslog_addr,
        default_doc="'udp://localhost:514'",
        short="Where syslog messages are sent.",
        desc="""
`unix://PATH#TYPE` for a local socket (TYPE is `stream` or `dgram`, dgram by default),
`udp://HOST:PORT` or `tcp://HOST:PORT`. The default is the platform's local syslog socket on
macOS and the BSDs, `udp://localhost:514` elsewhere.
""",
    ),
    _flag(
        "syslog",
        ("--log-syslog",),
        "Also send log messages to syslog.",
        """
Adds a syslog handler (see `syslog_addr`) to the error log and, unless
`disable_redirect_access_to_syslog` is set, to the access log.
""",
    ),
    _string(
        "syslog_prefix",
        ("--log-syslog-prefix",),
        "SYSLOG_PREFIX",
        None,
        "The program name used in syslog messages.",
        """
Messages are tagged `gunicorn.<prefix>.error` and `gunicorn.<prefix>.access`; without a
prefix the process name is used.
""",
    ),
    _string(
        "syslog_facility",
        ("--log-syslog-facility",),
        "SYSLOG_FACILITY",
        "user",
        "Syslog facility of the messages (user, daemon, local0-7, ...).",
        """
One of `auth`, `authpriv`, `cron`, `daemon`, `ftp`, `kern`, `lpr`, `mail`, `news`,
`security`, `syslog`, `user`, `uucp`, `local0` to `local7`.
""",
    ),
    _flag(
        "enable_stdio_inheritance",
        ("-R", "--enable-stdio-inheritance"),
        "Keep standard output and error open in daemon mode.",
        """
Normally `daemon` points stdout and stderr at `/dev/null`; this keeps them. Set
`PYTHONUNBUFFERED` as well to see output without delay.
""",
    ),
    Setting(
        name="statsd_host",
        section=SECTION,
        cli=("--statsd-host",),
        meta="STATSD_ADDR",
        validator=validate_statsd_address,
        default=None,
        short="The StatsD server to send metrics to: HOST:PORT or unix://PATH.",
        desc="""
Turns on StatsD metrics (request counts and durations, status codes, worker count, log
levels). `HOST:PORT` (port 8125 when left out), `[IPV6]:PORT`, or `unix://PATH` for a Unix
datagram socket.
""",
    ),
    _string(
        "dogstatsd_tags",
        ("--dogstatsd-tags",),
        "DOGSTATSD_TAGS",
        "",
        "Comma separated DogStatsD tags added to every metric.",
        """
Tags in the `key:value,key2:value2` form appended to every metric, for DataDog's StatsD
dialect.
""",
    ),
    _string(
        "statsd_prefix",
        ("--statsd-prefix",),
        "STATSD_PREFIX",
        "",
        "A prefix for every metric name sent to StatsD.",
        """
Prepended to metric names; a trailing dot is added when missing.
""",
    ),
    _flag(
        "enable_backlog_metric",
        ("--enable-backlog-metric",),
        "Report the listen queue depth to StatsD.",
        """
On Linux, the master measures how many connections wait in the listen queue and sends it as
the `gunicorn.backlog` histogram.
""",
    ),
]
