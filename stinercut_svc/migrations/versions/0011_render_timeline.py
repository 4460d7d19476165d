"""Render timeline: ``job_output`` (the extra editions of one render).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

This service's own table; the frontend's ``job`` table is unchanged (its
``output_path`` stays the main output). A job's editions go with the job.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_MYSQL = ("mysql", "mariadb")
ID = sa.Integer().with_variant(mysql.BIGINT(unsigned=True), *_MYSQL)


def upgrade() -> None:
    op.create_table(
        "job_output",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "job_id",
            ID,
            sa.ForeignKey("job.id", ondelete="CASCADE", name="job_output_job_id_foreign"),
            nullable=False,
        ),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("codec", sa.String(16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("job_id", "name", name="job_output_job_name_unique"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )


def downgrade() -> None:
    op.drop_table("job_output")
