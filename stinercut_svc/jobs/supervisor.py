"""The job supervisor: claims pending renders and runs each in its own cancel scope.

Ownership, the whole design in one picture::

    app.nursery
     └─ Supervisor.run                      (waits for the schema, recovers, loops)
         └─ jobs nursery
             ├─ _watch                      (cancel requests, heartbeats, stale sweep)
             └─ _run_job ×N  ── CancelScope ── run_ffmpeg ── ffmpeg child

Cancelling a job *is* cancelling its :class:`trio.CancelScope`: ``run_ffmpeg``
then sends SIGTERM, SIGKILL after a grace period, and returns only once the
child is reaped. The clean-up that follows (temp folder, database row, hub
message) runs shielded under a deadline, so it happens even while the app is
being torn down and can never hang it.

Two kinds of cancellation reach a job, and they end differently:

* **user cancel** (this instance's API, or ``cancel_requested`` set in the row by
  another instance and seen by :meth:`Supervisor._watch`): the job's own scope
  is cancelled and swallows the ``Cancelled``: the job ends ``cancelled``.
* **shutdown**: quart-trio cancels ``app.nursery``; the ``Cancelled`` comes from
  outside the job's scope and propagates through it: the job goes back to
  ``pending`` and runs again on the next start.

Any other error ends the job ``failed`` with a message; nothing escapes into the
app nursery, whose death would silently stop every background task.

Completion survives a database outage. Once ffmpeg is done the file is moved to
``output/`` and recording ``completed`` is retried with backoff until the
database answers — shielded from the job's scope (a cancel is moot now) and from
the app's, but bounded by the service's life: at shutdown it gets
``cleanup_timeout_s`` more, then gives up; the next start's recovery then finds
the file in ``output/`` and records the job completed without rendering it
again. The job stays in :attr:`Supervisor.running` the whole time, so its claim
keeps its heartbeat, and recovery never treats this instance's claims as a dead
instance's.

Project status is derived from the jobs (:mod:`stinercut_svc.services.project_status`),
in the same transaction as each job change.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import shutil
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..media.encoders import video_encoders
from ..media.probe import ProbeError, probe
from ..media.runner import Progress, ToolError, ToolMissingError, run_ffmpeg
from ..models import JobStatus
from ..storage import UnsafePathError
from . import owner as owners
from . import queue
from .options import resolve, setting_overrides
from .plan import (
    PlanError,
    RenderInputs,
    RenderPlan,
    Source,
    build_plan,
    clip_segment,
    whole_segment,
)

if TYPE_CHECKING:
    from ..context import StinercutApp

log = logging.getLogger(__name__)

#: Marks a folder under ``temp/`` as a render's, so start-up clean-up never
#: touches temp folders that other features own.
TEMP_MARKER = ".stinercut-render"
OUTPUT_NAME = "output.mp4"
CONCAT_LIST_NAME = "inputs.ffconcat"
PROBE_CONCURRENCY = 4


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


class RenderFailure(Exception):
    """A job cannot be rendered; the message is stored as the job's error."""


class _CommitAbandoned(Exception):
    """Shutdown came before the database took a completion: leave the row as it is."""


@attrs.define(eq=False)
class RunningJob:
    ref: queue.JobRef
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)
    #: Why the scope was cancelled: "user" or "lost" (another instance took the row).
    reason: str | None = None
    #: A terminal status (completed/failed) has been written: a late cancel is moot.
    finished: bool = False
    #: The output is in ``output/``; only recording completion is left.
    committing: bool = False

    def cancel(self, reason: str) -> None:
        if self.committing:
            return  # the render is done and its file in place: it completes
        if self.reason is None:
            self.reason = reason
        self.scope.cancel()


class Supervisor:
    """Owned by the app; :meth:`run` lives in ``app.nursery`` for the app's lifetime."""

    def __init__(self, app: StinercutApp, timing: Timing | None = None) -> None:
        self.app = app
        self.timing = timing or Timing()
        self.owner = queue.new_owner_id()
        self._running: dict[str, RunningJob] = {}
        self._wakeup = trio.Event()
        self.started = trio.Event()  # recovery done, claiming
        #: Uuids of the jobs this instance claimed lately (diagnostics, tests).
        self.claimed: collections.deque[str] = collections.deque(maxlen=1000)
        #: Shielded scopes recording completions; shutdown bounds them.
        self._commit_scopes: set[trio.CancelScope] = set()
        self._stopping = False
        self._runs = False
        #: Set once :meth:`run` has returned: every job is requeued/recorded and published.
        self.stopped = trio.Event()

    # --- API for the routes ---------------------------------------------------

    def wake(self) -> None:
        """Look for pending jobs now (a job was created or a slot freed)."""
        self._wakeup.set()

    @property
    def running(self) -> list[str]:
        return list(self._running)

    def cancel_local(self, job_uuid: str) -> RunningJob | None:
        """Cancel the job if this instance runs it; return its handle to wait on."""
        running = self._running.get(job_uuid)
        if running is not None:
            running.cancel("user")
        return running

    # --- the loop -------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Claim and run jobs until cancelled (start it in the app nursery)."""
        self._runs = True
        task_status.started()
        try:
            await self._serve()
        finally:
            self.stopped.set()

    async def wait_stopped(self) -> None:
        """At shutdown, after ``app.nursery`` was cancelled: wait (bounded) for the jobs'
        shielded clean-up, so their final ``job:status`` is published while clients
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
                    try:
                        await self._fill_slots(nursery)
                    except Exception as exc:  # database down: keep the loop, try again
                        log.warning("claiming jobs failed: %s", exc)
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

    async def _fill_slots(self, nursery: trio.Nursery) -> None:
        claimed = await self.app.db.run(
            partial(
                queue.claim,
                owner=self.owner,
                running=len(self._running),
                mysql=self.app.db.is_mysql,
            )
        )
        for ref in claimed:
            # Registered before the task starts, so the next claim counts it and a
            # cancel arriving this instant finds it.
            running = RunningJob(ref)
            self._running[ref.uuid] = running
            self.claimed.append(ref.uuid)
            nursery.start_soon(self._run_job, running)

    async def _watch(self) -> None:
        """Every ``watch_s``: cancel requests and lost rows; heartbeats; orphan sweep."""
        last_beat = last_sweep = trio.current_time()
        while True:
            await trio.sleep(self.timing.watch_s)
            try:
                await self._check_running()
                now = trio.current_time()
                if self._running and now - last_beat >= self.timing.heartbeat_s:
                    ids = [r.ref.id for r in self._running.values()]
                    await self.app.db.run(partial(queue.heartbeat, owner=self.owner, job_ids=ids))
                    last_beat = now
                if now - last_sweep >= self.timing.sweep_s:
                    last_sweep = now
                    await self._recover(startup=False)
            except Exception as exc:
                log.warning("job watch failed: %s", exc)

    async def _check_running(self) -> None:
        running = list(self._running.values())
        if not running:
            return
        states = await self.app.db.run(partial(queue.poll, job_ids=[r.ref.id for r in running]))
        for job in running:
            if job.finished:
                continue
            state = states.get(job.ref.id)
            if (
                state is None
                or state.claimed_by != self.owner
                or state.status is not JobStatus.PROCESSING
            ):
                log.warning("job %s was taken away from this instance; stopping it", job.ref.uuid)
                job.cancel("lost")
            elif state.cancel_requested:
                job.cancel("user")

    async def _recover(self, *, startup: bool) -> None:
        stale = timedelta(seconds=self.timing.stale_after_s)
        try:
            recovered = await self.app.db.run(
                partial(
                    queue.recover_stale,
                    stale_after=stale,
                    me=self.owner,
                    finished_output=self._finished_output,
                    kill_leftovers=self._kill_leftovers,
                )
            )
        except Exception as exc:
            log.warning("job recovery failed: %s", exc)
            return
        for item in recovered:
            log.warning(
                "job %s was left processing by a stopped instance: now %s",
                item.job["uuid"],
                item.job["status"],
            )
            await self._publish_status(item.job, item.project_uuid)
        if recovered:
            self.wake()
        if startup:
            try:
                live = await self.app.db.run(partial(queue.live_job_uuids, stale_after=stale))
                removed = await trio.to_thread.run_sync(self._remove_orphan_temp, live)
            except Exception as exc:
                log.warning("temp clean-up failed: %s", exc)
                return
            if removed:
                log.info("removed %d orphan render folder(s) from temp/", removed)

    def _finished_output(self, project_uuid: str, job_uuid: str) -> str | None:
        """The stored path of a job's output if a (dead) owner already moved it in place."""
        final = self.app.storage.output / project_uuid / f"{job_uuid}.mp4"
        return self.app.storage.relative(final) if final.is_file() else None

    @staticmethod
    def _kill_leftovers(owner: str, job_uuid: str) -> int:
        killed = owners.kill_leftovers(owner, job_uuid)
        if killed:
            log.warning("job %s: killed %d leftover process(es) of %s", job_uuid, killed, owner)
        return killed

    def _remove_orphan_temp(self, live: set[str]) -> int:
        removed = 0
        temp = self.app.storage.temp
        if not temp.is_dir():
            return 0
        for folder in temp.iterdir():
            if folder.name in live or folder.name in self._running:
                continue
            if folder.is_dir() and (folder / TEMP_MARKER).exists():
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    # --- one job --------------------------------------------------------------

    async def _run_job(self, job: RunningJob) -> None:
        ref = job.ref
        try:
            try:
                with job.scope:
                    await self._publish_status(
                        {"uuid": ref.uuid, "status": "processing", "progress": 0}, ref.project_uuid
                    )
                    await self._render(job)
            except BaseException:
                # Not the job's own scope (its own cancellation stops at the `with`,
                # other errors are handled in _render): the app is shutting down.
                with trio.CancelScope(shield=True):
                    await self._after_cancel(job, shutdown=True)
                raise
            if job.reason is not None and not job.finished:
                with trio.CancelScope(shield=True):
                    await self._after_cancel(job, shutdown=False)
        except Exception:  # never let one job take the app nursery down
            log.exception("job %s: unexpected error in the supervisor", ref.uuid)
        finally:
            self._running.pop(ref.uuid, None)
            job.done.set()
            self.wake()

    async def _after_cancel(self, job: RunningJob, *, shutdown: bool) -> None:
        if job.finished or job.reason == "lost":
            return
        with trio.move_on_after(self.timing.cleanup_timeout_s):
            try:
                if job.reason == "user":
                    row = await self.app.db.run(
                        partial(
                            queue.finish,
                            job_id=job.ref.id,
                            owner=self.owner,
                            status=JobStatus.CANCELLED,
                        )
                    )
                    log.info("job %s cancelled", job.ref.uuid)
                elif shutdown:
                    row = await self.app.db.run(
                        partial(queue.requeue, job_id=job.ref.id, owner=self.owner)
                    )
                    log.info("job %s back to pending (service shutting down)", job.ref.uuid)
                else:
                    return
            except Exception as exc:
                log.warning("job %s: could not record the cancellation: %s", job.ref.uuid, exc)
                return
            if row is not None:
                await self._publish_status(row.to_api(), job.ref.project_uuid)

    async def _render(self, job: RunningJob) -> None:
        ref = job.ref
        temp = self.app.storage.temp / ref.uuid
        started = trio.current_time()
        try:
            context = await self.app.db.run(partial(queue.load_context, job_id=ref.id))
            inputs = await self.prepare_inputs(context)
            await trio.to_thread.run_sync(_make_temp, temp)
            plan = build_plan(inputs, temp / OUTPUT_NAME, temp / CONCAT_LIST_NAME)
            if plan.concat_list is not None:
                listing = temp / CONCAT_LIST_NAME
                await trio.to_thread.run_sync(listing.write_text, plan.concat_list)
            await self.app.db.run(
                partial(
                    queue.store_render_path,
                    job_id=ref.id,
                    owner=self.owner,
                    render_path=plan.render_path.value,
                )
            )
            log.info(
                "job %s: %s render of %.1f s (%s)",
                ref.uuid,
                plan.render_path.value,
                plan.duration,
                plan.reencode_reason or "stream copy",
            )
            reporter = ProgressReporter(self, job, plan.duration)
            await run_ffmpeg(
                plan.args,
                binary=self.app.settings.ffmpeg,
                on_progress=reporter,
                grace=self.timing.kill_grace_s,
                tag=owners.job_tag(self.owner, ref.uuid),
            )
            # The file is complete: a cancel landing now must not lose it half-moved.
            with trio.CancelScope(shield=True):
                await self._commit(job, temp / OUTPUT_NAME, plan, reporter)
            log.info("job %s completed in %.1f s", ref.uuid, trio.current_time() - started)
        except _CommitAbandoned:
            job.finished = True  # nothing more to write: recovery owns the row now
        except (RenderFailure, queue.ContextError, PlanError, ProbeError) as exc:
            await self._fail(job, str(exc))
        except ToolError as exc:
            tail = exc.stderr_tail or "no error output"
            await self._fail(job, f"ffmpeg failed (exit code {exc.returncode}): {tail}")
        except Exception as exc:
            log.exception("job %s: render crashed", ref.uuid)
            await self._fail(job, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            with trio.CancelScope(shield=True):
                await self._remove_temp(temp)

    async def prepare_inputs(self, context: queue.JobContext) -> RenderInputs:
        """Resolve options, check and probe every input file: what the plan is built from."""
        defaults, ignored = setting_overrides(context.settings)
        if ignored:
            log.warning("ignoring unusable render settings: %s", ", ".join(ignored))
        options = resolve(context.options, defaults)
        if not context.clips:
            raise RenderFailure("the project has no clips")
        for name, asset in context.assets.items():
            if asset.type not in queue.ASSET_TYPES[name]:
                raise RenderFailure(f"{name}: asset '{asset.name}' is a {asset.type} asset")
        wanted: list[tuple[str, str]] = [
            (f"clip '{clip.filename}'", clip.path) for clip in context.clips
        ]
        wanted += [
            (f"{name.removesuffix('_asset')} asset '{asset.name}'", asset.path)
            for name, asset in context.assets.items()
        ]
        paths = await trio.to_thread.run_sync(self._existing_files, wanted)
        infos: dict[Path, Any] = {}
        failures: list[str] = []
        limiter = trio.CapacityLimiter(PROBE_CONCURRENCY)

        async def probe_one(label: str, path: Path) -> None:
            # Failures are collected, not raised: the nursery then only ever
            # propagates cancellation.
            async with limiter:
                try:
                    infos[path] = await probe(path, ffprobe=self.app.settings.ffprobe)
                except (ProbeError, ToolMissingError) as exc:
                    failures.append(f"{label}: {exc}")

        unique = {path: label for (label, _), path in zip(wanted, paths, strict=True)}
        async with trio.open_nursery() as nursery:
            for path, label in unique.items():
                nursery.start_soon(probe_one, label, path)
        if failures:
            raise RenderFailure(failures[0])
        sources = [Source(path, infos[path], label) for (label, _), path in zip(wanted, paths, strict=True)]
        clip_sources = sources[: len(context.clips)]
        asset_sources = dict(zip(context.assets, sources[len(context.clips) :], strict=True))
        segments = [
            clip_segment(source, clip.in_point, clip.out_point)
            for source, clip in zip(clip_sources, context.clips, strict=True)
        ]
        if "intro_asset" in asset_sources:
            segments.insert(0, whole_segment(asset_sources["intro_asset"], "intro"))
        if "outro_asset" in asset_sources:
            segments.append(whole_segment(asset_sources["outro_asset"], "outro"))
        music = asset_sources.get("audio_asset")
        if music is not None and music.info.audio is None:
            raise RenderFailure(f"{music.label} has no audio stream")
        watermark = asset_sources.get("watermark_asset")
        if watermark is not None and watermark.info.video is None:
            raise RenderFailure(f"{watermark.label} is not an image")
        encoders = await video_encoders(self.app.settings.ffmpeg)
        return RenderInputs(tuple(segments), options, watermark, music, encoders)

    def _existing_files(self, wanted: list[tuple[str, str]]) -> list[Path]:
        found = []
        for label, relative in wanted:
            try:
                path = self.app.storage.resolve(relative)
            except UnsafePathError as exc:
                message = f"{label}: stored path {relative!r} is unsafe ({exc})"
                raise RenderFailure(message) from None
            if not path.is_file():
                raise RenderFailure(f"{label}: source file {relative} is missing")
            found.append(path)
        return found

    async def _commit(
        self, job: RunningJob, produced: Path, plan: RenderPlan, reporter: ProgressReporter
    ) -> None:
        ref = job.ref
        final = self.app.storage.output / ref.project_uuid / f"{ref.uuid}.mp4"
        await trio.to_thread.run_sync(_move, produced, final)
        job.committing = True
        finish = partial(
            queue.finish,
            job_id=ref.id,
            owner=self.owner,
            status=JobStatus.COMPLETED,
            output_path=self.app.storage.relative(final),
        )
        row = await self._record_completion(job, finish)
        if row is None:  # the row went away (project deleted) or was taken over
            await trio.to_thread.run_sync(partial(final.unlink, missing_ok=True))
            job.reason = job.reason or "lost"
            return
        job.finished = True
        await reporter.publish(100, speed=reporter.last_speed, eta=0.0)
        await self._publish_status(row.to_api(), ref.project_uuid)

    async def _record_completion(self, job: RunningJob, finish: Any) -> Any:
        """Run ``finish`` until the database takes it: retried through an outage.

        Called shielded (the file is already in ``output/``). Bounded only by the
        service's life: :meth:`_serve` gives it ``cleanup_timeout_s`` once shutdown
        starts. Giving up raises :class:`_CommitAbandoned`; the row then stays
        ``processing`` with this claim and the next start's recovery records it
        completed from the file in ``output/``.
        """
        delay = self.timing.commit_retry_first_s
        attempts = 0
        with trio.CancelScope() as scope:
            self._commit_scopes.add(scope)
            if self._stopping:
                self._bound_commit(scope)
            try:
                while True:
                    try:
                        return await self.app.db.run(finish)
                    except Exception as exc:
                        attempts += 1
                        if attempts == 1:
                            log.warning(
                                "job %s: recording completion failed (%s); retrying until the "
                                "database is back",
                                job.ref.uuid,
                                exc,
                            )
                    await trio.sleep(delay)
                    delay = min(delay * 2, self.timing.commit_retry_max_s)
            finally:
                self._commit_scopes.discard(scope)
        log.warning(
            "job %s: completion not recorded before shutdown (%d attempts); the next start "
            "records it from output/",
            job.ref.uuid,
            attempts,
        )
        raise _CommitAbandoned(job.ref.uuid)

    async def _fail(self, job: RunningJob, message: str) -> None:
        log.warning("job %s failed: %s", job.ref.uuid, message)
        with trio.CancelScope(shield=True), trio.move_on_after(self.timing.cleanup_timeout_s):
            try:
                row = await self.app.db.run(
                    partial(
                        queue.finish,
                        job_id=job.ref.id,
                        owner=self.owner,
                        status=JobStatus.FAILED,
                        error_message=message[:4000],
                    )
                )
            except Exception as exc:
                log.warning("job %s: could not record the failure: %s", job.ref.uuid, exc)
                return
            if row is not None:
                job.finished = True
                await self._publish_status(row.to_api(), job.ref.project_uuid)

    async def _remove_temp(self, temp: Path) -> None:
        with trio.move_on_after(self.timing.cleanup_timeout_s):
            # Abandoned on timeout: a hung network mount must not hang clean-up.
            await trio.to_thread.run_sync(
                partial(shutil.rmtree, temp, ignore_errors=True), abandon_on_cancel=True
            )

    # --- hub --------------------------------------------------------------------

    async def publish(self, command: str, data: dict[str, Any]) -> None:
        """Best effort, bounded: a missing or slow hub never stalls or fails a job."""
        hub = getattr(self.app, "hub", None)
        if hub is None:
            return
        with trio.move_on_after(self.timing.publish_timeout_s):
            try:
                await hub.publish(command, data, target="frontend")
            except Exception as exc:
                log.warning("publishing %s failed: %s", command, exc)

    async def _publish_status(self, job: dict[str, Any], project_uuid: str) -> None:
        await self.publish("job:status", status_message(job, project_uuid))


def status_message(job: dict[str, Any], project_uuid: str) -> dict[str, Any]:
    """The ``job:status`` payload: the job's uuid, its project's uuid, and its state."""
    return {
        "job": job["uuid"],
        "project": project_uuid,
        "status": job["status"],
        "progress": job.get("progress", 0),
        "error_message": job.get("error_message"),
        "output_path": job.get("output_path"),
        "render_path": job.get("render_path"),
    }


class ProgressReporter:
    """Turns ffmpeg ``-progress`` blocks into stored and published percentages.

    ``progress`` is output time over expected duration, 0–99 while running (100 is
    written only once the file is in place). The row is written when the whole
    percentage grows; the hub hears of every whole-percent step, and at least once
    a second with fresh speed/ETA.
    """

    def __init__(self, supervisor: Supervisor, job: RunningJob, duration: float) -> None:
        self.supervisor = supervisor
        self.job = job
        self.duration = max(duration, 0.001)
        self.stored = 0
        self.published = -1
        self.published_at = -math.inf
        self.last_speed: float | None = None

    async def __call__(self, progress: Progress) -> None:
        if progress.out_time_s is None:
            return
        percent = max(0, min(99, int(progress.out_time_s / self.duration * 100)))
        percent = max(percent, self.stored)  # never backwards
        if progress.speed:
            self.last_speed = progress.speed
        if percent > self.stored:
            self.stored = percent
            try:
                await self.supervisor.app.db.run(
                    partial(
                        queue.store_progress,
                        job_id=self.job.ref.id,
                        owner=self.supervisor.owner,
                        progress=percent,
                    )
                )
            except Exception as exc:  # a database blip must not fail a long render
                log.warning("job %s: storing progress failed: %s", self.job.ref.uuid, exc)
        now = trio.current_time()
        interval = self.supervisor.timing.progress_interval_s
        if percent > self.published or now - self.published_at >= interval:
            eta = None
            if progress.speed:
                eta = max(self.duration - progress.out_time_s, 0.0) / progress.speed
            await self.publish(percent, speed=progress.speed, eta=eta)

    async def publish(self, percent: int, *, speed: float | None, eta: float | None) -> None:
        self.published = percent
        self.published_at = trio.current_time()
        await self.supervisor.publish(
            "job:progress",
            {
                "job": self.job.ref.uuid,
                "project": self.job.ref.project_uuid,
                "progress": percent,
                "speed": speed,
                "eta_seconds": None if eta is None else round(eta, 1),
            },
        )


def _make_temp(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / TEMP_MARKER).touch()


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError:  # temp/ and output/ on different file systems
        partial_target = target.with_suffix(".partial")
        shutil.copyfile(source, partial_target)
        os.replace(partial_target, target)


__all__ = ["RunningJob", "Supervisor", "Timing", "status_message"]
