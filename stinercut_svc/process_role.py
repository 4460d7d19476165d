"""``ROLE``: which part of the service one process runs (``all``, ``api``, ``worker``).

A deployment scales the two halves separately: ``api`` processes answer HTTP and
the WebSocket hub and queue render jobs; ``worker`` processes (``docker compose up
--scale worker=N``) claim jobs from the shared database queue and render them
into the shared storage. The queue is a table with row claims, so any number of
workers can poll it; progress reaches the clients through the hub's Redis
backplane, which a worker publishes to like any instance.

A worker still runs the whole app (the supervisor needs the database, storage,
hub and settings), but answers only its health and metrics routes. Everything
else gets a 404 in the one error format naming the role: a request that reaches a
worker was routed wrongly (a proxy or a client with the worker's address), and
"this instance does not serve that" is the true answer; a 503 would tell load
balancers and clients to retry the same instance.
"""

from __future__ import annotations

from quart import Quart, Response, request, websocket

from .config import Role
from .errors import error_response

#: The paths a worker serves: liveness, health (the compose/Docker health check)
#: and the Prometheus scrape.
WORKER_PATHS = frozenset({"/", "/api/health", "/metrics"})


def claims_jobs(role: Role) -> bool:
    """Whether this process runs the supervisor's claim loop."""
    return role in ("all", "worker")


def install_role_gate(app: Quart, role: Role) -> None:
    """Refuse, on a worker, every route but :data:`WORKER_PATHS` (HTTP and WebSocket)."""
    if role != "worker":
        return

    def refuse(path: str) -> Response | None:
        if path in WORKER_PATHS:
            return None
        return error_response(
            404,
            f"this instance runs with ROLE=worker and serves only "
            f"{', '.join(sorted(WORKER_PATHS))}; send API requests to an api instance",
            code="not_served_by_role",
            details={"role": role, "served": sorted(WORKER_PATHS)},
        )

    async def gate_http() -> Response | None:
        return refuse(request.path)

    async def gate_websocket() -> Response | None:
        return refuse(websocket.path)

    app.before_request(gate_http)
    app.before_websocket(gate_websocket)
