"""The one-shot pollers under the gthread worker (epoll and the portable fallback)."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator

import pytest

from gunicorn.drivers.pollers import READ, WRITE, EpollPoller, SelectorPoller, make_poller

POLLERS = [SelectorPoller]
if hasattr(select, "epoll"):
    POLLERS.insert(0, EpollPoller)

Poller = EpollPoller | SelectorPoller


@pytest.fixture(params=POLLERS, ids=lambda cls: cls.__name__)
def poller(request: pytest.FixtureRequest) -> Iterator[Poller]:
    instance = request.param()
    yield instance
    instance.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


def fds(events: list[tuple[int, int]]) -> list[int]:
    return [fd for fd, _ in events]


def test_reports_readiness_once_until_rearmed(poller: Poller, pair: tuple) -> None:
    ours, peer = pair
    poller.add(ours.fileno(), READ)
    assert poller.wait(0.05) == []
    peer.send(b"x")
    assert fds(poller.wait(1)) == [ours.fileno()]
    assert poller.wait(0.05) == []  # one shot: silent while the data is still unread
    poller.rearm(ours.fileno(), READ)
    assert fds(poller.wait(1)) == [ours.fileno()]


def test_write_readiness(poller: Poller, pair: tuple) -> None:
    ours, _ = pair
    poller.add(ours.fileno(), WRITE)
    assert fds(poller.wait(1)) == [ours.fileno()]


def test_removed_descriptor_is_not_reported(poller: Poller, pair: tuple) -> None:
    ours, peer = pair
    poller.add(ours.fileno(), READ)
    poller.remove(ours.fileno())
    peer.send(b"x")
    assert poller.wait(0.1) == []
    poller.remove(ours.fileno())  # removing twice is harmless


def test_rearm_from_another_thread_wakes_a_waiter(poller: Poller, pair: tuple) -> None:
    ours, peer = pair
    peer.send(b"x")
    poller.add(ours.fileno(), READ)
    assert fds(poller.wait(1)) == [ours.fileno()]
    got: list[list[tuple[int, int]]] = []
    waiter = threading.Thread(target=lambda: got.append(poller.wait(5)))
    waiter.start()
    threading.Timer(0.1, poller.rearm, (ours.fileno(), READ)).start()
    waiter.join(10)
    assert fds(got[0]) == [ours.fileno()]


def test_each_event_goes_to_one_waiting_thread(poller: Poller) -> None:
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        for ours, _ in pairs:
            poller.add(ours.fileno(), READ)
        received: list[int] = []
        lock = threading.Lock()

        def wait_once() -> None:
            events = poller.wait(0.3)
            with lock:
                received.extend(fds(events))

        threads = [threading.Thread(target=wait_once) for _ in range(5)]
        for thread in threads:
            thread.start()
        for _, peer in pairs:
            peer.send(b"x")
        for thread in threads:
            thread.join(10)
        assert sorted(received) == sorted(ours.fileno() for ours, _ in pairs)
    finally:
        for ours, peer in pairs:
            ours.close()
            peer.close()


def test_make_poller_prefers_epoll() -> None:
    poller = make_poller()
    try:
        expected = EpollPoller if hasattr(select, "epoll") else SelectorPoller
        assert type(poller) is expected
    finally:
        poller.close()
