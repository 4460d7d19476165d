"""The WebSocket hub between the web frontend, the detector and the service.

Modules, one concept each:

* ``protocol`` - the JSON message format: validation, encoding, close codes;
* ``wire`` - the WebSocket wire format on the server side: handshake answers and
  frames built once per message (why not trio-websocket: see its docstring);
* ``core`` - :class:`Hub`: registry, routing rules, bounded outboxes, keepalive,
  caps, backend handlers, ``publish``, ``close_all``;
* ``connection`` - serving one connection, on a raw trio socket (the fast path the
  one-port server in ``stinercut_svc/server.py`` uses) or through a Quart websocket.

Service code publishes with ``await app.hub.publish(command, data, target="frontend")``
and handles client messages ``{"target": "backend"}`` with ``app.hub.handle(command, fn)``.
"""

from .connection import Transport, check_client, serve_transport, serve_websocket
from .core import (
    BackendMessage,
    Client,
    ClientCounts,
    Hub,
    HubLimits,
    Outgoing,
    Refused,
    Routed,
)
from .protocol import (
    BACKEND,
    CLIENT_TARGETS,
    CLIENT_TYPES,
    CLOSE_GOING_AWAY,
    CLOSE_KEEPALIVE,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    DETECTOR,
    ERROR,
    FRONTEND,
    PING,
    PONG,
    TARGETS,
    MessageError,
    encode,
    parse_client_message,
    utc_timestamp,
)

__all__ = [
    "BACKEND",
    "CLIENT_TARGETS",
    "CLIENT_TYPES",
    "CLOSE_GOING_AWAY",
    "CLOSE_KEEPALIVE",
    "CLOSE_POLICY",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_AGAIN",
    "DETECTOR",
    "ERROR",
    "FRONTEND",
    "PING",
    "PONG",
    "TARGETS",
    "BackendMessage",
    "Client",
    "ClientCounts",
    "Hub",
    "HubLimits",
    "MessageError",
    "Outgoing",
    "Refused",
    "Routed",
    "Transport",
    "check_client",
    "encode",
    "parse_client_message",
    "serve_transport",
    "serve_websocket",
    "utc_timestamp",
]
