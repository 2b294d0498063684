"""``gunicorn.http.message`` as third-party code knows it: the type of the ``req`` object
server hooks (``pre_request``, ``post_request``) and loggers receive.

A face over :mod:`gunicorn.wsgi.request`, kept out of the protocol core: nothing in the
server imports it. ``Request`` and ``Message`` name the same class, so ``isinstance(req,
Request)`` holds for every request a hook sees.
"""

from __future__ import annotations

from gunicorn.wsgi.request import RequestInfo

Request = RequestInfo
Message = RequestInfo

__all__ = ["Message", "Request"]
