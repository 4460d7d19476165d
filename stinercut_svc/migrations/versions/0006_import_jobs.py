"""Import batches as supervised work: claim owner, heartbeat, cancel flag, origin.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

An ``import_batch`` row is claimed and run by the job supervisor like a render
(``stinercut_svc.ingest.handler``), so it gets the same bookkeeping as ``job``
(0002). All additive, nullable or with a server default, so the original
frontend's reads and inserts keep working:

* ``source_kind``: ``card`` (the service copies from ``mount_path``) or ``input``
  (the files are already in ``input/<uuid>/``: the new detector copied them).
* ``claimed_by`` / ``heartbeat_at`` / ``started_at``: which instance runs the
  batch, since when, and when it last said so; a stale batch is recovered.
* ``interruptions``: how often the batch was found abandoned by a dead instance.
* ``cancel_requested``: set by ``POST /api/imports/{uuid}/cancel`` on any instance.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = (
    "source_kind",
    "claimed_by",
    "heartbeat_at",
    "started_at",
    "interruptions",
    "cancel_requested",
)


def upgrade() -> None:
    with op.batch_alter_table("import_batch") as batch:
        batch.add_column(sa.Column("source_kind", sa.String(20), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(120), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("started_at", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("interruptions", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column(
                "cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("import_batch") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
