"""The schema is the seed's, exactly: the frontend shares these tables."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Base, Setting, SettingType, parse_setting_value

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
