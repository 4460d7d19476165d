"""Migrations: empty → head, a seed-created database adopted without loss, round trip."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, text

from stinercut_svc import schema
from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from tests.support import backends


@pytest.fixture
def engine(database_url: str) -> Engine:
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
