"""Recording a render's editions (``job_output`` rows) with its completion.

The main output stays in ``job.output_path`` (the frontend's column); every
further edition of the same run gets a ``job_output`` row, written in the same
transaction that marks the job completed, so a listing never shows a completed
job with half its editions, nor editions of a job that did not complete.
"""

from __future__ import annotations

import attrs
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..models import Job, JobOutput, JobStatus, utcnow
from . import queue


@attrs.frozen
class EditionFile:
    """An edition moved to its final place (path relative to the storage root)."""

    name: str
    path: str
    width: int
    height: int
    codec: str
    size_bytes: int | None


def finish_with_editions(
    session: Session,
    *,
    job_id: int,
    owner: str,
    output_path: str,
    editions: tuple[EditionFile, ...],
) -> Job | None:
    """:func:`queue.finish` as completed, plus one row per edition (idempotent on retry)."""
    job = queue.finish(session, job_id=job_id, owner=owner, status=JobStatus.COMPLETED,
                       output_path=output_path)  # fmt: skip
    if job is None:
        return None
    # A retry after a lost answer, or a re-render of the same job: replace, never duplicate.
    session.execute(delete(JobOutput).where(JobOutput.job_id == job_id))
    now = utcnow()
    for edition in editions:
        session.add(JobOutput(job_id=job_id, name=edition.name, path=edition.path,
                              width=edition.width, height=edition.height, codec=edition.codec,
                              size_bytes=edition.size_bytes, created_at=now))  # fmt: skip
    return job


def edition_paths(session: Session, *, job_uuid: str | None = None,
                  project_id: int | None = None) -> list[str]:  # fmt: skip
    """Stored paths of the editions of one job, or of every job of a project (for deletion)."""
    query = select(JobOutput.path).join(Job, Job.id == JobOutput.job_id)
    if job_uuid is not None:
        query = query.where(Job.uuid == job_uuid)
    if project_id is not None:
        query = query.where(Job.project_id == project_id)
    return list(session.scalars(query))
