"""Engine set-up and the one way the rest of the code touches the database.

SQLAlchemy's ORM is synchronous. Running it on the trio thread would stall every
request and WebSocket while a query waits, so all database work goes through
:meth:`Database.run`, which executes a function with a session inside a transaction
on a worker thread. A single :class:`trio.CapacityLimiter` sized to the connection
pool means threads queue in trio (cheaply, cancellably) instead of blocking inside
the pool.

Round trips are what a read costs on MySQL: a worker thread gives up the GIL for
each one and must win it back from the trio thread. A read of three queries was
six trips (a ping, the queries, COMMIT, and the pool's ROLLBACK on return); the
ping and the ROLLBACK are now sent only when they can tell something
(:func:`_ping_if_idle`, :func:`_reset_on_return`).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pymysql.err
import trio
from pymysql.constants import SERVER_STATUS
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
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
#: A pooled MySQL connection unused for longer than this is pinged before use.
PING_AFTER_IDLE_S = 1.0


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
            pool_reset_on_return=None,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "reset", _reset_on_return)
        return engine
    engine = create_engine(
        url,
        pool_size=MYSQL_POOL_SIZE,
        max_overflow=MYSQL_MAX_OVERFLOW,
        pool_reset_on_return=None,
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
    event.listen(engine, "reset", _reset_on_return)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def in_transaction(dbapi_connection: Any) -> bool:
    """Whether the server still has a transaction open on this DBAPI connection.

    SQLite's module tracks it; PyMySQL keeps the status flags of the server's last
    answer (``None`` before any: unknown, counted as open).
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        return dbapi_connection.in_transaction
    status = getattr(dbapi_connection, "server_status", None)
    return status is None or bool(status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)


def _reset_on_return(dbapi_connection: Any, _record: Any, state: Any) -> None:
    """The pool's reset of a returned connection, only when there is something to reset.

    SQLAlchemy's default sends ROLLBACK on every return, even right after the
    COMMIT that ended :meth:`Database.run`'s transaction: a wasted round trip per
    transaction. A connection still inside a transaction (any path that did not
    end its own) is rolled back as before; one being torn down is left alone.
    """
    if not state.terminate_only and in_transaction(dbapi_connection):
        dbapi_connection.rollback()


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a pooled connection before use, but only one that sat idle.

    ``pool_pre_ping`` pings on every checkout, one round trip each. What it guards
    against - a server restart, ``wait_timeout`` or a proxy dropping connections -
    happens to connections that sat unused; one returned less than
    :data:`PING_AFTER_IDLE_S` ago was working a moment before. If the server dies
    in that moment, the request fails like one that was running when it died (503
    ``database_unavailable``), and SQLAlchemy discards the whole pool on that
    error, so the next checkouts connect afresh. A failed ping raises
    ``DisconnectionError``: the pool then retries with a new connection, and the
    request never sees the dead one.
    """
    checked_in_at = record.info.get("checked_in_at")
    if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_S:
        return
    try:
        dbapi_connection.ping(reconnect=False)
    except Exception as exc:
        raise sa_exc.DisconnectionError(f"idle connection is gone: {exc}") from exc


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
        self.outage = OutageTracker()

    @property
    def is_mysql(self) -> bool:
        return self.backend in ("mysql", "mariadb")

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in a worker thread, inside one transaction.

        The transaction commits when ``fn`` returns and rolls back when it raises.
        A transaction InnoDB chose as a deadlock victim (1213) is run again, up to
        :data:`DEADLOCK_ATTEMPTS` times: concurrent claims, cancels and heartbeats
        on the same rows can deadlock under load, and the client asked for nothing
        that a retry would not give it. ``fn`` must therefore only touch the session.
        Objects stay readable after commit (``expire_on_commit=False``) so the
        caller can serialise them on the trio thread. Cancellation waits for the
        thread: a transaction is never abandoned half-way.
        """
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                result = await trio.to_thread.run_sync(
                    partial(self._transaction, fn), limiter=self.limiter
                )
            except Exception as exc:
                if is_deadlock(exc) and attempt < DEADLOCK_ATTEMPTS:
                    # InnoDB rolled the whole transaction back: running it again is
                    # what the server asks for, and fn only touches the database.
                    await trio.sleep(random.uniform(0.005, 0.05) * attempt)
                    continue
                if is_outage(exc):
                    self.outage.failed(exc)
                raise
            self.outage.succeeded()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

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


# --- outages -------------------------------------------------------------------

#: MySQL/MariaDB client and server error numbers that mean "no usable connection":
#: can't connect (2002, 2003), unknown host (2005), server gone away (2006), lost
#: connection (2013, 2055), too many connections (1040), server shutting down
#: (1053), connection killed (1927), client idle-disconnected (4031).
#: Runs of one transaction chosen as a deadlock victim before the error is answered.
DEADLOCK_ATTEMPTS = 4
MYSQL_DEADLOCK = 1213
MYSQL_CONNECTION_ERRORS = frozenset({1040, 1053, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 4031})
_SQLITE_OUTAGE_WORDS = ("unable to open database file", "disk i/o error")


def is_deadlock(exc: BaseException) -> bool:
    """InnoDB's "Deadlock found when trying to get lock; try restarting transaction"."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    return (
        isinstance(orig, pymysql.err.OperationalError)
        and bool(orig.args)
        and orig.args[0] == MYSQL_DEADLOCK
    )


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached (not a bad query).

    Lock waits and deadlocks are ``OperationalError`` too, but the server is up;
    they are answered 503 without counting as an outage.
    """
    if isinstance(exc, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
    if isinstance(exc, pymysql.err.InterfaceError):
        return True  # "(0, '')": the connection is already closed
    if isinstance(exc, pymysql.err.OperationalError):
        return bool(exc.args) and exc.args[0] in MYSQL_CONNECTION_ERRORS
    if isinstance(exc, sqlite3.OperationalError):
        return any(words in str(exc).lower() for words in _SQLITE_OUTAGE_WORDS)
    return False


class OutageTracker:
    """Turns a stream of failed database calls into one log line per outage.

    While the database is down every request fails the same way; logging each
    (with a traceback) buries the log and says nothing new. :meth:`failed` logs
    the first failure of an outage, :meth:`succeeded` logs the recovery once.
    Only touched from the trio thread (after :meth:`Database.run`'s thread
    returned), so it needs no lock.
    """

    def __init__(self) -> None:
        #: ``time.monotonic()`` of the first failure of the current outage.
        self.down_since: float | None = None
        #: Failed calls during the current outage.
        self.failures = 0

    @property
    def is_down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.error(
                "database unavailable, answering 503 until it is back: %s", describe_error(exc)
            )

    def succeeded(self) -> None:
        if self.down_since is None:
            return
        seconds = time.monotonic() - self.down_since
        log.warning(
            "database is back after %.1f s (%d calls failed meanwhile)", seconds, self.failures
        )
        self.down_since = None
        self.failures = 0


def describe_error(exc: BaseException) -> str:
    """One short line for a driver error, fit for a log line or a health detail."""
    if isinstance(exc, trio.TooSlowError):
        return "no answer before the deadline"
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]
