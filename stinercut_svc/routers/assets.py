"""``/api/assets``: branding assets (intro, outro, watermark, music, name template).

``POST /api/assets`` takes either ``multipart/form-data`` (text fields ``type``
and optional ``name``, file part ``file``; stored under ``uploads/assets/``) or
JSON ``{"type", "name"?, "path"}`` registering a file already in the shared
storage. The file is checked against its type (see
:mod:`stinercut_svc.services.assets`); the wrong kind of file → 422.
"""

from __future__ import annotations

import mimetypes
from functools import partial
from typing import Any

from pydantic import Field
from quart import Blueprint, Response, request
from quart_schema import document_request, document_response, validate_querystring, validate_request

from ..context import current
from ..downloads import serve_file
from ..errors import ApiError
from ..models import AssetType
from ..openapi import StrictModel
from ..services import assets as service
from ..services.cleanup import remove_files
from ..services.fields import Name
from .docs import (
    AssetListOut,
    AssetOut,
    AssetUploadForm,
    DeletedOut,
    errors,
    file_response,
    upload_form,
)
from .params import json_model, parse_uuid
from .projects import DeleteQuery

blueprint = Blueprint("assets", __name__)


class AssetQuery(StrictModel):
    type: AssetType | None = None


class AssetRegister(StrictModel):
    type: AssetType
    name: Name | None = None
    path: str = Field(min_length=1, max_length=500, description="relative to the shared root")


class AssetPatch(StrictModel):
    name: Name


@blueprint.get("/api/assets")
@validate_querystring(AssetQuery)
@document_response(AssetListOut)
@errors(400)
async def list_assets(query_args: AssetQuery) -> dict[str, Any]:
    return await current().db.run(partial(service.list_assets, kind=query_args.type))


@blueprint.post("/api/assets")
@document_request(AssetRegister)
@upload_form(AssetUploadForm)
@document_response(AssetOut, 201)
@errors(400, 408, 413, 415, 422, 503)
async def create_asset() -> tuple[dict[str, Any], int]:
    """Add an asset: multipart (``type``, ``name``?, ``file``) or JSON ``{type, name?, path}``."""
    app = current()
    if request.mimetype == "multipart/form-data":
        return await service.upload_asset(app, request), 201
    if request.is_json:
        data = await json_model(AssetRegister)
        body = await service.register_asset(
            app, kind=data.type, name=data.name, relative=data.path
        )
        return body, 201
    raise ApiError(
        415,
        "send multipart/form-data (type, name, file) or JSON {\"type\", \"path\"}",
        details={"content_type": request.mimetype or None},
    )


@blueprint.get("/api/assets/<uuid>")
@document_response(AssetOut)
@errors(400, 404)
async def get_asset(uuid: str) -> dict[str, Any]:
    key = parse_uuid(uuid)
    return await current().db.run(lambda s: service.find_asset(s, key).to_api())


@blueprint.patch("/api/assets/<uuid>")
@validate_request(AssetPatch)
@document_response(AssetOut)
@errors(400, 404, 413, 422)
async def rename_asset(uuid: str, data: AssetPatch) -> dict[str, Any]:
    key = parse_uuid(uuid)
    return await current().db.run(partial(service.rename_asset, uuid=key, name=data.name))


@blueprint.delete("/api/assets/<uuid>")
@validate_querystring(DeleteQuery)
@document_response(DeletedOut)
@errors(400, 404, 409)
async def delete_asset(uuid: str, query_args: DeleteQuery) -> dict[str, Any]:
    """Delete the asset row (409 while a project's settings use it).

    The file is deleted only with ``purge_files=true``, and only if it was
    uploaded (under ``uploads/``) and nothing else uses it.
    """
    app = current()
    key = parse_uuid(uuid)
    removal = await app.db.run(
        partial(service.delete_asset, storage=app.storage, uuid=key, purge=query_args.purge_files)
    )
    await remove_files(removal.files)
    return {"deleted": key, "removed_files": len(removal.files)}


@blueprint.get("/api/assets/<uuid>/file")
@file_response("*/*", ranges=True)
@errors(400, 404, 416)
async def asset_file(uuid: str) -> Response:
    """The asset's file, as stored (range requests supported)."""
    app = current()
    key = parse_uuid(uuid)
    path = await app.db.run(partial(service.asset_file, storage=app.storage, uuid=key))
    mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return await serve_file(path, request, download_name=None, mimetype=mimetype)
