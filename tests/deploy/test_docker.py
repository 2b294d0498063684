"""docker/Dockerfile, built and run for real with podman.

No image registry is reachable from the test machines, so the base image is made here:
``debootstrap`` a minimal Debian bookworm with python3 from Debian's packages (from the
mirror apt uses), imported as ``localhost/gunicorn-base:bookworm``. That takes a couple
of minutes, so it is done once per machine: an existing image of that name is reused
(``podman rmi localhost/gunicorn-base:bookworm`` forces a rebuild). The Dockerfile is then
built on it (``--build-arg BASE=...``; pip reaches PyPI through ``--network host``) and
the image is run: requests, the HEALTHCHECK, the user, PID 1, and a graceful SIGTERM.

Podman here needs ``--runtime runc`` (crun fails on these hybrid cgroups) and ulimits
within the machine's hard limits.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support import request, wait_until

ROOT = Path(__file__).resolve().parents[2]
BASE = "localhost/gunicorn-base:bookworm"
SUITE = "bookworm"
RUN_OPTIONS = [
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=1000:1000",
    # No systemd timer for the HEALTHCHECK (there is no systemd here): run it by hand.
    "--health-interval",
    "disable",
]
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} -> {result.returncode}\n{result.stderr}")
    return result


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 ``.sources`` or one-line ``sources.list``)."""
    candidates = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in candidates:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if re.match(r"^\w[\w-]*:", line)
            )
            if SUITE in fields.get("Suites", "").split():
                return fields["URIs"].split()[0]
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            match = re.match(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", line)
            if match:
                return match.group(1)
    return "http://deb.debian.org/debian"


def build_base_image(workdir: Path) -> None:
    """debootstrap bookworm with python3 (and its venv module), import it into podman."""
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        pytest.skip(f"{BASE} is missing and debootstrap (as root) is not available")
    rootfs = workdir / "rootfs"
    packages = "--include=python3,python3-venv"
    command = ["debootstrap", "--variant=minbase", packages, SUITE, str(rootfs), debian_mirror()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for leftover in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        leftover.unlink()
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    try:
        imported = subprocess.run(
            ["podman", "import", "-", BASE], stdin=tar.stdout, capture_output=True, timeout=300
        )
        assert imported.returncode == 0, imported.stderr
    finally:
        tar.stdout.close()
        assert tar.wait(timeout=60) == 0
    shutil.rmtree(rootfs, ignore_errors=True)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    if podman("image", "exists", BASE, check=False).returncode != 0:
        build_base_image(tmp_path_factory.mktemp("base"))
    tag = f"localhost/gunicorn-test:{uuid.uuid4().hex[:12]}"
    build = ["build", "--runtime", "runc", "--network", "host", "--format", "docker"]
    build += ["--layers=false"]  # no intermediate images left behind
    if HOST_CA.exists():  # trust what this machine trusts (a TLS-intercepting proxy's CA)
        build += ["--secret", f"id=ca,src={HOST_CA}"]
    build += ["--build-arg", f"BASE={BASE}", "--build-arg", "PACKAGES=fastapi"]
    build += ["-f", "docker/Dockerfile", "-t", tag, str(ROOT)]
    result = subprocess.run(
        ["podman", *build], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    try:
        yield tag
    finally:
        podman("rmi", "-f", tag, check=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Container:
    """One ``podman run -d`` of the image, published on 127.0.0.1:``port``."""

    def __init__(
        self,
        image: str,
        *args: str,
        env: dict[str, str],
        volumes: list[str],
        options: tuple[str, ...] = (),
    ) -> None:
        self.name = f"gunicorn-test-{uuid.uuid4().hex[:12]}"
        self.port = _free_port()
        inside = env.get("PORT", "8000")
        publish = ["-p", f"127.0.0.1:{self.port}:{inside}"]
        options = (*RUN_OPTIONS, *options, "--name", self.name, *publish)
        for key, value in env.items():
            options += ("-e", f"{key}={value}")
        for volume in volumes:
            options += ("-v", volume)
        podman("run", "-d", *options, image, *args)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        # podman's own complaints about the missing systemd (healthcheck timers) are not ours.
        noise = re.compile(r'^time=".*" level=\w+ msg=".*"$')
        lines = (result.stdout + result.stderr).splitlines()
        return "\n".join(line for line in lines if not noise.match(line))

    def wait_log(self, pattern: str, count: int = 1, timeout: float = 30) -> str:
        def seen() -> str | None:
            log = self.logs()
            return log if len(re.findall(pattern, log)) >= count else None

        try:
            found: str = wait_until(seen, timeout=timeout, interval=0.2)
        except AssertionError:
            raise AssertionError(f"no {pattern!r} x{count} in:\n{self.logs()}") from None
        return found

    def exec(self, *command: str) -> str:
        return podman("exec", self.name, *command).stdout

    def state(self, field: str) -> str:
        return podman("inspect", self.name, "--format", "{{.State." + field + "}}").stdout.strip()


def test_image_serves_and_stops_gracefully(image: str) -> None:
    """The default image: PORT and WEB_CONCURRENCY honoured, non-root, PID 1, healthy."""
    with Container(image, env={"PORT": "9000", "WEB_CONCURRENCY": "3"}, volumes=[]) as box:
        log = box.wait_log(r"Booting worker with pid", count=3)
        assert "Listening at: http://0.0.0.0:9000 (1)" in log  # gunicorn is PID 1
        status, body = request(("127.0.0.1", box.port), "/", timeout=10)
        assert status == 200
        info = json.loads(body)
        assert info["uid"] == 10001  # the image's non-root user
        assert request(("127.0.0.1", box.port), "/healthz") == (200, b"ok\n")
        assert box.exec("cat", "/proc/1/cmdline").startswith("gunicorn: master")
        assert podman("healthcheck", "run", box.name, check=False).returncode == 0
        # The heartbeat files are in /dev/shm: one per worker, unlinked, still open.
        fds = box.exec("sh", "-c", "ls -l /proc/[0-9]*/fd/ 2>/dev/null")
        assert len(set(re.findall(r"-> (/dev/shm/wgunicorn-\S+) \(deleted\)", fds))) == 3
        # The control socket works for the non-root user, in $XDG_RUNTIME_DIR.
        assert "3 worker(s)" in box.exec("gunicornc", "show", "workers")
        # Access log on stdout, in the combined format.
        access = box.wait_log(r'"GET /healthz HTTP/1.1" 200 3 ')
        assert re.search(r'\d+\.\d+\.\d+\.\d+ - - \[.+\] "GET / HTTP/1.1" 200 \d+ "-" "-"', access)
        podman("stop", "-t", "30", box.name)
        assert box.state("ExitCode") == "0"
        log = box.logs()
        for line in ("Handling signal: term", "Worker exiting (pid:", "Shutting down: Master"):
            assert line in log
        assert log.count("Worker exiting (pid:") == 3
        assert "SIGKILL" not in log


SLOW_APP = """
import time


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        print("slow request started", flush=True)
        time.sleep(2)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"done\\n"]
"""


def test_sigterm_finishes_the_request_in_flight(image: str, tmp_path: Path) -> None:
    """``docker stop`` during a request: it is answered, then the server exits 0.

    Also the usual way to run one's own code: mount it and name it as CMD, with
    GUNICORN_CMD_ARGS overriding the image's config file; and a read-only root file
    system (Kubernetes' readOnlyRootFilesystem; podman mounts tmpfs on /run, /tmp).
    """
    (tmp_path / "slowapp.py").write_text(SLOW_APP)
    tmp_path.chmod(0o755)
    (tmp_path / "slowapp.py").chmod(0o644)
    env = {"GUNICORN_CMD_ARGS": "--workers 2 --graceful-timeout 20"}
    volumes = [f"{tmp_path}:/srv/code:ro"]
    command = ["--chdir", "/srv/code", "slowapp:app"]
    readonly = ("--read-only",)
    with Container(image, *command, env=env, volumes=volumes, options=readonly) as box:
        box.wait_log(r"Booting worker with pid", count=2)
        answer: list[tuple[int, bytes]] = []
        client = threading.Thread(
            target=lambda: answer.append(request(("127.0.0.1", box.port), "/slow", timeout=20))
        )
        client.start()
        try:
            box.wait_log("slow request started")
            podman("stop", "-t", "30", box.name)
        finally:
            client.join(timeout=30)
        assert answer == [(200, b"done\n")]
        assert box.state("ExitCode") == "0"
        log = box.logs()
        assert "Handling signal: term" in log
        assert "Shutting down: Master" in log
        assert '"GET /slow HTTP/1.1" 200 5' in log
        assert "Control socket listening at: /run/gunicorn/" in log  # writable when read-only


def test_compose_nginx_config_proxies_to_the_container(image: str, tmp_path: Path) -> None:
    """docker/nginx.conf, with the compose service name swapped for the published port."""
    nginx = shutil.which("nginx")
    if nginx is None:
        pytest.skip("nginx is not installed")
    with Container(image, env={"FORWARDED_ALLOW_IPS": "*"}, volumes=[]) as box:
        box.wait_log(r"Booting worker with pid")
        listen = _free_port()
        server = (ROOT / "docker" / "nginx.conf").read_text()
        server = server.replace("app:8000", f"127.0.0.1:{box.port}")
        server = re.sub(r"listen\s+80;", f"listen 127.0.0.1:{listen};", server)
        (tmp_path / "site.conf").write_text(server)
        (tmp_path / "nginx.conf").write_text(
            f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log stderr;\n"
            "events {}\nhttp {\n"
            f"access_log off; client_body_temp_path {tmp_path}/body;\n"
            f"proxy_temp_path {tmp_path}/proxy;\ninclude {tmp_path}/site.conf;\n}}\n"
        )
        with open(tmp_path / "nginx.log", "wb") as out:
            proxy = subprocess.Popen(
                [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(lambda: _accepts(listen), timeout=10)
            status, body = request(("127.0.0.1", listen), "/", timeout=10)
            assert status == 200
            info = json.loads(body)
            # The client's address and the Host it asked for, passed on by nginx.
            assert info["forwarded_for"] == "127.0.0.1"
            assert info["host"] == "localhost"
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_compose_file_is_consistent() -> None:
    """compose.yaml builds this Dockerfile, mounts nginx.conf, and nginx's upstream is the app
    service, whose FORWARDED_ALLOW_IPS is the network nginx connects from."""
    docker = ROOT / "docker"
    compose = yaml.safe_load((docker / "compose.yaml").read_text())
    app, nginx = compose["services"]["app"], compose["services"]["nginx"]
    assert (docker / app["build"]["context"] / app["build"]["dockerfile"]).resolve() == (
        docker / "Dockerfile"
    )
    source, target = nginx["volumes"][0].split(":")[:2]
    assert (docker / source).resolve() == docker / "nginx.conf"
    assert target == "/etc/nginx/conf.d/default.conf"
    assert nginx["depends_on"]["app"]["condition"] == "service_healthy"
    assert "server app:8000;" in (docker / "nginx.conf").read_text()
    (subnet,) = [pool["subnet"] for pool in compose["networks"]["backend"]["ipam"]["config"]]
    trusted = ipaddress.IPv4Network(app["environment"]["FORWARDED_ALLOW_IPS"])
    assert ipaddress.IPv4Network(subnet).subnet_of(trusted)
    assert int(app["stop_grace_period"].rstrip("s")) > 30  # graceful_timeout


def test_kubernetes_image_answers_its_probes(image: str) -> None:
    """examples/kubernetes: its Dockerfile on top of this image (built with
    PACKAGES=fastapi), run with the manifest's args, env and read-only root: the readiness
    and liveness probe paths answer 200."""
    kubernetes = ROOT / "examples" / "kubernetes"
    documents = yaml.safe_load_all((kubernetes / "deployment.yaml").read_text())
    deployment = next(doc for doc in documents if doc["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    tag = f"localhost/gunicorn-test-k8s:{uuid.uuid4().hex[:12]}"
    build = ["build", "--runtime", "runc", "--layers=false", "--format", "docker"]
    build += ["--build-arg", f"GUNICORN_IMAGE={image}", "-f", str(kubernetes / "Dockerfile")]
    podman(*build, "-t", tag, str(ROOT / "examples"), timeout=300)
    try:
        env = {item["name"]: item["value"] for item in container["env"]}
        with Container(
            tag, *container["args"], env=env, volumes=[], options=("--read-only",)
        ) as box:
            box.wait_log(r"Booting worker with pid", count=2)
            for probe in (container["readinessProbe"], container["livenessProbe"]):
                status, body = request(
                    ("127.0.0.1", box.port), probe["httpGet"]["path"], timeout=30
                )
                assert status == 200, body
            assert "Using worker: asgi" in box.logs()
    finally:
        podman("rmi", "-f", tag, check=False)
