"""API tokens: ``api_token`` (access control, ``stinercut tokens ...``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

The service's own table (the frontend never reads it): tokens are stored only as
SHA-256 hashes, one unique index on the hash for the lookup per request. Spelled
out here, not imported from the model, so this revision keeps its meaning.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ID = sa.Integer().with_variant(mysql.BIGINT(unsigned=True), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index("api_token_token_hash_unique", "api_token", ["token_hash"], unique=True)
    op.create_index("api_token_name_index", "api_token", ["name"])


def downgrade() -> None:
    op.drop_table("api_token")
