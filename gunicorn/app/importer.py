"""Resolve an application URI such as ``pkg.mod:app`` or ``mod:create_app("prod")``.

Every failure raises :class:`gunicorn.errors.AppImportError` whose message is one line naming
the cause, and whose ``exit_status`` is the worker's exit status, as gunicorn gives them: 3
("Worker failed to boot.") when the module is missing or the application's code failed, 4
("App failed to load.") for a naming error (no such attribute, not callable, None, wrong
factory arguments).

When the application's own code failed (an exception or SyntaxError while importing the module,
a failing import inside it, a factory that raised) the original exception is chained as
``__cause__``, ``details`` holds its traceback restricted to the application's frames, and a
``--reload`` worker can treat the error as fixable by editing code. Naming errors and a missing
module have no ``__cause__``.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

import gunicorn
from gunicorn.errors import AppImportError, WorkerExit

DEFAULT_NAMES = ("application", "app")

#: Worker exit status for AppBootError; a plain AppImportError means 4 ("App failed to load.").
WORKER_BOOT_ERROR = 3

_GUNICORN_DIR = os.path.dirname(os.path.abspath(gunicorn.__file__)) + os.sep
_IMPORTLIB_FILES = (importlib.__file__,)


class AppBootError(AppImportError):
    """The application's module is missing or its code failed while loading (exit 3)."""

    exit_status = WORKER_BOOT_ERROR

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.details = app_traceback(cause) if cause is not None else ""


def _is_app_frame(filename: str) -> bool:
    if filename.startswith("<frozen importlib"):
        return False
    path = os.path.abspath(filename) if not filename.startswith("<") else filename
    return not path.startswith(_GUNICORN_DIR) and path not in _IMPORTLIB_FILES


def app_traceback(exc: BaseException) -> str:
    """``exc``'s traceback (chained exceptions included) without gunicorn's or importlib's
    frames: what went wrong in the application's own code. A SyntaxError keeps its
    file, line and caret."""
    formatted = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    pending = [formatted]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        kept = [frame for frame in current.stack if _is_app_frame(frame.filename)]
        current.stack = traceback.StackSummary.from_list(kept)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
    return "".join(formatted.format())


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
    failed = f"Failed to import module {module!r}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if _is_target_missing(module, exc.name):
            raise AppBootError(f"No module named {module!r}{_module_hint(module)}") from None
        message = f"{failed}: a module it imports is missing: No module named {exc.name!r}"
        raise AppBootError(message, exc) from exc
    except SyntaxError as exc:
        where = f" ({exc.filename}, line {exc.lineno})" if exc.filename else ""
        raise AppBootError(f"{failed}: SyntaxError: {exc.msg}{where}", exc) from exc
    except Exception as exc:
        raise AppBootError(f"{failed}: {one_line(exc)}", exc) from exc
    except WorkerExit:
        raise  # a signal told the worker to leave while it was importing
    except SystemExit as exc:
        raise AppBootError(f"{failed}: it called sys.exit({exc.code!r})", exc) from exc


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
            message = f"Factory {target.expression!r} in {target.module!r} raised {one_line(exc)}"
            if isinstance(exc, TypeError) and _raised_by_the_call(exc):
                raise AppImportError(message) from None  # wrong arguments in the URI
            raise AppBootError(message, exc) from exc
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


def _raised_by_the_call(exc: BaseException) -> bool:
    """True when ``exc`` came from calling the factory itself (its signature refused the
    arguments), not from code running inside it."""
    tb = exc.__traceback__
    return tb is not None and tb.tb_next is None


def import_app(uri: str) -> Any:
    """Return the application named by ``uri`` (``module``, ``module:name``,
    ``module:obj.attr``, ``module:factory()`` or ``module:factory(literal, key=literal)``)."""
    return load_target(parse_app_uri(uri))


def ensure_path(directory: str) -> None:
    """Put ``directory`` first on ``sys.path`` (once)."""
    if directory in sys.path:
        sys.path.remove(directory)
    sys.path.insert(0, directory)
