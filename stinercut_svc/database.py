"""Engine set-up and the one way the rest of the code touches the database.

SQLAlchemy's ORM is synchronous. Running it on the trio thread would stall every
request and WebSocket while a query waits, so all database work goes through
:meth:`Database.run`, which executes a function with a session inside a transaction
on a worker thread. A single :class:`trio.CapacityLimiter` sized to the connection
pool means threads queue in trio (cheaply, cancellably) instead of blocking inside
the pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

T = TypeVar("T")

MYSQL_POOL_SIZE = 5
MYSQL_MAX_OVERFLOW = 10
SQLITE_THREADS = 4
CONNECT_TIMEOUT_S = 3
# PyMySQL reads the server greeting with the *read* timeout, so without one a host
# that accepts TCP but stays silent blocks a pool thread forever.
READ_TIMEOUT_S = 60


def make_engine(url: str) -> Engine:
    """Create the engine with the pool and connection options each backend needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=SQLITE_THREADS,
            max_overflow=0,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    return create_engine(
        url,
        pool_size=MYSQL_POOL_SIZE,
        max_overflow=MYSQL_MAX_OVERFLOW,
        pool_pre_ping=True,
        pool_recycle=3600,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_S,
            "read_timeout": READ_TIMEOUT_S,
            "write_timeout": READ_TIMEOUT_S,
            "charset": "utf8mb4",
            # TIMESTAMP columns convert through the session zone: UTC, so the naive
            # UTC values both the service and the frontend write keep their instant.
            "init_command": "SET time_zone = '+00:00'",
        },
    )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the
    # one writer; busy_timeout turns "database is locked" into a short wait.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """The engine plus a limiter; owned by the app, one per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.backend = self.engine.dialect.name
        # Sized to the pool's steady size, not pool + overflow: PyMySQL parses rows
        # in Python, so more threads only fight over the GIL (measured with wrk on
        # GET /api/projects/{uuid}: ~200 req/s with 5 threads, ~130 with 15).
        # The overflow stays for work outside the limiter (health pings, migrations).
        self.limiter = trio.CapacityLimiter(
            SQLITE_THREADS if self.backend == "sqlite" else MYSQL_POOL_SIZE
        )

    @property
    def is_mysql(self) -> bool:
        return self.backend in ("mysql", "mariadb")

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in a worker thread, inside one transaction.

        The transaction commits when ``fn`` returns and rolls back when it raises.
        Objects stay readable after commit (``expire_on_commit=False``) so the
        caller can serialise them on the trio thread. Cancellation waits for the
        thread: a transaction is never abandoned half-way.
        """
        return await trio.to_thread.run_sync(partial(self._transaction, fn), limiter=self.limiter)

    def _transaction(self, fn: Callable[[Session], T]) -> T:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            return fn(session)

    async def ping(self, timeout: float) -> str:
        """``SELECT 1`` with a hard deadline; returns the server version string.

        Unlike :meth:`run`, the worker thread is abandoned on timeout: a health
        check must answer even when the database host does not.
        """
        with trio.fail_after(timeout):
            return await trio.to_thread.run_sync(self._ping, abandon_on_cancel=True)

    def _ping(self) -> str:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            version = conn.dialect.server_version_info or ()
            return f"{self.backend} {'.'.join(str(p) for p in version)}".strip()

    def dispose(self) -> None:
        self.engine.dispose()


def describe_error(exc: BaseException) -> str:
    """One short line for a driver error, fit for a log line or a health detail."""
    if isinstance(exc, trio.TooSlowError):
        return "no answer before the deadline"
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]
