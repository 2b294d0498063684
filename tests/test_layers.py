"""The layering of docs/architecture: a module imports only its own layer or lower ones,
and the protocol core (gunicorn/http/) imports no I/O, concurrency or upper-layer module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gunicorn"

FORBIDDEN_IN_CORE = {
    "socket",
    "select",
    "selectors",
    "ssl",
    "asyncio",
    "threading",
    "gevent",
    "eventlet",
}

# Layer of each top-level part of the package (docs: architecture guide).
LAYERS = {
    "errors": 0,
    "config": 0,
    "glogging": 0,
    "instrument": 0,
    "sock": 0,
    "pidfile": 0,
    "systemd": 0,
    "util": 0,
    "osutil": 0,
    "debug": 0,
    "http": 1,
    "wsgi": 2,
    "asgi": 2,
    "lifecycle": 2,
    "drivers": 3,
    "workers": 4,
    "arbiter": 5,
    "children": 5,
    "upgrade": 5,
    "dirty": 5,
    "ctl": 5,
    "reloader": 5,
    "__main__": 6,
    "app": 6,
}

# Imports that reach up on purpose, each inside a function so that nothing is loaded
# before it is needed: public names gunicorn has always offered at these paths.
ALLOWED_UPWARD = {
    ("util", "app"),  # gunicorn.util.import_app, kept for code written against gunicorn
}

# Modules at gunicorn's old import paths under http/ (gunicorn.http.wsgi.Response...) for
# third-party code: faces over the WSGI adapter (layer 2), not part of the core. The server
# never imports them; gunicorn.http's lazy __getattr__ loads message on demand.
FACES = {"http/message.py": 2, "http/wsgi.py": 2, "http/body.py": 2}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py") if relative.parts else ""


def is_face(path: Path) -> bool:
    return path.relative_to(PACKAGE).as_posix() in FACES


def imported_modules(tree: ast.AST, path: Path) -> list[str]:
    names: list[str] = []
    package = ".".join(("gunicorn", *path.relative_to(PACKAGE).parent.parts))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.append(module)
            names.extend(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_every_part_of_the_package_has_a_layer() -> None:
    unknown = {part_of(p) for p in modules()} - set(LAYERS) - {"__init__", "py.typed"}
    assert not unknown, f"add these to the layer table: {sorted(unknown)}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_respect_the_layers(path: Path) -> None:
    part = part_of(path)
    if part == "__init__":
        return
    face = is_face(path)
    layer = FACES[path.relative_to(PACKAGE).as_posix()] if face else LAYERS[part]
    tree = ast.parse(path.read_text(), filename=str(path))
    for name in imported_modules(tree, path):
        top = name.split(".")[0]
        if part == "http":
            assert top not in FORBIDDEN_IN_CORE, f"{path.name} imports {name}"
        if top != "gunicorn" or name.count(".") < 1:
            continue
        target = name.split(".")[1]
        if target not in LAYERS or (part, target) in ALLOWED_UPWARD:
            continue
        assert LAYERS[target] <= layer, (
            f"{path.relative_to(PACKAGE)} (layer {layer}) imports {name} (layer {LAYERS[target]})"
        )
        if part == "http" and not face:
            assert target == "http", f"the core imports {name}"


def test_the_server_never_imports_the_faces() -> None:
    faces = {"gunicorn." + f.removesuffix(".py").replace("/", ".") for f in FACES}
    for path in modules():
        if is_face(path) or path.relative_to(PACKAGE).as_posix() == "http/__init__.py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        used = set(imported_modules(tree, path)) & faces
        assert not used, f"{path.relative_to(PACKAGE)} imports {sorted(used)}"


def test_importing_the_core_loads_no_io_module() -> None:
    # The h2 package logs through ``logging``, which loads ``threading``: what the
    # protocol libraries load by themselves is theirs; the core must add nothing to it.
    core = sorted(
        "gunicorn.http." + ".".join(p.relative_to(PACKAGE / "http").with_suffix("").parts)
        for p in (PACKAGE / "http").rglob("*.py")
        if p.stem != "__init__" and not is_face(p)
    )
    libraries = "import h2.connection, h2.config, h2.events, hpack, hyperframe.frame\n"
    forbidden = sorted(FORBIDDEN_IN_CORE)
    loaded = f"print(sorted(m for m in {forbidden!r} if m in sys.modules))\n"
    baseline = subprocess.run(
        [sys.executable, "-c", "import sys\n" + libraries + loaded],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    code = (
        "import sys\n"
        + libraries
        + "".join(f"import {name}\n" for name in core)
        + loaded
        + "print(sorted(m for m in sys.modules if m.startswith('gunicorn')"
        + " and not m.startswith('gunicorn.http') and m != 'gunicorn'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [baseline[0], "[]"], out
