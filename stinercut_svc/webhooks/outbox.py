"""The ``webhook_delivery`` outbox: sync functions run inside ``Database.run``.

:func:`job_changed` is called by the job queue in the same transaction that changes a
job's state (creation, claim, finish, requeue, recovery, cancel), so the delivery
exists exactly when the change does. The dispatcher then:

1. :func:`lease_due` — picks due rows and pushes their ``next_attempt_at`` one lease
   ahead *before* sending, so a second instance (or this one after a crash) does not
   send the same row at the same time, and a crashed sender's row comes due again by
   itself when the lease runs out;
2. :func:`record_success` / :func:`record_failure` — marks the row delivered, or
   schedules the next attempt with exponential backoff, or abandons it once the
   retry window (``WEBHOOK_RETRY_WINDOW_S``, default a day) has closed.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

import attrs
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..models.base import new_uuid, utcnow
from ..models.job import Job
from ..models.project import Project
from ..models.webhook import DeliveryStatus, WebhookDelivery

EVENT = "job.status"
#: A leased row is retried after this long if its sender never reported back.
LEASE = timedelta(seconds=120)
#: The backoff never waits longer than this between two attempts.
MAX_BACKOFF_S = 600.0


@attrs.frozen
class Due:
    id: int
    event_id: str
    url: str
    body: bytes
    attempts: int


def job_changed(session: Session, job: Job, project_uuid: str | None = None) -> int:
    """Queue the webhook for ``job``'s current state; returns 1 if one was queued.

    The job's own ``callback_url`` wins over its project's; no URL, no row.
    """
    url = job.callback_url
    if url is None or project_uuid is None:
        row = session.execute(
            select(Project.callback_url, Project.uuid).where(Project.id == job.project_id)
        ).first()
        if row is None:
            return 0
        url = url or row.callback_url
        project_uuid = row.uuid
    if not url:
        return 0
    now = utcnow()
    event_id = new_uuid()
    payload: dict[str, Any] = {
        "event": EVENT,
        "event_id": event_id,
        "occurred_at": now.isoformat(timespec="milliseconds") + "Z",
        "job": job.to_view(project_uuid),
    }
    session.add(
        WebhookDelivery(
            event_id=event_id,
            job_uuid=job.uuid,
            url=url,
            body=json.dumps(payload, separators=(",", ":"), sort_keys=True),
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return 1


def lease_due(session: Session, *, limit: int, mysql: bool) -> list[Due]:
    """Take up to ``limit`` due deliveries for one lease (see the module docstring)."""
    now = utcnow()
    query = (
        select(WebhookDelivery)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    if mysql:
        query = query.with_for_update(skip_locked=True)
    leased: list[Due] = []
    for row in session.scalars(query).all():
        row.next_attempt_at = now + LEASE
        leased.append(
            Due(row.id, row.event_id, row.url, row.body.encode("utf-8"), row.attempts)
        )
    return leased


def next_due_at(session: Session) -> datetime | None:
    """When the earliest pending delivery comes due (None: nothing pending)."""
    return session.scalar(
        select(WebhookDelivery.next_attempt_at)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(1)
    )


def record_success(session: Session, delivery_id: int) -> None:
    now = utcnow()
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            status=DeliveryStatus.DELIVERED,
            attempts=WebhookDelivery.attempts + 1,
            delivered_at=now,
            last_error=None,
        )
    )


def backoff_seconds(attempts: int, base: float) -> float:
    """Wait before attempt ``attempts + 1``: base·2^(attempts-1), capped, ±20 % jitter.

    The jitter spreads the retries of many deliveries that failed together (a
    receiver that was down) instead of sending them all back at the same instant.
    """
    delay = min(base * (2 ** max(attempts - 1, 0)), MAX_BACKOFF_S)
    return delay * random.uniform(0.8, 1.2)


def record_failure(
    session: Session,
    delivery_id: int,
    error: str,
    *,
    base_s: float,
    window: timedelta,
    permanent: bool = False,
) -> DeliveryStatus:
    """Schedule the next attempt, or abandon the row past the window (or if ``permanent``)."""
    row = session.get(WebhookDelivery, delivery_id)
    if row is None:
        return DeliveryStatus.ABANDONED
    now = utcnow()
    row.attempts += 1
    row.last_error = error[:500]
    retry_at = now + timedelta(seconds=backoff_seconds(row.attempts, base_s))
    if permanent or retry_at > row.created_at + window:
        row.status = DeliveryStatus.ABANDONED
    else:
        row.next_attempt_at = retry_at
    return row.status


def deliveries_for(session: Session, job_uuid: str) -> list[dict[str, Any]]:
    """The deliveries of one job, oldest first (for the API and tests)."""
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.job_uuid == job_uuid)
        .order_by(WebhookDelivery.id)
    ).all()
    return [
        {
            "event_id": row.event_id,
            "url": row.url,
            "status": row.status.value,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "created_at": row.created_at.isoformat(timespec="seconds") + "Z",
            "delivered_at": None
            if row.delivered_at is None
            else row.delivered_at.isoformat(timespec="seconds") + "Z",
        }
        for row in rows
    ]
