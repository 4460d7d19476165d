"""The five shared tables in the frontend's exact shape; the frontend's default settings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

The web frontend shares ``project``, ``video``, ``job``, ``asset`` and ``setting``
with this service and creates them itself when its migrations run first. When the
service created them (revisions 0001/0002), the frontend broke: no database default
for ``uuid``, ``float`` where it expects ``double``, other index and foreign-key
names, ``DATETIME`` where it has ``TIMESTAMP``, and none of its default settings
rows. This revision brings either starting point to the frontend's definitions
(``FRONTEND_CONTRACT.md``) without losing a row:

* a database made by revisions 0001+0002 of this service (MySQL/MariaDB or SQLite);
* a database the frontend made and :mod:`stinercut_svc.schema` adopted (stamped
  0001, then 0002 added the service's job columns): every statement below is
  then a no-op in effect.

MySQL/MariaDB: ``ALTER TABLE ... MODIFY`` each column to the frontend's definition,
in the frontend's column order; indexes renamed (or created) under the frontend's
names; the ``project_id`` foreign keys re-created under the frontend's names with
``ON DELETE CASCADE``; table charset ``utf8mb4``/``utf8mb4_unicode_ci`` on InnoDB.
The session time zone is ``+00:00`` while ``DATETIME`` columns become
``TIMESTAMP``, so the naive UTC values the service stored keep their instant.
Enum columns keep any extra value an existing table already allows (a newer
frontend release adds setting types), so no stored value is ever truncated.

SQLite (embedded, never shared): each table is rebuilt by Alembic's batch mode in
the same portable shape (names of indexes and foreign keys as above); column types
there stay SQLite's affinities. :func:`stinercut_svc.schema.upgrade` turns foreign
keys off around the migration so rebuilding ``project`` cascades nothing.

Finally the frontend's default ``video.*``/``storage.*`` settings rows are
inserted where their key is missing: the frontend only inserts them when *it*
creates ``setting``, so a database the service created never had them. Existing
rows are never changed.

The table definitions are spelled out here, not imported from the models, so this
revision keeps meaning the same thing whatever the models become later.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger("stinercut_svc.migrations.0003")

TABLES = ("project", "video", "job", "asset", "setting")
COLLATION = "utf8mb4_unicode_ci"

ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("project", "status"): ("draft", "processing", "completed", "error"),
    ("job", "status"): ("pending", "processing", "completed", "failed", "cancelled"),
    ("asset", "type"): ("intro", "outro", "watermark", "audio", "audio_freefall", "pax_template"),
    ("setting", "type"): ("string", "integer", "boolean", "json"),
}

ID = "bigint(20) unsigned NOT NULL AUTO_INCREMENT"
UUID = "char(36) NOT NULL DEFAULT (uuid())"
FK_ID = "bigint(20) unsigned NOT NULL"
TS = "timestamp NULL DEFAULT NULL"

#: Column definitions on MySQL/MariaDB, in the frontend's order. ``{enum}`` is
#: replaced by the column's ``enum(...)`` (see :data:`ENUMS`).
MYSQL_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "project": (
        ("id", ID),
        ("uuid", UUID),
        ("name", "varchar(255) NOT NULL"),
        ("status", "{enum} NOT NULL DEFAULT 'draft'"),
        # MariaDB: longtext utf8mb4_bin CHECK (json_valid(settings)); MySQL 8: json.
        ("settings", "json NULL DEFAULT NULL"),
        ("created_at", TS),
        ("updated_at", TS),
    ),
    "video": (
        ("id", ID),
        ("uuid", UUID),
        ("project_id", FK_ID),
        ("filename", "varchar(255) NOT NULL"),
        ("path", "varchar(512) NOT NULL"),
        ("duration", "double NULL DEFAULT NULL"),
        ("width", "int(11) NULL DEFAULT NULL"),
        ("height", "int(11) NULL DEFAULT NULL"),
        ("codec", "varchar(50) NULL DEFAULT NULL"),
        ("fps", "double NULL DEFAULT NULL"),
        ("order", "int(11) NOT NULL DEFAULT 0"),
        ("in_point", "double NULL DEFAULT NULL"),
        ("out_point", "double NULL DEFAULT NULL"),
        ("created_at", TS),
        ("updated_at", TS),
    ),
    "job": (
        ("id", ID),
        ("uuid", UUID),
        ("project_id", FK_ID),
        ("status", "{enum} NOT NULL DEFAULT 'pending'"),
        ("progress", "int(11) NOT NULL DEFAULT 0"),
        ("started_at", TS),
        ("completed_at", TS),
        ("output_path", "varchar(512) NULL DEFAULT NULL"),
        ("error_message", "text NULL DEFAULT NULL"),
        ("created_at", TS),
        ("updated_at", TS),
        # The service's own columns (revision 0002), after the frontend's.
        ("options", "text NULL DEFAULT NULL"),
        ("render_path", "varchar(16) NULL DEFAULT NULL"),
        ("claimed_by", "varchar(120) NULL DEFAULT NULL"),
        ("heartbeat_at", "datetime NULL DEFAULT NULL"),
        ("interruptions", "int(11) NOT NULL DEFAULT 0"),
        ("cancel_requested", "tinyint(1) NOT NULL DEFAULT 0"),
    ),
    "asset": (
        ("id", ID),
        ("uuid", UUID),
        ("type", "{enum} NOT NULL"),
        ("name", "varchar(255) NOT NULL"),
        ("path", "varchar(512) NOT NULL"),
        ("created_at", "timestamp NOT NULL DEFAULT current_timestamp()"),
    ),
    "setting": (
        ("id", ID),
        ("key", "varchar(255) NOT NULL"),
        ("value", "text NULL DEFAULT NULL"),
        ("type", "{enum} NOT NULL DEFAULT 'string'"),
        ("options", "text NULL DEFAULT NULL"),
        ("category", "varchar(100) NOT NULL"),
        ("label", "varchar(255) NOT NULL"),
        ("description", "text NULL DEFAULT NULL"),
        ("created_at", TS),
        ("updated_at", TS),
    ),
}

#: Index name → (columns, unique), per table: the frontend's names.
INDEXES: dict[str, dict[str, tuple[tuple[str, ...], bool]]] = {
    "project": {
        "project_created_at_index": (("created_at",), False),
        "project_status_index": (("status",), False),
        "project_uuid_unique": (("uuid",), True),
    },
    "video": {
        "video_project_id_index": (("project_id",), False),
        "video_project_id_order_index": (("project_id", "order"), False),
        "video_uuid_unique": (("uuid",), True),
    },
    "job": {
        "job_project_id_index": (("project_id",), False),
        "job_project_id_status_index": (("project_id", "status"), False),
        "job_status_index": (("status",), False),
        "job_uuid_unique": (("uuid",), True),
        # The service's queue index (revision 0002).
        "ix_job_status_created": (("status", "created_at"), False),
    },
    "asset": {
        "asset_type_index": (("type",), False),
        "asset_type_name_index": (("type", "name"), False),
        "asset_uuid_unique": (("uuid",), True),
    },
    "setting": {
        "setting_category_index": (("category",), False),
        "setting_key_unique": (("key",), True),
    },
}

FOREIGN_KEYS = {"video": "video_project_id_foreign", "job": "job_project_id_foreign"}

_S, _I = "string", "integer"
#: The frontend's default settings rows: key, type, value, options, category, label, description.
FRONTEND_SETTINGS: tuple[tuple[str, str, str, str | None, str, str, str], ...] = (
    ("video.default_codec", _S, "h264", '["h264", "h265", "vp9", "av1"]', "video",
     "Default Codec", "Default video codec for output files"),
    ("video.default_resolution", _S, "1920x1080",
     '["1280x720", "1920x1080", "2560x1440", "3840x2160"]', "video",
     "Default Resolution", "Default output resolution (width x height)"),
    ("video.default_fps", _I, "30", None, "video",
     "Default Frame Rate", "Default frames per second for output"),
    ("video.default_bitrate", _S, "8M", None, "video",
     "Default Bitrate", "Default video bitrate (e.g., 8M, 12M)"),
    ("storage.upload_path", _S, "/shared-videos/uploads", None, "storage",
     "Upload Path", "Directory for uploaded video files"),
    ("storage.output_path", _S, "/shared-videos/output", None, "storage",
     "Output Path", "Directory for processed video files"),
    ("storage.temp_path", _S, "/shared-videos/temp", None, "storage",
     "Temp Path", "Directory for temporary processing files"),
    ("storage.max_upload_size", _I, "5368709120", None, "storage",
     "Max Upload Size", "Maximum upload file size in bytes (default: 5GB)"),
)  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name in ("mysql", "mariadb"):
        _upgrade_mysql(bind)
    else:
        _upgrade_sqlite()
    _insert_frontend_settings(bind)


def downgrade() -> None:
    # Nothing to undo for revision 0002's code: the frontend's shape only widens
    # types and renames indexes, and the default settings rows are data that
    # staff may have changed since. Revision 0002's own downgrade still applies.
    pass


# --- MySQL / MariaDB ----------------------------------------------------------------


def _q(name: str) -> str:
    return f"`{name}`"


def _upgrade_mysql(bind: sa.Connection) -> None:
    # DATETIME → TIMESTAMP reads the stored naive values in the session zone: UTC.
    bind.exec_driver_sql("SET time_zone = '+00:00'")
    # Dropped (whatever their name) so the id columns can change type; re-created
    # under the frontend's names at the end.
    for table in FOREIGN_KEYS:
        for existing in _project_fks(bind, table):
            bind.exec_driver_sql(f"ALTER TABLE {_q(table)} DROP FOREIGN KEY {_q(existing)}")
    for table in TABLES:
        collation, engine = _table_options(bind, table)
        if collation != COLLATION or (engine or "").lower() != "innodb":
            # CONVERT first: it rewrites every text column's collation, the MODIFYs
            # below then set the few that differ (settings: utf8mb4_bin).
            bind.exec_driver_sql(
                f"ALTER TABLE {_q(table)} CONVERT TO CHARACTER SET utf8mb4 COLLATE {COLLATION},"
                " ENGINE=InnoDB"
            )
    _fix_rows_mysql(bind)
    for table, columns in MYSQL_COLUMNS.items():
        clauses = []
        previous: str | None = None
        for column, definition in columns:
            if "{enum}" in definition:
                definition = definition.replace("{enum}", _enum_type(bind, table, column))
            place = "FIRST" if previous is None else f"AFTER {_q(previous)}"
            clauses.append(f"MODIFY COLUMN {_q(column)} {definition} {place}")
            previous = column
        bind.exec_driver_sql(f"ALTER TABLE {_q(table)} " + ", ".join(clauses))
    for table, indexes in INDEXES.items():
        _align_indexes_mysql(bind, table, indexes)
    for table, name in FOREIGN_KEYS.items():
        bind.exec_driver_sql(
            f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} FOREIGN KEY (`project_id`)"
            " REFERENCES `project` (`id`) ON DELETE CASCADE"
        )


def _project_fks(bind: sa.Connection, table: str) -> list[str]:
    rows = bind.execute(
        sa.text(
            "SELECT CONSTRAINT_NAME FROM information_schema.KEY_COLUMN_USAGE"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND COLUMN_NAME = 'project_id'"
            " AND REFERENCED_TABLE_NAME IS NOT NULL"
        ),
        {"t": table},
    )
    return [r[0] for r in rows]


def _table_options(bind: sa.Connection, table: str) -> tuple[str | None, str | None]:
    row = bind.execute(
        sa.text(
            "SELECT TABLE_COLLATION, ENGINE FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
        ),
        {"t": table},
    ).one()
    return row[0], row[1]


def _enum_type(bind: sa.Connection, table: str, column: str) -> str:
    """``enum(...)`` with the contract's values first, then any extra value the
    existing column allows (never narrow an enum: rows could hold those values)."""
    current = bind.execute(
        sa.text(
            "SELECT COLUMN_TYPE FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND COLUMN_NAME = :c"
        ),
        {"t": table, "c": column},
    ).scalar_one()
    values = list(ENUMS[(table, column)])
    if str(current).lower().startswith("enum("):
        for value in re.findall(r"'((?:[^']|'')*)'", str(current)):
            value = value.replace("''", "'")
            if value not in values:
                values.append(value)
    quoted = ",".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"enum({quoted})"


def _fix_rows_mysql(bind: sa.Connection) -> None:
    """Rows that would not fit the new NOT NULL / CHECK rules, made to fit."""
    bad = bind.exec_driver_sql(
        "UPDATE `project` SET `settings` = NULL"
        " WHERE `settings` IS NOT NULL AND NOT json_valid(`settings`)"
    ).rowcount
    if bad:
        # Unreadable already (the service reads them as {}); the JSON check would refuse them.
        log.warning("project.settings: %d row(s) held invalid JSON and were cleared", bad)
    _fill_setting_labels(bind)


def _fill_setting_labels(bind: sa.Connection) -> None:
    bind.exec_driver_sql(
        "UPDATE `setting` SET `category` = CASE WHEN LOCATE('.', `key`) > 1"
        " THEN SUBSTRING_INDEX(`key`, '.', 1) ELSE 'general' END WHERE `category` IS NULL"
        if bind.dialect.name != "sqlite"
        else "UPDATE setting SET category = CASE WHEN instr(\"key\", '.') > 1"
        " THEN substr(\"key\", 1, instr(\"key\", '.') - 1) ELSE 'general' END"
        " WHERE category IS NULL"
    )
    bind.exec_driver_sql(
        "UPDATE `setting` SET `label` = `key` WHERE `label` IS NULL"
        if bind.dialect.name != "sqlite"
        else 'UPDATE setting SET label = "key" WHERE label IS NULL'
    )


def _align_indexes_mysql(
    bind: sa.Connection, table: str, wanted: dict[str, tuple[tuple[str, ...], bool]]
) -> None:
    """Each wanted index exists under its name: renamed from an index on the same
    columns when there is one (the service's old names), else created."""
    rows = bind.execute(
        sa.text(
            "SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t ORDER BY INDEX_NAME, SEQ_IN_INDEX"
        ),
        {"t": table},
    ).all()
    existing: dict[str, tuple[tuple[str, ...], bool]] = {}
    for name, column, non_unique in rows:
        if name == "PRIMARY":
            continue
        cols, _ = existing.get(name, ((), not non_unique))
        existing[name] = ((*cols, column), not non_unique)
    for name, shape in wanted.items():
        if existing.get(name) == shape:
            continue
        if name in existing:  # same name, other shape: rebuild it
            bind.exec_driver_sql(f"ALTER TABLE {_q(table)} DROP INDEX {_q(name)}")
            del existing[name]
        twin = next(
            (
                old
                for old, old_shape in existing.items()
                if old_shape == shape and old not in wanted
            ),
            None,
        )
        if twin is not None:
            bind.exec_driver_sql(f"ALTER TABLE {_q(table)} RENAME INDEX {_q(twin)} TO {_q(name)}")
            existing[name] = existing.pop(twin)
            continue
        listed = ", ".join(_q(c) for c in shape[0])
        kind = "UNIQUE INDEX" if shape[1] else "INDEX"
        bind.exec_driver_sql(f"ALTER TABLE {_q(table)} ADD {kind} {_q(name)} ({listed})")
        existing[name] = shape


# --- SQLite ----------------------------------------------------------------------


def _enum(table: str, column: str, name: str) -> sa.Enum:
    values = ENUMS[(table, column)]
    return sa.Enum(*values, name=name, create_constraint=True, length=max(map(len, values)))


def _sqlite_tables() -> dict[str, sa.Table]:
    """The target shape on SQLite: portable types, the frontend's names."""
    meta = sa.MetaData()

    def ts(name: str) -> sa.Column:
        return sa.Column(name, sa.DateTime(), nullable=True)

    def key(name: str) -> sa.Column:
        return sa.Column(name, sa.Integer(), primary_key=True, autoincrement=True)

    def uuid() -> sa.Column:
        return sa.Column("uuid", sa.String(36), nullable=False)

    def project_fk(table: str) -> sa.Column:
        return sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("project.id", ondelete="CASCADE", name=FOREIGN_KEYS[table]),
            nullable=False,
        )

    tables = {
        "project": sa.Table(
            "project", meta,
            key("id"), uuid(),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("status", _enum("project", "status", "projectstatus"), nullable=False,
                      server_default="draft"),
            sa.Column("settings", sa.Text(), nullable=True),
            ts("created_at"), ts("updated_at"),
        ),
        "video": sa.Table(
            "video", meta,
            key("id"), uuid(), project_fk("video"),
            sa.Column("filename", sa.String(255), nullable=False),
            sa.Column("path", sa.String(512), nullable=False),
            sa.Column("duration", sa.Double(), nullable=True),
            sa.Column("width", sa.Integer(), nullable=True),
            sa.Column("height", sa.Integer(), nullable=True),
            sa.Column("codec", sa.String(50), nullable=True),
            sa.Column("fps", sa.Double(), nullable=True),
            sa.Column("order", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("in_point", sa.Double(), nullable=True),
            sa.Column("out_point", sa.Double(), nullable=True),
            ts("created_at"), ts("updated_at"),
        ),
        "job": sa.Table(
            "job", meta,
            key("id"), uuid(), project_fk("job"),
            sa.Column("status", _enum("job", "status", "jobstatus"), nullable=False,
                      server_default="pending"),
            sa.Column("progress", sa.Integer(), nullable=False, server_default="0"),
            ts("started_at"), ts("completed_at"),
            sa.Column("output_path", sa.String(512), nullable=True),
            sa.Column("error_message", sa.Text(), nullable=True),
            ts("created_at"), ts("updated_at"),
            sa.Column("options", sa.Text(), nullable=True),
            sa.Column("render_path", sa.String(16), nullable=True),
            sa.Column("claimed_by", sa.String(120), nullable=True),
            sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
            sa.Column("interruptions", sa.Integer(), nullable=False, server_default="0"),
            sa.Column("cancel_requested", sa.Boolean(), nullable=False,
                      server_default=sa.false()),
        ),
        "asset": sa.Table(
            "asset", meta,
            key("id"), uuid(),
            sa.Column("type", _enum("asset", "type", "assettype"), nullable=False),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("path", sa.String(512), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False,
                      server_default=sa.func.current_timestamp()),
        ),
        "setting": sa.Table(
            "setting", meta,
            key("id"),
            sa.Column("key", sa.String(255), nullable=False),
            sa.Column("value", sa.Text(), nullable=True),
            sa.Column("type", _enum("setting", "type", "settingtype"), nullable=False,
                      server_default="string"),
            sa.Column("options", sa.Text(), nullable=True),
            sa.Column("category", sa.String(100), nullable=False),
            sa.Column("label", sa.String(255), nullable=False),
            sa.Column("description", sa.Text(), nullable=True),
            ts("created_at"), ts("updated_at"),
        ),
    }  # fmt: skip
    for table, indexes in INDEXES.items():
        for name, (columns, unique) in indexes.items():
            sa.Index(name, *(tables[table].c[c] for c in columns), unique=unique)
    return tables


def _upgrade_sqlite() -> None:
    _fill_setting_labels(op.get_bind())
    # Parents first; foreign keys are off (schema.upgrade), so dropping the old
    # ``project`` during its rebuild cascades nothing.
    for name, table in _sqlite_tables().items():
        with op.batch_alter_table(name, copy_from=table, recreate="always"):
            pass


# --- the frontend's default settings ----------------------------------------------------


def _insert_frontend_settings(bind: sa.Connection) -> None:
    setting = sa.table(
        "setting",
        sa.column("key", sa.String),
        sa.column("value", sa.Text),
        sa.column("type", sa.String),
        sa.column("options", sa.Text),
        sa.column("category", sa.String),
        sa.column("label", sa.String),
        sa.column("description", sa.Text),
        sa.column("created_at", sa.DateTime),
        sa.column("updated_at", sa.DateTime),
    )
    present = set(bind.execute(sa.select(setting.c.key)).scalars())
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rows = [
        {
            "key": key, "value": value, "type": kind, "options": options,
            "category": category, "label": label, "description": description,
            "created_at": now, "updated_at": now,
        }
        for key, kind, value, options, category, label, description in FRONTEND_SETTINGS
        if key not in present
    ]  # fmt: skip
    if rows:
        bind.execute(sa.insert(setting), rows)
