"""Drop-in checks: code written against gunicorn 27 (configs, hooks, plugins) works here.

``tests/`` is put on sys.path so ``import support`` works.
"""

import os
import sys

_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
