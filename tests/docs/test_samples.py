"""The code samples in the documentation run (conventions: tests/docs/samples.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.samples import (
    CONFIGS,
    CONSOLE,
    PYTHON_FILES,
    Block,
    block_id,
    check_config,
    run_console,
)


@pytest.mark.parametrize("block", CONSOLE, ids=block_id)
def test_console_sample_runs(block: Block, tmp_path: Path) -> None:
    run_console(block, tmp_path)


@pytest.mark.parametrize("block", CONFIGS, ids=block_id)
def test_config_file_sample_is_valid(block: Block, tmp_path: Path) -> None:
    done = check_config(block, tmp_path)
    assert done.returncode == 0, f"{block.id}:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("block", PYTHON_FILES, ids=block_id)
def test_python_file_sample_compiles(block: Block) -> None:
    compile(block.text, f"{block.page}:{block.title}", "exec")


def test_samples_are_found() -> None:
    # An extraction bug must not let the pages go untested.
    assert len(CONSOLE) >= 10
    assert {"quickstart.md", "early-hints.md", "asgi.md"} <= {b.page for b in CONSOLE}
    assert len(CONFIGS) >= 2


def test_a_wrong_expected_line_fails(tmp_path: Path) -> None:
    wrong = Block("quickstart.md", 0, "console", None, "$ echo hello\ngoodbye")
    with pytest.raises(AssertionError, match="did not print 'goodbye'"):
        run_console(wrong, tmp_path)
