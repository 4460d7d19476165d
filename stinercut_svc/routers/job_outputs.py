"""A render's editions over HTTP: list them, download one.

``GET /api/jobs/{uuid}/output`` (routers/jobs.py) stays the main output, the
file the frontend knows. A render that asked for editions (``editions`` in the
render options: a vertical 1080x1920, a 640 px preview) wrote them in the same
ffmpeg run; they are listed here with the main output first, and each is
served like the main output (Range requests, the same download name with the
edition's name added).
"""

from __future__ import annotations

import re
from typing import Any

import trio
from pydantic import BaseModel
from quart import Blueprint, Response, request
from quart_schema import document_response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import current
from ..downloads import serve_file
from ..errors import ApiError
from ..jobs.options import EDITION_NAME
from ..models import Job, JobOutput, JobStatus, Project
from ..storage import UnsafePathError
from .docs import errors, file_response
from .jobs import _find_job, download_name
from .params import parse_uuid

blueprint = Blueprint("job_outputs", __name__)


class OutputOut(BaseModel):
    name: str
    width: int | None
    height: int | None
    codec: str | None
    size_bytes: int | None
    created_at: str | None
    download_url: str


class OutputList(BaseModel):
    job: str
    items: list[OutputOut]


def _load(session: Session, job_uuid: str) -> tuple[Job, str, list[JobOutput]]:
    job, _ = _find_job(session, job_uuid)
    project_name = session.scalars(select(Project.name).where(Project.id == job.project_id)).one()
    rows = list(session.scalars(
        select(JobOutput).where(JobOutput.job_id == job.id).order_by(JobOutput.id)
    ))  # fmt: skip
    return job, project_name, rows


@blueprint.get("/api/jobs/<uuid>/outputs")
@document_response(OutputList)
@errors(400, 404)
async def list_outputs(uuid: str) -> dict[str, Any]:
    """The job's files: ``main`` (the job's output) and every edition, once completed."""
    job_uuid = parse_uuid(uuid)
    job, _, rows = await current().db.run(lambda s: _load(s, job_uuid))
    items: list[dict[str, Any]] = []
    if job.status is JobStatus.COMPLETED and job.output_path:
        items.append({
            "name": "main", "width": None, "height": None, "codec": None, "size_bytes": None,
            "created_at": None, "download_url": f"/api/jobs/{job_uuid}/output",
        })  # fmt: skip
        items += [row.to_api(job_uuid) for row in rows]
    return {"job": job_uuid, "items": items}


@blueprint.get("/api/jobs/<uuid>/outputs/<name>/download")
@file_response("video/mp4", ranges=True)
@errors(400, 404, 409, 416)
async def download_edition(uuid: str, name: str) -> Response:
    """One edition's MP4 (``main`` is the job's own output); ``Range`` answered with 206."""
    job_uuid = parse_uuid(uuid)
    if name != "main" and not re.fullmatch(EDITION_NAME, name):
        raise ApiError(400, f"not an edition name: {name!r}", code="bad_edition_name")
    app = current()
    job, project_name, rows = await app.db.run(lambda s: _load(s, job_uuid))
    if job.status is not JobStatus.COMPLETED or not job.output_path:
        raise ApiError.conflict(
            f"job {job_uuid} has no output: it is {job.status.value}", status=job.status.value
        )
    if name == "main":
        relative = job.output_path
    else:
        row = next((r for r in rows if r.name == name), None)
        if row is None:
            raise ApiError(404, f"job {job_uuid} has no edition {name!r}",
                           code="edition_not_found")  # fmt: skip
        relative = row.path
    try:
        path = app.storage.resolve(relative)
    except UnsafePathError:
        raise ApiError(404, f"edition {name!r} of job {job_uuid} is not available",
                       code="output_missing") from None  # fmt: skip
    if not await trio.to_thread.run_sync(path.is_file):
        raise ApiError(404, f"the file of edition {name!r} of job {job_uuid} is gone",
                       code="output_missing")  # fmt: skip
    base = download_name(project_name, job_uuid, job.completed_at)
    filename = base if name == "main" else base.removesuffix(".mp4") + f"-{name}.mp4"
    return await serve_file(path, request, download_name=filename, mimetype="video/mp4")
