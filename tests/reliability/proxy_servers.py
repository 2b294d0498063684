"""Debian's nginx and HAProxy, started by a test in front of gunicorn backends.

Each proxy runs in the foreground (``nginx -g 'daemon off;'``, ``haproxy -db``) as a
child of the test, with its config, pid file, logs and temp paths in a test directory,
listening on free 127.0.0.1 ports. ``stop()`` signals only that child, by PID.

Every proxy has four front doors, one per route in ``ROUTES``: ``tcp`` and ``unix`` lead to
the plain backend over TCP or its unix socket; ``pp-tcp`` and ``pp-unix`` lead to the
backend that expects a PROXY protocol header (nginx through its ``stream`` module, v1;
HAProxy in HTTP mode with ``send-proxy-v2``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
ROUTES = ("tcp", "unix", "pp-tcp", "pp-unix")


def has_stream_module() -> bool:
    """Whether nginx can proxy TCP with a PROXY header (Debian: libnginx-mod-stream)."""
    return STREAM_MODULE.exists()


@dataclass(frozen=True)
class Backends:
    """Where the two gunicorn backends listen (TCP port and unix socket path each)."""

    port: int
    socket: str
    pp_port: int
    pp_socket: str


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now."""
    holders = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            holders.append(sock)
        return [sock.getsockname()[1] for sock in holders]
    finally:
        for sock in holders:
            sock.close()


def render(template: str, values: dict[str, str]) -> str:
    text = (HERE / template).read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    assert not left, f"unfilled placeholders in {template}: {left}"
    return text


@dataclass
class Proxy:
    """One running proxy: ``ports`` maps each route to its listening port."""

    name: str
    command: list[str]
    directory: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.directory / f"{self.name}.out"

    @property
    def log(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        error_log = self.directory / "nginx-error.log"
        if error_log.exists():
            text += error_log.read_text(errors="replace")
        return text

    def start(self, timeout: float = 15.0) -> Proxy:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        waiting = set(self.ports.values())
        while waiting:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.log}")
            for port in list(waiting):
                with socket.socket() as probe:
                    probe.settimeout(1)
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        waiting.discard(port)
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} never listened on {waiting}:\n{self.log}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _values(backends: Backends, ports: dict[str, int], directory: Path) -> dict[str, str]:
    return {
        "DIR": str(directory),
        "BACKEND_PORT": str(backends.port),
        "BACKEND_SOCKET": backends.socket,
        "PP_BACKEND_PORT": str(backends.pp_port),
        "PP_BACKEND_SOCKET": backends.pp_socket,
        "PORT_TCP": str(ports["tcp"]),
        "PORT_UNIX": str(ports["unix"]),
        "PORT_PP_TCP": str(ports["pp-tcp"]),
        "PORT_PP_UNIX": str(ports["pp-unix"]),
    }


def nginx(backends: Backends, directory: Path) -> Proxy:
    """nginx: HTTP proxy for ``tcp``/``unix``; stream proxy (PROXY v1) for ``pp-*`` when the
    stream module is installed (else those routes are absent)."""
    directory.mkdir(parents=True, exist_ok=True)
    routes = ROUTES if has_stream_module() else ROUTES[:2]
    ports = dict(zip(routes, free_ports(len(routes)), strict=True))
    values = _values(backends, {**dict.fromkeys(ROUTES, 0), **ports}, directory)
    # Workers run as root only when the master does: they must reach the test's sockets.
    values["USER"] = "user root;" if os.geteuid() == 0 else ""
    config = render("proxy_nginx.conf", values)
    if has_stream_module():
        config = (
            f"load_module {STREAM_MODULE};\n{config}{render('proxy_nginx_stream.conf', values)}"
        )
    path = directory / "nginx.conf"
    path.write_text(config)
    command = [NGINX, "-p", str(directory), "-e", str(directory / "nginx-error.log")]
    command += ["-c", str(path), "-g", "daemon off;"]
    return Proxy("nginx", command, directory, ports)


def haproxy(backends: Backends, directory: Path) -> Proxy:
    """HAProxy in HTTP mode on every route (``send-proxy-v2`` on the ``pp-*`` ones)."""
    directory.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(ROUTES, free_ports(len(ROUTES)), strict=True))
    path = directory / "haproxy.cfg"
    path.write_text(render("proxy_haproxy.cfg", _values(backends, ports, directory)))
    return Proxy("haproxy", [HAPROXY, "-f", str(path), "-db"], directory, ports)
