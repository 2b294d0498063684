"""The generated settings reference and the installed package."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import gunicorn
from gunicorn.config import KNOWN_SETTINGS
from gunicorn.config.docs import DEFAULT_OUTPUT, generate, main

REPO = Path(__file__).resolve().parents[2]


def test_committed_reference_matches_a_fresh_generation() -> None:
    assert DEFAULT_OUTPUT == REPO / "docs" / "reference" / "settings.md"
    assert DEFAULT_OUTPUT.read_text(encoding="utf-8") == generate(), (
        "docs/reference/settings.md is stale: run python -m gunicorn.config.docs"
    )


def test_reference_documents_every_setting_and_flag() -> None:
    text = generate()
    for setting in KNOWN_SETTINGS:
        assert f"### `{setting.name}`" in text
        for flag in setting.cli:
            assert f"`{flag}" in text


def test_check_mode_exit_status(tmp_path: Path) -> None:
    current = tmp_path / "settings.md"
    current.write_text(generate(), encoding="utf-8")
    assert main(["--check", str(current)]) == 0
    current.write_text(generate() + "edited\n", encoding="utf-8")
    assert main(["--check", str(current)]) == 1
    assert main(["--check", str(tmp_path / "missing.md")]) == 1


def test_module_entry_point_writes_output(tmp_path: Path) -> None:
    out = tmp_path / "ref.md"
    subprocess.run(
        [sys.executable, "-m", "gunicorn.config.docs", "--output", str(out)],
        check=True,
        timeout=60,
    )
    assert out.read_text(encoding="utf-8") == generate()


def test_installed_package_is_this_checkout() -> None:
    assert Path(gunicorn.__file__).resolve().is_relative_to(REPO)
    version = importlib.metadata.version("gunicorn")
    assert version == gunicorn.__version__
    assert tuple(int(p) for p in version.split(".")[:2]) >= (27, 0)
