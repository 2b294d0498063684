"""``gunicornc``: talk to a running gunicorn through its control socket.

    gunicornc -c "show workers"          one command, a readable answer
    gunicornc -j -c "show metrics"       the raw JSON answer
    gunicornc -s /run/app.ctl            an interactive prompt (with history)
    gunicornc show stats                 the command may also follow the options

Exit status: 0, 1 when the server answered with an error, 2 when no server could be
reached (the message names the path tried).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from gunicorn import __version__
from gunicorn.ctl import paths
from gunicorn.ctl.client import ControlClient, NoServer, ReplyError, find_socket
from gunicorn.ctl.render import render

EXIT_OK, EXIT_ERROR, EXIT_NO_SERVER = 0, 1, 2
PROMPT = "gunicorn> "


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gunicornc",
        description="Control a running gunicorn server through its control socket.",
    )
    p.add_argument(
        "-s",
        "--socket",
        metavar="PATH",
        help="control socket path or instance name (default: the one server running, "
        f"from {paths.default_directory()}/{paths.PREFIX}-*{paths.SUFFIX})",
    )
    p.add_argument("-c", "--command", metavar="COMMAND", help="run one command and exit")
    p.add_argument("-j", "--json", action="store_true", help="print the raw JSON answer")
    p.add_argument(
        "-v", "--version", action="version", version=f"gunicornc (gunicorn {__version__})"
    )
    p.add_argument("words", nargs="*", metavar="WORD", help="a command (instead of -c)")
    return p


def _show(command: str, reply: dict[str, Any], as_json: bool, out: TextIO) -> int:
    if as_json:
        out.write(json.dumps(reply, indent=2, sort_keys=False) + "\n")
    if reply.get("status") != "ok":
        if not as_json:
            sys.stderr.write(f"error: {reply.get('error', 'unknown error')}\n")
        return EXIT_ERROR
    if not as_json:
        out.write(render(command, reply.get("data")) + "\n")
    return EXIT_OK


def one_shot(path: str, command: str, as_json: bool, out: TextIO = sys.stdout) -> int:
    words = shlex.split(command)
    if not words:
        sys.stderr.write("error: empty command\n")
        return EXIT_ERROR
    with ControlClient(path) as client:
        reply = client.call(" ".join(words))
    return _show(command, reply, as_json, out)


def _history_file() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(state, "gunicorn", "gunicornc_history")


def _readline() -> Any:
    try:
        import readline
    except ImportError:  # pragma: no cover - platforms without readline
        return None
    return readline


def interactive(path: str, as_json: bool) -> int:
    """A prompt: one command per line, ``quit`` or end of input to leave."""
    readline = _readline()
    history = _history_file()
    if readline is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(history)
        readline.set_history_length(1000)
    status = EXIT_OK
    tty = sys.stdin.isatty()
    client = ControlClient(path)
    client.connect()  # fail now, with the path, when no server listens
    sys.stdout.write(f"Connected to {path}. Type 'help' for the commands, 'quit' to leave.\n")
    try:
        while True:
            try:
                line = input(PROMPT if tty else "")
            except EOFError:
                break
            except KeyboardInterrupt:
                sys.stdout.write("\n")
                continue
            command = line.strip()
            if not command:
                continue
            if readline is not None and not tty:
                readline.add_history(command)  # input() records only what a terminal typed
            if command in ("quit", "exit"):
                break
            try:
                reply = client.call(" ".join(shlex.split(command)))
            except ValueError as exc:
                sys.stderr.write(f"error: {exc}\n")
                status = EXIT_ERROR
                continue
            status = _show(command, reply, as_json, sys.stdout)
            sys.stdout.flush()
    finally:
        client.close()
        if readline is not None:
            with contextlib.suppress(OSError):
                os.makedirs(os.path.dirname(history), exist_ok=True)
                readline.write_history_file(history)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = args.command
    if command is None and args.words:
        command = shlex.join(args.words)
    try:
        path = find_socket(args.socket)
        if command is not None:
            return one_shot(path, command, args.json)
        return interactive(path, args.json)
    except NoServer as exc:
        sys.stderr.write(f"gunicornc: {exc}\n")
        return EXIT_NO_SERVER
    except ReplyError as exc:
        sys.stderr.write(f"gunicornc: {exc}\n")
        return EXIT_ERROR
    except (OSError, TimeoutError) as exc:
        sys.stderr.write(f"gunicornc: {exc}\n")
        return EXIT_NO_SERVER


def run() -> None:
    """The ``gunicornc`` console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
