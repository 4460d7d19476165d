"""Migrations: empty → head, a seed-created database adopted without loss, round trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, inspect, text

from stinercut_svc import schema
from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from tests.support import backends
from tests.support.frontend_schema import create_frontend_tables


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = backends.admin_engine(database_url)
    backends.drop_everything(eng)
    yield eng
    backends.drop_everything(eng)
    eng.dispose()


def test_empty_database_reaches_head(engine: Engine) -> None:
    assert schema.current_revision(engine) is None
    assert schema.upgrade(engine) == schema.head_revision()
    assert {"project", "video", "job", "asset", "setting", "alembic_version"} <= set(
        inspect(engine).get_table_names()
    )
    # Running again is a no-op.
    assert schema.upgrade(engine) == schema.head_revision()


def test_seed_created_database_is_adopted_without_loss(engine: Engine) -> None:
    # What the seed left behind: its tables with rows, and no Alembic bookkeeping.
    schema.upgrade(engine, schema.SEED_REVISION)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO project (uuid, name, status, settings, created_at, updated_at)"
                " VALUES ('p-1', 'Seed project', 'completed', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(text("DROP TABLE alembic_version"))
    assert schema.upgrade(engine) == schema.head_revision()
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT uuid, name, status FROM project")).all()
    assert [tuple(r) for r in rows] == [("p-1", "Seed project", "completed")]


def test_downgrade_and_upgrade_round_trip(engine: Engine) -> None:
    schema.upgrade(engine)
    schema.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert schema.upgrade(engine) == schema.head_revision()


async def test_app_start_migrates(settings: Settings, engine: Engine) -> None:
    app = create_app(settings)
    async with app.test_app():
        assert app.schema_ready.is_set()
    assert schema.current_revision(engine) == schema.head_revision()


def test_cli_migrate(settings: Settings, engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "stinercut_svc", "migrate"],
        env={**os.environ, "DATABASE_URL": settings.database_url, "DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"revision {schema.head_revision()}" in done.stdout
    assert schema.current_revision(engine) == schema.head_revision()


# --- revision 0003: the frontend's shape, rows kept ---------------------------------


def _q(engine: Engine, name: str) -> str:
    return f"`{name}`" if engine.dialect.name == "mysql" else f'"{name}"'


def test_upgrade_from_0002_keeps_every_row(engine: Engine) -> None:
    """A database made by the previous release (0001+0002), with rows in every table."""
    assert schema.upgrade(engine, "0002") == "0002"
    order = _q(engine, "order")
    key = _q(engine, "key")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO project (uuid, name, status, settings, created_at, updated_at) VALUES"
                " ('p-1', 'Old project', 'completed', '{\"watermark_margin\": 10}',"
                " '2026-11-30 10:00:00', '2026-11-30 11:00:00'),"
                " ('p-2', 'Junk settings', 'draft', 'not json', '2026-11-30 10:00:00',"
                " '2026-11-30 10:00:00')"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO video (uuid, project_id, filename, path, {order}, in_point, duration,"
                " created_at, updated_at) VALUES ('v-1', 1, 'a.mp4', 'uploads/a.mp4', 3, 0.5, 10.25,"
                " '2026-11-30 10:00:00', '2026-11-30 10:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO job (uuid, project_id, status, progress, output_path, options,"
                " render_path, interruptions, created_at, updated_at) VALUES ('j-1', 1, 'completed',"
                " 100, 'output/p-1/j-1.mp4', '{}', 'fastpath', 1, '2026-11-30 10:00:00',"
                " '2026-11-30 10:05:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO asset (uuid, type, name, path, created_at) VALUES"
                " ('a-1', 'watermark', 'Logo', 'uploads/assets/logo.png', '2026-11-30 09:00:00')"
            )
        )
        conn.execute(text(
            f"INSERT INTO setting ({key}, value, type, created_at, updated_at) VALUES"
            " ('render.output_crf', '23', 'integer', '2026-11-30 09:00:00',"
            " '2026-11-30 09:00:00'),"
            " ('nodot', 'x', 'string', '2026-11-30 09:00:00', '2026-11-30 09:00:00')"
        ))  # fmt: skip

    assert schema.upgrade(engine) == schema.head_revision()
    with engine.connect() as conn:
        projects = conn.execute(
            text("SELECT id, uuid, name, status, settings, created_at FROM project ORDER BY id")
        ).all()
        video = conn.execute(
            text(f"SELECT uuid, project_id, {order}, in_point, duration FROM video")
        ).one()
        job = conn.execute(
            text("SELECT uuid, status, progress, output_path, render_path, interruptions,"
                 " updated_at FROM job")
        ).one()  # fmt: skip
        asset = conn.execute(text("SELECT uuid, type, name, created_at FROM asset")).one()
        settings = {
            r[0]: tuple(r[1:])
            for r in conn.execute(text(f"SELECT {key}, value, category, label FROM setting"))
        }
    assert [(p[1], p[2], p[3]) for p in projects] == [
        ("p-1", "Old project", "completed"),
        ("p-2", "Junk settings", "draft"),
    ]
    assert projects[0][4] == '{"watermark_margin": 10}'
    # Invalid JSON cannot live under the JSON check on MySQL: it is cleared there.
    assert projects[1][4] == (None if engine.dialect.name == "mysql" else "not json")
    assert str(projects[0][5]).startswith("2026-11-30 10:00:00")
    assert tuple(video) == ("v-1", projects[0][0], 3, 0.5, 10.25)
    assert tuple(job)[:6] == ("j-1", "completed", 100, "output/p-1/j-1.mp4", "fastpath", 1)
    assert str(job[6]).startswith("2026-11-30 10:05:00")
    assert tuple(asset)[:3] == ("a-1", "watermark", "Logo")
    assert str(asset[3]).startswith("2026-11-30 09:00:00")
    # Rows without category/label got them from the key; staff values untouched.
    assert settings["render.output_crf"] == ("23", "render", "render.output_crf")
    assert settings["nodot"] == ("x", "general", "nodot")
    assert settings["video.default_codec"][:2] == ("h264", "video")
    # Foreign keys still cascade after the rebuild / re-creation.
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.execute(text("DELETE FROM project WHERE uuid = 'p-1'"))
        assert conn.execute(text("SELECT COUNT(*) FROM video")).scalar_one() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM job")).scalar_one() == 0


@pytest.mark.mysql_only
def test_frontend_created_database_is_adopted_and_kept(engine: Engine) -> None:
    """The frontend's tables and seed rows, plus a setting type a newer frontend adds:
    adopted, upgraded, nothing lost or narrowed, the seed rows not duplicated."""
    with engine.begin() as conn:
        create_frontend_tables(conn)
        conn.exec_driver_sql(
            "ALTER TABLE `setting` MODIFY `type` enum('string','integer','boolean','json',"
            "'splashscreen') NOT NULL DEFAULT 'string'"
        )
        conn.execute(
            text(
                "INSERT INTO setting (`key`, value, type, category, label, created_at, updated_at)"
                " VALUES ('tandem.splash', NULL, 'splashscreen', 'tandem', 'Splash',"
                " '2026-11-01 08:00:00', '2026-11-01 08:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO project (name, settings, created_at, updated_at) VALUES"
                " ('FE', '{\"a\": 1}', '2026-11-01 08:00:00', '2026-11-01 08:00:00')"
            )
        )
        conn.execute(text(
            "INSERT INTO video (project_id, filename, path, in_point) VALUES"
            " (LAST_INSERT_ID(), 'a.mp4', 'uploads/a.mp4', 1.2345678)"
        ))  # fmt: skip
        before = conn.execute(text("SELECT uuid FROM project")).scalar_one()
    assert schema.upgrade(engine) == schema.head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT uuid, settings FROM project")).one() == (
            before,
            '{"a": 1}',
        )
        assert conn.execute(text("SELECT in_point FROM video")).scalar_one() == 1.2345678
        keys = conn.execute(text("SELECT `key` FROM setting ORDER BY id")).scalars().all()
        kind = conn.execute(
            text("SELECT type FROM setting WHERE `key` = 'tandem.splash'")
        ).scalar_one()
        column = conn.execute(
            text(
                "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA ="
                " DATABASE() AND TABLE_NAME = 'setting' AND COLUMN_NAME = 'type'"
            )
        ).scalar_one()
    assert len(keys) == len(set(keys)) == 9  # 8 seed rows + the newer one, no duplicates
    assert kind == "splashscreen"
    assert column == "enum('string','integer','boolean','json','splashscreen')"
