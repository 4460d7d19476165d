"""The private MariaDB test helper: an outage really cuts connections, data survives it."""

from __future__ import annotations

import pymysql
import pytest

from tests.support.private_mariadb import PrivateMariaDB


def _connect(db: PrivateMariaDB) -> pymysql.connections.Connection:  # type: ignore[type-arg]
    return pymysql.connect(
        host="127.0.0.1", port=db.port, user="stiner", password="local", database=db.database
    )


def test_outage_and_restart_keep_port_and_data() -> None:
    with PrivateMariaDB() as db:
        port = db.port
        conn = _connect(db)
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE t (x INT)")
            cur.execute("INSERT INTO t VALUES (1)")
        conn.commit()
        db.stop()
        assert not db.running
        with pytest.raises(pymysql.err.OperationalError), conn.cursor() as cur:
            cur.execute("SELECT 1")
        with pytest.raises(pymysql.err.OperationalError):
            _connect(db)
        db.start()
        assert db.port == port
        conn = _connect(db)
        with conn.cursor() as cur:
            cur.execute("SELECT x FROM t")
            assert cur.fetchall() == ((1,),)
        conn.close()
        db.stop(clean=True)
        db.start()
        assert db.url.endswith(f":{port}/stinercut")
    assert not db.base.exists()  # close() removed its files
