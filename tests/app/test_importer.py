"""import_app: every URI form, and one clear line for every way loading can fail."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gunicorn.app.importer import import_app, parse_app_uri
from gunicorn.errors import AppImportError

_counter = itertools.count()

APP = textwrap.dedent(
    """
    def application(environ, start_response):
        start_response("200 OK", [])
        return [b"application"]

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"app"]

    class Holder:
        class inner:
            @staticmethod
            def wsgi(environ, start_response):
                return [b"nested"]

    def create_app(*args, **kwargs):
        def made(environ, start_response):
            return [repr((args, kwargs)).encode()]
        made.args = args
        made.kwargs = kwargs
        return made

    def broken_factory():
        raise ValueError("database URL\\nis missing")

    def none_factory():
        return None

    def number_factory():
        return 42

    nothing = None
    not_callable = "a string"
    """
)


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Write a uniquely named module into a directory on sys.path; return its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(source: str = APP, name: str | None = None) -> str:
        name = name or f"gapp_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text(source)
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)


def call(app: object) -> list[bytes]:
    return app({}, lambda status, headers: None)  # type: ignore[operator]


def message(uri: str) -> str:
    with pytest.raises(AppImportError) as info:
        import_app(uri)
    text = str(info.value)
    assert "\n" not in text
    return text


def test_module_and_name(make_module: Callable[..., str]) -> None:
    mod = make_module()
    assert call(import_app(f"{mod}:app")) == [b"app"]
    assert call(import_app(f"{mod}:application")) == [b"application"]


def test_module_alone_prefers_application(make_module: Callable[..., str]) -> None:
    mod = make_module()
    assert call(import_app(mod)) == [b"application"]


def test_module_alone_falls_back_to_app(make_module: Callable[..., str]) -> None:
    mod = make_module("def app(e, s):\n    return [b'only app']\n")
    assert call(import_app(mod)) == [b"only app"]


def test_dotted_attribute_path(make_module: Callable[..., str]) -> None:
    mod = make_module()
    assert call(import_app(f"{mod}:Holder.inner.wsgi")) == [b"nested"]


def test_package_module(tmp_path: Path, make_module: Callable[..., str]) -> None:
    pkg = tmp_path / "gpkg_dotted"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "wsgi.py").write_text(APP)
    try:
        assert call(import_app("gpkg_dotted.wsgi:app")) == [b"app"]
    finally:
        sys.modules.pop("gpkg_dotted.wsgi", None)
        sys.modules.pop("gpkg_dotted", None)


def test_factory_without_arguments(make_module: Callable[..., str]) -> None:
    mod = make_module()
    app = import_app(f"{mod}:create_app()")
    assert app.args == () and app.kwargs == {}


def test_factory_with_literal_arguments(make_module: Callable[..., str]) -> None:
    mod = make_module()
    app = import_app(f'{mod}:create_app("prod", 3, debug=True, opts={{"a": [1, 2]}}, x=None)')
    assert app.args == ("prod", 3)
    assert app.kwargs == {"debug": True, "opts": {"a": [1, 2]}, "x": None}


def test_factory_arguments_are_never_evaluated(make_module: Callable[..., str]) -> None:
    mod = make_module()
    text = message(f"{mod}:create_app(__import__('os').getcwd())")
    assert "only literal values" in text


@pytest.mark.parametrize(
    "uri",
    ["mod:create_app(*args)", "mod:create_app(**kw)", "mod:app[0]", "mod:1 + 2", "mod:app("],
)
def test_unparsable_expressions(uri: str) -> None:
    text = message(uri)
    assert text.startswith("Failed to parse")


def test_parse_does_not_import() -> None:
    target = parse_app_uri("not_a_real_module_xyz:make(1, key='v')")
    assert target.module == "not_a_real_module_xyz"
    assert target.attrs == ("make",)
    assert target.args == (1,) and target.kwargs == {"key": "v"}


def test_missing_module_names_it() -> None:
    assert message("gunicorn_no_such_module_abc:app") == (
        "No module named 'gunicorn_no_such_module_abc'"
    )


def cause(uri: str) -> BaseException | None:
    with pytest.raises(AppImportError) as info:
        import_app(uri)
    return info.value.__cause__


def test_cause_is_set_only_when_app_code_failed(make_module: Callable[..., str]) -> None:
    mod = make_module()
    assert cause("gunicorn_no_such_module_abc:app") is None
    assert cause(f"{mod}:missing") is None
    assert cause(f"{mod}:nothing") is None
    assert cause(f"{mod}:not_callable") is None
    assert isinstance(cause(f"{mod}:broken_factory()"), ValueError)
    broken = make_module("x = 1 / 0\n")
    assert isinstance(cause(broken), ZeroDivisionError)
    syntax = make_module("def app(:\n")
    assert isinstance(cause(syntax), SyntaxError)
    needs = make_module("import gunicorn_missing_dependency_q\n")
    assert isinstance(cause(needs), ModuleNotFoundError)


def test_missing_parent_package_names_the_target() -> None:
    assert message("gunicorn_no_such_pkg.wsgi:app") == "No module named 'gunicorn_no_such_pkg.wsgi'"


def test_failing_import_inside_module_is_distinguished(make_module: Callable[..., str]) -> None:
    mod = make_module("import gunicorn_missing_dependency_q\napp = None\n")
    text = message(f"{mod}:app")
    assert text == (
        f"Failed to import module {mod!r}: a module it imports is missing: "
        "No module named 'gunicorn_missing_dependency_q'"
    )


def test_py_file_name_gets_a_hint(make_module: Callable[..., str]) -> None:
    mod = make_module()
    text = message(f"{mod}.py:app")
    assert text.startswith(f"No module named '{mod}.py'")
    assert text.endswith(f"did you mean module {mod!r}?")


def test_path_like_name_gets_a_hint() -> None:
    text = message("src/gunicorn_hint_app.py")
    assert text.endswith("did you mean module 'src.gunicorn_hint_app'?")


def test_syntax_error_in_module(make_module: Callable[..., str]) -> None:
    mod = make_module("def app(:\n    pass\n")
    text = message(f"{mod}:app")
    assert text.startswith(f"Failed to import module {mod!r}: SyntaxError:")
    assert f"{mod}.py, line 1" in text


def test_exception_at_import_time(make_module: Callable[..., str]) -> None:
    mod = make_module("raise RuntimeError('no settings\\nconfigured')\n")
    with pytest.raises(AppImportError) as info:
        import_app(f"{mod}:app")
    assert str(info.value) == (
        f"Failed to import module {mod!r}: RuntimeError: no settings configured"
    )
    assert isinstance(info.value.__cause__, RuntimeError)


def test_sys_exit_at_import_time(make_module: Callable[..., str]) -> None:
    mod = make_module("import sys\nsys.exit(3)\n")
    assert message(f"{mod}:app") == f"Failed to import module {mod!r}: it called sys.exit(3)"


def test_attribute_not_found(make_module: Callable[..., str]) -> None:
    mod = make_module()
    assert message(f"{mod}:missing") == f"Failed to find attribute 'missing' in {mod!r}."
    assert message(f"{mod}:Holder.nope.wsgi") == (
        f"Failed to find attribute 'Holder.nope' in {mod!r}."
    )


def test_module_alone_without_default_names(make_module: Callable[..., str]) -> None:
    mod = make_module("x = 1\n")
    assert message(mod) == f"Failed to find attribute 'application' or 'app' in {mod!r}."


def test_factory_raising_names_the_exception(make_module: Callable[..., str]) -> None:
    mod = make_module()
    with pytest.raises(AppImportError) as info:
        import_app(f"{mod}:broken_factory()")
    assert str(info.value) == (
        f"Factory 'broken_factory()' in {mod!r} raised ValueError: database URL is missing"
    )
    assert isinstance(info.value.__cause__, ValueError)


def test_factory_called_with_wrong_arguments(make_module: Callable[..., str]) -> None:
    mod = make_module()
    text = message(f"{mod}:broken_factory(1)")
    assert text.startswith(f"Factory 'broken_factory(1)' in {mod!r} raised TypeError:")


def test_factory_returning_none(make_module: Callable[..., str]) -> None:
    mod = make_module()
    assert message(f"{mod}:none_factory()") == (
        f"Factory 'none_factory()' in {mod!r} returned None."
    )


def test_factory_returning_non_callable(make_module: Callable[..., str]) -> None:
    mod = make_module()
    assert message(f"{mod}:number_factory()") == (
        f"Application returned by factory 'number_factory()' in {mod!r} is not callable (got int)."
    )


def test_calling_a_non_callable(make_module: Callable[..., str]) -> None:
    mod = make_module()
    assert message(f"{mod}:not_callable()") == (
        f"Factory 'not_callable' in {mod!r} is not callable."
    )


def test_object_is_none(make_module: Callable[..., str]) -> None:
    mod = make_module()
    assert message(f"{mod}:nothing") == f"Application object 'nothing' in {mod!r} is None."


def test_object_not_callable(make_module: Callable[..., str]) -> None:
    mod = make_module()
    assert message(f"{mod}:not_callable") == (
        f"Application object 'not_callable' in {mod!r} is not callable (got str)."
    )


def test_empty_parts() -> None:
    assert message(":app") == "Failed to parse ':app': no module name before ':'."
    assert message("mod:") == "Failed to parse 'mod:': no application name after ':'."
