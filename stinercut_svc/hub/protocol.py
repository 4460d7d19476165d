"""The hub's message format: JSON text messages, their validation and encoding.

Protocol (kept from the original backend; the frontend and the detector speak it)::

    {"command": "namespace:action", "sender": ..., "target": "all|frontend|detector|backend",
     "data": {}}

* ``target`` missing means ``all``. ``all`` reaches every client whose type differs
  from the sender's; ``frontend``/``detector`` reach every client of that type except
  the sending connection itself; ``backend`` is for the service: handlers registered
  with :meth:`Hub.handle <stinercut_svc.hub.core.Hub.handle>` get it, it is never routed.
* The hub overwrites ``sender`` with the connection's real type (``backend`` for the
  service's own messages) and adds an ISO-8601 UTC ``timestamp`` ending in ``Z``
  when the message has none.
* ``hub:ping`` from a client is answered with ``hub:pong`` (never routed); problems
  with a client's input come back to that client only, as ``hub:error``.

This module is pure (no I/O): parsing and encoding are tested without sockets.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

FRONTEND = "frontend"
DETECTOR = "detector"
BACKEND = "backend"
CLIENT_TYPES = (FRONTEND, DETECTOR)
#: Targets a message can be *routed* to (also what crosses the Redis backplane).
TARGETS = ("all", FRONTEND, DETECTOR)
#: Targets a client may name: the routed ones plus the service itself.
CLIENT_TARGETS = (*TARGETS, BACKEND)

PING = "hub:ping"
PONG = "hub:pong"
ERROR = "hub:error"

# RFC 6455 close codes the hub uses.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # the server shuts down
CLOSE_POLICY = 1008  # unknown client type, bad detector token
CLOSE_TOO_BIG = 1009  # message above WS_MAX_MESSAGE_BYTES
CLOSE_KEEPALIVE = 1011  # no answer to a protocol ping (the usual code for a ping timeout)
CLOSE_TRY_AGAIN = 1013  # outbox overflow or stuck socket: the client did not read
MAX_CLOSE_REASON_BYTES = 123  # control frames carry 125 bytes, two of them the code


class MessageError(Exception):
    """A client's frame the hub cannot route; answered with ``hub:error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def utc_timestamp() -> str:
    """Now, as ISO-8601 UTC with milliseconds and a ``Z`` (what browsers parse)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(message: dict[str, Any]) -> str:
    """JSON text of a message. ASCII-only, so ``len(text)`` is its size in bytes
    (outbox accounting) and ``text.encode("ascii")`` is its frame payload;
    ``allow_nan=False`` because browsers' ``JSON.parse`` refuses NaN."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def frame_bytes(raw: str | bytes | None) -> int:
    """Size in bytes of a received message (what ``WS_MAX_MESSAGE_BYTES`` limits)."""
    if raw is None:
        return 0
    if isinstance(raw, bytes | bytearray):
        return len(raw)
    if raw.isascii():
        return len(raw)
    return len(raw.encode("utf-8", "surrogatepass"))


def hub_frame(command: str, target: str, data: dict[str, Any]) -> str:
    """A message from the hub itself (``sender: backend``)."""
    return encode(
        {
            "command": command,
            "sender": BACKEND,
            "target": target,
            "data": data,
            "timestamp": utc_timestamp(),
        }
    )


def error_frame(target: str, error: MessageError) -> str:
    return hub_frame(ERROR, target, {"error": error.message, "code": error.code})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_client_message(raw: str | bytes | None) -> dict[str, Any]:
    """Validate a client's frame; return the message to route (``sender`` unset).

    Raises :class:`MessageError` naming the problem. Unknown fields are kept:
    clients may correlate requests and answers with fields of their own.
    """
    if not isinstance(raw, str):
        raise MessageError("binary_frame", "binary frames are not supported: send JSON as text")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise MessageError("invalid_json", f"message is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MessageError(
            "not_an_object", f"message must be a JSON object, not {_json_type(value)}"
        )
    command = value.get("command")
    if not isinstance(command, str) or not command.strip():
        raise MessageError("missing_command", "message needs a non-empty string 'command'")
    target = value.get("target", "all")
    if target is None:
        target = "all"
    if target not in CLIENT_TARGETS:
        raise MessageError(
            "bad_target",
            f"target must be one of {', '.join(CLIENT_TARGETS)}, not {json.dumps(target)}",
        )
    data = value.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MessageError("bad_data", f"data must be a JSON object, not {_json_type(data)}")
    timestamp = value.get("timestamp")
    message: dict[str, Any] = {
        "command": command,
        "sender": None,
        "target": target,
        "data": data,
        "timestamp": timestamp if timestamp is not None else utc_timestamp(),
    }
    for key, extra in value.items():
        message.setdefault(key, extra)
    return message


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def truncate_reason(reason: str) -> str:
    """A close reason that fits a control frame (UTF-8, at most 123 bytes)."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return reason
    return encoded[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."
