"""``/api/services/detector/…``: manage the detector daemon over its HTTP API.

Thin routes over :class:`stinercut_svc.detector.DetectorClient` (``app.detector``);
the client maps every failure to 502/503/504 in the one error format.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from quart import Blueprint, Response, jsonify
from quart_schema import document_response

from ..context import current
from ..detector import DetectorAction
from .docs import errors

blueprint = Blueprint("services", __name__, url_prefix="/api/services")


class DetectorActionOut(BaseModel):
    status: str
    message: str


class DetectorStatusOut(BaseModel):
    """Whatever the detector's ``GET /status`` returns, passed on unchanged."""

    model_config = {"extra": "allow"}


@blueprint.get("/detector/status")
@document_response(DetectorStatusOut)
@errors(502, 503, 504)
async def detector_status() -> Response:
    body: Any = await current().detector.status()
    return jsonify(body)


@blueprint.post("/detector/restart")
@document_response(DetectorActionOut)
@errors(502, 503, 504)
async def detector_restart() -> Response:
    return _action(await current().detector.restart())


@blueprint.post("/detector/enable")
@document_response(DetectorActionOut)
@errors(502, 503, 504)
async def detector_enable() -> Response:
    return _action(await current().detector.enable())


@blueprint.post("/detector/disable")
@document_response(DetectorActionOut)
@errors(502, 503, 504)
async def detector_disable() -> Response:
    return _action(await current().detector.disable())


def _action(result: DetectorAction) -> Response:
    return jsonify(result.to_api())
