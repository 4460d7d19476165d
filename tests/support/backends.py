"""Which database the suite runs against, and how to give each test a clean one.

``scripts/test`` runs the suite twice: once with SQLite (a fresh file per test) and
once with ``STINERCUT_TEST_DATABASE_URL`` pointing at MariaDB/MySQL, where the
schema is migrated once and every table is emptied before each test.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from stinercut_svc import schema, setting_defaults
from stinercut_svc.config import normalise_database_url

MYSQL_URL = os.environ.get("STINERCUT_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("STINERCUT_TEST_REDIS_URL")
TABLES_CHILD_FIRST = ("video_file_segment", "video_file", "imported_file", "jump", "import_batch", "video", "job", "asset", "setting", "project")


def backend_name() -> str:
    return "mysql" if MYSQL_URL else "sqlite"


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'test.sqlite3'}"


def mysql_url() -> str:
    assert MYSQL_URL is not None
    return normalise_database_url(MYSQL_URL)


def admin_engine(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True)


def drop_everything(engine: Engine) -> None:
    """Drop every table, including Alembic's bookkeeping (for migration tests)."""
    with engine.begin() as conn:
        if conn.dialect.name == "mysql":
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        for table in inspect(conn).get_table_names():
            conn.execute(text(f"DROP TABLE `{table}`" if conn.dialect.name == "mysql" else f'DROP TABLE "{table}"'))
        if conn.dialect.name == "mysql":
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))


def reset_mysql(engine: Engine) -> None:
    """Schema at head, every row gone except the settings a fresh migration leaves
    (the frontend's ``video.*``/``storage.*`` rows): the state each MySQL-backed
    test starts from, the same as a freshly migrated SQLite file."""
    schema.upgrade(engine)
    with engine.begin() as conn:
        # Every table the migrations made (new ones included without listing them
        # here), the children named first, foreign keys off for the rest.
        existing = set(inspect(conn).get_table_names()) - {"alembic_version"}
        ordered = [t for t in TABLES_CHILD_FIRST if t in existing]
        ordered += sorted(existing - set(ordered))
        conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        for table in ordered:
            conn.execute(text(f"DELETE FROM `{table}`"))
        conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
    with Session(engine) as session, session.begin():
        setting_defaults.insert_missing(session, setting_defaults.FRONTEND_DEFAULTS)


def database_name(url: str) -> str | None:
    return make_url(url).database
