"""The schema is the frontend's, exactly: it shares these tables (FRONTEND_CONTRACT.md).

On MariaDB the service-made schema is compared with the contract column by column
(information_schema), and with a schema built by running the frontend's own DDL
(tests/support/frontend_schema.py). Beside the shape: rows the frontend inserts
its way are readable by the service, doubles stay doubles, and timestamps written
by either side mean the same instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, inspect, select, text

from stinercut_svc import schema
from stinercut_svc.context import StinercutApp
from stinercut_svc.models import (
    Base,
    Project,
    Setting,
    SettingType,
    Video,
    isoformat,
    parse_setting_value,
)
from tests.support import backends
from tests.support.frontend_schema import create_frontend_tables

COLUMNS = {
    "project": {"id", "uuid", "name", "status", "settings", "created_at", "updated_at"},
    "video": {
        "id", "uuid", "project_id", "filename", "path", "duration", "width", "height", "codec",
        "fps", "order", "in_point", "out_point", "created_at", "updated_at",
    },
    "job": {
        "id", "uuid", "project_id", "status", "progress", "started_at", "completed_at",
        "output_path", "error_message", "created_at", "updated_at",
    },
    "asset": {"id", "uuid", "type", "name", "path", "created_at"},
    "setting": {
        "id", "key", "value", "type", "category", "label", "description", "options",
        "created_at", "updated_at",
    },
}  # fmt: skip
ENUMS = {
    ("project", "status"): {"draft", "processing", "completed", "error"},
    ("job", "status"): {"pending", "processing", "completed", "failed", "cancelled"},
    ("asset", "type"): {"intro", "outro", "watermark", "audio", "audio_freefall", "pax_template"},
    ("setting", "type"): {"string", "integer", "boolean", "json"},
}


def _inspect(app: StinercutApp):  # type: ignore[no-untyped-def]
    return inspect(app.db.engine)


async def test_tables_and_columns_match_the_seed(app: StinercutApp) -> None:
    insp = _inspect(app)
    assert set(insp.get_table_names()) >= set(COLUMNS)
    for table, columns in COLUMNS.items():
        # Later revisions may add columns the frontend ignores; none may go missing.
        assert columns <= {c["name"] for c in insp.get_columns(table)}, table
    for table in ("project", "video", "job", "asset"):
        uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(table)}
        indexes = {tuple(i["column_names"]) for i in insp.get_indexes(table) if i["unique"]}
        assert ("uuid",) in uniques | indexes, table


async def test_enum_values_match_the_seed(app: StinercutApp) -> None:
    insp = _inspect(app)
    for (table, column), values in ENUMS.items():
        if app.db.is_mysql:
            col = next(c for c in insp.get_columns(table) if c["name"] == column)
            assert set(col["type"].enums) == values, (table, column)
        else:
            checks = " ".join(c["sqltext"] for c in insp.get_check_constraints(table))
            for value in values:
                assert f"'{value}'" in checks, (table, column, value)


async def test_enum_rejects_unknown_value_in_the_database(app: StinercutApp) -> None:
    def insert_bad() -> None:
        with app.db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO project (uuid, name, status, created_at, updated_at)"
                    " VALUES ('u-1', 'x', 'bogus', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )

    import pytest
    from sqlalchemy.exc import DBAPIError

    if app.db.is_mysql:
        with app.db.engine.begin() as conn:
            conn.execute(text("SET SESSION sql_mode='STRICT_ALL_TABLES'"))
    with pytest.raises(DBAPIError):
        insert_bad()


async def test_cascade_delete_from_project(app: StinercutApp) -> None:
    from stinercut_svc.models import Job, Project, Video

    def scenario(session):  # type: ignore[no-untyped-def]
        project = Project(name="tandem 1")
        project.videos.append(Video(filename="a.mp4", path="uploads/a.mp4", order=0))
        project.jobs.append(Job())
        session.add(project)
        session.flush()
        session.execute(text("DELETE FROM project"))
        return (
            session.execute(text("SELECT COUNT(*) FROM video")).scalar_one(),
            session.execute(text("SELECT COUNT(*) FROM job")).scalar_one(),
        )

    assert await app.db.run(scenario) == (0, 0)


async def test_models_and_migrations_agree(app: StinercutApp) -> None:
    with app.db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # Server defaults and enum names render differently per dialect; tables,
    # columns, types, nullability and indexes must not differ.
    assert [d for d in diffs if not _is_cosmetic(d)] == []


def _is_cosmetic(diff: object) -> bool:
    kind = diff[0] if isinstance(diff, tuple) else diff[0][0]  # type: ignore[index]
    return kind in {"modify_default", "modify_comment"}


def test_typed_setting_values() -> None:
    assert parse_setting_value(SettingType.INTEGER, " 42 ") == 42
    for raw in ("true", "TRUE", "1", "yes", "Yes"):
        assert parse_setting_value(SettingType.BOOLEAN, raw) is True
    for raw in ("false", "0", "no", ""):
        assert parse_setting_value(SettingType.BOOLEAN, raw) is False
    assert parse_setting_value(SettingType.JSON, '{"a": [1, 2]}') == {"a": [1, 2]}
    assert parse_setting_value(SettingType.STRING, "x") == "x"
    assert Setting(key="k", value="7", type=SettingType.INTEGER).typed_value == 7


# --- the contract, written down from FRONTEND_CONTRACT.md (MariaDB's information_schema) --

SHARED = ("project", "video", "job", "asset", "setting")
ID = ("bigint(20) unsigned", "NO", None, "auto_increment")
UUID = ("char(36)", "NO", "uuid()", "")
FK = ("bigint(20) unsigned", "NO", None, "")
TS = ("timestamp", "YES", "NULL", "")


def _enum(*values: str) -> str:
    return "enum(" + ",".join(f"'{v}'" for v in values) + ")"


#: table → column → (COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA), in column order.
CONTRACT_COLUMNS: dict[str, dict[str, tuple[str, str, str | None, str]]] = {
    "project": {
        "id": ID, "uuid": UUID,
        "name": ("varchar(255)", "NO", None, ""),
        "status": (_enum("draft", "processing", "completed", "error"), "NO", "'draft'", ""),
        "settings": ("longtext", "YES", "NULL", ""),
        "created_at": TS, "updated_at": TS,
    },
    "video": {
        "id": ID, "uuid": UUID, "project_id": FK,
        "filename": ("varchar(255)", "NO", None, ""),
        "path": ("varchar(512)", "NO", None, ""),
        "duration": ("double", "YES", "NULL", ""),
        "width": ("int(11)", "YES", "NULL", ""),
        "height": ("int(11)", "YES", "NULL", ""),
        "codec": ("varchar(50)", "YES", "NULL", ""),
        "fps": ("double", "YES", "NULL", ""),
        "order": ("int(11)", "NO", "0", ""),
        "in_point": ("double", "YES", "NULL", ""),
        "out_point": ("double", "YES", "NULL", ""),
        "created_at": TS, "updated_at": TS,
    },
    "job": {
        "id": ID, "uuid": UUID, "project_id": FK,
        "status": (_enum("pending", "processing", "completed", "failed", "cancelled"), "NO",
                   "'pending'", ""),
        "progress": ("int(11)", "NO", "0", ""),
        "started_at": TS, "completed_at": TS,
        "output_path": ("varchar(512)", "YES", "NULL", ""),
        "error_message": ("text", "YES", "NULL", ""),
        "created_at": TS, "updated_at": TS,
    },
    "asset": {
        "id": ID, "uuid": UUID,
        "type": (_enum("intro", "outro", "watermark", "audio", "audio_freefall", "pax_template"),
                 "NO", None, ""),
        "name": ("varchar(255)", "NO", None, ""),
        "path": ("varchar(512)", "NO", None, ""),
        "created_at": ("timestamp", "NO", "current_timestamp()", ""),
    },
    "setting": {
        "id": ID,
        "key": ("varchar(255)", "NO", None, ""),
        "value": ("text", "YES", "NULL", ""),
        "type": (_enum("string", "integer", "boolean", "json"), "NO", "'string'", ""),
        "options": ("text", "YES", "NULL", ""),
        "category": ("varchar(100)", "NO", None, ""),
        "label": ("varchar(255)", "NO", None, ""),
        "description": ("text", "YES", "NULL", ""),
        "created_at": TS, "updated_at": TS,
    },
}  # fmt: skip

#: table → index name → (columns, unique)
CONTRACT_INDEXES: dict[str, dict[str, tuple[tuple[str, ...], bool]]] = {
    "project": {
        "PRIMARY": (("id",), True),
        "project_created_at_index": (("created_at",), False),
        "project_status_index": (("status",), False),
        "project_uuid_unique": (("uuid",), True),
    },
    "video": {
        "PRIMARY": (("id",), True),
        "video_project_id_index": (("project_id",), False),
        "video_project_id_order_index": (("project_id", "order"), False),
        "video_uuid_unique": (("uuid",), True),
    },
    "job": {
        "PRIMARY": (("id",), True),
        "job_project_id_index": (("project_id",), False),
        "job_project_id_status_index": (("project_id", "status"), False),
        "job_status_index": (("status",), False),
        "job_uuid_unique": (("uuid",), True),
    },
    "asset": {
        "PRIMARY": (("id",), True),
        "asset_type_index": (("type",), False),
        "asset_type_name_index": (("type", "name"), False),
        "asset_uuid_unique": (("uuid",), True),
    },
    "setting": {
        "PRIMARY": (("id",), True),
        "setting_category_index": (("category",), False),
        "setting_key_unique": (("key",), True),
    },
}

#: (constraint, table, column, referenced table, referenced column, delete rule)
CONTRACT_FKS = {
    ("video_project_id_foreign", "video", "project_id", "project", "id", "CASCADE"),
    ("job_project_id_foreign", "job", "project_id", "project", "id", "CASCADE"),
}


def _columns(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    rows = conn.execute(
        text(
            "SELECT TABLE_NAME t, COLUMN_NAME c, COLUMN_TYPE type, IS_NULLABLE nullable,"
            " COLUMN_DEFAULT dflt, EXTRA extra, CHARACTER_SET_NAME cs, COLLATION_NAME coll"
            " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
            " ORDER BY TABLE_NAME, ORDINAL_POSITION"
        )
    ).mappings()
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["t"], []).append(dict(row))
    return out


def _indexes(conn: Connection) -> dict[str, dict[str, tuple[tuple[str, ...], bool]]]:
    rows = conn.execute(
        text(
            "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME, NON_UNIQUE FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
        )
    ).all()
    out: dict[str, dict[str, tuple[tuple[str, ...], bool]]] = {}
    for table, name, column, non_unique in rows:
        columns, _ = out.setdefault(table, {}).get(name, ((), not non_unique))
        out[table][name] = ((*columns, column), not non_unique)
    return out


def _foreign_keys(conn: Connection) -> set[tuple[str, ...]]:
    rows = conn.execute(
        text(
            "SELECT r.CONSTRAINT_NAME, r.TABLE_NAME, k.COLUMN_NAME, r.REFERENCED_TABLE_NAME,"
            " k.REFERENCED_COLUMN_NAME, r.DELETE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS r"
            " JOIN information_schema.KEY_COLUMN_USAGE k ON k.CONSTRAINT_SCHEMA = r.CONSTRAINT_SCHEMA"
            " AND k.CONSTRAINT_NAME = r.CONSTRAINT_NAME AND k.TABLE_NAME = r.TABLE_NAME"
            " WHERE r.CONSTRAINT_SCHEMA = DATABASE()"
        )
    ).all()
    return {tuple(r) for r in rows}


def _checks(conn: Connection) -> set[tuple[str, str, str]]:
    rows = conn.execute(
        text(
            "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS"
            " WHERE CONSTRAINT_SCHEMA = DATABASE()"
        )
    ).all()
    return {(t, n, " ".join(c.split())) for t, n, c in rows}


def _tables(conn: Connection) -> dict[str, tuple[str, str]]:
    rows = conn.execute(
        text(
            "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE()"
        )
    ).all()
    return {t: (e, c) for t, e, c in rows}


@pytest.fixture
def empty_mysql(database_url: str) -> Iterator[Engine]:
    """The test database with no tables at all (restored to head by the next test)."""
    engine = backends.admin_engine(database_url)
    backends.drop_everything(engine)
    yield engine
    backends.drop_everything(engine)
    engine.dispose()


@pytest.mark.mysql_only
async def test_mysql_schema_matches_the_contract(app: StinercutApp) -> None:
    with app.db.engine.connect() as conn:
        if "mariadb" not in str(conn.exec_driver_sql("SELECT VERSION()").scalar()).lower():
            pytest.skip("the contract lists MariaDB's information_schema spelling")
        columns, indexes = _columns(conn), _indexes(conn)
        fks, checks, tables = _foreign_keys(conn), _checks(conn), _tables(conn)
    for table, expected in CONTRACT_COLUMNS.items():
        actual = columns[table]
        # The frontend's columns first, in its order; the service's own after them.
        assert [c["c"] for c in actual[: len(expected)]] == list(expected), table
        for col in actual:
            shape = (col["type"], col["nullable"], col["dflt"], col["extra"])
            if col["c"] in expected:
                assert shape == expected[col["c"]], (table, col["c"])
            else:  # added by the service: the frontend's inserts must not need it
                assert col["nullable"] == "YES" or col["dflt"] is not None, (table, col["c"])
            if col["cs"] is not None:
                wanted = (
                    "utf8mb4_bin"
                    if (table, col["c"]) == ("project", "settings")
                    else "utf8mb4_unicode_ci"
                )
                assert (col["cs"], col["coll"]) == ("utf8mb4", wanted), (table, col["c"])
        for name, index in CONTRACT_INDEXES[table].items():
            assert indexes[table].get(name) == index, (table, name)
        assert tables[table] == ("InnoDB", "utf8mb4_unicode_ci"), table
    assert CONTRACT_FKS <= fks
    assert {fk for fk in fks if fk[1] in SHARED} == CONTRACT_FKS
    assert ("project", "settings", "json_valid(`settings`)") in checks


def _snapshot(conn: Connection) -> dict[str, Any]:
    shared = set(SHARED)
    return {
        "columns": {t: cols for t, cols in _columns(conn).items() if t in shared},
        "indexes": {t: idx for t, idx in _indexes(conn).items() if t in shared},
        "fks": {fk for fk in _foreign_keys(conn) if fk[1] in shared},
        "checks": {c for c in _checks(conn) if c[0] in shared},
        "tables": {t: v for t, v in _tables(conn).items() if t in shared},
    }


@pytest.mark.mysql_only
def test_mysql_schema_equals_the_frontends_own(empty_mysql: Engine) -> None:
    """Tables made by the frontend's DDL and by the service are the same, except
    for the columns and the one index the service adds (all nullable or defaulted)."""
    with empty_mysql.begin() as conn:
        create_frontend_tables(conn, seed=False)
    with empty_mysql.connect() as conn:
        frontend = _snapshot(conn)
    backends.drop_everything(empty_mysql)
    schema.upgrade(empty_mysql)
    with empty_mysql.connect() as conn:
        service = _snapshot(conn)

    for table in SHARED:
        theirs, ours = frontend["columns"][table], service["columns"][table]
        assert ours[: len(theirs)] == theirs, table
        for extra in ours[len(theirs) :]:
            assert extra["nullable"] == "YES" or extra["dflt"] is not None, extra
        added = set(service["indexes"][table]) - set(frontend["indexes"][table])
        # This service's own indexes on shared tables: additive, read by no frontend query.
        # The job queue's claim order (0002) and a timeline row's source file (0010).
        assert added <= {"ix_job_status_created", "video_video_file_id_index"}, (table, added)
        for name, shape in frontend["indexes"][table].items():
            assert service["indexes"][table][name] == shape, (table, name)
    assert service["fks"] == frontend["fks"]
    assert service["checks"] == frontend["checks"]
    assert service["tables"] == frontend["tables"]


@pytest.mark.mysql_only
async def test_frontend_style_insert_is_read_by_the_service(app: StinercutApp) -> None:
    """No uuid, no status: the database fills them in, as the frontend relies on."""
    raw = backends.admin_engine(backends.mysql_url())  # a plain session, like PHP's
    try:
        with raw.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO project (name, created_at, updated_at)"
                    " VALUES ('Frontend made', '2026-12-01 09:30:00', '2026-12-01 09:30:00')"
                )
            )
            project_id = conn.execute(text("SELECT LAST_INSERT_ID()")).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO video (project_id, filename, path, created_at, updated_at)"
                    " VALUES (:p, 'a.mp4', 'uploads/a.mp4', '2026-12-01 09:31:00',"
                    " '2026-12-01 09:31:00')"
                ),
                {"p": project_id},
            )
            conn.execute(
                text("INSERT INTO asset (type, name, path) VALUES ('intro', 'I', 'x.mp4')")
            )
    finally:
        raw.dispose()

    def read(session) -> tuple[dict[str, Any], dict[str, Any], str]:  # type: ignore[no-untyped-def]
        project = session.scalars(select(Project).where(Project.name == "Frontend made")).one()
        video = session.scalars(select(Video).where(Video.project_id == project.id)).one()
        asset_uuid = session.execute(text("SELECT uuid FROM asset")).scalar_one()
        return project.to_api(), video.to_api(), asset_uuid

    project, video, asset_uuid = await app.db.run(read)
    assert len(project["uuid"]) == 36 and project["uuid"] != video["uuid"]
    assert project["status"] == "draft" and project["settings"] == {}
    assert project["created_at"] == "2026-12-01T09:30:00Z"
    assert video["order"] == 0 and video["in_point"] is None and len(asset_uuid) == 36
    response = await app.test_client().get(f"/api/projects/{project['uuid']}")
    assert response.status_code == 200
    body = await response.get_json()
    assert [v["uuid"] for v in body["videos"]] == [video["uuid"]]


async def test_doubles_round_trip_exactly(app: StinercutApp) -> None:
    def write(session) -> int:  # type: ignore[no-untyped-def]
        project = Project(name="doubles")
        project.videos.append(
            Video(filename="a.mp4", path="uploads/a.mp4", order=0, in_point=1.2345678,
                  out_point=98.76543219, duration=123.456789012, fps=30000 / 1001)
        )  # fmt: skip
        session.add(project)
        session.flush()
        return project.videos[0].id

    video_id = await app.db.run(write)
    with app.db.engine.connect() as conn:  # a fresh read, not the identity map
        row = conn.execute(
            text("SELECT in_point, out_point, duration, fps FROM video WHERE id = :i"),
            {"i": video_id},
        ).one()
    assert tuple(row) == (1.2345678, 98.76543219, 123.456789012, 30000 / 1001)


async def test_timestamps_mean_the_same_instant_both_ways(app: StinercutApp) -> None:
    """The frontend writes UTC wall-clock text into TIMESTAMP columns over a plain
    session; the service reads the same instant, and the reverse."""
    if app.db.is_mysql:
        raw = backends.admin_engine(backends.mysql_url())
    else:
        raw = backends.admin_engine(app.db.url)
    try:
        with raw.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO project (uuid, name, status, created_at, updated_at) VALUES"
                    " ('11111111-1111-4111-8111-111111111111', 'raw', 'draft',"
                    " '2026-07-01 12:00:00', '2026-07-01 12:00:00')"
                )
            )

        def service_side(session) -> tuple[datetime, int]:  # type: ignore[no-untyped-def]
            raw_row = session.scalars(select(Project).where(Project.name == "raw")).one()
            ours = Project(name="ours", created_at=datetime(2026, 1, 15, 8, 45, 30),
                           updated_at=datetime(2026, 1, 15, 8, 45, 30))  # fmt: skip
            session.add(ours)
            session.flush()
            return raw_row.created_at, ours.id

        created, ours_id = await app.db.run(service_side)
        assert isoformat(created) == "2026-07-01T12:00:00Z"
        with raw.connect() as conn:
            back = conn.execute(
                text("SELECT created_at FROM project WHERE id = :i"), {"i": ours_id}
            ).scalar_one()
            if app.db.is_mysql:
                # The instant itself, independent of any session zone.
                epoch = conn.execute(
                    text("SELECT UNIX_TIMESTAMP(created_at) FROM project WHERE id = :i"),
                    {"i": ours_id},
                ).scalar_one()
                assert int(epoch) == int(datetime(2026, 1, 15, 8, 45, 30, tzinfo=UTC).timestamp())
        assert str(back).startswith("2026-01-15 08:45:30")
    finally:
        raw.dispose()
