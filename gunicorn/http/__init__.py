"""The sans-IO protocol core: bytes in, events out; events in, bytes out.

Nothing in this package performs I/O, reads the clock, or imports another gunicorn
package. Drivers feed it bytes and write the bytes it returns.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    """``gunicorn.http.Request`` and ``Message``, gunicorn's names for the request type hooks
    receive: imported on first use from a face module that is not part of the core."""
    if name in ("Request", "Message"):
        from gunicorn.http import message

        return getattr(message, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
