"""Render jobs over HTTP: start, list, show, cancel, delete, download.

* ``POST /api/projects/{uuid}/render`` checks everything it can up front (clips,
  assets and their types, source files, trims, no other active job) and answers
  ``202`` with a ``pending`` job; the supervisor picks it up.
* ``POST /api/jobs/{uuid}/cancel`` answers with the *final* job: a pending job is
  cancelled at once; a processing one is stopped (wherever it runs: the flag in
  its row reaches other instances) and the answer waits, bounded, until the
  ffmpeg process is gone and the row says ``cancelled``.
* ``GET /api/jobs/{uuid}/output`` serves the finished file with Range support.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any, Literal
from uuid import UUID

import trio
from pydantic import BaseModel, Field, ValidationError
from quart import Blueprint, Response, request
from quart_schema import (
    RequestSchemaValidationError,
    document_request,
    document_response,
    validate_querystring,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import current
from ..downloads import safe_file_name, serve_file
from ..errors import ApiError
from ..jobs import queue
from ..jobs.options import RenderOptions
from ..jobs.outputs import edition_paths
from ..jobs.render import require_available_codecs
from ..jobs.supervisor import status_message
from ..models import Job, JobStatus, Project
from ..openapi import StrictModel
from ..services import project_status, renders
from ..storage import Storage, UnsafePathError
from ..webhooks.targets import accept_callback_url
from .docs import DeletedOut, JobOut, errors, file_response
from .params import parse_uuid

blueprint = Blueprint("jobs", __name__)

#: How long a cancel request waits for a processing job to be really gone.
CANCEL_WAIT_S = 15.0
CANCEL_POLL_S = 0.05
MAX_PAGE = 200

StatusFilter = Literal["pending", "processing", "completed", "failed", "cancelled"]


class JobPage(BaseModel):
    items: list[JobOut]
    total: int
    limit: int
    offset: int


class JobQuery(StrictModel):
    status: StatusFilter | None = None
    project: UUID | None = None
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=1_000_000_000)


def _find_job(session: Session, job_uuid: str) -> tuple[Job, str]:
    row = session.execute(
        select(Job, Project.uuid)
        .join(Project, Project.id == Job.project_id)
        .where(Job.uuid == job_uuid)
    ).first()
    if row is None:
        raise ApiError.not_found("job", job_uuid)
    return row[0], row[1]


async def _job(job_uuid: str) -> dict[str, Any]:
    def load(session: Session) -> dict[str, Any]:
        job, project_uuid = _find_job(session, job_uuid)
        return job.to_view(project_uuid)

    return await current().db.run(load)


# --- list and show ------------------------------------------------------------------


@blueprint.get("/api/jobs")
@validate_querystring(JobQuery)
@document_response(JobPage)
@errors(400, 404)
async def list_jobs(query_args: JobQuery) -> dict[str, Any]:
    def load(session: Session) -> dict[str, Any]:
        stmt = select(Job, Project.uuid).join(Project, Project.id == Job.project_id)
        if query_args.status:
            stmt = stmt.where(Job.status == JobStatus(query_args.status))
        if query_args.project:
            project_uuid = str(query_args.project)
            found = session.scalars(select(Project.id).where(Project.uuid == project_uuid)).first()
            if found is None:
                raise ApiError.not_found("project", project_uuid)
            stmt = stmt.where(Project.uuid == project_uuid)
        total = queue.count_jobs(session, stmt)
        rows = session.execute(
            stmt.order_by(Job.created_at.desc(), Job.id.desc())
            .limit(query_args.limit)
            .offset(query_args.offset)
        ).all()
        return {
            "items": [job.to_view(project_uuid) for job, project_uuid in rows],
            "total": total,
            "limit": query_args.limit,
            "offset": query_args.offset,
        }

    return await current().db.run(load)


@blueprint.get("/api/jobs/<uuid>")
@document_response(JobOut)
@errors(400, 404)
async def get_job(uuid: str) -> dict[str, Any]:
    return await _job(parse_uuid(uuid))


# --- render -------------------------------------------------------------------------


@blueprint.post("/api/projects/<uuid>/render")
@document_request(RenderOptions)
@document_response(JobOut, 202)
@errors(400, 404, 409, 413, 422)
async def start_render(uuid: str) -> tuple[dict[str, Any], int]:
    """Queue a render; the body (optional) overrides the project's render settings."""
    app = current()
    project_uuid = parse_uuid(uuid)
    overrides, callback_url = await _render_body()
    await require_available_codecs(overrides, app.settings.ffmpeg)  # 422 naming those there are
    if callback_url is not None:
        settings = app.settings
        await accept_callback_url(
            callback_url,
            secret=settings.webhook_secret,
            allow_private=settings.webhook_allow_private,
        )
    view = await renders.queue_render(app, project_uuid, overrides, callback_url=callback_url)
    return view, 202


async def _render_body() -> tuple[RenderOptions | None, str | None]:
    """The optional body: absent or empty means "the project's settings as they are".

    Beside the render options it may carry ``callback_url`` (this job's webhook,
    overriding the project's): not a render option, so it is taken out first.
    """
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        return None, None
    data = await request.get_json(force=True)
    callback_url: str | None = None
    if isinstance(data, dict) and "callback_url" in data:
        data = dict(data)
        value = data.pop("callback_url")
        if value is not None and not isinstance(value, str):
            raise ApiError(
                422,
                "invalid request body: callback_url: Input should be a valid string",
                code="validation_error",
                details={"fields": [{"field": "callback_url", "message": "Input should be a valid string"}]},
            )
        callback_url = value
    try:
        return RenderOptions.model_validate(data), callback_url
    except ValidationError as exc:
        raise RequestSchemaValidationError(exc) from None


# --- cancel -------------------------------------------------------------------------


@blueprint.post("/api/jobs/<uuid>/cancel")
@document_response(JobOut, 200)
@document_response(JobOut, 202)
@errors(400, 404, 409)
async def cancel_job(uuid: str) -> tuple[dict[str, Any], int]:
    """Cancel; 200 with the cancelled job, 202 if it is still stopping after the wait."""
    app = current()
    job_uuid = parse_uuid(uuid)
    outcome = await app.db.run(partial(queue.request_cancel, job_uuid=job_uuid))
    if outcome is None:
        raise ApiError.not_found("job", job_uuid)
    if outcome.action == "cancelled_pending":
        message = status_message(outcome.job, outcome.project_uuid)
        await app.supervisor.publish("job:status", message)
        return await _job(job_uuid), 200
    if outcome.action == "finished":
        return _finished_answer(await _job(job_uuid))
    # Processing: stop it here if it runs here; other instances see the row's flag.
    local = app.supervisor.cancel_local(job_uuid)
    with trio.move_on_after(CANCEL_WAIT_S):
        if local is not None:
            await local.done.wait()
        while True:
            view = await _job(job_uuid)
            if view["status"] != JobStatus.PROCESSING.value:
                return _finished_answer(view)
            await trio.sleep(CANCEL_POLL_S)
    # Still running after the bound (its instance is unreachable): accepted, not done.
    return await _job(job_uuid), 202


def _finished_answer(view: dict[str, Any]) -> tuple[dict[str, Any], int]:
    if view["status"] == JobStatus.CANCELLED.value:
        return view, 200
    raise ApiError.conflict(
        f"job {view['uuid']} is already {view['status']}", job=view["uuid"], status=view["status"]
    )


# --- delete and download ------------------------------------------------------------


@blueprint.delete("/api/jobs/<uuid>")
@document_response(DeletedOut)
@errors(400, 404, 409)
async def delete_job(uuid: str) -> dict[str, Any]:
    """Remove a finished job's row and its output file."""
    app = current()
    job_uuid = parse_uuid(uuid)

    def remove(session: Session) -> str | None:
        job, _ = _find_job(session, job_uuid)
        if not job.status.is_finished:
            raise ApiError.conflict(
                f"job {job_uuid} is {job.status.value}; cancel it before deleting it",
                status=job.status.value,
            )
        output = job.output_path
        project_id = job.project_id
        session.delete(job)
        project_status.refresh(session, project_id)  # its video may have been the last
        return output

    editions = await app.db.run(partial(edition_paths, job_uuid=job_uuid))  # job_output rows
    output = await app.db.run(remove)
    removed = 0
    if output:
        removed = await trio.to_thread.run_sync(_remove_output, app.storage, output)
    for relative in editions:
        removed += await trio.to_thread.run_sync(_remove_output, app.storage, relative)
    return {"deleted": job_uuid, "removed_files": removed}


def _remove_output(storage: Storage, relative: str) -> int:
    try:
        path = storage.resolve(relative)
        if not path.is_file():
            return 0
        path.unlink()
        return 1
    except (UnsafePathError, OSError):
        return 0  # the row is gone; a stray file is not worth failing the request for


@blueprint.get("/api/jobs/<uuid>/output")
@file_response("video/mp4", ranges=True)
@errors(400, 404, 409, 416)
async def download_output(uuid: str) -> Response:
    """The finished MP4 (``Range`` requests answered with 206)."""
    app = current()
    job_uuid = parse_uuid(uuid)

    def load(session: Session) -> tuple[Job, str]:
        job, _ = _find_job(session, job_uuid)
        project_name = session.scalars(
            select(Project.name).where(Project.id == job.project_id)
        ).one()
        return job, project_name

    job, project_name = await app.db.run(load)
    if job.status is not JobStatus.COMPLETED or not job.output_path:
        raise ApiError.conflict(
            f"job {job_uuid} has no output: it is {job.status.value}", status=job.status.value
        )
    try:
        path = app.storage.resolve(job.output_path)
    except UnsafePathError:
        raise ApiError(
            404, f"the output of job {job_uuid} is not available", code="output_missing"
        ) from None
    if not await trio.to_thread.run_sync(path.is_file):
        raise ApiError(404, f"the output file of job {job_uuid} is gone", code="output_missing")
    name = download_name(project_name, job_uuid, job.completed_at)
    return await serve_file(path, request, download_name=name, mimetype="video/mp4")


def download_name(project_name: str, job_uuid: str, completed_at: datetime | None) -> str:
    """``<project name>-<date>.mp4``, the date left out when the name already holds it.

    The name keeps its letters (``Sprung Müller`` → ``Sprung-Müller-…``); the
    ASCII fallback for old clients is made in :func:`~..downloads.content_disposition`.
    """
    base = safe_file_name(project_name, fallback="render")[:80]
    if completed_at is None:
        return f"{base}-{job_uuid[:8]}.mp4"
    if _names_date(project_name, completed_at):
        return f"{base}.mp4"
    return f"{base}-{completed_at:%Y-%m-%d}.mp4"


def _names_date(name: str, day: datetime) -> bool:
    """Whether ``name`` already carries ``day`` (2026-01-31, 2026_01_31, 20260131, 31.01.2026)."""
    forms = (f"{day:%Y-%m-%d}", f"{day:%Y_%m_%d}", f"{day:%Y%m%d}", f"{day:%d.%m.%Y}")
    return any(form in name for form in forms)
