"""A blocking client for the control socket, and how ``gunicornc`` finds the socket."""

from __future__ import annotations

import itertools
import os
import socket
from typing import Any

from gunicorn.ctl import paths, protocol


class NoServer(Exception):
    """No server answers at the path (the message names it)."""


class ReplyError(Exception):
    """The server answered with ``"status": "error"``."""


def find_socket(choice: str | None = None) -> str:
    """The control socket to talk to.

    ``choice`` is a path, or an instance name (``myapp``, ``127.0.0.1-8000``: the
    ``gunicorn-<name>.ctl`` of the default directory). Without it: the one live server in
    the default directory; NoServer when there is none or more than one.
    """
    directory = paths.default_directory()
    if choice:
        expanded = os.path.expanduser(choice)
        if os.sep in expanded or os.path.exists(expanded):
            return os.path.abspath(expanded)
        return paths.instance_path(directory, choice)
    live = paths.live_sockets(directory)
    if len(live) == 1:
        return live[0]
    pattern = os.path.join(directory, f"{paths.PREFIX}-*{paths.SUFFIX}")
    if not live:
        raise NoServer(f"no gunicorn server listens at {pattern}")
    raise NoServer(f"several gunicorn servers listen ({', '.join(live)}): choose one with -s")


class ControlClient:
    """One connection; :meth:`call` sends a command and waits for its answer."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._reader = protocol.FrameReader()

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            reason = exc.strerror or type(exc).__name__
            raise NoServer(f"cannot connect to {self.path}: {reason}") from None
        self._sock = sock
        self._reader = protocol.FrameReader()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ControlClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, command: str, args: list[str] | None = None) -> dict[str, Any]:
        """The full reply to ``command``; reconnects once if the server closed the link."""
        for attempt in (1, 2):
            if self._sock is None:
                self.connect()
            try:
                return self._exchange(command, args or [])
            except (ConnectionError, EOFError):
                self.close()
                if attempt == 2:
                    raise NoServer(f"the server at {self.path} closed the connection") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(self, command: str, args: list[str]) -> dict[str, Any]:
        assert self._sock is not None
        request_id = next(self._ids)
        frame = protocol.encode({"id": request_id, "command": command, "args": args})
        self._sock.sendall(frame)
        while True:
            data = self._sock.recv(65536)
            if not data:
                raise EOFError
            for message in self._reader.feed(data):
                if isinstance(message, protocol.ProtocolError):
                    raise ReplyError(str(message))
                return message


def call(path: str, command: str, args: list[str] | None = None) -> Any:
    """One command on a fresh connection: the reply's data (raises ReplyError, NoServer)."""
    with ControlClient(path) as client:
        reply = client.call(command, args)
    if reply.get("status") != "ok":
        raise ReplyError(str(reply.get("error", "error")))
    return reply.get("data")
