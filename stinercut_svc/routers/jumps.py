"""Manual resolution of imported jumps: list, show, assign, split, merge, confirm.

Thin: bodies are validated here, the work is :mod:`stinercut_svc.services.jumps`
(its :class:`~stinercut_svc.services.jumps.JumpError` becomes 404/409/422 in
``errors.py``). Every change answers ``{"jumps": [...], "renders": [...]}``: the
jumps as they are afterwards, and the renders it queued (``INGEST_AUTO_RENDER``).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictInt
from quart import Blueprint, Response
from quart_schema import document_response, validate_request

from ..context import current
from ..jsonio import json_response
from ..openapi import StrictModel
from ..services import jumps as service
from .docs import Timestamp, errors
from .params import parse_uuid

blueprint = Blueprint("jumps", __name__)


# --- request bodies -----------------------------------------------------------------------


class AssignIn(StrictModel):
    project_uuid: UUID | None = Field(
        description="the customer's project; null takes the jump off any project"
    )


class SplitIn(StrictModel):
    at_recording: StrictInt | UUID = Field(
        description="where the new jump starts: the recording's index in the jump (0-based, "
        "at least 1) or the uuid of one of its files"
    )


class MergeIn(StrictModel):
    jumps: list[UUID] = Field(
        min_length=2, max_length=2, description="two neighbouring jumps of one import"
    )


# --- response shapes (documentation only) ---------------------------------------------------


class FileOut(BaseModel):
    uuid: str
    filepath: str
    original_filename: str
    chapter: int | None
    duration: float | None
    status: str
    in_point: float | None
    out_point: float | None
    qr_content: str | None
    error_message: str | None


class WindowOut(BaseModel):
    start: float
    end: float


class RecordingOut(BaseModel):
    index: int
    key: str
    duration: float
    qr_end: float | None
    freefalls: list[WindowOut]
    landing: float | None
    files: list[FileOut]


class FreefallOut(BaseModel):
    recording: str
    start: float
    end: float | None
    confidence: float | None
    source: Literal["audio", "telemetry", "both"] | None = Field(
        description="which signal found the freefall: the sound, the GoPro's GPS altitude "
        "(gpmd track) or both; null when unknown (jumps imported before it was stored, or a "
        "window that staff's split/merge moved, like confidence)"
    )


class JumpOut(BaseModel):
    id: int
    uuid: str
    import_uuid: str
    sequence: int
    group: Literal["jump", "unassigned"] = Field(
        description="unassigned: recordings with neither a QR code nor a customer "
        "(e.g. before the first QR of the card)"
    )
    state: Literal["resolved", "needs_manual"]
    reason: Literal["missing_qr", "unknown_customer", "no_freefall", "two_freefalls"] | None
    reasons: list[Literal["missing_qr", "unknown_customer", "no_freefall", "two_freefalls"]]
    qr_code: str | None
    project_uuid: str | None
    project_name: str | None
    freefall: FreefallOut | None
    freefall_count: int
    confirmed_at: Timestamp | None
    edited_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    recordings: list[RecordingOut]


class JumpListOut(BaseModel):
    import_uuid: str
    status: str
    resolved: int
    needs_manual: int
    jumps: list[JumpOut]
    unplaced_files: list[FileOut] = Field(
        description="files of the import in no jump (new files of a re-run after staff "
        "changed the jumps)"
    )


class RenderOut(BaseModel):
    project_uuid: str
    job_uuid: str | None
    error: str | None = Field(description="why no render was queued (already rendering, …)")


class JumpChangeOut(BaseModel):
    jumps: list[JumpOut]
    renders: list[RenderOut]


# --- routes ---------------------------------------------------------------------------------


@blueprint.get("/api/imports/<uuid>/jumps")
@document_response(JumpListOut)
@errors(400, 404)
async def list_jumps(uuid: str) -> Response:
    """The import's jumps in camera order, each with its verdict and recordings."""
    key = parse_uuid(uuid)
    body = await current().db.run(lambda s: service.batch_jumps(s, key))
    return json_response(body)


@blueprint.get("/api/jumps/<uuid>")
@document_response(JumpOut)
@errors(400, 404)
async def get_jump(uuid: str) -> Response:
    """One jump: verdict, customer, freefall, and its recordings with their files."""
    key = parse_uuid(uuid)
    return json_response(await current().db.run(lambda s: service.jump_detail(s, key)))


@blueprint.post("/api/jumps/<uuid>/assign")
@validate_request(AssignIn)
@document_response(JumpChangeOut)
@errors(400, 404, 413, 422)
async def assign_jump(uuid: str, data: AssignIn) -> Response:
    """Make a project the jump's customer (null: none); its clips follow."""
    project = None if data.project_uuid is None else str(data.project_uuid)
    return _answer(await service.assign_jump(current(), parse_uuid(uuid), project))


@blueprint.post("/api/jumps/<uuid>/split")
@validate_request(SplitIn)
@document_response(JumpChangeOut)
@errors(400, 404, 413, 422)
async def split_jump(uuid: str, data: SplitIn) -> Response:
    """Cut the jump before a recording; the rest becomes a new jump right after it."""
    at = data.at_recording if isinstance(data.at_recording, int) else str(data.at_recording)
    return _answer(await service.split_jump(current(), parse_uuid(uuid), at))


@blueprint.post("/api/jumps/merge")
@validate_request(MergeIn)
@document_response(JumpChangeOut)
@errors(400, 404, 409, 413, 422)
async def merge_jumps(data: MergeIn) -> Response:
    """Join two neighbouring jumps of one import into the earlier one."""
    return _answer(await service.merge_jumps(current(), [str(u) for u in data.jumps]))


@blueprint.post("/api/jumps/<uuid>/confirm")
@document_response(JumpChangeOut)
@errors(400, 404, 409)
async def confirm_jump(uuid: str) -> Response:
    """Accept a jump that has a customer as it stands (e.g. no freefall detected)."""
    return _answer(await service.confirm_jump(current(), parse_uuid(uuid)))


def _answer(body: dict[str, Any]) -> Response:
    return json_response(body)
