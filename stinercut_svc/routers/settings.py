"""``/api/settings``: typed key/value settings shared with the frontend."""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import Field
from quart import Blueprint
from quart_schema import document_response, validate_querystring, validate_request

from ..context import current
from ..openapi import StrictModel
from ..services import settings as service
from .docs import SettingListOut, SettingOut, errors

blueprint = Blueprint("settings", __name__)


class SettingQuery(StrictModel):
    category: str | None = Field(default=None, max_length=50)


class SettingIn(StrictModel):
    value: Any = Field(description="JSON of the setting's type (integer, boolean, string, json)")


@blueprint.get("/api/settings")
@validate_querystring(SettingQuery)
@document_response(SettingListOut)
@errors(400)
async def list_settings(query_args: SettingQuery) -> dict[str, Any]:
    return await current().db.run(partial(service.list_settings, category=query_args.category))


@blueprint.get("/api/settings/<key>")
@document_response(SettingOut)
@errors(404)
async def get_setting(key: str) -> dict[str, Any]:
    return await current().db.run(partial(service.get_setting, key=key))


@blueprint.put("/api/settings/<key>")
@validate_request(SettingIn)
@document_response(SettingOut)
@errors(400, 404, 413, 422)
async def put_setting(key: str, data: SettingIn) -> dict[str, Any]:
    """Set the value: typed by the row's ``type``, one of its ``options`` if it has any."""
    return await current().db.run(partial(service.put_setting, key=key, value=data.value))
