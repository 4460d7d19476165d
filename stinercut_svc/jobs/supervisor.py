"""The job supervisor: claims pending work of every kind and runs each in its own cancel scope.

Ownership, the whole design in one picture::

    app.nursery
     └─ Supervisor.run                      (waits for the schema, recovers, loops)
         └─ jobs nursery
             ├─ _watch                      (cancel requests, heartbeats, stale sweep)
             └─ _run_job ×N  ── CancelScope ── handler.run ── (ffmpeg child, copy, …)

The machinery here is generic; what a *kind* of work is (a render, an import
batch) is a :class:`Handler`, the way ``trio.serve_listeners`` takes a handler.
A handler owns its table (claiming, heartbeats, polling, recovery, recording a
cancel) and its work; the supervisor owns the schedule, the slots, the cancel
scope per job and the shielded, deadline-bounded clean-up. A handler gets a
:class:`Services` — the database, storage, settings, its owner id, ``publish``
and the clocks — not the whole app.

Cancelling a job *is* cancelling its :class:`trio.CancelScope`: a handler's
child processes then get SIGTERM, SIGKILL after a grace period, and the handler
returns only once they are reaped. The clean-up that follows (the handler's
:meth:`Handler.record_cancel`) runs shielded under a deadline, so it happens
even while the app is being torn down and can never hang it.

Two kinds of cancellation reach a job, and they end differently:

* **user cancel** (this instance's API, or a cancel request set in the row by
  another instance and seen by :meth:`Supervisor._watch`): the job's own scope
  is cancelled and swallows the ``Cancelled``: the handler records it cancelled.
* **shutdown**: quart-trio cancels ``app.nursery``; the ``Cancelled`` comes from
  outside the job's scope and propagates through it: the handler puts the work
  back (pending) so it runs again on the next start.

Any other error is the handler's to record; whatever escapes it is logged here,
never raised into the app nursery, whose death would silently stop every
background task.
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs
import trio

from ..logs import bind_job
from ..metrics import ServiceMetrics, metrics_of
from . import queue
from .render import TEMP_MARKER, RenderHandler, status_message

if TYPE_CHECKING:
    from ..context import StinercutApp
    from .plan import RenderInputs

log = logging.getLogger(__name__)

#: What a handler's :meth:`Handler.poll` says about one of this instance's running rows.
#: ``lost``: no longer claimed by this instance (deleted, or recovered by another).
RowState = Literal["running", "cancel_requested", "lost"]
CancelReason = Literal["user", "lost"]


@attrs.frozen
class Timing:
    """The supervisor's clocks; tests shorten them, production keeps the defaults."""

    claim_poll_s: float = 1.0  # look for new pending rows (other instances add them too)
    watch_s: float = 0.5  # poll own running rows for cancel requests
    heartbeat_s: float = 5.0
    stale_after_s: float = 30.0  # a processing row without heartbeat this long is orphaned
    sweep_s: float = 10.0  # look for orphaned rows of dead instances
    cleanup_timeout_s: float = 10.0  # bound on shielded clean-up after a cancel
    kill_grace_s: float = 2.0  # SIGTERM → SIGKILL
    publish_timeout_s: float = 1.0
    progress_interval_s: float = 1.0
    commit_retry_first_s: float = 0.2  # recording completion during an outage: backoff
    commit_retry_max_s: float = 2.0  # short cap: the record must land soon after recovery


class WorkRef(Protocol):
    """What the supervisor needs of a claimed row: its id (for polls) and uuid (for cancel)."""

    @property
    def id(self) -> int: ...

    @property
    def uuid(self) -> str: ...


@attrs.define(eq=False)
class RunningJob:
    """One claimed unit of work of some kind, and the scope that runs it."""

    ref: Any  # the handler's reference (a queue.JobRef for renders); has .id and .uuid
    kind: str = "render"
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)
    #: Why the scope was cancelled: "user" or "lost" (another instance took the row).
    reason: CancelReason | None = None
    #: A terminal status has been written: a late cancel is moot.
    finished: bool = False
    #: The result is in place; only recording it is left (a cancel no longer applies).
    committing: bool = False

    def cancel(self, reason: CancelReason) -> None:
        if self.committing:
            return  # the work is done and its result in place: it completes
        if self.reason is None:
            self.reason = reason
        self.scope.cancel()


class Handler(Protocol):
    """One kind of supervised work. Every method but :meth:`run` must not raise
    for ordinary failures (the supervisor logs what escapes and carries on)."""

    kind: str

    async def claim(self, running: int) -> Sequence[WorkRef]:
        """Claim pending rows for this instance; ``running`` of this kind run already."""
        ...

    async def poll(self, ids: list[int]) -> dict[int, RowState]:
        """The state of this instance's running rows (absent id: ``lost``)."""
        ...

    async def heartbeat(self, ids: list[int]) -> None: ...

    async def recover(self, *, startup: bool) -> None:
        """Take over rows of dead instances (and, at start-up, clean leftovers)."""
        ...

    async def run(self, job: RunningJob) -> None:
        """Do the work, inside the job's cancel scope; record success or failure."""
        ...

    async def record_cancel(self, job: RunningJob, *, shutdown: bool) -> None:
        """Shielded and deadline-bounded: record a user cancel, or requeue at shutdown."""
        ...


HandlerFactory = Callable[["Services"], Handler]


class Services:
    """What a handler may use: no more of the app than this.

    ``timing`` is read through the supervisor each time, so a test may swap the
    supervisor's clocks after the app was built.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        app = supervisor.app
        self._supervisor = supervisor
        self.db = app.db
        self.storage = app.storage
        self.settings = app.settings
        self.owner = supervisor.owner

    @property
    def timing(self) -> Timing:
        return self._supervisor.timing

    @property
    def metrics(self) -> ServiceMetrics | None:
        """The app's metrics (``None`` when off); installed after the supervisor is built."""
        return metrics_of(self._supervisor.app)

    async def publish(self, command: str, data: dict[str, Any], target: str = "frontend") -> None:
        await self._supervisor.publish(command, data, target=target)

    def wake(self) -> None:
        self._supervisor.wake()

    def running(self) -> set[str]:
        """Uuids of the work this instance runs now (any kind)."""
        return set(self._supervisor.running)

    def until_shutdown(self) -> contextlib.AbstractContextManager[trio.CancelScope]:
        return self._supervisor.until_shutdown()


DEFAULT_KINDS: tuple[HandlerFactory, ...] = (RenderHandler,)


class Supervisor:
    """Owned by the app; :meth:`run` lives in ``app.nursery`` for the app's lifetime."""

    def __init__(
        self,
        app: StinercutApp,
        timing: Timing | None = None,
        kinds: Sequence[HandlerFactory] = DEFAULT_KINDS,
    ) -> None:
        self.app = app
        self.timing = timing or Timing()
        self.owner = queue.new_owner_id()
        self.services = Services(self)
        self.handlers: dict[str, Handler] = {}
        for factory in kinds:
            handler = factory(self.services)
            if handler.kind in self.handlers:
                raise ValueError(f"two handlers for the job kind {handler.kind!r}")
            self.handlers[handler.kind] = handler
        self._running: dict[str, RunningJob] = {}
        self._wakeup = trio.Event()
        self.started = trio.Event()  # recovery done, claiming
        #: Uuids of the work this instance claimed lately (diagnostics, tests).
        self.claimed: collections.deque[str] = collections.deque(maxlen=1000)
        #: Shielded scopes finishing work (recording a result); shutdown bounds them.
        self._commit_scopes: set[trio.CancelScope] = set()
        self._stopping = False
        self._runs = False
        #: Set once :meth:`run` has returned: every job is requeued/recorded and published.
        self.stopped = trio.Event()

    # --- API for the routes ---------------------------------------------------

    def wake(self) -> None:
        """Look for pending work now (a row was created or a slot freed)."""
        self._wakeup.set()

    @property
    def running(self) -> list[str]:
        return list(self._running)

    def running_of(self, kind: str) -> list[str]:
        return [uuid for uuid, job in self._running.items() if job.kind == kind]

    def cancel_local(self, uuid: str) -> RunningJob | None:
        """Cancel the work if this instance runs it; return its handle to wait on."""
        running = self._running.get(uuid)
        if running is not None:
            running.cancel("user")
        return running

    def handler(self, kind: str) -> Handler:
        return self.handlers[kind]

    async def prepare_inputs(self, context: queue.JobContext) -> RenderInputs:
        """The render handler's input preparation (the render bench times it)."""
        render = self.handlers[RenderHandler.kind]
        assert isinstance(render, RenderHandler)
        return await render.prepare_inputs(context)

    @contextlib.contextmanager
    def until_shutdown(self) -> Iterator[trio.CancelScope]:
        """A scope for shielded work that must finish (recording a completed render
        through a database outage): unbounded while the service lives, given
        ``cleanup_timeout_s`` once shutdown starts. Use it inside a shield."""
        with trio.CancelScope() as scope:
            self._commit_scopes.add(scope)
            if self._stopping:
                self._bound_commit(scope)
            try:
                yield scope
            finally:
                self._commit_scopes.discard(scope)

    # --- the loop -------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Claim and run work until cancelled (start it in the app nursery)."""
        self._runs = True
        task_status.started()
        try:
            await self._serve()
        finally:
            self.stopped.set()

    async def wait_stopped(self) -> None:
        """At shutdown, after ``app.nursery`` was cancelled: wait (bounded) for the jobs'
        shielded clean-up, so their final status is published while clients
        are still connected and the database pool is still open.

        quart-trio reports the lifespan shutdown complete as soon as ``after_serving``
        returns, before the cancelled nursery has finished; the app's
        ``after_serving`` calls this first.
        """
        if not self._runs:
            return
        bound = self.timing.kill_grace_s + 2 * self.timing.cleanup_timeout_s + 1.0
        with trio.move_on_after(bound, shield=True):
            await self.stopped.wait()

    async def _serve(self) -> None:
        await self.app.schema_ready.wait()
        await self._recover(startup=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch)
            self.started.set()
            try:
                while True:
                    for handler in self.handlers.values():
                        try:
                            await self._fill_slots(nursery, handler)
                        except Exception as exc:  # database down: keep the loop, try again
                            log.warning("claiming %s work failed: %s", handler.kind, exc)
                    with trio.move_on_after(self.timing.claim_poll_s):
                        await self._wakeup.wait()
                    self._wakeup = trio.Event()
            finally:
                # Shutdown: completions still being recorded get a last, bounded chance.
                self._stopping = True
                for scope in self._commit_scopes:
                    self._bound_commit(scope)

    def _bound_commit(self, scope: trio.CancelScope) -> None:
        scope.deadline = min(scope.deadline, trio.current_time() + self.timing.cleanup_timeout_s)

    async def _fill_slots(self, nursery: trio.Nursery, handler: Handler) -> None:
        claimed = await handler.claim(len(self.running_of(handler.kind)))
        for ref in claimed:
            # Registered before the task starts, so the next claim counts it and a
            # cancel arriving this instant finds it.
            running = RunningJob(ref, handler.kind)
            self._running[ref.uuid] = running
            self.claimed.append(ref.uuid)
            nursery.start_soon(self._run_job, running, handler)

    async def _watch(self) -> None:
        """Every ``watch_s``: cancel requests and lost rows; heartbeats; orphan sweep."""
        last_beat = last_sweep = trio.current_time()
        while True:
            await trio.sleep(self.timing.watch_s)
            try:
                await self._check_running()
                now = trio.current_time()
                if self._running and now - last_beat >= self.timing.heartbeat_s:
                    for kind, jobs in self._by_kind().items():
                        await self.handlers[kind].heartbeat([job.ref.id for job in jobs])
                    last_beat = now
                if now - last_sweep >= self.timing.sweep_s:
                    last_sweep = now
                    await self._recover(startup=False)
            except Exception as exc:
                log.warning("job watch failed: %s", exc)

    def _by_kind(self) -> dict[str, list[RunningJob]]:
        grouped: dict[str, list[RunningJob]] = {}
        for job in self._running.values():
            grouped.setdefault(job.kind, []).append(job)
        return grouped

    async def _check_running(self) -> None:
        for kind, running in self._by_kind().items():
            states = await self.handlers[kind].poll([job.ref.id for job in running])
            for job in running:
                if job.finished:
                    continue
                state = states.get(job.ref.id, "lost")
                if state == "lost":
                    log.warning(
                        "%s %s was taken away from this instance; stopping it", kind, job.ref.uuid
                    )
                    job.cancel("lost")
                elif state == "cancel_requested":
                    job.cancel("user")

    async def _recover(self, *, startup: bool) -> None:
        for handler in self.handlers.values():
            try:
                await handler.recover(startup=startup)
            except Exception as exc:
                log.warning("%s recovery failed: %s", handler.kind, exc)

    # --- one job --------------------------------------------------------------

    async def _run_job(self, job: RunningJob, handler: Handler) -> None:
        # Every log line of this task (and the tasks it starts) carries the job's id.
        bind_job(job.ref.uuid)
        try:
            try:
                with job.scope:
                    await handler.run(job)
            except Exception:
                # A bug in the handler (handlers record their own failures). Its row is
                # left as it is, for recovery at the next start, and never put back
                # here: a job that crashes its handler must not run again in a loop.
                log.exception("%s %s: the handler crashed; row left as is", job.kind, job.ref.uuid)
                return
            except BaseException:
                # Not the job's own scope (its own cancellation stops at the `with`,
                # other errors are the handler's): the app is shutting down.
                with trio.CancelScope(shield=True):
                    await self._after_cancel(job, handler, shutdown=True)
                raise
            if job.reason is not None and not job.finished:
                with trio.CancelScope(shield=True):
                    await self._after_cancel(job, handler, shutdown=False)
        except Exception:  # never let one job take the app nursery down
            log.exception("%s %s: unexpected error in the supervisor", job.kind, job.ref.uuid)
        finally:
            self._running.pop(job.ref.uuid, None)
            job.done.set()
            self.wake()

    async def _after_cancel(self, job: RunningJob, handler: Handler, *, shutdown: bool) -> None:
        if job.finished or job.reason == "lost":
            return
        with trio.move_on_after(self.timing.cleanup_timeout_s):
            await handler.record_cancel(job, shutdown=shutdown)

    # --- hub --------------------------------------------------------------------

    async def publish(
        self, command: str, data: dict[str, Any], *, target: str = "frontend"
    ) -> None:
        """Best effort, bounded: a missing or slow hub never stalls or fails a job."""
        hub = getattr(self.app, "hub", None)
        if hub is None:
            return
        with trio.move_on_after(self.timing.publish_timeout_s):
            try:
                await hub.publish(command, data, target=target)
            except Exception as exc:
                log.warning("publishing %s failed: %s", command, exc)


def kinds(*extra: HandlerFactory) -> tuple[HandlerFactory, ...]:
    """The default kinds plus ``extra`` (the app adds the import handler)."""
    return (*DEFAULT_KINDS, *extra)


__all__ = [
    "TEMP_MARKER",
    "Handler",
    "HandlerFactory",
    "RowState",
    "RunningJob",
    "Services",
    "Supervisor",
    "Timing",
    "kinds",
    "status_message",
]
