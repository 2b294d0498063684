"""The real ``gunicorn`` command with --check-config / --print-config: exit codes, one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "GUNICORN_CMD_ARGS"}
    environ.update(env or {})
    return subprocess.run(
        [GUNICORN, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "goodapp.py").write_text("def app(environ, start_response):\n    return [b'ok']\n")
    (tmp_path / "needsdep.py").write_text("import gunicorn_absent_dependency\napp = None\n")
    (tmp_path / "factory.py").write_text(
        textwrap.dedent(
            """
            def create_app(env):
                if env != "prod":
                    raise ValueError(f"unknown env {env}")
                return lambda environ, start_response: [b"ok"]
            """
        )
    )
    return tmp_path


def test_check_config_ok(project: Path) -> None:
    proc = run(project, "--check-config", "goodapp:app")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_check_config_factory_with_arguments(project: Path) -> None:
    assert run(project, "--check-config", 'factory:create_app("prod")').returncode == 0
    proc = run(project, "--check-config", 'factory:create_app("dev")')
    assert proc.returncode == 1
    assert proc.stderr.endswith(
        "Error: Factory \"create_app('dev')\" in 'factory' raised ValueError: unknown env dev\n"
    )


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("nosuchmodule:app", "Error: No module named 'nosuchmodule'\n"),
        ("goodapp.py", "Error: No module named 'goodapp.py'; did you mean module 'goodapp'?\n"),
        ("goodapp:nope", "Error: Failed to find attribute 'nope' in 'goodapp'.\n"),
    ],
)
def test_check_config_naming_failures_are_one_line(project: Path, uri: str, expected: str) -> None:
    proc = run(project, "--check-config", uri)
    assert proc.returncode == 1
    assert proc.stderr == expected


def test_check_config_shows_the_apps_own_frames_then_one_line(project: Path) -> None:
    proc = run(project, "--check-config", 'factory:create_app("dev")')
    assert proc.stderr == (
        "Traceback (most recent call last):\n"
        f'  File "{project / "factory.py"}", line 4, in create_app\n'
        '    raise ValueError(f"unknown env {env}")\n'
        "ValueError: unknown env dev\n"
        "Error: Factory \"create_app('dev')\" in 'factory' raised ValueError: unknown env dev\n"
    )
    proc = run(project, "--check-config", "needsdep:app")
    assert proc.returncode == 1
    assert "gunicorn" not in proc.stderr.replace("gunicorn_absent_dependency", "")
    assert proc.stderr.splitlines()[-3:] == [
        "    import gunicorn_absent_dependency",
        "ModuleNotFoundError: No module named 'gunicorn_absent_dependency'",
        "Error: Failed to import module 'needsdep': a module it imports is missing: "
        "No module named 'gunicorn_absent_dependency'",
    ]


@pytest.mark.parametrize(
    "worker_class", ["gunicorn_no_such_pkg.Worker", "goodapp.NoSuchWorker", "brokenworker.Worker"]
)
def test_check_config_fails_like_a_start_when_the_worker_class_cannot_load(
    project: Path, worker_class: str
) -> None:
    (project / "brokenworker.py").write_text("raise ImportError('needs uvloop')\n")
    start = run(project, "-b", "127.0.0.1:0", "-k", worker_class, "goodapp:app")
    check = run(project, "--check-config", "-k", worker_class, "goodapp:app")
    assert start.returncode == check.returncode == 1
    assert check.stderr == start.stderr
    assert check.stderr.startswith("Error: ") and worker_class in check.stderr


def test_check_config_warns_about_a_misspelt_setting(project: Path) -> None:
    (project / "conf.py").write_text("wokers = 3\ntimeout_str = '30'\nWORKERS = 2\n")
    proc = run(project, "--check-config", "-c", "conf.py", "goodapp:app")
    assert proc.returncode == 0
    assert proc.stderr == (
        "Warning: Unknown setting 'wokers' in the config file is ignored; did you mean 'workers'?\n"
    )


def test_check_config_traceback_at_debug(project: Path) -> None:
    proc = run(project, "--check-config", "--log-level", "debug", "needsdep:app")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("Error: Failed to import module 'needsdep'")


def test_print_config(project: Path) -> None:
    proc = run(project, "--print-config", "--workers", "3", "goodapp:app")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split() == ["workers", "=", "3"] for line in lines)
    names = [line.split()[0] for line in lines if " = " in line]
    assert names == sorted(names) and "bind" in names


def test_missing_app_module(project: Path) -> None:
    proc = run(project, "--check-config")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: No application module specified")
    assert proc.stderr.count("\n") == 1


def test_python_dash_m(project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "goodapp:app"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_version(project: Path) -> None:
    proc = run(project, "--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("gunicorn (version ")
