"""The ``import`` job kind: the supervisor runs import batches like renders.

One batch, in its own cancel scope (:mod:`stinercut_svc.jobs.supervisor`)::

    claim (pending → copying | analyzing)
     └─ copy      card → input/<uuid>/, only files no imported_file row knows;
     │            each complete file recorded at once (a restart copies the rest);
     │            its end recorded (``copy_completed_at``): never read the card again
     └─ probe     ffprobe facts per file (duration, size, codec, fps)
     └─ analyse   per recording: QR (every 0.5 s over the first 5 s, on the LRV
     │            proxy when there is one), freefall from the audio; resolve jumps
     └─ persist   video_file / video_file_segment / jump rows, batch verdict
     └─ hooks     apply_resolved: resolved jumps fill their customer's project

Why the batch row is the queue: it survives the process. A batch whose instance
dies is found by another (stale heartbeat, or a dead owner process on this host)
and put back to ``pending``; its copy then plans against the ``imported_file``
rows already written, so nothing is copied twice, and the analysis, whose rows
are upserts, simply runs again. A batch whose copy had finished resumes straight
into analysis: the card is not needed (and is usually back in the camera).

Endings: a pulled card (or a read error) ends the batch ``error`` naming how many
files were complete and what to do: re-insert the card (the same batch is reused
and copies the rest, :func:`~stinercut_svc.services.imports.start_folder_import`)
or retry without it (``POST /api/imports/{uuid}/retry {"skip_copy": true}``). Its
copied files are known, so no other batch would copy them: this batch must finish
them. A user cancel ends it ``cancelled`` (retryable the same ways); shutdown puts
it back to ``pending``. Progress and results go out as the original's
``videofile:*`` events (:mod:`.service`) to the frontend.

One setting drives where the landing recording ends: ``INGEST_GROUND_AFTER_LANDING_S``
is both the resolver's cut (the jump's clip ranges, stored as in/out points here)
and the project filler's (:mod:`.fill`), so the two always agree.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio
from sqlalchemy.orm import Session

from ..media import qr
from ..media.probe import ProbeError, probe
from ..media.runner import ToolError, ToolMissingError
from ..media.thumbnail import ThumbnailError, make_thumbnail
from ..models import utcnow
from ..models.ingest import BatchStatus, SourceKind
from ..services import imports
from .card import CardError, Recording, scan_card
from .copy import CopiedFile, CopyInterrupted
from .resolve import QrSighting, ResolveConfig
from .service import BatchAnalysis, analyse_folder, copy_card
from .store import FileFacts, StoredBatch, copy_counts, known_files, mark_empty, record_copied
from .store import store_analysis as store_rows

if TYPE_CHECKING:
    from ..config import Settings
    from ..context import StinercutApp
    from ..jobs.supervisor import RowState, RunningJob, Services

log = logging.getLogger(__name__)

#: QR samples: every 0.5 s over the first 5 s (the original scanned 0, 1, 2, 5 s only).
QR_STEP_S = 0.5
QR_SPAN_S = 5.0
QR_TIMES = tuple(round(i * QR_STEP_S, 3) for i in range(int(QR_SPAN_S / QR_STEP_S) + 1))
PROBE_CONCURRENCY = 4
#: Temp folder prefix for a batch's thumbnails (removed when the batch ends).
THUMBS_PREFIX = "import-thumbs-"

FindCustomer = Callable[[str], Awaitable[str | None]]
ApplyResolved = Callable[[str], Awaitable[Any]]


@attrs.frozen
class IngestHooks:
    """What the import handler needs from the rest of the service, as callables.

    ``find_customer(code)``: the project uuid a QR uuid names (a project, or a
    frontend booking's project), ``None`` for an unknown code. ``apply_resolved
    (batch_uuid)``: fill the customers' projects from the stored jump rows (and
    start renders with ``INGEST_AUTO_RENDER``). ``run_sync``: where QR frames are
    decoded (a worker process; zxing-cpp holds the GIL).
    """

    find_customer: FindCustomer
    apply_resolved: ApplyResolved
    run_sync: qr.RunSync | None = None


def app_hooks(app: StinercutApp) -> IngestHooks:
    """The hooks of a running app: jump services of :mod:`stinercut_svc.services.jumps`."""
    from ..services import jumps

    async def find_customer(code: str) -> str | None:
        return await jumps.find_customer(app, code)

    async def apply_resolved(batch_uuid: str) -> Any:
        return await jumps.apply_resolved(app, batch_uuid)

    async def run_sync(fn: Callable[..., Any], *args: Any) -> Any:
        # The font worker processes exist from before_serving on (after the app is built).
        return await app.font_workers.run_sync(fn, *args)

    return IngestHooks(find_customer, apply_resolved, run_sync)


def import_kind(app: StinercutApp) -> Callable[[Services], ImportHandler]:
    """The supervisor kind factory for ``app`` (see :func:`.supervisor.kinds`)."""
    return lambda services: ImportHandler(services, app_hooks(app))


def resolve_config(settings: Settings) -> ResolveConfig:
    """The resolver's settings: the landing cut is ``INGEST_GROUND_AFTER_LANDING_S``, the
    same value the project filler uses (``services.jumps.fill_config``)."""
    return ResolveConfig(ground_after_limit_s=settings.ingest_ground_after_landing_s)


class _CardGone(Exception):
    """The card cannot be read before (or while) copying; the message says what was done."""


class _Lost(Exception):
    """The batch row is no longer this instance's: stop without writing anything."""


class ImportHandler:
    kind = "import"

    def __init__(self, services: Services, hooks: IngestHooks) -> None:
        self.services = services
        self.hooks = hooks

    # --- the queue ----------------------------------------------------------------------

    async def claim(self, running: int) -> list[imports.BatchRef]:
        db = self.services.db
        return await db.run(
            partial(imports.claim, owner=self.services.owner, running=running, mysql=db.is_mysql)
        )

    async def poll(self, ids: list[int]) -> dict[int, RowState]:
        states = await self.services.db.run(partial(imports.poll, batch_ids=ids))
        owner = self.services.owner
        polled: dict[int, RowState] = {}
        for batch_id, state in states.items():
            if state.claimed_by != owner or not state.active:
                polled[batch_id] = "lost"
            else:
                polled[batch_id] = "cancel_requested" if state.cancel_requested else "running"
        return polled

    async def heartbeat(self, ids: list[int]) -> None:
        await self.services.db.run(
            partial(imports.heartbeat, owner=self.services.owner, batch_ids=ids)
        )

    async def recover(self, *, startup: bool) -> None:
        stale = timedelta(seconds=self.services.timing.stale_after_s)
        recovered = await self.services.db.run(
            partial(imports.recover_stale, stale_after=stale, me=self.services.owner)
        )
        for batch in recovered:
            log.warning(
                "import %s was left running by a stopped instance: now %s",
                batch["uuid"],
                batch["status"],
            )
            await self._status(batch)
        if recovered:
            self.services.wake()
        if startup:
            await trio.to_thread.run_sync(self._remove_thumb_folders)

    def _remove_thumb_folders(self) -> None:
        temp = self.services.storage.temp
        if not temp.is_dir():
            return
        running = self.services.running()
        for folder in temp.glob(f"{THUMBS_PREFIX}*"):
            if folder.name.removeprefix(THUMBS_PREFIX) not in running:
                shutil.rmtree(folder, ignore_errors=True)

    # --- one batch ------------------------------------------------------------------------

    async def run(self, job: RunningJob) -> None:
        ref: imports.BatchRef = job.ref
        folder = self.services.storage.input / ref.uuid
        log.info("import %s: started (%s)", ref.uuid, ref.source_kind.value)
        try:
            if ref.copy:
                await self._copy(job, folder)
            if not await trio.to_thread.run_sync(_has_videos, folder):
                await self._nothing_to_analyse(job)
                return
            await self._analyse(job, folder)
        except _Lost:
            log.warning("import %s: the batch was taken away from this instance", ref.uuid)
        except _CardGone as exc:
            await self._fail(job, str(exc))
        except CardError as exc:  # the batch folder itself (input/<uuid>) is unreadable
            await self._fail(job, f"batch folder unusable: {exc}")
        except ToolMissingError as exc:
            await self._fail(job, f"media tools missing: {exc}")
        except Exception as exc:
            log.exception("import %s: crashed", ref.uuid)
            await self._fail(job, f"internal error: {type(exc).__name__}: {exc}")

    async def _update(self, job: RunningJob, **values: Any) -> None:
        ok = await self.services.db.run(
            partial(imports.update_owned, batch_id=job.ref.id, owner=self.services.owner, **values)
        )
        if not ok:
            raise _Lost(job.ref.uuid)

    async def _copy(self, job: RunningJob, folder: Path) -> None:
        ref: imports.BatchRef = job.ref
        try:
            if ref.mount_path is None:
                raise imports.ImportPathInvalid("the batch has no card folder")
            card = await trio.to_thread.run_sync(
                imports.check_import_path, self.services.settings.import_roots, ref.mount_path
            )
        except imports.ImportsError as exc:  # the folder went away or left the roots
            raise await self._card_gone(job, f"card unusable: {exc.message}") from None
        known = await self.services.db.run(known_files)
        storage = self.services.storage

        async def on_file(copied: CopiedFile) -> None:
            await self.services.db.run(
                partial(
                    record_copied,
                    batch_id=ref.id,
                    copied=copied,
                    stored_path=storage.relative(copied.destination),
                )
            )

        try:
            outcome = await copy_card(
                card, folder, known, batch_uuid=ref.uuid, publish=self._publish, on_file=on_file
            )
        except CardError as exc:
            raise await self._card_gone(job, f"card unusable: {exc}") from None
        except CopyInterrupted as exc:
            raise await self._card_gone(job, f"copy interrupted (card pulled?): {exc}") from None
        files, size = await self.services.db.run(partial(copy_counts, batch_id=ref.id))
        on_card = len(outcome.scan.videos) + len(outcome.scan.proxies)
        # From here on the card is not needed: a restart or retry goes straight to analysis.
        await self._update(
            job,
            status=BatchStatus.ANALYZING,
            copied_files=files,
            copied_bytes=size,
            total_bytes=sum(f.size for f in (*outcome.scan.videos, *outcome.scan.proxies)),
            skipped_files=max(on_card - files, 0),
            copy_completed_at=utcnow(),
        )

    async def _card_gone(self, job: RunningJob, why: str) -> _CardGone:
        """The copy cannot go on: record what was copied and say how to finish the batch."""
        ref: imports.BatchRef = job.ref
        files, size = await self.services.db.run(partial(copy_counts, batch_id=ref.id))
        await self._update(job, copied_files=files, copied_bytes=size)
        advice = (
            f"{files} file(s) of the card were copied before it stopped; re-insert the card "
            f"to copy the rest into this batch, or retry without the card "
            f'(POST /api/imports/{ref.uuid}/retry {{"skip_copy": true}}) to analyse the '
            f"{files} copied"
            if files
            else "no file was copied; re-insert the card to import it"
        )
        return _CardGone(f"{why} — {advice}")

    async def _nothing_to_analyse(self, job: RunningJob) -> None:
        ref: imports.BatchRef = job.ref
        if ref.source_kind is SourceKind.INPUT:
            await self._fail(job, f"input/{ref.uuid} holds no video files")
            return

        def empty(session: Session) -> dict[str, Any] | None:
            if not imports.owns(session, batch_id=ref.id, owner=self.services.owner):
                return None
            mark_empty(session, batch_id=ref.id)
            return imports.release(session, batch_id=ref.id)

        with trio.CancelScope(shield=True):
            row = await self.services.db.run(empty)
        if row is None:
            raise _Lost(ref.uuid)
        job.finished = True
        log.info("import %s: nothing new on the card", ref.uuid)
        await self._publish(
            "videofile:batch_completed",
            {
                **StoredBatch(BatchStatus.RESOLVED, None, 0, 0, 0, 0, 0).event(ref.uuid),
                "skipped_files": row.get("skipped_files"),
            },
        )
        await self._status(row)

    async def _analyse(self, job: RunningJob, folder: Path) -> None:
        ref: imports.BatchRef = job.ref
        if ref.source_kind is SourceKind.INPUT:
            await self._update(job, status=BatchStatus.ANALYZING)
        scan = await trio.to_thread.run_sync(scan_card, folder)
        facts = await self._probe_all(folder, [v.relative for v in scan.videos])
        analysed = 0

        async def publish(command: str, data: dict[str, Any]) -> None:
            nonlocal analysed
            if command == "videofile:file_analyzed":
                analysed += 1
                await self._update(job, analyzed_files=analysed)
            elif command == "videofile:analysis_started":
                await self._update(job, total_files=int(data.get("total_files", 0)))
            await self._publish(command, data)

        analysis = await analyse_folder(
            folder,
            batch_uuid=ref.uuid,
            publish=publish,
            read_qr=partial(self._read_qr, facts=facts),
            ffmpeg=self.services.settings.ffmpeg,
            ffprobe=self.services.settings.ffprobe,
            resolve_config=resolve_config(self.services.settings),
        )
        thumbs = await self._thumbnails(ref.uuid, analysis, facts)
        proxies_root = self.services.storage.relative(folder)

        def persist(session: Session) -> tuple[StoredBatch, dict[str, Any]] | None:
            if not imports.owns(session, batch_id=ref.id, owner=self.services.owner):
                return None
            stored = store_rows(
                session,
                batch_id=ref.id,
                batch_uuid=ref.uuid,
                analysis=analysis,
                facts=facts,
                thumbnails=thumbs,
                proxies_root=proxies_root,
            )
            row = imports.release(session, batch_id=ref.id)
            assert row is not None
            return stored, row

        # The analysis is done: a cancel landing now must not lose it half-written.
        job.committing = True
        with trio.CancelScope(shield=True):
            result = await self.services.db.run(persist)
            if result is None:
                raise _Lost(ref.uuid)
            stored, row = result
            job.finished = True
            log.info(
                "import %s: %s (%d files, %d jumps resolved)",
                ref.uuid,
                stored.status.value,
                stored.total_files,
                stored.resolved_jumps,
            )
            await self._status(row)
        try:
            await self.hooks.apply_resolved(ref.uuid)
        except Exception:
            # The batch's rows are stored; filling projects can be redone from them.
            log.exception("import %s: filling the customers' projects failed", ref.uuid)
        # Last: a client hearing batch_completed finds the customers' projects filled.
        await self._publish("videofile:batch_completed", stored.event(ref.uuid))
        await self._publish(
            "videofile:analysis_completed",
            {**stored.event(ref.uuid), "jumps": len(analysis.jumps)},
        )

    async def _probe_all(self, folder: Path, relatives: Sequence[str]) -> dict[str, FileFacts]:
        facts: dict[str, FileFacts] = {}
        limiter = trio.CapacityLimiter(PROBE_CONCURRENCY)
        ffprobe = self.services.settings.ffprobe

        async def one(relative: str) -> None:
            async with limiter:
                try:
                    info = await probe(folder / relative, ffprobe=ffprobe)
                except (ProbeError, ToolError):
                    facts[relative] = FileFacts()
                    return
            video = info.video
            facts[relative] = FileFacts(
                duration=info.duration,
                width=None if video is None else video.display_size[0],
                height=None if video is None else video.display_size[1],
                fps=None if video is None or video.fps is None else round(video.fps, 3),
                codec=None if video is None else video.codec,
            )

        async with trio.open_nursery() as nursery:
            for relative in relatives:
                nursery.start_soon(one, relative)
        return facts

    async def _read_qr(
        self, recording: Recording, *, facts: dict[str, FileFacts]
    ) -> QrSighting | None:
        """The customer code filmed at the start of ``recording``, and when it was last seen.

        Frames every 0.5 s over the first 5 s of the first chapter (its LRV proxy
        when the card had one: the same timeline at a fraction of the decoding);
        then, for the end of the QR shot, the later samples from the last one back
        until the code shows again.
        """
        first = recording.chapters[0]
        duration = facts.get(first.file.relative, FileFacts()).duration
        times = [t for t in QR_TIMES if duration is None or t < duration] or [0.0]
        sources = [first.file.path] if first.proxy is None else [first.proxy.path, first.file.path]
        for source in sources:
            try:
                found = await self._scan(source, times)
            except (qr.QrScanError, ToolError) as exc:
                log.warning("QR scan of %s failed: %s", recording.key, exc)
                continue
            if not found.found or found.content is None or found.timestamp is None:
                return None
            code = qr.parse_payload(found.content)
            if code is None:
                return None
            last = found.timestamp
            for at in reversed([t for t in times if t > found.timestamp]):
                again = await self._scan(source, [at])
                if again.content is not None and qr.parse_payload(again.content) == code:
                    last = at
                    break
            customer = await self.hooks.find_customer(code)
            return QrSighting(code=code, customer=customer, last_seen=last)
        return None

    async def _scan(self, source: Path, times: Sequence[float]) -> qr.QrScan:
        return await qr.scan(
            source, times, ffmpeg=self.services.settings.ffmpeg, run_sync=self.hooks.run_sync
        )

    async def _thumbnails(
        self, batch_uuid: str, analysis: BatchAnalysis, facts: dict[str, FileFacts]
    ) -> dict[str, bytes]:
        """One JPEG per recording (from its first chapter), for the staff's lists."""
        folder = self.services.storage.temp / f"{THUMBS_PREFIX}{batch_uuid}"
        thumbs: dict[str, bytes] = {}
        await trio.to_thread.run_sync(partial(folder.mkdir, parents=True, exist_ok=True))
        try:
            for index, result in enumerate(analysis.recordings):
                first = result.recording.chapters[0]
                chapter = first.file
                dest = folder / f"{index}.jpg"
                # The LRV proxy when there is one: same picture, a fraction of the decoding.
                source = chapter.path if first.proxy is None else first.proxy.path
                try:
                    await make_thumbnail(
                        source,
                        dest,
                        duration=facts.get(chapter.relative, FileFacts()).duration,
                        ffmpeg=self.services.settings.ffmpeg,
                    )
                except ThumbnailError as exc:
                    log.info("no thumbnail for %s: %s", chapter.relative, exc)
                    continue
                thumbs[chapter.relative] = await trio.to_thread.run_sync(dest.read_bytes)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(partial(shutil.rmtree, folder, ignore_errors=True))
        return thumbs

    # --- endings ----------------------------------------------------------------------------

    async def _end(
        self, job: RunningJob, status: BatchStatus, message: str | None = None
    ) -> dict[str, Any] | None:
        """Record the batch's end if this instance still holds it; the row, or None."""
        try:
            return await self.services.db.run(
                partial(
                    imports.finish,
                    batch_id=job.ref.id,
                    owner=self.services.owner,
                    status=status,
                    error_message=message,
                )
            )
        except Exception as exc:
            log.warning("import %s: could not record %s: %s", job.ref.uuid, status.value, exc)
            return None

    async def _fail(self, job: RunningJob, message: str) -> None:
        log.warning("import %s failed: %s", job.ref.uuid, message)
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(self.services.timing.cleanup_timeout_s),
        ):
            row = await self._end(job, BatchStatus.ERROR, message)
            if row is None:
                return
            job.finished = True
            await self._publish(
                "videofile:analysis_error",
                {
                    "batch_id": job.ref.uuid,
                    "folder_path": f"input/{job.ref.uuid}",
                    "error": message,
                    "copied_files": row.get("copied_files"),
                },
            )
            await self._status(row)

    async def record_cancel(self, job: RunningJob, *, shutdown: bool) -> None:
        if job.reason == "user":
            row = await self._end(job, BatchStatus.CANCELLED)
            log.info("import %s cancelled", job.ref.uuid)
        elif shutdown:
            try:
                row = await self.services.db.run(
                    partial(imports.requeue, batch_id=job.ref.id, owner=self.services.owner)
                )
            except Exception as exc:
                log.warning("import %s: could not put it back to pending: %s", job.ref.uuid, exc)
                return
            log.info("import %s back to pending (service shutting down)", job.ref.uuid)
        else:
            return
        if row is not None:
            await self._status(row)

    # --- hub --------------------------------------------------------------------------------

    async def _publish(self, command: str, data: dict[str, Any]) -> None:
        await self.services.publish(command, data)

    async def _status(self, batch: dict[str, Any]) -> None:
        """``videofile:batch_status``: the batch row as the API shows it (any change)."""
        await self._publish("videofile:batch_status", batch)


def _has_videos(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    try:
        return bool(scan_card(folder).videos)
    except CardError:
        return False


__all__ = ["QR_TIMES", "ImportHandler", "IngestHooks", "app_hooks", "import_kind", "resolve_config"]
