"""Several instances starting at once on a fresh MySQL database (``docker compose up
--scale worker=N`` after a host reboot restarts every container together) migrate
it once: the migration runs under a server-side lock, the others wait and find
the schema at head."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect

from stinercut_svc import schema
from tests.support import backends

INSTANCES = 4


@pytest.mark.mysql_only
def test_concurrent_start_ups_migrate_once(_mysql_engine) -> None:  # type: ignore[no-untyped-def]
    url = backends.mysql_url()
    backends.drop_everything(_mysql_engine)
    engines = [backends.admin_engine(url) for _ in range(INSTANCES)]
    start = threading.Barrier(INSTANCES)
    results: list[object] = []

    def start_up(engine) -> None:  # type: ignore[no-untyped-def]
        start.wait()
        try:
            results.append(schema.upgrade(engine))
        except Exception as exc:  # collected: every instance must succeed
            results.append(exc)

    threads = [threading.Thread(target=start_up, args=(engine,)) for engine in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    finally:
        for engine in engines:
            engine.dispose()
        if any(isinstance(result, Exception) for result in results):
            backends.drop_everything(_mysql_engine)  # leave a clean slate for the next test
    assert results == [schema.head_revision()] * INSTANCES, results
    assert "project" in inspect(_mysql_engine).get_table_names()
