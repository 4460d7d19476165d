"""Share links: ``share_link`` (expiring, revocable customer links to a job's output).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

This service's own table; a job's links go with the job (ON DELETE CASCADE).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_MYSQL = ("mysql", "mariadb")
ID = sa.Integer().with_variant(mysql.BIGINT(unsigned=True), *_MYSQL)
UUID = sa.String(36).with_variant(mysql.CHAR(36), *_MYSQL)


def upgrade() -> None:
    op.create_table(
        "share_link",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("uuid", UUID, nullable=False),
        sa.Column(
            "job_id",
            ID,
            sa.ForeignKey("job.id", ondelete="CASCADE", name="share_link_job_id_foreign"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("last_viewed_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("uuid", name="share_link_uuid_unique"),
        sa.UniqueConstraint("token_hash", name="share_link_token_hash_unique"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index("share_link_job_index", "share_link", ["job_id"])


def downgrade() -> None:
    op.drop_table("share_link")
