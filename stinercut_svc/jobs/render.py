"""Render jobs as a job kind of the supervisor: claim ``job`` rows, run ffmpeg, record.

The generic machinery (claiming loop, heartbeats, cancel scope per job, shielded
clean-up, recovery schedule) lives in :mod:`.supervisor`; this module is what is
specific to a render: the ``job`` table queue (:mod:`.queue`), the plan, ffmpeg,
the output file and the ``job:status`` / ``job:progress`` messages.

Completion survives a database outage. Once ffmpeg is done the file is moved to
``output/`` and recording ``completed`` is retried with backoff until the
database answers — shielded from the job's scope (a cancel is moot now) and from
the app's, but bounded by the service's life (:meth:`.Supervisor.until_shutdown`):
at shutdown it gets ``cleanup_timeout_s`` more, then gives up; the next start's
recovery then finds the file in ``output/`` and records the job completed
without rendering it again. The job stays registered as running the whole time,
so its claim keeps its heartbeat, and recovery never treats this instance's
claims as a dead instance's.

Project status is derived from the jobs (:mod:`stinercut_svc.services.project_status`),
in the same transaction as each job change.
"""

from __future__ import annotations

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
from ..media.loudness import LoudnessCache, LoudnessError
from ..media.probe import ProbeError, probe
from ..media.runner import Progress, ToolError, ToolMissingError, run_ffmpeg
from ..metrics import observe_render
from ..models import JobStatus
from ..render.music import resolve_audio
from ..render.name_screen import NameScreenError, name_screen_card
from ..render.recipes.audio import AudioSetup, measure_sources
from ..storage import UnsafePathError
from . import owner as owners
from . import queue
from .options import RenderOptions, ResolvedOptions, resolve, setting_overrides
from .outputs import (
    EditionFile,
    edition_names,
    finish_with_editions,
    found_editions,
    replace_editions,
)
from .plan import (
    PlanError,
    RenderInputs,
    RenderPlan,
    Segment,
    Source,
    build_plan,
    check_requested_codecs,
    clip_segment,
    output_size,
    whole_segment,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..models import Job
    from .supervisor import RowState, RunningJob, Services

log = logging.getLogger(__name__)

#: Marks a folder under ``temp/`` as a render's, so start-up clean-up never
#: touches temp folders that other features own.
TEMP_MARKER = ".stinercut-render"
OUTPUT_NAME = "output.mp4"
CONCAT_LIST_NAME = "inputs.ffconcat"
PROBE_CONCURRENCY = 4


async def require_available_codecs(options: RenderOptions | None, ffmpeg: str) -> None:
    """Refuse (:class:`~.plan.CodecUnavailable`) a requested codec this ffmpeg cannot encode."""
    if options is None:
        return
    check_requested_codecs(options, await video_encoders(ffmpeg))


class RenderFailure(Exception):
    """A job cannot be rendered; the message is stored as the job's error."""


class _CommitAbandoned(Exception):
    """Shutdown came before the database took a completion: leave the row as it is."""


class RenderHandler:
    """The ``render`` kind: ``job`` rows, one ffmpeg per job."""

    kind = "render"

    def __init__(self, services: Services) -> None:
        self.services = services

    # --- the queue (called by the supervisor) ----------------------------------

    async def claim(self, running: int) -> list[queue.JobRef]:
        db = self.services.db
        return await db.run(
            partial(queue.claim, owner=self.services.owner, running=running, mysql=db.is_mysql)
        )

    async def poll(self, ids: list[int]) -> dict[int, RowState]:
        states = await self.services.db.run(partial(queue.poll, job_ids=ids))
        owner = self.services.owner
        polled: dict[int, RowState] = {}
        for job_id, state in states.items():
            if state.claimed_by != owner or state.status is not JobStatus.PROCESSING:
                polled[job_id] = "lost"
            else:
                polled[job_id] = "cancel_requested" if state.cancel_requested else "running"
        return polled

    async def heartbeat(self, ids: list[int]) -> None:
        await self.services.db.run(
            partial(queue.heartbeat, owner=self.services.owner, job_ids=ids)
        )

    async def recover(self, *, startup: bool) -> None:
        stale = timedelta(seconds=self.services.timing.stale_after_s)
        try:
            recovered = await self.services.db.run(
                partial(
                    queue.recover_stale,
                    stale_after=stale,
                    me=self.services.owner,
                    finished_output=self._finished_output,
                    kill_leftovers=self._kill_leftovers,
                    completed=self._record_found_editions,
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
            await self.publish_status(item.job, item.project_uuid)
        if recovered:
            self.services.wake()
        if startup:
            try:
                live = await self.services.db.run(partial(queue.live_job_uuids, stale_after=stale))
                removed = await trio.to_thread.run_sync(self._remove_orphan_temp, live)
            except Exception as exc:
                log.warning("temp clean-up failed: %s", exc)
                return
            if removed:
                log.info("removed %d orphan render folder(s) from temp/", removed)

    def _finished_output(self, project_uuid: str, job_uuid: str) -> str | None:
        """The stored path of a job's output if a (dead) owner already moved it in place."""
        final = self.services.storage.output / project_uuid / f"{job_uuid}.mp4"
        return self.services.storage.relative(final) if final.is_file() else None

    def _record_found_editions(self, session: Session, job: Job, project_uuid: str) -> None:
        """A job recovered as completed gets the ``job_output`` rows of its editions."""
        storage = self.services.storage
        editions = found_editions(
            storage.output / project_uuid,
            job.uuid,
            edition_names(job.options),
            relative=storage.relative,
            ffprobe=self.services.settings.ffprobe,
        )
        replace_editions(session, job_id=job.id, editions=editions)

    @staticmethod
    def _kill_leftovers(owner: str, job_uuid: str) -> int:
        killed = owners.kill_leftovers(owner, job_uuid)
        if killed:
            log.warning("job %s: killed %d leftover process(es) of %s", job_uuid, killed, owner)
        return killed

    def _remove_orphan_temp(self, live: set[str]) -> int:
        removed = 0
        temp = self.services.storage.temp
        if not temp.is_dir():
            return 0
        running = self.services.running()
        for folder in temp.iterdir():
            if folder.name in live or folder.name in running:
                continue
            if folder.is_dir() and (folder / TEMP_MARKER).exists():
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        return removed

    # --- one job ----------------------------------------------------------------

    async def run(self, job: RunningJob) -> None:
        """Inside the job's cancel scope; every error but cancellation is recorded here."""
        await self.publish_status(
            {"uuid": job.ref.uuid, "status": "processing", "progress": 0}, job.ref.project_uuid
        )
        await self._render(job)

    def _finish(self, job: RunningJob, status: JobStatus, **extra: Any) -> Any:
        """``queue.finish`` for this job and owner, ready for ``db.run``."""
        return partial(queue.finish, job_id=job.ref.id, owner=self.services.owner, status=status,
                       **extra)  # fmt: skip

    async def record_cancel(self, job: RunningJob, *, shutdown: bool) -> None:
        """User cancel: ``cancelled``. Shutdown: back to ``pending`` (runs on the next start)."""
        try:
            if job.reason == "user":
                row = await self.services.db.run(self._finish(job, JobStatus.CANCELLED))
                log.info("job %s cancelled", job.ref.uuid)
            elif shutdown:
                row = await self.services.db.run(
                    partial(queue.requeue, job_id=job.ref.id, owner=self.services.owner)
                )
                log.info("job %s back to pending (service shutting down)", job.ref.uuid)
            else:
                return
        except Exception as exc:
            log.warning("job %s: could not record the cancellation: %s", job.ref.uuid, exc)
            return
        if row is not None:
            await self.publish_status(row.to_api(), job.ref.project_uuid)

    async def _render(self, job: RunningJob) -> None:
        ref = job.ref
        temp = self.services.storage.temp / ref.uuid
        started = trio.current_time()
        try:
            context = await self.services.db.run(partial(queue.load_context, job_id=ref.id))
            inputs = await self.prepare_inputs(context)
            await trio.to_thread.run_sync(_make_temp, temp)
            # Name screen (namescreen helper): rasterised into the job's temp folder.
            inputs = await self.add_name_screen(context, inputs, temp)
            plan = build_plan(inputs, temp / OUTPUT_NAME, temp / CONCAT_LIST_NAME)
            if plan.concat_list is not None:
                listing = temp / CONCAT_LIST_NAME
                await trio.to_thread.run_sync(listing.write_text, plan.concat_list)
            if plan.filter_script is not None:
                script, text = plan.filter_script
                await trio.to_thread.run_sync(script.write_text, text)
            await self.services.db.run(
                partial(
                    queue.store_render_path,
                    job_id=ref.id,
                    owner=self.services.owner,
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
                binary=self.services.settings.ffmpeg,
                on_progress=reporter,
                grace=self.services.timing.kill_grace_s,
                tag=owners.job_tag(self.services.owner, ref.uuid),
            )
            # The file is complete: a cancel landing now must not lose it half-moved.
            with trio.CancelScope(shield=True):
                await self._commit(job, temp / OUTPUT_NAME, plan, reporter)
            log.info("job %s completed in %.1f s", ref.uuid, trio.current_time() - started)
            observe_render(self.services.metrics, plan.render_path.value, trio.current_time() - started)
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
                    infos[path] = await probe(path, ffprobe=self.services.settings.ffprobe)
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
        encoders = await video_encoders(self.services.settings.ffmpeg)
        return RenderInputs(
            tuple(segments), options, watermark, music, encoders,
            clip_uuids=tuple(clip.uuid for clip in context.clips),
            # audio helper: music per phase, loudness of every source, freefall windows
            audio_setup=await self._audio_setup(context, options, asset_sources, segments),
            clip_freefall=tuple((clip.freefall_start_s, clip.freefall_end_s)
                                for clip in context.clips),  # fmt: skip
        )

    # --- audio helper ----------------------------------------------------------------

    async def _audio_setup(
        self,
        context: queue.JobContext,
        options: ResolvedOptions,
        assets: dict[str, Source],
        segments: list[Segment],
    ) -> AudioSetup:
        """Music files per phase, and the loudness of every source (measured once, cached)."""
        audio = resolve_audio(context.options.audio, audio_asset=options.audio_asset,
                              audio_mode=options.audio_mode,
                              music_volume=options.music_volume)  # fmt: skip
        by_uuid = {context.assets[name].uuid: source for name, source in assets.items()}
        music: dict[str, tuple[Path, Any]] = {}
        for uuid in {u for u in audio.tracks.values() if u}:
            source = by_uuid[uuid]
            if source.info.audio is None:
                raise RenderFailure(f"{source.label} has no audio stream")
            music[uuid] = (source.path, source.info)
        cache = LoudnessCache(self.services.storage.root / "cache" / "loudness",
                              ffmpeg=self.services.settings.ffmpeg)  # fmt: skip
        wanted = [(s.source.path, s.source.info) for s in segments] + list(music.values())
        try:
            loudness = await measure_sources(cache, wanted)
        except LoudnessError as exc:
            raise RenderFailure(str(exc)) from None
        return AudioSetup(audio, music, loudness, context.options.slow_motion)

    # --- name screen (namescreen helper) -------------------------------------------

    async def add_name_screen(
        self, context: queue.JobContext, inputs: RenderInputs, temp: Path
    ) -> RenderInputs:
        """``inputs`` with the name screen as its title card, when the options ask for one.

        Rasterised at the master size (the editions reframe the master) into
        ``temp/name_screen``, which the render's clean-up removes with ``temp``.
        """
        screen = context.options.name_screen
        if screen is None or not screen.enabled:
            return inputs
        rows = context.name_screen_assets
        for name, row in rows.items():
            if row.type not in queue.NAME_SCREEN_ASSET_TYPES[name]:
                raise RenderFailure(f"name_screen.{name}: asset '{row.name}' is a {row.type} asset")
        template = rows.get("template_asset")
        if template is None:
            raise RenderFailure("name_screen is enabled but has no template_asset")
        wanted = [(f"name screen template '{template.name}'", template.path)]
        sound_row = rows.get("sound_asset")
        if sound_row is not None:
            wanted.append((f"name screen sound '{sound_row.name}'", sound_row.path))
        paths = await trio.to_thread.run_sync(self._existing_files, wanted)
        sound = paths[1] if sound_row is not None else None
        if sound is not None:
            info = await probe(sound, ffprobe=self.services.settings.ffprobe)
            if info.audio is None:
                raise RenderFailure(f"{wanted[1][0]} has no audio stream")
        first = next(s for s in inputs.segments if s.kind == "clip")
        width, height = output_size(inputs.options, first.source.info)
        # The still: half a second into the clip's used part (a first frame is often dark).
        at_s = first.start + min(0.5, first.duration / 2)
        created = context.project_created_at
        try:
            card = await name_screen_card(
                screen,
                template=paths[0],
                resolve=self.services.storage.resolve,
                sound=sound,
                project_name=context.project_name,
                project_day=created.date() if created is not None else None,
                width=width,
                height=height,
                background_clip=(first.source.path, at_s),
                work_dir=temp / "name_screen",
            )
        except NameScreenError as exc:
            raise RenderFailure(f"name screen: {exc}") from None
        return attrs.evolve(inputs, title_card=card)

    def _existing_files(self, wanted: list[tuple[str, str]]) -> list[Path]:
        found = []
        for label, relative in wanted:
            try:
                path = self.services.storage.resolve(relative)
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
        storage = self.services.storage
        final = storage.output / ref.project_uuid / f"{ref.uuid}.mp4"
        # Editions first: once the main output is in place recovery calls the job done.
        editions: list[EditionFile] = []
        for edition in plan.editions:
            target = storage.output / ref.project_uuid / f"{ref.uuid}-{edition.name}.mp4"
            size = await trio.to_thread.run_sync(_move_sized, edition.path, target)
            editions.append(EditionFile(edition.name, storage.relative(target), edition.width,
                                        edition.height, edition.codec, size))  # fmt: skip
        await trio.to_thread.run_sync(_move, produced, final)
        job.committing = True
        finish = partial(
            finish_with_editions,
            job_id=ref.id,
            owner=self.services.owner,
            output_path=storage.relative(final),
            editions=tuple(editions),
        )
        row = await self._record_completion(job, finish)
        if row is None:  # the row went away (project deleted) or was taken over
            for path in [final, *(storage.output / ref.project_uuid / f"{ref.uuid}-{e.name}.mp4"
                                  for e in editions)]:  # fmt: skip
                await trio.to_thread.run_sync(partial(path.unlink, missing_ok=True))
            job.reason = job.reason or "lost"
            return
        job.finished = True
        await reporter.publish(100, speed=reporter.last_speed, eta=0.0)
        await self.publish_status(row.to_api(), ref.project_uuid)

    async def _record_completion(self, job: RunningJob, finish: Any) -> Any:
        """Run ``finish`` until the database takes it: retried through an outage.

        Called shielded (the file is already in ``output/``). Bounded only by the
        service's life: :meth:`.Supervisor.until_shutdown` gives it ``cleanup_timeout_s``
        once shutdown starts. Giving up raises :class:`_CommitAbandoned`; the row then stays
        ``processing`` with this claim and the next start's recovery records it
        completed from the file in ``output/``.
        """
        delay = self.services.timing.commit_retry_first_s
        attempts = 0
        with self.services.until_shutdown():
            while True:
                try:
                    return await self.services.db.run(finish)
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
                delay = min(delay * 2, self.services.timing.commit_retry_max_s)
        log.warning(
            "job %s: completion not recorded before shutdown (%d attempts); the next start "
            "records it from output/",
            job.ref.uuid,
            attempts,
        )
        raise _CommitAbandoned(job.ref.uuid)

    async def _fail(self, job: RunningJob, message: str) -> None:
        log.warning("job %s failed: %s", job.ref.uuid, message)
        with trio.CancelScope(shield=True), trio.move_on_after(self.services.timing.cleanup_timeout_s):
            try:
                row = await self.services.db.run(
                    self._finish(job, JobStatus.FAILED, error_message=message[:4000])
                )
            except Exception as exc:
                log.warning("job %s: could not record the failure: %s", job.ref.uuid, exc)
                return
            if row is not None:
                job.finished = True
                await self.publish_status(row.to_api(), job.ref.project_uuid)

    async def _remove_temp(self, temp: Path) -> None:
        with trio.move_on_after(self.services.timing.cleanup_timeout_s):
            # Abandoned on timeout: a hung network mount must not hang clean-up.
            await trio.to_thread.run_sync(
                partial(shutil.rmtree, temp, ignore_errors=True), abandon_on_cancel=True
            )

    async def publish_status(self, job: dict[str, Any], project_uuid: str) -> None:
        await self.services.publish("job:status", status_message(job, project_uuid))


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

    def __init__(self, handler: RenderHandler, job: RunningJob, duration: float) -> None:
        self.services = handler.services
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
                await self.services.db.run(
                    partial(
                        queue.store_progress,
                        job_id=self.job.ref.id,
                        owner=self.services.owner,
                        progress=percent,
                    )
                )
            except Exception as exc:  # a database blip must not fail a long render
                log.warning("job %s: storing progress failed: %s", self.job.ref.uuid, exc)
        now = trio.current_time()
        interval = self.services.timing.progress_interval_s
        if percent > self.published or now - self.published_at >= interval:
            eta = None
            if progress.speed:
                eta = max(self.duration - progress.out_time_s, 0.0) / progress.speed
            await self.publish(percent, speed=progress.speed, eta=eta)

    async def publish(self, percent: int, *, speed: float | None, eta: float | None) -> None:
        self.published = percent
        self.published_at = trio.current_time()
        await self.services.publish(
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


def _move_sized(source: Path, target: Path) -> int:
    _move(source, target)
    return target.stat().st_size


__all__ = ["TEMP_MARKER", "RenderFailure", "RenderHandler", "status_message"]
