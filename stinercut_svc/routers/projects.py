"""``/api/projects``: list, create, detail (timeline + recent jobs), edit, delete.

Answers are encoded once from the services' plain data (:mod:`stinercut_svc.jsonio`);
the response models below only document them. Detail reads of one project that
arrive together share one database read (:mod:`stinercut_svc.coalesce`).
"""

from __future__ import annotations

from functools import partial

import trio
from pydantic import Field
from quart import Blueprint, Response
from quart_schema import document_response, validate_querystring, validate_request

from ..coalesce import Coalescer
from ..context import StinercutApp, current
from ..errors import ApiError
from ..jobs.options import RenderOptions
from ..jsonio import encode, json_response
from ..models import ProjectStatus
from ..openapi import StrictModel
from ..services import projects as service
from ..services.cleanup import remove_empty_dir, remove_files
from ..services.fields import Name
from ..webhooks.targets import accept_callback_url
from .docs import DeletedOut, ProjectDetailOut, ProjectListOut, ProjectOut, errors
from .params import parse_uuid

blueprint = Blueprint("projects", __name__)

#: ``app.extensions`` key of the project-detail :class:`Coalescer`.
DETAIL_READS = "stinercut.project_detail_reads"


class ProjectQuery(StrictModel):
    status: ProjectStatus | None = None
    q: str | None = Field(default=None, max_length=255, description="part of the name")
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000_000)


CALLBACK_URL_DOC = (
    "webhook URL: every state change of this project's jobs is POSTed there, signed "
    "(X-Stinercut-Signature); needs WEBHOOK_SECRET on the service"
)


class ProjectIn(StrictModel):
    name: Name
    settings: RenderOptions | None = None
    callback_url: str | None = Field(default=None, description=CALLBACK_URL_DOC)


class ProjectPatch(StrictModel):
    name: Name | None = None
    settings: RenderOptions | None = Field(
        default=None, description="replaces the whole settings object; null clears it"
    )
    callback_url: str | None = Field(default=None, description=CALLBACK_URL_DOC + "; null clears it")


class DeleteQuery(StrictModel):
    purge_files: bool = Field(
        default=False, description="also delete uploaded source files no other clip uses"
    )


@blueprint.get("/api/projects")
@validate_querystring(ProjectQuery)
@document_response(ProjectListOut)
@errors(400)
async def list_projects(query_args: ProjectQuery) -> Response:
    """Projects, newest first, with the total count for paging."""
    body = await current().db.run(
        partial(
            service.list_projects,
            status=query_args.status,
            q=query_args.q,
            limit=query_args.limit,
            offset=query_args.offset,
        )
    )
    return json_response(body)


@blueprint.post("/api/projects")
@validate_request(ProjectIn)
@document_response(ProjectOut, 201)
@errors(400, 413, 422)
async def create_project(data: ProjectIn) -> Response:
    app = current()
    callback_url = await _callback_url(app, data.callback_url)
    body = await app.db.run(
        partial(
            service.create_project,
            name=data.name,
            settings=data.settings,
            callback_url=callback_url,
        )
    )
    return json_response(body, 201)


@blueprint.get("/api/projects/<uuid>")
@document_response(ProjectDetailOut)
@errors(400, 404)
async def get_project(uuid: str) -> Response:
    """The project with its clips in timeline order and its most recent jobs."""
    app = current()
    body = await _detail_reads(app).get(app.nursery, parse_uuid(uuid))
    return Response(body, mimetype="application/json")


def _detail_reads(app: StinercutApp) -> Coalescer[str, bytes]:
    reads: Coalescer[str, bytes] | None = app.extensions.get(DETAIL_READS)
    if reads is None:

        async def fetch(key: str) -> bytes:
            return encode(await app.db.run(partial(service.project_detail, uuid=key)))

        reads = app.extensions[DETAIL_READS] = Coalescer(fetch)
    return reads


@blueprint.patch("/api/projects/<uuid>")
@validate_request(ProjectPatch)
@document_response(ProjectOut)
@errors(400, 404, 413, 422)
async def update_project(uuid: str, data: ProjectPatch) -> Response:
    key = parse_uuid(uuid)
    if "name" in data.model_fields_set and data.name is None:
        raise ApiError(422, "name may not be null", code="validation_error",
                       details={"fields": [{"field": "name", "message": "may not be null"}]})
    app = current()
    callback_given = "callback_url" in data.model_fields_set
    callback_url = await _callback_url(app, data.callback_url) if callback_given else None
    body = await app.db.run(
        partial(
            service.update_project,
            uuid=key,
            name=data.name,
            settings=data.settings,
            settings_given="settings" in data.model_fields_set,
            callback_url=callback_url,
            callback_given=callback_given,
        )
    )
    return json_response(body)


@blueprint.delete("/api/projects/<uuid>")
@validate_querystring(DeleteQuery)
@document_response(DeletedOut)
@errors(400, 404, 409)
async def delete_project(uuid: str, query_args: DeleteQuery) -> Response:
    """Delete the project, its clips and jobs, thumbnails and render outputs.

    Uploaded source files stay unless ``purge_files=true`` (and then only files
    under ``uploads/`` that no other clip or asset uses). 409 while a render
    job of the project is pending or running.
    """
    app = current()
    key = parse_uuid(uuid)
    removal = await app.db.run(
        partial(service.delete_project, storage=app.storage, uuid=key, purge=query_args.purge_files)
    )
    await remove_files(removal.files)
    for folder in removal.folders:
        await trio.to_thread.run_sync(remove_empty_dir, folder)
    return json_response({"deleted": key, "removed_files": len(removal.files)})


async def _callback_url(app: StinercutApp, url: str | None) -> str | None:
    if url is None:
        return None
    settings = app.settings
    return await accept_callback_url(
        url, secret=settings.webhook_secret, allow_private=settings.webhook_allow_private
    )
