"""Jumps remember which signal found their freefall: ``jump.freefall_source``.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

The analysis fuses two signals per recording, the sound and the GoPro's GPS altitude
(``gpmd`` track), and each freefall says which found it: ``audio``, ``telemetry`` or
``both``. Staff judging a jump want to know that (a window from the altitude alone on
a muted camera reads differently from one the sound found). One nullable
``VARCHAR(16)`` holding the value, like the table's other enum columns; null for jumps
stored before this revision and for windows staff's changes moved. ``jump`` is this
service's own table, so the column is added unconditionally.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jump") as batch:
        batch.add_column(sa.Column("freefall_source", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jump") as batch:
        batch.drop_column("freefall_source")
