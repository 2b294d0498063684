"""A third-party style worker built only on ``gunicorn.workers.base.Worker``.

It overrides ``run()`` and uses the public contract (``notify``, ``alive``,
``wait_fds``, ``parent_changed``, ``count_request``, ``wsgi``), the way external
worker packages do, with a deliberately tiny HTTP/1.0-style responder.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
from typing import Any

from gunicorn.workers.base import Worker


class PlainWorker(Worker):
    def run(self) -> None:
        for listener in self.sockets:
            listener.setblocking(False)
        while self.alive:
            self.notify()
            if self.parent_changed():
                self.log.info("Parent changed, shutting down: %s", self)
                return
            try:
                ready, _, _ = select.select(self.wait_fds, [], [], self.timeout)
            except InterruptedError:
                continue
            for item in ready:
                if item == self.PIPE[0]:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.PIPE[0], 64)
                    continue
                try:
                    client, _ = item.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                with client:
                    self.serve(client)
                if not self.alive:
                    return

    def serve(self, client: socket.socket) -> None:
        client.setblocking(True)
        client.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(4096)
            if not chunk:
                return
            data += chunk
        method, target, _ = data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        path, _, query = target.partition("?")
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
        status: list[Any] = []

        def start_response(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            status[:] = [code, headers]

        body = b"".join(self.wsgi(environ, start_response))
        head = [f"HTTP/1.1 {status[0]}", *(f"{k}: {v}" for k, v in status[1]), "Connection: close"]
        client.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.count_request()
