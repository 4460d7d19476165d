"""Webhooks: callback URLs on project and job, and the delivery outbox.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

Additive: ``project.callback_url`` and ``job.callback_url`` are nullable (the frontend
neither reads nor writes them); ``webhook_delivery`` is this service's own table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_MYSQL = ("mysql", "mariadb")
ID = sa.Integer().with_variant(mysql.BIGINT(unsigned=True), *_MYSQL)
UUID = sa.String(36).with_variant(mysql.CHAR(36), *_MYSQL)
STATUSES = ("pending", "delivered", "abandoned")


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table in ("project", "job"):
        if "callback_url" not in {c["name"] for c in inspector.get_columns(table)}:
            with op.batch_alter_table(table) as batch:
                batch.add_column(sa.Column("callback_url", sa.String(2048), nullable=True))
    op.create_table(
        "webhook_delivery",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", UUID, nullable=False),
        sa.Column("job_uuid", UUID, nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(*STATUSES, name="deliverystatus", create_constraint=True),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("event_id", name="webhook_delivery_event_id_unique"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index(
        "webhook_delivery_due_index", "webhook_delivery", ["status", "next_attempt_at"]
    )
    op.create_index("webhook_delivery_job_index", "webhook_delivery", ["job_uuid"])


def downgrade() -> None:
    op.drop_table("webhook_delivery")
    for table in ("job", "project"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("callback_url")
