"""Share links: create, list, revoke, and resolve a token to the file it unlocks.

Sync functions for ``Database.run``. A token is 32 random bytes (URL-safe base64,
43 characters): unguessable, so the link itself is the credential. Only its
SHA-256 is stored and looked up; comparing hashes by index lookup leaks nothing
useful through timing, as an attacker cannot choose hash prefixes.

A link answers only while its job is ``completed`` with an output, it has not
expired and was not revoked; every other case looks the same from outside
(:class:`ShareNotFound`), so a link's history is not disclosed to whoever holds it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import attrs
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..models import Job, JobStatus, Project, ShareLink, isoformat, new_uuid, utcnow

#: Default and largest lifetime of a link.
DEFAULT_HOURS = 24 * 7
MAX_HOURS = 24 * 365


class ShareNotFound(LookupError):
    """No usable link (unknown, expired, revoked, or its output is gone)."""


class NotShareable(ValueError):
    """The job has no finished output to share (yet)."""


class JobNotFound(LookupError):
    """The job named in the request does not exist."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _link_view(link: ShareLink, job_uuid: str) -> dict[str, Any]:
    now = utcnow()
    state = (
        "revoked" if link.revoked_at is not None
        else "expired" if link.expires_at <= now
        else "active"
    )
    return {
        "uuid": link.uuid,
        "job_uuid": job_uuid,
        "state": state,
        "created_at": isoformat(link.created_at),
        "expires_at": isoformat(link.expires_at),
        "revoked_at": isoformat(link.revoked_at),
        "views": link.views,
        "last_viewed_at": isoformat(link.last_viewed_at),
    }


def _job(session: Session, job_uuid: str) -> Job:
    job = session.scalars(select(Job).where(Job.uuid == job_uuid)).one_or_none()
    if job is None:
        raise JobNotFound(job_uuid)
    return job


def create(session: Session, *, job_uuid: str, hours: float) -> tuple[dict[str, Any], str]:
    """A new link for the job's output; returns its view and the token (shown once)."""
    job = _job(session, job_uuid)
    if job.status is not JobStatus.COMPLETED or not job.output_path:
        raise NotShareable(
            f"job {job_uuid} has no finished output to share: it is {job.status.value}"
        )
    token = secrets.token_urlsafe(32)
    now = utcnow()
    link = ShareLink(
        uuid=new_uuid(),
        job_id=job.id,
        token_hash=token_hash(token),
        created_at=now,
        expires_at=now + timedelta(hours=hours),
        views=0,
    )
    session.add(link)
    session.flush()
    return _link_view(link, job_uuid), token


def list_for_job(session: Session, job_uuid: str) -> list[dict[str, Any]]:
    job = _job(session, job_uuid)
    links = session.scalars(
        select(ShareLink).where(ShareLink.job_id == job.id).order_by(ShareLink.id)
    ).all()
    return [_link_view(link, job_uuid) for link in links]


def revoke(session: Session, *, job_uuid: str, share_uuid: str) -> dict[str, Any]:
    job = _job(session, job_uuid)
    link = session.scalars(
        select(ShareLink).where(ShareLink.uuid == share_uuid, ShareLink.job_id == job.id)
    ).one_or_none()
    if link is None:
        raise ShareNotFound(f"job {job_uuid} has no share link {share_uuid}")
    if link.revoked_at is None:
        link.revoked_at = utcnow()
    session.flush()
    return _link_view(link, job_uuid)


@attrs.frozen
class Shared:
    """What a valid token unlocks."""

    output_path: str  # relative to the storage root
    project_name: str
    completed_at: datetime | None
    expires_at: datetime


def resolve(session: Session, token: str, *, count_view: bool) -> Shared:
    """The output a token unlocks now, or :class:`ShareNotFound` (whatever the reason)."""
    if not token or len(token) > 128:
        raise ShareNotFound("no such link")
    row = session.execute(
        select(ShareLink, Job.status, Job.output_path, Job.completed_at, Project.name)
        .join(Job, Job.id == ShareLink.job_id)
        .join(Project, Project.id == Job.project_id)
        .where(ShareLink.token_hash == token_hash(token))
    ).first()
    now = utcnow()
    if row is None:
        raise ShareNotFound("no such link")
    link, status, output_path, completed_at, project_name = row
    if (
        link.revoked_at is not None
        or link.expires_at <= now
        or status is not JobStatus.COMPLETED
        or not output_path
    ):
        raise ShareNotFound("this link has expired or was withdrawn")
    if count_view:
        session.execute(
            update(ShareLink)
            .where(ShareLink.id == link.id)
            .values(views=ShareLink.views + 1, last_viewed_at=now)
        )
    return Shared(output_path, project_name, completed_at, link.expires_at)
