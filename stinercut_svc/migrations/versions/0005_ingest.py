"""Ingest tables: import_batch, video_file, video_file_segment, jump, imported_file.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02

The first three are the original product's (its newer frontend release creates them
with these names, columns and index names; ``INGEST_NOTES.md``). Two starting points:

* the tables do not exist: they are created as the frontend would, plus this
  service's nullable columns;
* the frontend created them already: only the missing columns, indexes and foreign
  keys are added; no row and no existing column is touched.

``jump`` and ``imported_file`` are this service's. ``project_id`` columns are indexed
but carry no foreign key, as in the original: projects belong to the frontend.
The definitions are spelled out here, not imported from the models, so this revision
means the same thing whatever the models become later.

Downgrade drops all five tables (with the frontend's rows in them if it made them).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

_MYSQL = ("mysql", "mariadb")
ID = sa.Integer().with_variant(mysql.BIGINT(unsigned=True), *_MYSQL)
SECONDS = sa.Numeric(10, 3)
BLOB = sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), *_MYSQL)
TABLE_KW: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def _id() -> sa.Column:
    return sa.Column("id", ID, primary_key=True, autoincrement=True)


def _added_video_file_columns() -> list[sa.Column]:
    """This service's columns on ``video_file`` (all nullable)."""
    return [
        sa.Column("import_batch_id", ID, nullable=True),
        sa.Column("jump_id", ID, nullable=True),
        sa.Column("recording_key", sa.String(255), nullable=True),
        sa.Column("chapter", sa.Integer(), nullable=True),
        sa.Column("proxy_path", sa.String(500), nullable=True),
        sa.Column("in_point", SECONDS, nullable=True),
        sa.Column("out_point", SECONDS, nullable=True),
    ]


def _added_batch_columns() -> list[sa.Column]:
    return [
        sa.Column("copied_files", sa.Integer(), nullable=True),
        sa.Column("copied_bytes", sa.BigInteger(), nullable=True),
        sa.Column("total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("skipped_files", sa.Integer(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    is_mysql = bind.dialect.name in _MYSQL

    if "import_batch" in existing:
        _add_missing("import_batch", _added_batch_columns())
    else:
        op.create_table(
            "import_batch",
            _id(),
            sa.Column("uuid", sa.String(36), nullable=False),
            sa.Column("total_files", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("analyzed_files", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("detected_qr_count", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("detected_freefall_count", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("status", sa.String(50), nullable=False, server_default="pending"),
            sa.Column("resolution_type", sa.String(50), nullable=True),
            sa.Column("error_message", sa.Text(), nullable=True),
            sa.Column("mount_path", sa.String(255), nullable=True),
            sa.Column("created_at", sa.DateTime(), nullable=True),
            sa.Column("updated_at", sa.DateTime(), nullable=True),
            *_added_batch_columns(),
            sa.UniqueConstraint("uuid", name="import_batch_uuid_unique"),
            **TABLE_KW,
        )
        op.create_index("import_batch_status_index", "import_batch", ["status"])

    op.create_table(
        "jump",
        _id(),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("import_batch_id", ID, nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(50), nullable=False),
        sa.Column("reason", sa.String(50), nullable=True),
        sa.Column("reasons", sa.String(255), nullable=True),
        sa.Column("qr_code", sa.String(36), nullable=True),
        sa.Column("project_id", ID, nullable=True),
        sa.Column("freefall_recording", sa.String(255), nullable=True),
        sa.Column("freefall_start", SECONDS, nullable=True),
        sa.Column("freefall_end", SECONDS, nullable=True),
        sa.Column("freefall_confidence", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("uuid", name="jump_uuid_unique"),
        sa.UniqueConstraint("import_batch_id", "sequence", name="jump_batch_sequence_unique"),
        sa.ForeignKeyConstraint(
            ["import_batch_id"],
            ["import_batch.id"],
            name="jump_import_batch_id_foreign",
            ondelete="CASCADE",
        ),
        **TABLE_KW,
    )
    op.create_index("jump_project_id_index", "jump", ["project_id"])

    if "video_file" in existing:
        added = _add_missing("video_file", _added_video_file_columns())
        if is_mysql and "import_batch_id" in added:
            op.create_foreign_key(
                "video_file_import_batch_id_foreign",
                "video_file",
                "import_batch",
                ["import_batch_id"],
                ["id"],
                ondelete="CASCADE",
            )
            op.create_foreign_key(
                "video_file_jump_id_foreign",
                "video_file",
                "jump",
                ["jump_id"],
                ["id"],
                ondelete="SET NULL",
            )
    else:
        op.create_table(
            "video_file",
            _id(),
            sa.Column("uuid", sa.String(36), nullable=False),
            sa.Column("import_folder_uuid", sa.String(36), nullable=False),
            sa.Column("current_folder_uuid", sa.String(255), nullable=False),
            sa.Column("filepath", sa.String(500), nullable=False),
            sa.Column("original_filename", sa.String(255), nullable=False),
            sa.Column("duration", SECONDS, nullable=True),
            sa.Column("file_size_bytes", sa.BigInteger(), nullable=True),
            sa.Column("width", sa.Integer(), nullable=True),
            sa.Column("height", sa.Integer(), nullable=True),
            sa.Column("fps", sa.Numeric(6, 3), nullable=True),
            sa.Column("codec", sa.String(50), nullable=True),
            sa.Column("recorded_at", sa.DateTime(), nullable=True),
            sa.Column(
                "dominant_classification", sa.String(50), nullable=False, server_default="unknown"
            ),
            sa.Column("classification_confidence", sa.Numeric(5, 4), nullable=True),
            sa.Column("qr_content", sa.Text(), nullable=True),
            sa.Column("detected_project_uuid", sa.String(36), nullable=True),
            sa.Column("project_id", ID, nullable=True),
            sa.Column("status", sa.String(50), nullable=False, server_default="pending"),
            sa.Column("error_message", sa.Text(), nullable=True),
            sa.Column("jump_number", sa.Integer(), nullable=True),
            sa.Column("thumbnail", BLOB, nullable=True),
            sa.Column("import_source", sa.String(50), nullable=False, server_default="gopro"),
            sa.Column("created_at", sa.DateTime(), nullable=True),
            sa.Column("updated_at", sa.DateTime(), nullable=True),
            *_added_video_file_columns(),
            sa.UniqueConstraint("uuid", name="video_file_uuid_unique"),
            sa.ForeignKeyConstraint(
                ["import_batch_id"],
                ["import_batch.id"],
                name="video_file_import_batch_id_foreign",
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["jump_id"], ["jump.id"], name="video_file_jump_id_foreign", ondelete="SET NULL"
            ),
            **TABLE_KW,
        )
        for column in (
            "import_folder_uuid",
            "current_folder_uuid",
            "status",
            "detected_project_uuid",
            "project_id",
        ):
            op.create_index(f"video_file_{column}_index", "video_file", [column])
    _create_index_if_missing("video_file", "ix_video_file_import_batch_id", ["import_batch_id"])
    _create_index_if_missing("video_file", "ix_video_file_jump_id", ["jump_id"])
    _create_index_if_missing(
        "video_file",
        "video_file_batch_filepath_unique",
        ["import_batch_id", "filepath"],
        unique=True,
    )

    if "video_file_segment" not in existing:
        op.create_table(
            "video_file_segment",
            _id(),
            sa.Column("uuid", sa.String(36), nullable=False),
            sa.Column("video_file_id", ID, nullable=False),
            sa.Column("start_time", SECONDS, nullable=False),
            sa.Column("end_time", SECONDS, nullable=False),
            sa.Column("classification", sa.String(50), nullable=False),
            sa.Column("confidence", sa.Numeric(5, 4), nullable=True),
            sa.Column("sequence_order", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.UniqueConstraint("uuid", name="video_file_segment_uuid_unique"),
            sa.ForeignKeyConstraint(
                ["video_file_id"],
                ["video_file.id"],
                name="video_file_segment_video_file_id_foreign",
                ondelete="CASCADE",
            ),
            **TABLE_KW,
        )
        op.create_index(
            "video_file_segment_video_file_id_index", "video_file_segment", ["video_file_id"]
        )
        op.create_index(
            "video_file_segment_classification_index", "video_file_segment", ["classification"]
        )

    op.create_table(
        "imported_file",
        _id(),
        sa.Column("import_batch_id", ID, nullable=False),
        sa.Column("source_path", sa.String(500), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("quick_hash", sa.String(32), nullable=True),
        sa.Column("stored_path", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint(
            "import_batch_id", "source_path", name="imported_file_batch_source_unique"
        ),
        sa.ForeignKeyConstraint(
            ["import_batch_id"],
            ["import_batch.id"],
            name="imported_file_import_batch_id_foreign",
            ondelete="CASCADE",
        ),
        **TABLE_KW,
    )
    op.create_index("imported_file_identity_index", "imported_file", ["source_path", "size_bytes"])


def _add_missing(table: str, columns: list[sa.Column]) -> set[str]:
    """Add the columns a frontend-made table lacks; return the names added."""
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    added: set[str] = set()
    for column in columns:
        if column.name not in have:
            op.add_column(table, column)
            added.add(column.name)
    return added


def _create_index_if_missing(
    table: str, name: str, columns: list[str], *, unique: bool = False
) -> None:
    inspector = sa.inspect(op.get_bind())
    names = {i["name"] for i in inspector.get_indexes(table)}
    names |= {u["name"] for u in inspector.get_unique_constraints(table)}
    if name not in names:
        op.create_index(name, table, columns, unique=unique)


def downgrade() -> None:
    for table in ("video_file_segment", "video_file", "imported_file", "jump", "import_batch"):
        op.drop_table(table)
