"""Fixtures for the logging tests: a real Config and clean gunicorn loggers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gunicorn.config import Config


@pytest.fixture(autouse=True)
def clean_gunicorn_loggers() -> Iterator[None]:
    """Give every test pristine gunicorn.error / gunicorn.access loggers."""
    names = ("gunicorn.error", "gunicorn.access")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    yield
    for name in names:
        log = logging.getLogger(name)
        for handler in log.handlers[:]:
            if handler not in saved[name][0]:
                log.removeHandler(handler)
                handler.close()
        log.setLevel(saved[name][1])


@pytest.fixture
def make_cfg() -> Callable[..., Config]:
    def make(**settings: Any) -> Config:
        cfg = Config()
        for name, value in settings.items():
            cfg.set(name, value)
        return cfg

    return make
