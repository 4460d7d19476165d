"""Pooled connections: no wasted round trips, nothing left open, dead idle ones replaced.

A read through :meth:`Database.run` used to cost two round trips beyond its
queries: ``pool_pre_ping``'s ping on checkout and the pool's ROLLBACK on return,
right after the transaction's COMMIT. These tests read the server's own counters
for the connection (``SHOW SESSION STATUS``) to see what was really sent, and
check the two guarantees the skipped trips stood for: a connection returned with
a transaction open is rolled back, and a pooled connection the server dropped
while it sat idle is replaced before a request sees it.
"""

from __future__ import annotations

import pytest
import trio
from sqlalchemy import text
from sqlalchemy.orm import Session

from stinercut_svc import database
from stinercut_svc.database import Database, is_outage
from tests.support import backends

TABLE = "pool_probe"


def _status(session: Session) -> dict[str, int]:
    rows = session.execute(
        text("SHOW SESSION STATUS WHERE Variable_name IN "
             "('Com_commit', 'Com_rollback', 'Com_admin_commands')")
    )  # fmt: skip
    counts = {name: int(value) for name, value in rows}
    counts["id"] = int(session.scalar(text("SELECT CONNECTION_ID()")) or 0)
    return counts


@pytest.mark.mysql_only
async def test_a_read_costs_its_queries_and_one_commit(database_url: str) -> None:
    db = Database(database_url)
    try:
        before = await db.run(_status)
        reads = 5
        for _ in range(reads):
            assert await db.run(lambda s: s.scalar(text("SELECT 1"))) == 1
        after = await db.run(_status)
    finally:
        db.dispose()
    # One after another, the reads reuse the one pooled connection.
    assert after["id"] == before["id"]
    # Each transaction ended with its COMMIT (the first status read's included) ...
    assert after["Com_commit"] - before["Com_commit"] == reads + 1
    # ... and nothing else: no ROLLBACK on return, no ping (COM_PING counts as an
    # admin command) for a connection that was in use a moment ago.
    assert after["Com_rollback"] == before["Com_rollback"]
    assert after["Com_admin_commands"] == before["Com_admin_commands"]


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:

        def create(session: Session) -> None:
            session.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
            session.execute(text(f"CREATE TABLE {TABLE} (n INTEGER)"))

        await db.run(create)

        def insert_and_walk_away() -> None:
            raw = db.engine.raw_connection()  # past the Session: no commit, no rollback
            cursor = raw.cursor()
            cursor.execute(f"INSERT INTO {TABLE} (n) VALUES (1)")
            cursor.close()
            assert database.in_transaction(raw.dbapi_connection)
            raw.close()  # back to the pool, transaction open

        await trio.to_thread.run_sync(insert_and_walk_away)
        count = await db.run(lambda s: s.scalar(text(f"SELECT COUNT(*) FROM {TABLE}")))
        assert count == 0
        await db.run(lambda s: s.execute(text(f"DROP TABLE {TABLE}")))
    finally:
        db.dispose()


def _kill(connection_id: int) -> None:
    admin = backends.admin_engine(backends.mysql_url())
    try:
        with admin.connect() as conn:
            conn.execute(text(f"KILL {connection_id}"))
    finally:
        admin.dispose()


async def _killed_pooled_connection(database_url: str, idle_s: float) -> tuple[Database, int]:
    db = Database(database_url)
    first = await db.run(lambda s: int(s.scalar(text("SELECT CONNECTION_ID()")) or 0))
    await trio.to_thread.run_sync(_kill, first)
    await trio.sleep(idle_s)
    return db, first


@pytest.mark.mysql_only
async def test_an_idle_connection_the_server_dropped_is_replaced(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "PING_AFTER_IDLE_S", 0.2)
    db, first = await _killed_pooled_connection(database_url, idle_s=0.4)
    try:
        second = await db.run(lambda s: int(s.scalar(text("SELECT CONNECTION_ID()")) or 0))
    finally:
        db.dispose()
    assert second != first


@pytest.mark.mysql_only
async def test_a_connection_dropped_while_in_use_fails_as_an_outage_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window the idle rule leaves open, and what it costs: one failed call
    (answered 503 by the HTTP layer), after which the pool connects afresh."""
    monkeypatch.setattr(database, "PING_AFTER_IDLE_S", 60.0)
    db, first = await _killed_pooled_connection(database_url, idle_s=0.1)
    try:
        with pytest.raises(Exception) as failed:
            await db.run(lambda s: s.scalar(text("SELECT 1")))
        assert is_outage(failed.value)
        second = await db.run(lambda s: int(s.scalar(text("SELECT CONNECTION_ID()")) or 0))
    finally:
        db.dispose()
    assert second != first
