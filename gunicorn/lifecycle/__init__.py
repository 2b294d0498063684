"""The connection lifecycle every driver shares.

Everything that happens to a client connection that is not a system call lives here,
written once: PROXY protocol and uwsgi peer gating, picking HTTP/1 or HTTP/2, building
the WSGI environ, the ``pre_request``/``post_request`` hooks, the access log, counting
requests for ``max_requests``, and turning an error into the answer of the protocol in
use (an HTTP/1 error page, an HTTP/2 ``:status`` response or stream reset).

A driver owns only its loop: how it waits for bytes, reads, writes and runs the
application. It gives this package a ``Session`` per connection and, per request, a
``StreamIO`` (``gunicorn.lifecycle.stream``) that moves one stream's bytes.
"""
