"""Queueing a render: the checks and the ``job`` row behind ``POST /api/projects/{uuid}/render``.

One service for every way a render starts — the route, ingest's
``INGEST_AUTO_RENDER``, the operator CLI through the route — so they refuse the same
things with the same words (errors are :class:`~..errors.ApiError`, mapped in
``errors.py``) and announce the job the same way (``job:status`` on the hub, the
supervisor woken, the webhook outbox row written in the job's own transaction).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..context import StinercutApp
from ..errors import ApiError
from ..jobs import queue
from ..jobs.options import RenderOptions, merge, project_options
from ..jobs.supervisor import status_message
from ..models import Asset, Job, JobStatus, Project, Video
from ..openapi import validation_failure
from ..storage import Storage, UnsafePathError
from ..webhooks import outbox


async def queue_render(
    app: StinercutApp,
    project_uuid: str,
    overrides: RenderOptions | None,
    *,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """Create the pending job (or raise why not) and announce it; returns its view."""
    view = await app.db.run(
        partial(
            create_job,
            storage=app.storage,
            project_uuid=project_uuid,
            overrides=overrides,
            callback_url=callback_url,
        )
    )
    app.webhooks.wake()
    await app.supervisor.publish("job:status", status_message(view, project_uuid))
    app.supervisor.wake()
    return view


def create_job(
    session: Session,
    *,
    storage: Storage,
    project_uuid: str,
    overrides: RenderOptions | None,
    callback_url: str | None = None,
) -> dict[str, Any]:
    project = session.scalars(select(Project).where(Project.uuid == project_uuid)).first()
    if project is None:
        raise ApiError.not_found("project", project_uuid)
    queue.lock_project(session, project.id)
    try:
        stored = project_options(project.settings_dict())
    except ValidationError as exc:
        failure = validation_failure(exc, "render settings stored on the project")
        failure.code = "invalid_settings"
        raise failure from None
    options = merge(stored, overrides)
    problems = render_problems(session, storage, project, options)
    if problems:
        raise ApiError(
            422, "; ".join(problems), code="not_renderable", details={"problems": problems}
        )
    active = queue.active_job(session, project.id)
    if active is not None:
        raise ApiError.conflict(
            f"project {project_uuid} already has a {active.status.value} job",
            job=active.uuid,
            status=active.status.value,
        )
    job = Job(
        project_id=project.id, status=JobStatus.PENDING, progress=0, callback_url=callback_url
    )
    job.options = json.dumps(options.stored())
    session.add(job)
    session.flush()
    session.refresh(job)
    outbox.job_changed(session, job, project.uuid)
    return job.to_view(project.uuid)


def render_problems(
    session: Session, storage: Storage, project: Project, options: RenderOptions
) -> list[str]:
    problems: list[str] = []
    clips = session.scalars(
        select(Video).where(Video.project_id == project.id).order_by(Video.order, Video.id)
    ).all()
    if not clips:
        problems.append("the project has no clips")
    for clip in clips:
        problems += file_problems(storage, f"clip '{clip.filename}'", clip.path)
        start, end = clip.in_point or 0.0, clip.out_point
        if end is not None and end <= start:
            problems.append(
                f"clip '{clip.filename}': out point {end:g} is not after in point {start:g}"
            )
        if clip.duration and start >= clip.duration:
            problems.append(f"clip '{clip.filename}': in point {start:g} is beyond its end")
    for name, value in queue.requested_assets(options).items():  # music per phase included
        if value is None:
            continue
        asset = session.scalars(select(Asset).where(Asset.uuid == str(value))).first()
        if asset is None:
            problems.append(f"{name}: asset {value} does not exist")
            continue
        allowed = queue.ASSET_TYPES[name]
        if asset.type.value not in allowed:
            problems.append(
                f"{name}: asset '{asset.name}' is a {asset.type.value} asset, "
                f"not {' or '.join(allowed)}"
            )
            continue
        problems += file_problems(storage, f"{name} '{asset.name}'", asset.path)
    return problems


def file_problems(storage: Storage, label: str, relative: str) -> list[str]:
    try:
        path = storage.resolve(relative)
    except UnsafePathError as exc:
        return [f"{label}: stored path is unsafe ({exc})"]
    if not path.is_file():
        return [f"{label}: source file {relative} is missing"]
    return []
