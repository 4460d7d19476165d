"""Jump resolution: the freefall window on ``video``, staff confirmation on ``jump``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

* ``video.freefall_start_s`` / ``video.freefall_end_s`` (double, nullable): the part
  of the jump's freefall that lies in this clip's source file, in seconds on that
  file's own timeline (not relative to ``in_point``). The renderer reads them to
  start the freefall music at exit and end it at deployment. ``video`` is the
  frontend's table, so both are nullable and added only when missing (a frontend
  that already knows them keeps its definition).
* ``video.video_file_id`` (nullable, indexed, no foreign key): the imported file a
  clip was filled from, so filling again updates or moves that row instead of adding
  one.
* ``jump.confirmed_at`` (nullable): staff accepted the jump as it stands (e.g. a
  jump without a detectable freefall), which makes it ``resolved`` once it has a
  customer; ``jump.edited_at`` (nullable): when staff last changed the jump
  (assignment, split, merge), so a re-run of the batch can tell staff's rows from
  the analysis's own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_MYSQL = ("mysql", "mariadb")
DOUBLE: sa.types.TypeEngine[float] = sa.Double().with_variant(
    mysql.DOUBLE(asdecimal=False), *_MYSQL
)
ID = sa.Integer().with_variant(mysql.BIGINT(unsigned=True), *_MYSQL)

_VIDEO_COLUMNS = ("freefall_start_s", "freefall_end_s")
_LINK_INDEX = "video_video_file_id_index"
_JUMP_COLUMNS = ("confirmed_at", "edited_at")


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    have = _columns("video")
    for name in _VIDEO_COLUMNS:
        if name not in have:
            op.add_column("video", sa.Column(name, DOUBLE, nullable=True))
    if "video_file_id" not in have:
        op.add_column("video", sa.Column("video_file_id", ID, nullable=True))
    indexes = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("video")}
    if _LINK_INDEX not in indexes:
        op.create_index(_LINK_INDEX, "video", ["video_file_id"])
    have = _columns("jump")
    for name in _JUMP_COLUMNS:
        if name not in have:
            op.add_column("jump", sa.Column(name, sa.DateTime(), nullable=True))


def downgrade() -> None:
    if _LINK_INDEX in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("video")}:
        op.drop_index(_LINK_INDEX, "video")
    for table, names in (("jump", _JUMP_COLUMNS), ("video", (*_VIDEO_COLUMNS, "video_file_id"))):
        present = [n for n in names if n in _columns(table)]
        if present:
            # batch mode: SQLite rebuilds the table, MySQL drops in place.
            with op.batch_alter_table(table) as batch:
                for name in present:
                    batch.drop_column(name)
