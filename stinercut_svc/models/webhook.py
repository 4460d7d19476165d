"""``webhook_delivery``: the outbox of job-state callbacks.

One row per (job state change, callback URL), written in the same transaction as the
state change itself, so a change that happened is never without its delivery and a
delivery never announces a change that was rolled back. The dispatcher
(:mod:`stinercut_svc.webhooks.dispatcher`) works through the rows: it leases a due
row (``next_attempt_at`` moved past the lease), POSTs it, and records the outcome. A
service killed mid-delivery leaves a row whose lease simply runs out, so the delivery
is retried by whichever instance looks next: at-least-once, with ``event_id`` as the
receiver's idempotency key.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import MYSQL_TABLE_ARGS, UUID_TYPE, Base, enum_column, id_column


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # due at next_attempt_at (also while leased by a dispatcher)
    DELIVERED = "delivered"  # the receiver answered 2xx
    ABANDONED = "abandoned"  # still failing when the retry window closed, or refused URL


class WebhookDelivery(Base):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("event_id", name="webhook_delivery_event_id_unique"),
        Index("webhook_delivery_due_index", "status", "next_attempt_at"),
        Index("webhook_delivery_job_index", "job_uuid"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = id_column()
    event_id: Mapped[str] = mapped_column(UUID_TYPE, nullable=False)
    job_uuid: Mapped[str] = mapped_column(UUID_TYPE, nullable=False)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    #: The exact bytes that are signed and sent (UTF-8 JSON).
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column(DeliveryStatus, "deliverystatus"),
        nullable=False,
        default=DeliveryStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
