"""Access control on the WebSocket hub: who may connect, and what a viewer may send.

Browsers cannot set headers on a WebSocket, so the token comes either as the
query parameter ``access_token=`` or as a subprotocol ``bearer.<token>``
(``new WebSocket(url, ["bearer." + token])``); the server then selects that
subprotocol, as browsers require. The query parameter ``token=`` keeps its old
meaning (``DETECTOR_WS_TOKEN``).

Rules (``AUTH_REQUIRED`` on, caller outside ``TRUSTED_NETWORKS``):

* a ``frontend`` connection needs a viewer token or better;
* a ``detector`` connection needs the ``DETECTOR_WS_TOKEN`` (when one is set and
  matched, as before) or an operator token: a detector's messages drive the
  service and the frontends;
* a viewer receives everything frontends receive, but may only send to
  ``target: "frontend"`` (and ``hub:ping``). Messages to ``backend`` (service
  commands), ``detector`` (detector control) and ``all`` (which reaches the
  detector too) are answered with ``hub:error`` code ``forbidden`` and dropped.

Refusals at connect time are close code 1008 with a reason, like the hub's other
refusals (a browser sees a close code, never an HTTP status).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..hub.protocol import BACKEND, DETECTOR, FRONTEND, PING, PONG
from .access import AccessControl
from .errors import AuthError
from .roles import Role

SUBPROTOCOL_PREFIX = "bearer."
QUERY_PARAMETER = "access_token"
#: What a viewer may address.
VIEWER_TARGETS = frozenset({FRONTEND})
FORBIDDEN_CODE = "forbidden"
#: An offered ``bearer.<token>`` subprotocol is echoed in the 101 answer: only
#: header-safe token characters are accepted.
_SUBPROTOCOL_RE = re.compile(r"bearer\.[A-Za-z0-9._~+/=-]{1,200}")


def offered_token(
    query: Mapping[str, Any], subprotocols: Iterable[str]
) -> tuple[str | None, str | None]:
    """``(token, subprotocol to select)`` from a handshake's query and offered subprotocols."""
    for offered in subprotocols:
        offered = offered.strip()
        if _SUBPROTOCOL_RE.fullmatch(offered):
            return offered[len(SUBPROTOCOL_PREFIX):], offered
    value = query.get(QUERY_PARAMETER)
    if isinstance(value, list):
        value = value[0] if value else None
    return (value or None), None


def split_subprotocols(header: str | None) -> list[str]:
    return [p.strip() for p in (header or "").split(",") if p.strip()]


async def hub_role(
    access: AccessControl,
    address: str | None,
    client_type: str,
    token: str | None,
    *,
    detector_token_matched: bool,
) -> tuple[Role | None, str | None]:
    """``(role, None)`` when the connection may join, ``(None, reason)`` when not."""
    if client_type == DETECTOR and detector_token_matched:
        return Role.OPERATOR, None
    needed = Role.OPERATOR if client_type == DETECTOR else Role.VIEWER
    try:
        role = await access.check(address, token, needed)
    except AuthError as exc:
        reason = exc.message
        if exc.code == "authentication_required":
            reason = "authentication required: access_token= or subprotocol bearer.<token>"
        return None, reason
    return (role or Role.ADMIN), None


def refusal(role: Role, raw: str | bytes) -> dict[str, str] | None:
    """The ``hub:error`` data for a message ``role`` may not send, or ``None``.

    Only viewers are checked (operators and admins send anything), so the hub's
    hot path does not parse twice. Malformed messages pass: the hub answers them
    with its own ``hub:error``.
    """
    if role.allows(Role.OPERATOR) or not isinstance(raw, str):
        return None
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or message.get("command") in (PING, PONG):
        return None
    target = message.get("target") or "all"
    if not isinstance(target, str) or target in VIEWER_TARGETS or target not in ("all", BACKEND, DETECTOR):
        return None
    return {
        "error": f"a viewer token may not send to target {target!r} (operator needed)",
        "code": FORBIDDEN_CODE,
    }
