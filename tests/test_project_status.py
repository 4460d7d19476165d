"""Project status is a pure function of its jobs, applied with every job change."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from stinercut_svc.app import create_app
from stinercut_svc.context import StinercutApp
from stinercut_svc.jobs import queue
from stinercut_svc.models import Job, JobStatus, Project, ProjectStatus
from stinercut_svc.services.project_status import JobFacts, derive
from tests.test_render_helpers import (
    LONG_RENDER,
    add_project,
    broken_clip,
    clip,
    job_row,
    long_clip,
    project_status,
    start_render,
    wait_job,
    wait_rendering,
)

T0 = datetime(2026, 1, 1)


def facts(*items: tuple[JobStatus, bool, int]) -> list[JobFacts]:
    """(status, has_output, minutes after T0 it finished) per job."""
    return [
        JobFacts(status, output, T0 + timedelta(minutes=at) if status.is_finished else None, i)
        for i, (status, output, at) in enumerate(items)
    ]


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ([], ProjectStatus.DRAFT),
        ([(JobStatus.PENDING, False, 0)], ProjectStatus.DRAFT),  # queued, nothing runs
        ([(JobStatus.PROCESSING, False, 0)], ProjectStatus.PROCESSING),
        ([(JobStatus.COMPLETED, True, 1), (JobStatus.PROCESSING, False, 0)], ProjectStatus.PROCESSING),
        ([(JobStatus.COMPLETED, True, 1), (JobStatus.CANCELLED, False, 2)], ProjectStatus.COMPLETED),
        ([(JobStatus.COMPLETED, True, 1), (JobStatus.FAILED, False, 2)], ProjectStatus.COMPLETED),
        ([(JobStatus.COMPLETED, False, 1)], ProjectStatus.DRAFT),  # output deleted
        ([(JobStatus.FAILED, False, 1)], ProjectStatus.ERROR),
        ([(JobStatus.FAILED, False, 1), (JobStatus.CANCELLED, False, 2)], ProjectStatus.DRAFT),
        ([(JobStatus.CANCELLED, False, 1), (JobStatus.FAILED, False, 2)], ProjectStatus.ERROR),
        ([(JobStatus.FAILED, False, 1), (JobStatus.PENDING, False, 0)], ProjectStatus.ERROR),
    ],
)
def test_rule(jobs: list[tuple[JobStatus, bool, int]], expected: ProjectStatus) -> None:
    assert derive(facts(*jobs)) is expected


async def test_cancelled_rerender_keeps_a_finished_video_completed(
    app: StinercutApp, client, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    project = await add_project(app, [long_clip(media_dir)])
    first = await start_render(client, project, {"output": {"preset": "ultrafast"}})
    assert (await wait_job(app, first["uuid"], timeout=120))["status"] == "completed"
    assert await project_status(app, project) == "completed"

    again = await start_render(client, project, LONG_RENDER)
    await wait_rendering(app, again["uuid"])
    assert await project_status(app, project) == "processing"
    response = await client.post(f"/api/jobs/{again['uuid']}/cancel")
    assert (await response.get_json())["status"] == "cancelled"
    assert await project_status(app, project) == "completed"  # was "draft" before

    # Deleting the only completed job takes its video away: back to draft.
    response = await client.delete(f"/api/jobs/{first['uuid']}")
    assert response.status_code == 200
    assert await project_status(app, project) == "draft"


async def test_failure_then_cancel_pending(
    app: StinercutApp, client, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    project = await add_project(app, [broken_clip(media_dir)])
    job = await start_render(client, project)
    assert (await wait_job(app, job["uuid"]))["status"] == "failed"
    assert await project_status(app, project) == "error"
    # A cancel is now the most recent finish: draft (the failure is history).
    project_id = await app.db.run(
        lambda s: s.scalars(select(Project.id).where(Project.uuid == project)).one()
    )

    def queue_and_cancel(session) -> str:  # type: ignore[no-untyped-def]
        # One transaction: the supervisor cannot claim the job in between.
        row = Job(project_id=project_id, progress=0, options=json.dumps({}))
        row.status = JobStatus.PENDING
        session.add(row)
        session.flush()
        outcome = queue.request_cancel(session, row.uuid)
        assert outcome is not None and outcome.action == "cancelled_pending"
        return row.uuid

    await app.db.run(queue_and_cancel)
    assert await project_status(app, project) == "draft"


async def test_shutdown_requeue_leaves_the_project_not_processing(
    settings, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    app = create_app(settings)
    async with app.test_app():
        clips = [long_clip(media_dir), clip(media_dir, "c1s", seconds=1, size="160x120")]
        project = await add_project(app, clips)
        job = await start_render(app.test_client(), project, LONG_RENDER)
        await wait_rendering(app, job["uuid"])
        assert await project_status(app, project) == "processing"
    row = await job_row(app, job["uuid"])
    assert row["status"] == "pending" and row["interruptions"] == 0
    assert await project_status(app, project) == "draft"
