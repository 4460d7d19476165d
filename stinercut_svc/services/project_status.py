"""A project's status, derived from its jobs and outputs — never set by hand.

Each place that used to write a status of its own (claim, finish, cancel,
requeue at shutdown, recovery) got some transition wrong: a cancelled re-render
turned a project with a finished video back to ``draft``; a shutdown left it
``processing`` with nothing running. So the status is now a pure function of the
job rows, computed here and written by :func:`refresh` in the same transaction
as every job state change:

1. ``processing`` — a job of the project is being rendered (status ``processing``).
   A ``pending`` job alone does not count: after a shutdown the job waits in the
   queue and nothing runs, and the project must not claim otherwise.
2. ``completed`` — some completed job still has its output.
3. ``error`` — the most recently finished job failed (and nothing is completed).
4. ``draft`` — anything else (no jobs, only cancelled ones, a cancel after a failure).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import attrs
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..models import Job, JobStatus, Project, ProjectStatus


@attrs.frozen
class JobFacts:
    """What the rule needs of one job."""

    status: JobStatus
    has_output: bool
    completed_at: datetime | None
    id: int


def derive(jobs: Iterable[JobFacts]) -> ProjectStatus:
    """The project status the rule in the module docstring gives for these jobs."""
    facts = list(jobs)
    if any(j.status is JobStatus.PROCESSING for j in facts):
        return ProjectStatus.PROCESSING
    if any(j.status is JobStatus.COMPLETED and j.has_output for j in facts):
        return ProjectStatus.COMPLETED
    finished = [j for j in facts if j.status.is_finished]
    if finished:
        latest = max(finished, key=lambda j: (j.completed_at or datetime.min, j.id))
        if latest.status is JobStatus.FAILED:
            return ProjectStatus.ERROR
    return ProjectStatus.DRAFT


def refresh(session: Session, project_id: int) -> ProjectStatus:
    """Recompute and store the project's status (call it after changing its jobs)."""
    session.flush()
    rows = session.execute(
        select(Job.id, Job.status, Job.output_path, Job.completed_at).where(
            Job.project_id == project_id
        )
    )
    status = derive(
        JobFacts(row.status, bool(row.output_path), row.completed_at, row.id) for row in rows
    )
    session.execute(
        update(Project)
        .where(Project.id == project_id, Project.status != status)
        .values(status=status)
        .execution_options(synchronize_session=False)
    )
    return status


__all__ = ["JobFacts", "derive", "refresh"]
