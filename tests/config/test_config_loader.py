"""Loading config files: the accepted forms and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gunicorn.config import Config
from gunicorn.config.loader import apply_config_dict, load_config_file
from gunicorn.errors import ConfigError


def test_path_and_file_prefix(clean_env: Path) -> None:
    Path("conf.py").write_text("workers = 2\nname = 'x'\n")
    assert load_config_file("conf.py")["workers"] == 2
    assert load_config_file(f"file:{clean_env / 'conf.py'}")["name"] == "x"


def test_config_file_may_compute_values(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_WORKERS", "6")
    Path("conf.py").write_text(
        "import os\nworkers = int(os.environ['APP_WORKERS']) * 2\n"
        "def post_fork(server, worker):\n    pass\n"
    )
    cfg = Config()
    apply_config_dict(cfg, load_config_file("conf.py"))
    assert cfg.workers == 12
    assert cfg.post_fork.__name__ == "post_fork"


def test_non_py_extension_warns_and_loads(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("gunicorn.conf").write_text("workers = 5\n")
    assert load_config_file("gunicorn.conf")["workers"] == 5
    assert "should have a .py extension" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "doesn't exist"),
        ("workers = (\n", "SyntaxError"),
        ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
        ("import no_such_module_for_gunicorn_tests\n", "ModuleNotFoundError"),
    ],
)
def test_errors_are_one_line_config_errors(
    clean_env: Path, content: str | None, message: str
) -> None:
    if content is not None:
        Path("bad.py").write_text(content)
    with pytest.raises(ConfigError) as exc:
        load_config_file("bad.py")
    text = str(exc.value)
    assert text.startswith("could not load config file 'bad.py': ")
    assert message in text
    assert "\n" not in text


def test_missing_python_module() -> None:
    with pytest.raises(ConfigError, match="could not load config file 'python:no_such_conf_xyz'"):
        load_config_file("python:no_such_conf_xyz")


def test_directory_is_refused(clean_env: Path) -> None:
    Path("d.py").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        load_config_file("d.py")


def test_bad_value_in_config_file(clean_env: Path) -> None:
    Path("conf.py").write_text("workers = 'many'\n")
    with pytest.raises(ConfigError, match=r"^Invalid value for workers: 'many'"):
        apply_config_dict(Config(), load_config_file("conf.py"))


def test_bare_config_global_is_rejected(clean_env: Path) -> None:
    # a module imported under the name "config" collides with the setting of that name
    Path("conf.py").write_text("import os as config\n")
    with pytest.raises(ConfigError, match="Invalid value for config"):
        apply_config_dict(Config(), load_config_file("conf.py"))


def test_hook_with_wrong_arity_in_config_file(clean_env: Path) -> None:
    Path("conf.py").write_text("def post_fork(worker):\n    pass\n")
    with pytest.raises(ConfigError, match=r"Invalid value for post_fork: .*must accept 2"):
        apply_config_dict(Config(), load_config_file("conf.py"))
