"""Resolve an application URI such as ``pkg.mod:app`` or ``mod:create_app("prod")``.

Every failure raises :class:`gunicorn.errors.AppImportError` whose message is one line naming
the cause. When the application's own code failed (an exception or SyntaxError while importing
the module, a failing import inside it, a factory that raised) the original exception is chained
as ``__cause__`` so the caller can log the traceback, and a ``--reload`` worker can treat the
error as fixable by editing code. Naming errors (no such module or attribute, not callable)
have no ``__cause__``.
"""

from __future__ import annotations

import ast
import importlib
import sys
from dataclasses import dataclass, field
from typing import Any

from gunicorn.errors import AppImportError, WorkerExit

DEFAULT_NAMES = ("application", "app")


@dataclass(frozen=True)
class AppTarget:
    """A parsed application URI: module, attribute path and optional factory call."""

    module: str
    attrs: tuple[str, ...] | None  # None: use the first of DEFAULT_NAMES that exists
    call: bool = False
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def expression(self) -> str:
        """The attribute part as written back in plain form (``create_app()``, ``obj.app``)."""
        name = ".".join(self.attrs or ("application",))
        if not self.call:
            return name
        parts = [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{name}({', '.join(parts)})"


def one_line(exc: BaseException) -> str:
    """``ExcType: message`` with whitespace collapsed so it fits on one log line."""
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _dotted_name(node: ast.expr, uri: str) -> tuple[str, ...]:
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise AppImportError(
            f"Failed to parse {uri!r}: the part after ':' must be a name, a dotted "
            "attribute path or a call of one with literal arguments."
        )
    names.append(node.id)
    return tuple(reversed(names))


def _literal(node: ast.expr, uri: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise AppImportError(
            f"Failed to parse arguments in {uri!r}: only literal values (strings, numbers, "
            "booleans, None, tuples, lists, dicts) are allowed."
        ) from None


def parse_app_uri(uri: str) -> AppTarget:
    """Split ``uri`` into module and attribute expression without importing anything."""
    module, sep, expr = uri.strip().partition(":")
    module = module.strip()
    expr = expr.strip()
    if not module:
        raise AppImportError(f"Failed to parse {uri!r}: no module name before ':'.")
    if not sep or not expr:
        if sep:
            raise AppImportError(f"Failed to parse {uri!r}: no application name after ':'.")
        return AppTarget(module=module, attrs=None)
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError:
        raise AppImportError(
            f"Failed to parse {expr!r} in {uri!r} as an attribute name or function call."
        ) from None
    if isinstance(tree, ast.Call):
        if any(isinstance(a, ast.Starred) for a in tree.args) or any(
            k.arg is None for k in tree.keywords
        ):
            raise AppImportError(f"Failed to parse {uri!r}: *args and **kwargs are not allowed.")
        return AppTarget(
            module=module,
            attrs=_dotted_name(tree.func, uri),
            call=True,
            args=tuple(_literal(a, uri) for a in tree.args),
            kwargs={str(k.arg): _literal(k.value, uri) for k in tree.keywords},
        )
    return AppTarget(module=module, attrs=_dotted_name(tree, uri))


def _module_hint(module: str) -> str:
    """Suggest a module name for ``app.py`` or ``src/app.py`` style mistakes."""
    name = module
    if name.endswith(".py"):
        name = name[:-3]
    name = name.replace("\\", "/").strip("/").replace("/", ".")
    if name and name != module and all(part.isidentifier() for part in name.split(".")):
        return f"; did you mean module {name!r}?"
    return ""


def _is_target_missing(module: str, missing: str | None) -> bool:
    """True when the module that could not be found is ``module`` or one of its parents."""
    if missing is None:
        return False
    return module == missing or module.startswith(missing + ".")


def import_module(module: str) -> Any:
    """Import ``module``, turning every failure into a one-line AppImportError."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if _is_target_missing(module, exc.name):
            raise AppImportError(f"No module named {module!r}{_module_hint(module)}") from None
        raise AppImportError(
            f"Failed to import module {module!r}: a module it imports is missing: "
            f"No module named {exc.name!r}"
        ) from exc
    except ImportError as exc:
        raise AppImportError(f"Failed to import module {module!r}: {one_line(exc)}") from exc
    except SyntaxError as exc:
        where = f" ({exc.filename}, line {exc.lineno})" if exc.filename else ""
        raise AppImportError(
            f"Failed to import module {module!r}: SyntaxError: {exc.msg}{where}"
        ) from exc
    except Exception as exc:
        raise AppImportError(f"Failed to import module {module!r}: {one_line(exc)}") from exc
    except WorkerExit:
        raise  # a signal told the worker to leave while it was importing
    except SystemExit as exc:
        raise AppImportError(
            f"Failed to import module {module!r}: it called sys.exit({exc.code!r})"
        ) from exc


def _resolve(obj: Any, attrs: tuple[str, ...], module: str) -> Any:
    for i, name in enumerate(attrs):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            path = ".".join(attrs[: i + 1])
            raise AppImportError(f"Failed to find attribute {path!r} in {module!r}.") from None
    return obj


def load_target(target: AppTarget) -> Any:
    """Import the target's module and return the application object it names."""
    mod = import_module(target.module)
    if target.attrs is None:
        for name in DEFAULT_NAMES:
            if hasattr(mod, name):
                attrs: tuple[str, ...] = (name,)
                break
        else:
            raise AppImportError(
                f"Failed to find attribute 'application' or 'app' in {target.module!r}."
            )
    else:
        attrs = target.attrs
    name = ".".join(attrs)
    app = _resolve(mod, attrs, target.module)

    if target.call:
        if not callable(app):
            raise AppImportError(f"Factory {name!r} in {target.module!r} is not callable.")
        try:
            app = app(*target.args, **target.kwargs)
        except Exception as exc:
            raise AppImportError(
                f"Factory {target.expression!r} in {target.module!r} raised {one_line(exc)}"
            ) from exc
        if app is None:
            raise AppImportError(
                f"Factory {target.expression!r} in {target.module!r} returned None."
            )
        what = f"Application returned by factory {target.expression!r}"
    else:
        if app is None:
            raise AppImportError(f"Application object {name!r} in {target.module!r} is None.")
        what = f"Application object {name!r}"

    if not callable(app):
        raise AppImportError(
            f"{what} in {target.module!r} is not callable (got {type(app).__name__})."
        )
    return app


def import_app(uri: str) -> Any:
    """Return the application named by ``uri`` (``module``, ``module:name``,
    ``module:obj.attr``, ``module:factory()`` or ``module:factory(literal, key=literal)``)."""
    return load_target(parse_app_uri(uri))


def ensure_path(directory: str) -> None:
    """Put ``directory`` first on ``sys.path`` (once)."""
    if directory in sys.path:
        sys.path.remove(directory)
    sys.path.insert(0, directory)
