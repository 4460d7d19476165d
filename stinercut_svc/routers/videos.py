"""Timeline clips: add (upload or register), read, trim, reorder, delete, thumbnail.

``POST /api/projects/{uuid}/videos`` takes either body:

* ``multipart/form-data`` with one file part named ``file`` — streamed to
  ``uploads/{project uuid}/`` (size limit ``MAX_UPLOAD_BYTES``, else 413);
* ``application/json`` ``{"path": "uploads/…"}`` — a file already in the shared
  storage (unsafe path → 400, no such file → 422 ``file_not_found``).

OpenAPI can describe one body type per route with quart-schema, so the JSON
form is the one documented; the multipart form is described here.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from uuid import UUID

from pydantic import Field
from quart import Blueprint, Response, request, send_file
from quart_schema import document_request, document_response, validate_querystring, validate_request

from ..context import current
from ..errors import ApiError
from ..openapi import StrictModel
from ..services import videos as service
from ..services.cleanup import remove_files, thumbnail_path
from .docs import (
    DeletedOut,
    TimelineOut,
    VideoCreatedOut,
    VideoOut,
    VideoUploadForm,
    errors,
    file_response,
    upload_form,
)
from .params import json_model, parse_uuid
from .projects import DeleteQuery

blueprint = Blueprint("videos", __name__)


class VideoRegister(StrictModel):
    path: str = Field(min_length=1, max_length=500, description="relative to the shared root")


class TrimIn(StrictModel):
    in_point: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    out_point: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class OrderIn(StrictModel):
    videos: list[UUID] = Field(max_length=10_000)


@blueprint.post("/api/projects/<uuid>/videos")
@document_request(VideoRegister)
@upload_form(VideoUploadForm)
@document_response(VideoCreatedOut, 201)
@errors(400, 404, 408, 413, 415, 422, 503)
async def add_video(uuid: str) -> tuple[dict[str, Any], int]:
    """Add a clip at the end of the timeline: multipart upload (field ``file``) or ``{"path"}``.

    The answer carries the stored row plus ``probe`` (rotation, exact frame rate,
    audio) from ffprobe.
    """
    app = current()
    key = parse_uuid(uuid)
    if request.mimetype == "multipart/form-data":
        return await service.upload_video(app, key, request), 201
    if request.is_json:
        data = await json_model(VideoRegister)
        return await service.register_video(app, key, data.path), 201
    raise ApiError(
        415,
        "send multipart/form-data with a 'file' part, or JSON {\"path\": ...}",
        details={"content_type": request.mimetype or None},
    )


@blueprint.put("/api/projects/<uuid>/videos/order")
@validate_request(OrderIn)
@document_response(TimelineOut)
@errors(400, 404, 413, 422)
async def reorder_videos(uuid: str, data: OrderIn) -> dict[str, Any]:
    """Set the timeline order; the list must hold each of the project's clips exactly once."""
    key = parse_uuid(uuid)
    uuids = [str(u) for u in data.videos]
    return await current().db.run(partial(service.reorder, project_uuid=key, uuids=uuids))


@blueprint.get("/api/videos/<uuid>")
@document_response(VideoOut)
@errors(400, 404)
async def get_video(uuid: str) -> dict[str, Any]:
    return await current().db.run(partial(service.get_video, uuid=parse_uuid(uuid)))


@blueprint.patch("/api/videos/<uuid>")
@validate_request(TrimIn)
@document_response(VideoOut)
@errors(400, 404, 413, 422)
async def trim_video(uuid: str, data: TrimIn) -> dict[str, Any]:
    """Trim: ``0 ≤ in_point < out_point ≤ duration``; ``null`` resets to the start/end."""
    key = parse_uuid(uuid)
    changes = {name: getattr(data, name) for name in data.model_fields_set}
    return await current().db.run(partial(service.trim_video, uuid=key, changes=changes))


@blueprint.delete("/api/videos/<uuid>")
@validate_querystring(DeleteQuery)
@document_response(DeletedOut)
@errors(400, 404)
async def delete_video(uuid: str, query_args: DeleteQuery) -> dict[str, Any]:
    """Remove the clip and its thumbnail; its source file only with ``purge_files=true``."""
    app = current()
    key = parse_uuid(uuid)
    removal = await app.db.run(
        partial(service.delete_video, storage=app.storage, uuid=key, purge=query_args.purge_files)
    )
    await remove_files(removal.files)
    return {"deleted": key, "removed_files": len(removal.files)}


@blueprint.get("/api/videos/<uuid>/thumbnail")
@file_response("image/jpeg")
@errors(400, 404)
async def video_thumbnail(uuid: str) -> Response:
    """The clip's JPEG poster frame."""
    app = current()
    key = parse_uuid(uuid)
    await app.db.run(partial(service.get_video, uuid=key))
    path = thumbnail_path(app.storage, key)
    try:
        response = await send_file(path, mimetype="image/jpeg", conditional=True)
    except FileNotFoundError:
        raise ApiError(404, f"video {key} has no thumbnail", code="file_missing") from None
    response.cache_control.max_age = 3600
    return response
