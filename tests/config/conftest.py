"""Fixtures for the configuration tests: a clean environment and working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

ENV_VARS = (
    "PORT",
    "WEB_CONCURRENCY",
    "FORWARDED_ALLOW_IPS",
    "SENDFILE",
    "GUNICORN_CMD_ARGS",
    "XDG_RUNTIME_DIR",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No gunicorn-related environment variables, cwd = an empty temporary directory."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PWD", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path
