"""Line tracing for debugging (``--spew``): every executed line is printed to stdout."""

from __future__ import annotations

import linecache
import re
import sys
from collections.abc import Collection
from types import FrameType
from typing import Any

__all__ = ["Spew", "spew", "unspew"]

_WORDS = re.compile(r"\w+")


class Spew:
    """A ``sys.settrace`` function printing ``module:line: source`` for each line run.

    ``trace_names`` limits the output to those module names; ``show_values`` adds the
    values of the names the line mentions.
    """

    def __init__(
        self, trace_names: Collection[str] | None = None, show_values: bool = True
    ) -> None:
        self.trace_names = trace_names
        self.show_values = show_values

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Spew:
        if event != "line":
            return self
        module = str(frame.f_globals.get("__name__", "[unknown]"))
        if self.trace_names is not None and module not in self.trace_names:
            return self
        source = linecache.getline(frame.f_code.co_filename, frame.f_lineno).rstrip()
        if not source:
            source = f"<no source for {frame.f_code.co_name}>"
        print(f"{module}:{frame.f_lineno}: {source}")
        if self.show_values:
            values = []
            for word in dict.fromkeys(_WORDS.findall(source)):
                for scope in (frame.f_locals, frame.f_globals):
                    if word in scope:
                        values.append(f"{word}={scope[word]!r}")
                        break
            if values:
                print("\t" + " ".join(values))
        return self


def spew(trace_names: Collection[str] | None = None, show_values: bool = False) -> None:
    """Trace every line executed from now on (see :class:`Spew`)."""
    sys.settrace(Spew(trace_names, show_values))


def unspew() -> None:
    """Stop the tracing :func:`spew` started."""
    sys.settrace(None)
