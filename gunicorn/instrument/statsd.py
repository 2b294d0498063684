"""A Logger that also sends StatsD metrics (UDP or unix datagram, fire-and-forget)."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from gunicorn.errors import ConfigError
from gunicorn.glogging import Logger

GAUGE_TYPE = "gauge"
COUNTER_TYPE = "counter"
HISTOGRAM_TYPE = "histogram"
TIMER_TYPE = "timer"

DEFAULT_PORT = 8125

StatsdAddress = tuple[socket.AddressFamily, Any]  # (address family, sockaddr)


def parse_statsd_address(value: Any) -> StatsdAddress:
    """Turn ``host:port``, ``[v6]:port``, ``host``, ``unix:PATH``, ``unix://PATH`` or an
    already parsed ``(host, port)`` into ``(family, sockaddr)``."""
    if isinstance(value, (tuple, list)):
        host, port = str(value[0]), int(value[1])
    else:
        text = str(value).strip()
        if text.startswith("unix:"):
            path = text[len("unix:") :]
            if path.startswith("//"):
                path = path[2:]
            if not path:
                raise ConfigError(f"Invalid statsd address {value!r}: empty unix socket path")
            return socket.AF_UNIX, path
        if "/" in text or text.endswith(".sock"):  # a unix path as validated by the config
            return socket.AF_UNIX, text
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
        elif text.count(":") > 1:  # bare IPv6 literal
            host, port_text = text, ""
        else:
            host, port_text = text, ""
        if port_text and not port_text.isdigit():
            raise ConfigError(f"Invalid statsd address {value!r}: bad port {port_text!r}")
        port = int(port_text) if port_text else DEFAULT_PORT
    host = host or "localhost"
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ConfigError(f"Invalid statsd address {value!r}: {exc}") from exc
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


class Statsd(Logger):
    """Logger that reports request and log-level metrics to a StatsD server."""

    def __init__(self, cfg: Any) -> None:
        self.prefix = ""
        self.dogstatsd_tags = ""
        self.sock: socket.socket | None = None
        self.family = socket.AF_INET
        self.sockaddr: Any = None
        super().__init__(cfg)

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        prefix = cfg.statsd_prefix or ""
        self.prefix = prefix if not prefix or prefix.endswith(".") else prefix + "."
        self.dogstatsd_tags = cfg.dogstatsd_tags or ""
        self._open_socket(cfg.statsd_host)

    def _open_socket(self, address: Any) -> None:
        self.close()
        if not address:
            return
        # Unconnected datagram socket: a collector that starts later (or restarts) still
        # receives metrics, and a missing one never raises into a request.
        self.family, self.sockaddr = parse_statsd_address(address)
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        self.sock = sock

    def close(self) -> None:
        """Close the metrics socket (metrics are dropped until the next ``setup``)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # -- log calls -----------------------------------------------------------------------

    def critical(self, msg: object, *args: Any, **kwargs: Any) -> None:
        Logger.critical(self, msg, *args, **kwargs)
        self.increment("gunicorn.log.critical", 1)
        self._extra_metric(kwargs)

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        Logger.error(self, msg, *args, **kwargs)
        self.increment("gunicorn.log.error", 1)
        self._extra_metric(kwargs)

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        Logger.warning(self, msg, *args, **kwargs)
        self.increment("gunicorn.log.warning", 1)
        self._extra_metric(kwargs)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        Logger.exception(self, msg, *args, **kwargs)
        self.increment("gunicorn.log.exception", 1)
        self._extra_metric(kwargs)

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def log(self, lvl: int | str, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log ``msg``; ``extra={"metric": name, "value": v, "mtype": type}`` sends a metric."""
        Logger.log(self, lvl, msg, *args, **kwargs)
        self._extra_metric(kwargs)

    def _extra_metric(self, kwargs: Mapping[str, Any]) -> None:
        extra = kwargs.get("extra")
        if not isinstance(extra, Mapping):
            return
        metric = extra.get("metric")
        value = extra.get("value")
        mtype = extra.get("mtype")
        if not metric or value is None or not mtype:
            return
        if mtype == GAUGE_TYPE:
            self.gauge(metric, value)
        elif mtype == COUNTER_TYPE:
            self.increment(metric, value)
        elif mtype == HISTOGRAM_TYPE:
            self.histogram(metric, value)
        elif mtype == TIMER_TYPE:
            self.timing(metric, value)

    # -- access --------------------------------------------------------------------------

    def access(
        self, resp: Any, req: Any, environ: Mapping[str, Any], request_time: timedelta
    ) -> None:
        """Log the request and send its count, duration (ms) and status metrics."""
        Logger.access(self, resp, req, environ, request_time)
        self.timing("gunicorn.request.duration", request_time / timedelta(milliseconds=1))
        self.increment("gunicorn.requests", 1)
        code = getattr(resp, "status_code", None)
        if code is None:
            status = str(getattr(resp, "status", "")).split(None, 1)
            code = status[0] if status else None
        if code is not None:
            self.increment(f"gunicorn.request.status.{code}", 1)

    # -- metrics -------------------------------------------------------------------------

    def gauge(self, name: str, value: float) -> None:
        self._send(f"{self.prefix}{name}:{value}|g")

    def increment(self, name: str, value: float, sampling_rate: float = 1.0) -> None:
        self._send(f"{self.prefix}{name}:{value}|c|@{sampling_rate}")

    def decrement(self, name: str, value: float, sampling_rate: float = 1.0) -> None:
        self._send(f"{self.prefix}{name}:-{value}|c|@{sampling_rate}")

    def histogram(self, name: str, value: float) -> None:
        self._send(f"{self.prefix}{name}:{value}|h")

    def timing(self, name: str, milliseconds: float) -> None:
        self._send(f"{self.prefix}{name}:{milliseconds}|ms")

    def _send(self, line: str) -> None:
        sock = self.sock
        if sock is None:
            return
        if self.dogstatsd_tags:
            line = f"{line}|#{self.dogstatsd_tags}"
        # fire-and-forget: a missing or slow collector never slows a request
        with contextlib.suppress(OSError):
            sock.sendto(line.encode("ascii", "backslashreplace"), self.sockaddr)
