"""What ``/api/health`` reports, kept current in the background instead of per call.

A health endpoint is called by load balancers and orchestrators many times a
second, often exactly when the service is busy. Checking every dependency per
call made it the most expensive route (two ffmpeg processes per call), and under
load its own checks timed out, so a busy service reported itself *unhealthy*.
Here each check has the cost its dependency deserves:

* **ffmpeg / ffprobe**: ``-version`` runs at start-up, then every
  :data:`TOOL_RECHECK_S` (every :data:`TOOL_RETRY_S` while one is failing, so a
  fixed installation shows up quickly), and at once after
  :meth:`HealthChecks.request_recheck` (for code that just saw a tool go missing).
  A health call only reads the result: it never starts a process.
* **database**: ``SELECT 1`` with a :data:`CHECK_TIMEOUT_S` deadline, over a
  connection of its own (a separate one-connection engine, outside the request
  limiter and pool, so it never queues behind busy requests: on SQLite the request
  pool has no overflow), at most once per :data:`DATABASE_FRESH_S`; every health
  call in between gets that result, and calls arriving during a ping get the
  previous one (or share the first ping's).
* **storage**: ``stat``/``access``/``statvfs`` on the shared root, in a thread
  abandoned after :data:`CHECK_TIMEOUT_S` (a hung network mount), cached for
  :data:`STORAGE_FRESH_S`.
* **backplane**: the Redis bridge's own connection state, read as is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Literal

import attrs
import trio

from .database import Database, describe_error
from .media.tools import ToolStatus, tool_version
from .storage import Storage

log = logging.getLogger(__name__)

#: Deadline of one database ping or storage probe.
CHECK_TIMEOUT_S = 2.0
#: Deadline of one tool ``-version`` run: generous, as it runs in the background and a
#: machine under heavy load may take seconds to start a process; a slow start is
#: not a missing tool.
TOOL_TIMEOUT_S = 10.0
#: Tools are checked again this often while they work ...
TOOL_RECHECK_S = 60.0
#: ... and this often while one of them does not.
TOOL_RETRY_S = 5.0
#: A ping result younger than this answers the check.
DATABASE_FRESH_S = 2.0
#: A storage result younger than this answers the check.
STORAGE_FRESH_S = 2.0

TOOLS = ("ffmpeg", "ffprobe")
BackplaneState = Literal["off", "connected", "disconnected"]


@attrs.define
class _Cached:
    """A check result with its time, plus the one probe that refreshes it."""

    status: ToolStatus | None = None
    at: float = float("-inf")
    probe: trio.Event | None = None  # set when the running probe finishes

    def fresh(self, max_age: float) -> bool:
        return self.status is not None and trio.current_time() - self.at < max_age


class HealthChecks:
    """The dependency checks of one service instance; :meth:`run` keeps the tools current."""

    def __init__(
        self,
        db: Database,
        storage: Storage,
        tools: dict[str, str],
        schema_ready: trio.Event,
    ) -> None:
        # Its own engine: the pool is lazy and pings are one at a time, so this is
        # one extra connection per instance, never shared with request work.
        self._ping_db = Database(db.url)
        self._storage = storage
        self._binaries = tools
        self._schema_ready = schema_ready
        self.tools: dict[str, ToolStatus] = {
            name: ToolStatus(False, "not checked yet") for name in tools
        }
        self._recheck = trio.Event()
        self._checked = trio.Event()  # set once the first tool check is done
        self._database = _Cached()
        self._storage_result = _Cached()

    # --- tools -------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Check the tools at once, then in the background forever.

        Start-up does not wait for the first check (it has its own deadline to
        meet); a health call arriving before it is done waits for it instead.
        """
        task_status.started()
        await self._check_tools()
        self._checked.set()
        while True:
            failing = not all(status.ok for status in self.tools.values())
            with trio.move_on_after(TOOL_RETRY_S if failing else TOOL_RECHECK_S):
                await self._recheck.wait()
            self._recheck = trio.Event()
            await self._check_tools()

    async def tool_results(self) -> dict[str, ToolStatus]:
        """The latest tool results (waits for the first check after start-up)."""
        if not self._checked.is_set():
            await self._checked.wait()
        return dict(self.tools)

    def cached_results(self) -> dict[str, ToolStatus] | None:
        """Every result, if all are at hand and fresh: the common case, answered with no
        task, thread or wait at all; ``None`` when something must be (re)checked."""
        database, storage = self._database, self._storage_result
        if not (
            self._checked.is_set()
            and self._schema_ready.is_set()
            and database.fresh(DATABASE_FRESH_S)
            and storage.fresh(STORAGE_FRESH_S)
        ):
            return None
        assert database.status is not None and storage.status is not None
        return {**self.tools, "database": database.status, "storage": storage.status}

    def request_recheck(self) -> None:
        """Check the tools again now, e.g. after a call failed because one is missing."""
        self._recheck.set()

    async def _check_tools(self) -> None:
        results: dict[str, ToolStatus] = {}

        async def check(name: str) -> None:
            results[name] = await tool_version(self._binaries[name], timeout=TOOL_TIMEOUT_S)

        async with trio.open_nursery() as nursery:
            for name in self._binaries:
                nursery.start_soon(check, name)
        for name, status in results.items():
            if status.ok != self.tools[name].ok:
                (log.info if status.ok else log.warning)("%s check: %s", name, status.detail)
        self.tools = results

    # --- database and storage ----------------------------------------------------

    def close(self) -> None:
        self._ping_db.dispose()

    async def database(self) -> ToolStatus:
        status = await self._shared(self._database, DATABASE_FRESH_S, self._ping)
        if status.ok and not self._schema_ready.is_set():
            return ToolStatus(False, f"{status.detail}; schema migration pending")
        return status

    async def storage(self) -> ToolStatus:
        return await self._shared(self._storage_result, STORAGE_FRESH_S, self._probe_storage)

    async def _shared(
        self, cached: _Cached, max_age: float, probe: Callable[[], Awaitable[ToolStatus]]
    ) -> ToolStatus:
        """The cached result if fresh; else a probe's result.

        One caller runs the probe; the others meanwhile get the previous result
        (if there is one: until the first probe ends they wait for it), so a slow
        probe on a busy machine delays one health call, not all of them.
        """
        if cached.fresh(max_age):
            assert cached.status is not None
            return cached.status
        if cached.probe is not None and cached.status is not None:
            return cached.status
        if cached.probe is None:
            done = cached.probe = trio.Event()
            try:
                status = await probe()
                cached.status, cached.at = status, trio.current_time()
            finally:
                cached.probe = None
                done.set()
            return status
        await cached.probe.wait()
        return cached.status or ToolStatus(False, "check interrupted")

    async def _ping(self) -> ToolStatus:
        try:
            version = await self._ping_db.ping(CHECK_TIMEOUT_S)
        except trio.TooSlowError:
            return ToolStatus(False, f"no answer within {CHECK_TIMEOUT_S:g} s")
        except Exception as exc:  # any driver error is an unhealthy database, not a 500
            return ToolStatus(False, describe_error(exc))
        return ToolStatus(True, version)

    async def _probe_storage(self) -> ToolStatus:
        storage = self._storage

        def probe() -> ToolStatus:
            if not storage.root.is_dir():
                return ToolStatus(False, "storage root does not exist")
            # access() answers for permissions and read-only mounts without writing.
            for folder in (storage.temp, storage.uploads, storage.output):
                if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
                    name = folder.relative_to(storage.root).as_posix()
                    return ToolStatus(False, f"storage is not writable: {name}/")
            free_gib = storage.free_bytes() / 1024**3
            return ToolStatus(True, f"writable, {free_gib:.1f} GiB free")

        try:
            with trio.fail_after(CHECK_TIMEOUT_S):
                # A hung network mount must not hang the check: abandon the thread.
                return await trio.to_thread.run_sync(probe, abandon_on_cancel=True)
        except trio.TooSlowError:
            return ToolStatus(False, f"storage did not answer within {CHECK_TIMEOUT_S:g} s")
        except OSError as exc:
            return ToolStatus(False, f"storage check failed: {describe_error(exc)}")
