"""Import batches remember that their copy finished: ``import_batch.copy_completed_at``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

A batch recovered after a restart (or retried) used to go back to ``copying`` and
read the card again: with the card already pulled, a batch whose every file was
copied ended ``error``. With the copy's end recorded, such a batch resumes straight
into analysis. One nullable column on the original's table: the frontend's reads
and writes of ``import_batch`` are unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_batch") as batch:
        batch.add_column(sa.Column("copy_completed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("import_batch") as batch:
        batch.drop_column("copy_completed_at")
