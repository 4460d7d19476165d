"""``GET /`` (liveness) and ``GET /api/health`` (real dependency checks).

Every check runs concurrently under its own short deadline, so a database host
that swallows packets makes the answer *unhealthy*, never slow.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable

import trio
from pydantic import BaseModel
from quart import Blueprint, Response, jsonify
from quart_schema import document_response

from .. import SERVICE_NAME, __version__
from ..context import StinercutApp, current
from ..database import describe_error
from ..media.tools import ToolStatus, tool_version

blueprint = Blueprint("health", __name__)

CHECK_TIMEOUT_S = 2.0


class RootOut(BaseModel):
    status: str
    service: str
    version: str


class HealthOut(BaseModel):
    """200 when every check is true, 503 (same shape) otherwise."""

    status: str
    service: str
    version: str
    database: bool
    ffmpeg: bool
    ffprobe: bool
    storage: bool
    details: dict[str, str]


@blueprint.get("/")
@document_response(RootOut)
async def root() -> Response:
    return jsonify({"status": "ok", "service": SERVICE_NAME, "version": __version__})


@blueprint.get("/api/health")
@document_response(HealthOut, 200)
@document_response(HealthOut, 503)
async def health() -> tuple[Response, int]:
    app = current()
    results: dict[str, ToolStatus] = {}

    async def run(name: str, check: Awaitable[ToolStatus]) -> None:
        results[name] = await check

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "database", _database(app))
        nursery.start_soon(run, "ffmpeg", tool_version(app.settings.ffmpeg, timeout=CHECK_TIMEOUT_S))
        nursery.start_soon(
            run, "ffprobe", tool_version(app.settings.ffprobe, timeout=CHECK_TIMEOUT_S)
        )
        nursery.start_soon(run, "storage", _storage(app))

    healthy = all(status.ok for status in results.values())
    body: dict[str, object] = {
        "status": "healthy" if healthy else "unhealthy",
        "service": SERVICE_NAME,
        "version": __version__,
    }
    body.update({name: results[name].ok for name in sorted(results)})
    body["details"] = {name: results[name].detail for name in sorted(results)}
    return jsonify(body), 200 if healthy else 503


async def _database(app: StinercutApp) -> ToolStatus:
    try:
        version = await app.db.ping(CHECK_TIMEOUT_S)
    except trio.TooSlowError:
        return ToolStatus(False, f"no answer within {CHECK_TIMEOUT_S:g} s")
    except Exception as exc:  # any driver error is an unhealthy database, not a 500
        return ToolStatus(False, describe_error(exc))
    if not app.schema_ready.is_set():
        return ToolStatus(False, f"{version}; schema migration pending")
    return ToolStatus(True, version)


async def _storage(app: StinercutApp) -> ToolStatus:
    def probe() -> ToolStatus:
        root = app.storage.root
        if not root.is_dir():
            return ToolStatus(False, "storage root does not exist")
        try:
            with tempfile.NamedTemporaryFile(dir=app.storage.temp, prefix=".health-"):
                pass
        except OSError as exc:
            return ToolStatus(False, f"storage is not writable: {os.strerror(exc.errno or 0)}")
        free_gib = app.storage.free_bytes() / 1024**3
        return ToolStatus(True, f"writable, {free_gib:.1f} GiB free")

    try:
        with trio.fail_after(CHECK_TIMEOUT_S):
            # A hung network mount must not hang the check: abandon the thread.
            return await trio.to_thread.run_sync(probe, abandon_on_cancel=True)
    except trio.TooSlowError:
        return ToolStatus(False, f"storage did not answer within {CHECK_TIMEOUT_S:g} s")
