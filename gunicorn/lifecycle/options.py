"""What the connection lifecycle and the drivers take from the configuration, built once
per worker."""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
import sys
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gunicorn.http.limits import Limits, Policy
from gunicorn.wsgi.environ import EnvironConfig
from gunicorn.wsgi.errors import WSGIErrors

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Networks:
    """An allow-list of addresses and networks (``*`` allows every peer)."""

    networks: tuple[Network, ...] = ()
    allow_all: bool = False
    # Answers by address: asked once per connection, mostly for the same few peers (a
    # proxy, localhost), and parsing an address costs more than the rest of the check.
    _seen: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, values: Iterable[Any] | str | None) -> Networks:
        """From setting values: strings (addresses, CIDR networks, ``*``) or networks."""
        if values is None:
            return cls()
        if isinstance(values, str):
            values = values.split(",")
        networks: list[Network] = []
        for value in values:
            if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                networks.append(value)
                continue
            text = str(value).strip()
            if not text:
                continue
            if text == "*":
                return cls(allow_all=True)
            networks.append(ipaddress.ip_network(text, strict=False))
        return cls(tuple(networks))

    def __contains__(self, address: str) -> bool:
        if self.allow_all:
            return True
        seen = self._seen
        answer = seen.get(address)
        if answer is None:
            answer = _in_networks(self.networks, address)
            if len(seen) < 4096:
                seen[address] = answer
        return answer


def _in_networks(networks: tuple[Network, ...], address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return any(ip in net or (mapped is not None and mapped in net) for net in networks)


def is_trusted(peer_addr: Any, networks: Networks | Iterable[Any] | str | None) -> bool:
    """Is this peer allowed? Unix socket peers (a path or empty name) always are."""
    if not isinstance(peer_addr, tuple):
        return True
    if not isinstance(networks, Networks):
        networks = Networks.parse(networks)
    return str(peer_addr[0]) in networks


def core_options(cfg: Any) -> tuple[Limits, Policy]:
    """The protocol core's limits and rule switches from the settings."""
    limits = Limits.from_settings(
        limit_request_line=int(cfg.limit_request_line),
        limit_request_fields=int(cfg.limit_request_fields),
        limit_request_field_size=int(cfg.limit_request_field_size),
        h2_max_concurrent_streams=int(_setting(cfg, "http2_max_concurrent_streams", 100)),
        h2_initial_window_size=int(_setting(cfg, "http2_initial_window_size", 65535)),
        h2_max_frame_size=int(_setting(cfg, "http2_max_frame_size", 16384)),
        h2_max_header_list_size=int(_setting(cfg, "http2_max_header_list_size", 65536)),
    )
    policy = Policy(
        permit_obsolete_folding=bool(cfg.permit_obsolete_folding),
        casefold_http_method=bool(cfg.casefold_http_method),
        permit_unconventional_http_method=bool(cfg.permit_unconventional_http_method),
        permit_unconventional_http_version=bool(cfg.permit_unconventional_http_version),
        header_map=str(cfg.header_map),
        strip_header_spaces=bool(cfg.strip_header_spaces),
        forwarder_headers=EnvironConfig.forwarder_names(cfg.forwarder_headers),
    )
    return limits, policy


def _setting(cfg: Any, name: str, default: Any) -> Any:
    try:
        value = getattr(cfg, name)
    except AttributeError:
        return default
    return default if value is None else value


@dataclass(frozen=True)
class DriverOptions:
    """Everything a driver needs per connection, computed once per worker."""

    limits: Limits
    policy: Policy
    environ: EnvironConfig
    forwarded_allow: Networks
    proxy_mode: str | None  # "v1", "v2", "auto" or None when PROXY protocol is off
    proxy_allow: Networks
    uwsgi: bool
    uwsgi_allow: Networks
    sendfile: bool
    is_ssl: bool
    timeout: float
    # Per-request callables, None when calling them could not be observed: the default
    # pre_request only logs at debug level, the default post_request does nothing, and
    # the stock logger's access() does nothing while access logging is off.
    # HTTP/2: offered at all (the worker can multiplex, "h2" is listed and the h2
    # package is there), and the h2c mode for cleartext peers in forwarded_allow_ips.
    h2_enabled: bool = False
    http2_cleartext: str = "off"
    server_header: bytes = b"gunicorn"
    pre_request: Callable[[Any, Any], None] | None = None
    post_request: Callable[[Any, Any, Any, Any], None] | None = None
    log_access: bool = True

    @classmethod
    def from_config(
        cls, cfg: Any, log: Any = None, *, multithread: bool = False, http2: bool = False
    ) -> DriverOptions:
        limits, policy = core_options(cfg)
        error_log = getattr(log, "error_log", None)
        environ = EnvironConfig(
            errors=WSGIErrors(error_log),
            multithread=multithread,
            multiprocess=int(_setting(cfg, "workers", 1)) > 1,
            secure_scheme_headers=EnvironConfig.scheme_headers(
                _setting(cfg, "secure_scheme_headers", {})
            ),
            forwarder_headers=policy.forwarder_headers,
            script_name=os.environ.get("SCRIPT_NAME", ""),
        )
        proxy_mode = str(_setting(cfg, "proxy_protocol", "off"))
        if proxy_mode in ("off", "False", "false", "none", ""):
            proxy = None
        elif proxy_mode in ("True", "true", "on"):
            proxy = "auto"
        else:
            proxy = proxy_mode
        return cls(
            limits=limits,
            policy=policy,
            environ=environ,
            forwarded_allow=Networks.parse(_setting(cfg, "forwarded_allow_ips", ())),
            proxy_mode=proxy,
            proxy_allow=Networks.parse(_setting(cfg, "proxy_allow_ips", ())),
            uwsgi=str(_setting(cfg, "protocol", "http")) == "uwsgi",
            uwsgi_allow=Networks.parse(_setting(cfg, "uwsgi_allow_ips", ())),
            sendfile=bool(_setting(cfg, "sendfile", True)),
            is_ssl=bool(_setting(cfg, "is_ssl", False)),
            timeout=float(_setting(cfg, "timeout", 30)),
            h2_enabled=http2 and http2_wanted(cfg),
            server_header=_server_header(),
            http2_cleartext=str(_setting(cfg, "http2_cleartext", "off")),
            **_request_hooks(cfg, log),
        )


def _server_header() -> bytes:
    """``Server`` as gunicorn's ``Response.default_headers()`` says it, which apps patch
    (or replace ``gunicorn.http.wsgi.Response``) to hide or change it."""
    # Only code that imported gunicorn.http.wsgi can have patched it: the face is read
    # where it was loaded, never loaded by the server itself.
    face = sys.modules.get("gunicorn.http.wsgi")
    override: str | None = face.server_header_override() if face is not None else None
    if override is None:
        return b"gunicorn"
    return override.encode("latin-1")


def http2_wanted(cfg: Any) -> bool:
    """Whether the settings ask for HTTP/2 (``h2`` in ``http_protocols``) and it can be had."""
    protocols = _setting(cfg, "http_protocols", ()) or ()
    if isinstance(protocols, str):
        protocols = protocols.split(",")
    if "h2" not in [str(p).strip().lower() for p in protocols]:
        return False
    return importlib.util.find_spec("h2") is not None


def _request_hooks(cfg: Any, log: Any) -> dict[str, Any]:
    from gunicorn.config.settings import server_hooks
    from gunicorn.glogging import Logger

    pre = getattr(cfg, "pre_request", None)
    post = getattr(cfg, "post_request", None)
    error_log = getattr(log, "error_log", None)
    debug = error_log is None or error_log.isEnabledFor(logging.DEBUG)
    if pre is server_hooks.pre_request and not debug:
        pre = None
    if post is server_hooks.post_request:
        post = None
    log_access = log is None or not (
        type(log).access is Logger.access and not getattr(log, "access_log_enabled", True)
    )
    return {"pre_request": pre, "post_request": post, "log_access": log_access}


_per_worker: weakref.WeakKeyDictionary[Any, DriverOptions] = weakref.WeakKeyDictionary()


def worker_options(worker: Any) -> DriverOptions:
    """The options of ``worker`` (built on first use, after the worker set its environment).

    ``wsgi.multithread`` is the worker class's ``wsgi_multithread`` attribute; HTTP/2
    is served only by worker classes whose ``supports_http2`` is True.
    """
    options = _per_worker.get(worker)
    if options is None:
        options = DriverOptions.from_config(
            worker.cfg,
            worker.log,
            multithread=bool(getattr(worker, "wsgi_multithread", False)),
            http2=bool(getattr(worker, "supports_http2", False)),
        )
        _per_worker[worker] = options
    return options
