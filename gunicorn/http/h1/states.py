"""The states of an HTTP/1 connection, as tables.

A connection has two halves, each a small state machine:

* the *request* half (what the client sends), advanced by ``next_event``::

      IDLE --Request--> BODY --Data--> BODY --EndOfMessage--> DONE --next cycle--> IDLE

  IDLE waits for a request head (RFC 9112 §2-§5), BODY delivers the content framed by
  Content-Length or chunked coding (§6, §7), and DONE holds any pipelined bytes until
  the response is complete. DISCARD reads and drops the rest of a body the application
  left unread, once its response is done, before the next request. CLOSED means the
  peer closed between requests (or left a body too long to drain), ERROR that the
  request was refused, SWITCHED that the bytes that follow belong to another protocol
  (after a 101, or a 2xx to CONNECT);
* the *response* half (what we send), advanced by ``send``::

      IDLE --Response--> SEND_BODY --EndOfMessage--> DONE

Each table maps ``(state, trigger)`` to the next state; a pair missing from a table is
an error. The triggers are the types of the events a half produces or accepts, and a
few happenings that are not events: ``PROTOCOL_ERROR`` (the reader refused the
request), ``SWITCH`` (a 101, or for the request half a 2xx to CONNECT, was sent),
``ERROR_PAGE`` (the error response was sent instead of the application's) and
``NEXT_CYCLE`` (``start_next_cycle`` once the response is done).

The connection resolves its hot transitions (a request head, the end of its body, a
response head, its end) from these tables once, when it is imported, so that following
a table costs nothing per request; the others are looked up when they happen.
"""

from __future__ import annotations

from gunicorn.http.events import (
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    Request,
    Response,
    Trailers,
)

IDLE = "IDLE"
BODY = "BODY"
DONE = "DONE"
DISCARD = "DISCARD"
CLOSED = "CLOSED"
ERROR = "ERROR"
SWITCHED = "SWITCHED"
SEND_BODY = "SEND_BODY"

PROTOCOL_ERROR = "protocol error"
SWITCH = "switch"
NEXT_CYCLE = "next cycle"
ERROR_PAGE = "error page"

Trigger = type[Event] | str

RECEIVE_TRANSITIONS: dict[tuple[str, Trigger], str] = {
    (IDLE, Request): BODY,
    (IDLE, ConnectionClosed): CLOSED,
    (IDLE, PROTOCOL_ERROR): ERROR,
    (BODY, Data): BODY,
    (BODY, EndOfMessage): DONE,
    (BODY, PROTOCOL_ERROR): ERROR,
    # Only once no body byte is left to read (the writer checks).
    (BODY, SWITCH): SWITCHED,
    (DONE, SWITCH): SWITCHED,
    # Body bytes left unread: drop them first (a body with nothing left counts as DONE).
    (BODY, NEXT_CYCLE): DISCARD,
    (DONE, NEXT_CYCLE): IDLE,
    (DISCARD, Data): DISCARD,
    (DISCARD, EndOfMessage): DONE,
    # More than Limits.max_body_drain to drop: the connection is not reused.
    (DISCARD, ConnectionClosed): CLOSED,
    (DISCARD, PROTOCOL_ERROR): ERROR,
    (CLOSED, ConnectionClosed): CLOSED,
}

SEND_TRANSITIONS: dict[tuple[str, Trigger], str] = {
    (IDLE, InformationalResponse): IDLE,
    (IDLE, Response): SEND_BODY,
    # A 101 (as a Response or an InformationalResponse) ends HTTP on this connection.
    (IDLE, SWITCH): SWITCHED,
    (IDLE, ERROR_PAGE): DONE,
    (SEND_BODY, Data): SEND_BODY,
    (SEND_BODY, Trailers): SEND_BODY,
    (SEND_BODY, EndOfMessage): DONE,
    # Early hints once the final response has started are silently not sent.
    (SEND_BODY, InformationalResponse): SEND_BODY,
    (DONE, InformationalResponse): DONE,
    # After 101 or a 2xx to CONNECT the bytes belong to another protocol; an adapter
    # closing its (empty) HTTP body is harmless.
    (SWITCHED, EndOfMessage): SWITCHED,
}


def receive_transition(state: str, trigger: Trigger) -> str:
    """The request half's next state; a pair missing from the table is a bug."""
    try:
        return RECEIVE_TRANSITIONS[state, trigger]
    except KeyError:
        name = trigger if isinstance(trigger, str) else trigger.__name__
        raise RuntimeError(f"no request-half transition from {state} on {name}") from None
