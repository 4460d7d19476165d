"""Job supervision columns: options, render path, claim owner, heartbeat, cancel flag.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Additive only, every new column nullable or with a server default, so the
frontend (which reads and may insert ``job`` rows) keeps working unchanged.

* ``options``: the render options of the request (project settings merged with
  the request's overrides), JSON text, fixed when the job is created.
* ``render_path``: ``fastpath`` (stream copy) or ``reencode``, once known.
* ``claimed_by`` / ``heartbeat_at``: which service instance runs the job and when
  it last said so; a processing job whose heartbeat goes stale is recovered.
* ``interruptions``: how often the job was found abandoned by a dead instance.
* ``cancel_requested``: set by a cancel request on any instance; the instance
  running the job polls it and cancels the render.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("options", sa.Text(), nullable=True))
        batch.add_column(sa.Column("render_path", sa.String(16), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(120), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("interruptions", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column(
                "cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch.create_index("ix_job_status_created", ["status", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_index("ix_job_status_created")
        for name in (
            "cancel_requested",
            "interruptions",
            "heartbeat_at",
            "claimed_by",
            "render_path",
            "options",
        ):
            batch.drop_column(name)
