"""``GET /`` (liveness) and ``GET /api/health`` (dependency checks, answered from cache).

The checks themselves live in :mod:`stinercut_svc.health_checks`: tools are checked
in the background, the database and storage at most every two seconds, so a call
costs microseconds and starts no process, and a busy service never calls itself
unhealthy. This blueprint also owns the checks' lifetime (``before_app_serving``),
so the app factory only registers it.

``status``: ``healthy`` (200) when everything works; ``unhealthy`` (503) when the
database, ffmpeg, ffprobe or storage fails, as the instance cannot do its work;
``degraded`` (200) when only the Redis backplane is disconnected. That one is not a
503 on purpose: the instance still serves its REST API and its own WebSocket
clients, cross-instance messages wait in the backplane's bounded buffer, and it
reconnects by itself; a 503 would make a load balancer or orchestrator pull (or
restart) every instance at once during a Redis outage, turning a partial
degradation into a full one. Monitoring alerts on ``degraded``.
"""

from __future__ import annotations

from typing import Literal

import trio
from pydantic import BaseModel
from quart import Blueprint, Response
from quart_schema import document_response

from .. import SERVICE_NAME, __version__
from ..context import StinercutApp, current
from ..health_checks import BackplaneState, HealthChecks
from ..jsonio import json_response

blueprint = Blueprint("health", __name__)

EXTENSION = "stinercut.health"


class RootOut(BaseModel):
    status: str
    service: str
    version: str


class HealthOut(BaseModel):
    """200 when healthy or degraded, 503 (same shape) when unhealthy."""

    status: Literal["healthy", "degraded", "unhealthy"]
    service: str
    version: str
    database: bool
    ffmpeg: bool
    ffprobe: bool
    storage: bool
    backplane: Literal["off", "connected", "disconnected"]
    details: dict[str, str]


def checks_of(app: StinercutApp) -> HealthChecks:
    """The instance's checks (e.g. ``checks_of(app).request_recheck()`` after a tool failed)."""
    checks: HealthChecks = app.extensions[EXTENSION]
    return checks


@blueprint.before_app_serving
async def _start_checks() -> None:
    app = current()
    checks = HealthChecks(
        app.db,
        app.storage,
        {"ffmpeg": app.settings.ffmpeg, "ffprobe": app.settings.ffprobe},
        app.schema_ready,
    )
    app.extensions[EXTENSION] = checks
    await app.nursery.start(checks.run)


@blueprint.after_app_serving
async def _stop_checks() -> None:
    checks = current().extensions.pop(EXTENSION, None)
    if checks is not None:
        checks.close()


@blueprint.get("/")
@document_response(RootOut)
async def root() -> Response:
    return json_response({"status": "ok", "service": SERVICE_NAME, "version": __version__})


@blueprint.get("/api/health")
@document_response(HealthOut, 200)
@document_response(HealthOut, 503)
async def health() -> Response:
    body, status = await health_report(current())
    return json_response(body, status)


async def health_report(app: StinercutApp) -> tuple[dict[str, object], int]:
    """The health answer and its status (200 healthy/degraded, 503 unhealthy).

    Shared by this route and the connection-level fast path (``fast_health.py``),
    so both always say the same thing.
    """
    checks = checks_of(app)
    results = checks.cached_results()
    if results is None:
        results = await checks.tool_results()
        found = results

        async def database() -> None:
            found["database"] = await checks.database()

        async def storage() -> None:
            found["storage"] = await checks.storage()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(database)
            nursery.start_soon(storage)

    backplane = backplane_state(app)
    healthy = all(status.ok for status in results.values())
    body: dict[str, object] = {
        "status": "unhealthy" if not healthy else "degraded" if backplane == "disconnected"
        else "healthy",
        "service": SERVICE_NAME,
        "version": __version__,
    }
    body.update({name: results[name].ok for name in sorted(results)})
    body["backplane"] = backplane
    body["details"] = {name: results[name].detail for name in sorted(results)}
    return body, 200 if healthy else 503


def backplane_state(app: StinercutApp) -> BackplaneState:
    backplane = app.hub.backplane
    if backplane is None:
        return "off"
    return "connected" if backplane.connected else "disconnected"
