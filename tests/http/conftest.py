"""Shared setup for the protocol-core tests: makes the ``corpus`` helper importable
whatever pytest import mode is configured."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
