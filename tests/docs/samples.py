"""The code samples of ``docs/*.md``, and how they are run.

Conventions (also described in docs/index.md, "About these pages"):

- A fenced block with a ``title`` (```` ```python title="app.py" ````) is a file: every
  such block of a page is written into one directory before that page's commands run. A
  ``.py`` file must compile; one whose name ends in ``.conf.py`` is a configuration file
  and must pass ``gunicorn --check-config -c FILE``.
- A ```` ```console ```` block is executed. Lines starting with ``$ `` are commands; the
  lines under a command must appear in what it printed, or else in the log of the block's
  server (an access-log line, say). In log lines (and lines that start with ``[``) a run
  of digits matches any digits: timestamps, pids and ports differ. ``...`` lines are
  skipped.
- ``$ [VAR=value ...] gunicorn ARGS`` that serves (no ``--check-config``,
  ``--print-config``...) starts a server on 127.0.0.1:0 (a ``--bind`` in ARGS is dropped)
  that lives until the end of the block; the lines under it must appear in its log. In
  the commands after it, ``127.0.0.1:8000`` (``http://``, ``https://``, ``ws://``) is
  replaced by the server's real address.
- Other commands run under bash in the page's directory, the project's virtualenv first
  on PATH (``gunicorn``, ``gunicornc`` and ``python`` are this checkout's).
- Blocks shown but never run use another language (``sh``, ``nginx``, ``ini``, ``yaml``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import Gunicorn

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
VENV_BIN = Path(sys.executable).parent

# Gunicorn options that print and exit rather than serve.
NON_SERVING = {"--check-config", "--print-config", "-v", "--version", "-h", "--help"}

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<lang>[\w+-]*)(?P<attrs>.*)$")
TITLE = re.compile(r'title="([^"]+)"')


@dataclass
class Block:
    page: str
    line: int
    lang: str
    title: str | None
    text: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass
class Command:
    text: str
    expected: list[str] = field(default_factory=list)


def page_blocks(path: Path) -> list[Block]:
    """Every fenced block of one page."""
    page = path.relative_to(DOCS).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        i += 1
        if not match:
            continue
        indent, fence = len(match["indent"]), match["fence"]
        title = TITLE.search(match["attrs"])
        start = i
        body: list[str] = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:])
            i += 1
        i += 1
        text = "\n".join(body)
        blocks.append(Block(page, start, match["lang"], title.group(1) if title else None, text))
    return blocks


BLOCKS = [b for path in sorted(DOCS.rglob("*.md")) for b in page_blocks(path)]
CONSOLE = [b for b in BLOCKS if b.lang == "console"]
FILES = [b for b in BLOCKS if b.title]
PYTHON_FILES = [b for b in FILES if b.title and b.title.endswith(".py")]
CONFIGS = [b for b in FILES if b.title and b.title.endswith(".conf.py")]


def block_id(block: Block) -> str:
    return block.id


def write_page_files(page: str, directory: Path) -> None:
    """Write the titled blocks of ``page`` into ``directory``."""
    seen: set[str] = set()
    for block in FILES:
        if block.page != page or block.title is None:
            continue
        assert block.title not in seen, f"{page}: two files titled {block.title}"
        seen.add(block.title)
        target = directory / block.title
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text + "\n", encoding="utf-8")


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            found.append(Command(line[2:]))
        elif line.strip() and line.strip() != "...":
            assert found, f"{block.id}: output before any command"
            found[-1].expected.append(line.strip())
    assert found, f"{block.id}: a console block without a $ command"
    return found


def pattern(expected: str, log: bool = False) -> re.Pattern[str]:
    """The expected line as a regex; in a log line any run of digits matches any digits,
    and a date's month name (``/Nov/``) any month's."""
    escaped = re.escape(expected)
    if log or expected.startswith("["):
        escaped = re.sub(r"\d+", r"\\d+", escaped)
        escaped = re.sub(MONTH_IN_DATE, r"/[A-Z][a-z]{2}/", escaped)
    return re.compile(escaped)


MONTH_IN_DATE = r"/(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/"


def serving_gunicorn(text: str) -> tuple[dict[str, str], list[str]] | None:
    """(environment, arguments) when ``text`` is a gunicorn command that starts a server."""
    words = shlex.split(text)
    env: dict[str, str] = {}
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words or words[0] != "gunicorn" or NON_SERVING & set(words):
        return None
    args: list[str] = []
    rest = iter(words[1:])
    for word in rest:
        if word in ("-b", "--bind"):
            next(rest)
        elif not word.startswith("--bind="):
            args.append(word)
    return env, args


def shell_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(base if base is not None else os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def kill(server: Gunicorn) -> None:
    """The samples need no graceful stop: KILL the master, then ``stop()`` kills its workers."""
    server.remember_processes()
    if server.proc is not None and server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait(timeout=10)
    server.stop()


def run_console(block: Block, directory: Path) -> None:
    """Run one console block in ``directory`` (see the module docstring)."""
    write_page_files(block.page, directory)
    server: Gunicorn | None = None
    try:
        for command in commands(block):
            serving = serving_gunicorn(command.text)
            if serving is not None:
                assert server is None, f"{block.id}: one server per block"
                env, args = serving
                server = Gunicorn(*args, cwd=directory, env=shell_env({**os.environ, **env}))
                server.start()
                for line in command.expected:
                    server.wait_for(pattern(line, log=True).pattern)
                continue
            _run_command(block, command, directory, server)
    finally:
        if server is not None:
            kill(server)


def _run_command(block: Block, command: Command, directory: Path, server: Gunicorn | None) -> None:
    text = command.text
    if server is not None and isinstance(server.address, tuple):
        host, port = server.address
        text = text.replace("127.0.0.1:8000", f"{host}:{port}")
    done = subprocess.run(
        ["bash", "-c", text],
        cwd=directory,
        env=shell_env(server.env if server is not None else None),
        capture_output=True,
        text=True,
        timeout=20,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        log = f"\n--- server log ---\n{server.log}" if server is not None else ""
        raise AssertionError(f"{block.id}: `{text}` exited {done.returncode}:\n{output}{log}")
    for line in command.expected:
        if pattern(line).search(output):
            continue
        if server is None:
            raise AssertionError(f"{block.id}: `{text}` did not print {line!r}:\n{output}")
        server.wait_for(pattern(line, log=True).pattern)  # written by the server


def check_config(block: Block, directory: Path) -> subprocess.CompletedProcess[str]:
    """``gunicorn --check-config -c FILE`` on a configuration-file sample."""
    write_page_files(block.page, directory)
    (directory / "docs_check_app.py").write_text(
        "def app(environ, start_response):\n    start_response('200 OK', [])\n    return [b'ok']\n",
        encoding="utf-8",
    )
    assert block.title is not None
    return subprocess.run(
        [str(VENV_BIN / "gunicorn"), "--check-config", "-c", block.title, "docs_check_app:app"],
        cwd=directory,
        env=shell_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
