"""``/ws`` through Quart, joined to the hub, and ``GET /api/ws/clients``.

``stinercut serve`` answers most upgrades itself, before Quart sees them (the
one-port server in ``server.py`` hands them to ``hub.serve_websocket``). This
route serves the rest with the same hub, rules and refusals: an upgrade that
arrives later on a kept-alive HTTP connection, and every ``/ws`` when the app
runs under the ``hypercorn`` CLI (several workers).

``/ws?client_type=frontend|detector`` (missing means ``frontend``). Refusals happen
after the handshake, as a close frame with code 1008 and a reason, because a
browser's WebSocket API shows a close code but never an HTTP status. With
``AUTH_REQUIRED`` the API token comes as ``access_token=`` or the subprotocol
``bearer.<token>`` (rules: ``auth/hub.py``); the REST guard does not see
WebSocket requests, so this route asks access control itself.
"""

from __future__ import annotations

from typing import Literal, cast

from pydantic import BaseModel
from quart import Blueprint, websocket
from quart_schema import validate_response

from ..auth.hub import offered_token
from ..context import current
from ..hub import (
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN,
    FRONTEND,
    Refused,
    Transport,
    check_client,
    serve_transport,
)

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
    token = websocket.args.get("token") or websocket.headers.get("X-API-Key")
    address = websocket.remote_addr or "unknown"
    access_token, subprotocol = offered_token(websocket.args, websocket.requested_subprotocols)
    await websocket.accept(subprotocol=subprotocol)
    problem, role = await check_client(
        client_type, token, app.settings.detector_ws_token,
        access=app.access, address=address, access_token=access_token,
    )
    if problem is not None:
        await websocket.close(CLOSE_POLICY, problem)
        return
    try:
        app.hub.admit(address)
    except Refused as refused:
        await websocket.close(CLOSE_TRY_AGAIN, refused.message)
        return
    client = app.hub.register(client_type, peer=address, address=address)
    await serve_transport(app.hub, client, cast(Transport, websocket), role)


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
