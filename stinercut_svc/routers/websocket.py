"""``/ws`` (the hub's WebSocket endpoint) and ``GET /api/ws/clients``.

``/ws?client_type=frontend|detector`` (missing means ``frontend``). Refusals happen
after the handshake, as a close frame with code 1008 and a reason, because a
browser's WebSocket API shows a close code but never an HTTP status.
"""

from __future__ import annotations

import hmac
from typing import Literal, cast

from pydantic import BaseModel
from quart import Blueprint, websocket
from quart_schema import validate_response

from ..context import current
from ..hub import CLIENT_TYPES, CLOSE_POLICY, FRONTEND, DETECTOR, Transport

blueprint = Blueprint("websocket", __name__)


class LocalCounts(BaseModel):
    frontend: int
    detector: int


class WsClients(BaseModel):
    """Connected WebSocket clients per type, over every instance sharing Redis."""

    frontend: int
    detector: int
    total: int
    #: clients of the instance that answered
    local: LocalCounts
    #: instances counted (1 without Redis, or when Redis did not answer)
    instances: int
    backplane: Literal["off", "connected", "disconnected"]


@blueprint.websocket("/ws")
async def hub_socket() -> None:
    app = current()
    client_type = websocket.args.get("client_type") or FRONTEND
    await websocket.accept()
    if client_type not in CLIENT_TYPES:
        await websocket.close(
            CLOSE_POLICY,
            f"unknown client_type {client_type[:40]!r}: use {' or '.join(CLIENT_TYPES)}",
        )
        return
    if client_type == DETECTOR and not _detector_token_ok(app.settings.detector_ws_token):
        await websocket.close(
            CLOSE_POLICY, "detector token missing or wrong (query token= or X-API-Key header)"
        )
        return
    client = app.hub.register(client_type, peer=websocket.remote_addr or "unknown")
    await app.hub.serve(client, cast(Transport, websocket))


@blueprint.get("/api/ws/clients")
@validate_response(WsClients)
async def ws_clients() -> WsClients:
    counts = await current().hub.counts()
    return WsClients(
        frontend=counts.frontend,
        detector=counts.detector,
        total=counts.total,
        local=LocalCounts(**counts.local),
        instances=counts.instances,
        backplane=counts.backplane,  # type: ignore[arg-type]
    )


def _detector_token_ok(expected: str | None) -> bool:
    if expected is None:
        return True
    given = websocket.args.get("token") or websocket.headers.get("X-API-Key") or ""
    return hmac.compare_digest(given.encode(), expected.encode())
