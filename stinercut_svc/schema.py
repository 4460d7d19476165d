"""Bring the database schema up to date with Alembic, from code.

Three starting points are handled, because the frontend may have created the
database before this service ever ran:

* empty database: every revision is applied;
* database created by the seed (the five tables, no ``alembic_version``): it is
  stamped as revision ``0001`` (the seed schema) and upgraded from there, keeping
  its rows;
* database managed by Alembic at an older revision: upgraded in place.

On MySQL the migration runs under a server-side named lock (``GET_LOCK``): the
API and any number of workers may start at the same moment (a host reboot
restarts every container together), and MySQL's DDL commits statement by
statement, so two concurrent migrations would leave a half-built schema. The
first instance migrates; the others wait, then find the schema at head.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SEED_REVISION = "0001"
SEED_TABLES = frozenset({"project", "video", "job", "asset", "setting"})
#: MySQL named lock held while migrating, and how long another instance waits for it.
MIGRATION_LOCK = "stinercut:schema-migration"
MIGRATION_LOCK_WAIT_S = 600


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision``; return the revision the database is at."""
    with engine.connect() as conn, _migration_lock(conn), _sqlite_foreign_keys_off(conn):
        with conn.begin():
            tables = set(inspect(conn).get_table_names())
            if "alembic_version" not in tables and SEED_TABLES <= tables:
                log.info("adopting a seed-created database as revision %s", SEED_REVISION)
                command.stamp(alembic_config(conn), SEED_REVISION)
            command.upgrade(alembic_config(conn), revision)
    return current_revision(engine)


@contextmanager
def _migration_lock(conn: Connection) -> Iterator[None]:
    """Hold :data:`MIGRATION_LOCK` (MySQL) for the block; a no-op on SQLite, where the
    database file's own write lock serialises migrations."""
    if conn.dialect.name != "mysql":
        yield
        return
    got = conn.execute(
        text("SELECT GET_LOCK(:name, :wait)"),
        {"name": MIGRATION_LOCK, "wait": MIGRATION_LOCK_WAIT_S},
    ).scalar()
    conn.commit()  # the lock belongs to the session, not to this transaction
    if got != 1:
        raise RuntimeError(
            f"another instance has been migrating the schema for {MIGRATION_LOCK_WAIT_S} s"
        )
    try:
        yield
    finally:
        conn.rollback()
        conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": MIGRATION_LOCK})
        conn.commit()


@contextmanager
def _sqlite_foreign_keys_off(conn: Connection) -> Iterator[None]:
    """SQLite migrations rebuild tables (copy, drop, rename); with foreign keys on,
    dropping the old ``project`` would cascade-delete every clip and job.

    The pragma only takes effect outside a transaction, so it is set before the
    migration's transaction begins, and the result is checked before it is
    switched back on: a rebuild that broke a reference fails loudly.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    conn.commit()
    try:
        yield
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            raise RuntimeError(f"migration left broken references: {broken[:5]}")
    finally:
        conn.rollback()  # end the pragma's implicit transaction, if any
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.commit()


def downgrade(engine: Engine, revision: str) -> None:
    with engine.connect() as conn, _sqlite_foreign_keys_off(conn):
        with conn.begin():
            command.downgrade(alembic_config(conn), revision)
