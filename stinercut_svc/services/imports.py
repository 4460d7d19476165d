"""Import batches: where they may come from, their queue, and what the API shows of them.

A batch is an ``import_batch`` row, and the row *is* the queue entry, exactly like a
render's ``job`` row (:mod:`stinercut_svc.jobs.queue`): ``pending`` rows are claimed
by one service instance (``claimed_by``, ``heartbeat_at``), run by the supervisor's
import handler (:mod:`stinercut_svc.ingest.handler`), and recovered by another
instance when their owner dies (back to ``pending`` once, ``error`` the second
time). Copying is incremental (``imported_file`` rows), so a recovered batch never
copies a file twice, and a batch whose copy finished (``copy_completed_at``) resumes
straight into analysis without reading the card again: the card may be gone.

No file is stranded. A batch that ended ``error`` or ``cancelled`` owns the files it
copied (its ``imported_file`` rows make them "known", so no later batch copies them
again); it is therefore the batch that must finish them. Two ways: an operator's
:func:`retry_batch` (``POST /api/imports/{uuid}/retry``), or re-inserting the card
(:func:`start_folder_import`): when the card's known files belong to such a batch and
its folder is still there, that batch is reused and retried instead of a new one
that would find nothing new (the new detector does the same: it reuses its last
uuid for a card it saw). The move back to ``pending`` is one conditional UPDATE
(``WHERE status IN (error, cancelled)``), so a re-insert racing a manual retry
makes one live batch, never two copying the same card, on SQLite and MariaDB.

Paths are the dangerous part. An import reads a folder of the server's file system,
so only folders under ``IMPORT_ROOTS`` are accepted, after resolving symlinks (a
link inside a root pointing out of it is refused); with no roots configured every
folder import is refused, naming the setting.

Failures are :class:`ImportsError` subclasses (domain words); ``errors.py`` maps
them to HTTP. The sync functions take a Session (``Database.run``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs
import trio
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from ..ingest.card import CardError, scan_card
from ..jobs import owner as owners
from ..models import utcnow
from ..models.base import isoformat
from ..models.ingest import (
    ACTIVE_BATCH,
    BatchStatus,
    ImportBatch,
    ImportedFile,
    Jump,
    SourceKind,
    VideoFile,
)

if TYPE_CHECKING:
    from ..context import StinercutApp
    from ..hub.core import BackendMessage

log = logging.getLogger(__name__)

#: Batches one instance runs at once: copying is bound by the card reader, analysis
#: by the CPU that renders also need; one at a time keeps both fair.
MAX_RUNNING_BATCHES = 1
INTERRUPTED_TWICE = "interrupted twice: the service stopped while importing it, twice"
FINISHED = (
    BatchStatus.RESOLVED,
    BatchStatus.NEEDS_MANUAL,
    BatchStatus.ERROR,
    BatchStatus.CANCELLED,
)
#: Endings that leave copied files unanalysed: such a batch is retried, never replaced.
RETRYABLE = (BatchStatus.ERROR, BatchStatus.CANCELLED)
LIVE_BATCH = (BatchStatus.PENDING, *ACTIVE_BATCH)
#: Longest ``mount_path`` the column holds.
MOUNT_PATH_MAX = 255


class ImportsError(Exception):
    """A refused import request; the message is for people."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or None


class ImportsDisabled(ImportsError):
    """No ``IMPORT_ROOTS`` configured: folder imports are switched off."""


class ImportPathRefused(ImportsError):
    """The path is not inside an import root (directly or through a symlink)."""


class ImportPathInvalid(ImportsError):
    """The path is inside a root but not a readable folder (missing, a file, …)."""


class BatchNotFound(ImportsError):
    """No import batch with that uuid."""


class BatchFinished(ImportsError):
    """The batch already ended: nothing to cancel."""


class BatchNotRetryable(ImportsError):
    """Only a batch that ended ``error`` or ``cancelled`` can be retried (409)."""


# --- paths ------------------------------------------------------------------------------


def check_import_path(roots: Sequence[Path], raw: str) -> Path:
    """The real folder ``raw`` names, if imports may read it; raise otherwise.

    Blocking (it touches the file system): call it from a worker thread.
    """
    if not roots:
        raise ImportsDisabled(
            "imports from folders are disabled: set IMPORT_ROOTS to the folders cards are "
            "mounted under",
            setting="IMPORT_ROOTS",
        )
    if not raw or "\x00" in raw:
        raise ImportPathInvalid("path is empty or contains a NUL byte", field="path")
    candidate = Path(raw)
    if not candidate.is_absolute():
        raise ImportPathInvalid("path must be absolute", field="path")
    if len(raw.encode("utf-8", "surrogatepass")) > MOUNT_PATH_MAX:
        raise ImportPathInvalid(f"path is longer than {MOUNT_PATH_MAX} bytes", field="path")
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        real = None
    lexical = Path(os.path.normpath(candidate))
    real_roots = [r.resolve() for r in roots]
    inside_lexically = any(
        _within(lexical, r) or _within(lexical, raw_r)
        for r, raw_r in zip(real_roots, roots, strict=True)
    )
    if real is None:
        if not inside_lexically:
            raise ImportPathRefused("path is not under IMPORT_ROOTS", field="path")
        raise ImportPathInvalid("path does not exist", field="path")
    if not any(_within(real, r) for r in real_roots):
        why = (
            "leads out of IMPORT_ROOTS through a symlink"
            if inside_lexically
            else ("is not under IMPORT_ROOTS")
        )
        raise ImportPathRefused(f"path {why}", field="path")
    if not real.is_dir():
        raise ImportPathInvalid("path is not a directory", field="path")
    if len(str(real).encode("utf-8", "surrogatepass")) > MOUNT_PATH_MAX:
        raise ImportPathInvalid(f"path is longer than {MOUNT_PATH_MAX} bytes", field="path")
    if not os.access(real, os.R_OK | os.X_OK):
        raise ImportPathInvalid("path is not readable by the service", field="path")
    return real


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


# --- creating and showing --------------------------------------------------------------


def create_batch(
    session: Session,
    *,
    source_kind: SourceKind,
    mount_path: str | None,
    uuid: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """A new ``pending`` batch; ``(row, created)``.

    With ``uuid`` (the detector's input folder): an existing batch of that uuid is
    reused — left alone while it is pending or running, otherwise put back to
    ``pending`` with ``source_kind`` as given, so the folder (which may hold new
    files: the detector reuses a uuid for a card it saw before) is analysed again.
    """
    if uuid is not None:
        batch = session.scalars(
            select(ImportBatch).where(ImportBatch.uuid == uuid).with_for_update()
        ).one_or_none()
        if batch is not None:
            if batch.status in FINISHED:
                # Announced again: analyse what the folder holds now (no copy).
                batch.source_kind = source_kind
                batch.status = BatchStatus.PENDING
                batch.error_message = None
                batch.finished_at = None
                batch.cancel_requested = False
                batch.interruptions = 0
                session.flush()
                return batch.to_api(), True
            return batch.to_api(), False
    batch = ImportBatch(source_kind=source_kind, mount_path=mount_path, status=BatchStatus.PENDING)
    if uuid is not None:
        batch.uuid = uuid
    session.add(batch)
    session.flush()
    session.refresh(batch)
    return batch.to_api(), True


def _find(session: Session, uuid: str) -> ImportBatch:
    batch = session.scalars(select(ImportBatch).where(ImportBatch.uuid == uuid)).one_or_none()
    if batch is None:
        raise BatchNotFound(f"import {uuid} does not exist", resource="import")
    return batch


def list_batches(session: Session, *, limit: int, offset: int) -> dict[str, Any]:
    total = session.scalar(select(func.count(ImportBatch.id))) or 0
    rows = session.scalars(
        select(ImportBatch)
        .order_by(ImportBatch.created_at.desc(), ImportBatch.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return {"imports": [b.to_api() for b in rows], "total": total, "limit": limit, "offset": offset}


def batch_detail(session: Session, uuid: str) -> dict[str, Any]:
    """The batch with its files (no thumbnails: bytes) and its jumps."""
    batch = _find(session, uuid)
    view = batch.to_api()
    files = session.scalars(
        select(VideoFile).where(VideoFile.import_batch_id == batch.id).order_by(VideoFile.id)
    ).all()
    jumps = session.scalars(
        select(Jump).where(Jump.import_batch_id == batch.id).order_by(Jump.sequence)
    ).all()
    jump_uuid = {j.id: j.uuid for j in jumps}
    copied = session.execute(
        select(ImportedFile.source_path, ImportedFile.size_bytes, ImportedFile.stored_path)
        .where(ImportedFile.import_batch_id == batch.id)
        .order_by(ImportedFile.id)
    ).all()
    view["files"] = [
        {
            "uuid": f.uuid,
            "filepath": f.filepath,
            "original_filename": f.original_filename,
            "recording": f.recording_key,
            "chapter": f.chapter,
            "duration": f.duration,
            "width": f.width,
            "height": f.height,
            "fps": f.fps,
            "codec": f.codec,
            "file_size_bytes": f.file_size_bytes,
            "recorded_at": isoformat(f.recorded_at),
            "status": f.status.value,
            "error_message": f.error_message,
            "dominant_classification": f.dominant_classification.value,
            "qr_content": f.qr_content,
            "detected_project_uuid": f.detected_project_uuid,
            "jump": None if f.jump_id is None else jump_uuid.get(f.jump_id),
            "jump_number": f.jump_number,
            "proxy_path": f.proxy_path,
            "has_thumbnail": f.thumbnail is not None,
            "in_point": f.in_point,
            "out_point": f.out_point,
        }
        for f in files
    ]
    view["jumps"] = [
        {
            "uuid": j.uuid,
            "sequence": j.sequence,
            "state": j.state.value,
            "reason": None if j.reason is None else j.reason.value,
            "reasons": [] if not j.reasons else j.reasons.split(","),
            "qr_code": j.qr_code,
            "project_id": j.project_id,
            "freefall": None
            if j.freefall_start is None
            else {
                "recording": j.freefall_recording,
                "start": j.freefall_start,
                "end": j.freefall_end,
                "confidence": j.freefall_confidence,
                "source": None if j.freefall_source is None else j.freefall_source.value,
            },
        }
        for j in jumps
    ]
    view["copied"] = [
        {"source_path": c.source_path, "size_bytes": c.size_bytes, "stored_path": c.stored_path}
        for c in copied
    ]
    view["counts"] = {
        "files": len(files),
        "copied": len(copied),
        "jumps": len(jumps),
        "resolved_jumps": sum(1 for j in jumps if j.state.value == "resolved"),
    }
    return view


@attrs.frozen
class CancelOutcome:
    batch: dict[str, Any]
    #: The batch is running somewhere: its owner stops it (this instance, or another
    #: one polling ``cancel_requested``).
    running: bool


def request_cancel(session: Session, uuid: str) -> CancelOutcome:
    """Pending: cancelled at once. Running: flagged for its owner. Finished: refused."""
    batch = session.scalars(
        select(ImportBatch).where(ImportBatch.uuid == uuid).with_for_update()
    ).one_or_none()
    if batch is None:
        raise BatchNotFound(f"import {uuid} does not exist", resource="import")
    if batch.status in FINISHED:
        raise BatchFinished(
            f"import {uuid} already ended ({batch.status.value})", status=batch.status.value
        )
    if batch.status is BatchStatus.PENDING:
        batch.status = BatchStatus.CANCELLED
        batch.finished_at = utcnow()
        session.flush()
        return CancelOutcome(batch.to_api(), running=False)
    batch.cancel_requested = True
    session.flush()
    return CancelOutcome(batch.to_api(), running=True)


# --- the queue (the import handler's side) ---------------------------------------------


@attrs.frozen
class BatchRef:
    id: int
    uuid: str
    source_kind: SourceKind
    mount_path: str | None
    #: Read the card (``mount_path``) first: a card batch whose copy phase is not over.
    copy: bool = False


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def claim(session: Session, *, owner: str, running: int, mysql: bool) -> list[BatchRef]:
    """Claim the oldest pending batches this instance has room for."""
    limit = MAX_RUNNING_BATCHES - running
    if limit <= 0:
        return []
    query = (
        select(ImportBatch.id)
        .where(ImportBatch.status == BatchStatus.PENDING)
        .order_by(ImportBatch.created_at, ImportBatch.id)
        .limit(limit)
    )
    if mysql:
        query = query.with_for_update(skip_locked=True)
    claimed: list[BatchRef] = []
    now = utcnow()
    for batch_id in session.scalars(query).all():
        batch = session.get(ImportBatch, batch_id)
        assert batch is not None
        kind = batch.source_kind or SourceKind.INPUT
        # A card whose copy finished is not read again (it may have been pulled since).
        copy = kind is SourceKind.CARD and batch.copy_completed_at is None
        first = BatchStatus.COPYING if copy else BatchStatus.ANALYZING
        result = session.execute(
            update(ImportBatch)
            .where(ImportBatch.id == batch_id, ImportBatch.status == BatchStatus.PENDING)
            .values(
                status=first,
                claimed_by=owner,
                heartbeat_at=now,
                started_at=now,
                cancel_requested=False,
                error_message=None,
                finished_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            continue  # another instance won this one
        claimed.append(BatchRef(batch.id, batch.uuid, kind, batch.mount_path, copy))
    return claimed


def _owned(batch_id: int, owner: str) -> Any:
    return update(ImportBatch).where(
        ImportBatch.id == batch_id,
        ImportBatch.claimed_by == owner,
        ImportBatch.status.in_(ACTIVE_BATCH),
    )


@attrs.frozen
class RowState:
    active: bool
    claimed_by: str | None
    cancel_requested: bool


def poll(session: Session, *, batch_ids: list[int]) -> dict[int, RowState]:
    rows = session.execute(
        select(
            ImportBatch.id, ImportBatch.status, ImportBatch.claimed_by, ImportBatch.cancel_requested
        ).where(ImportBatch.id.in_(batch_ids))
    )
    return {
        r.id: RowState(r.status in ACTIVE_BATCH, r.claimed_by, bool(r.cancel_requested))
        for r in rows
    }


def heartbeat(session: Session, *, owner: str, batch_ids: list[int]) -> None:
    if batch_ids:
        session.execute(
            update(ImportBatch)
            .where(
                ImportBatch.id.in_(batch_ids),
                ImportBatch.claimed_by == owner,
                ImportBatch.status.in_(ACTIVE_BATCH),
            )
            .values(heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def owns(session: Session, *, batch_id: int, owner: str) -> bool:
    """Whether ``owner`` still holds the batch. An UPDATE, and the transaction's first
    statement where it is used: it takes the row lock (MariaDB) or the write lock
    (SQLite) before anything is read, so the rows written after it can never be
    based on jumps older than a staff change committed meanwhile
    (:func:`stinercut_svc.services.jumps` starts every change the same way)."""
    return update_owned(session, batch_id=batch_id, owner=owner)


def update_owned(session: Session, *, batch_id: int, owner: str, **values: Any) -> bool:
    """Set columns of a batch this owner still holds (status steps, counts)."""
    values.setdefault("heartbeat_at", utcnow())
    result = session.execute(
        _owned(batch_id, owner).values(**values).execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def release(session: Session, *, batch_id: int) -> dict[str, Any] | None:
    """The end of a run (after its final status was written): drop the claim."""
    batch = session.get(ImportBatch, batch_id)
    if batch is None:
        return None
    batch.claimed_by = None
    batch.heartbeat_at = None
    batch.cancel_requested = False
    if batch.finished_at is None:
        batch.finished_at = utcnow()
    session.flush()
    session.refresh(batch)
    return batch.to_api()


def finish(
    session: Session,
    *,
    batch_id: int,
    owner: str,
    status: BatchStatus,
    error_message: str | None = None,
) -> dict[str, Any] | None:
    """Record an end (error, cancelled) if this owner still holds the batch."""
    values: dict[str, Any] = {"status": status, "finished_at": utcnow()}
    if error_message is not None:
        values["error_message"] = error_message[:4000]
    if not update_owned(session, batch_id=batch_id, owner=owner, **values):
        return None
    return release(session, batch_id=batch_id)


def requeue(session: Session, *, batch_id: int, owner: str) -> dict[str, Any] | None:
    """Shutdown: back to ``pending``; the next start resumes it (copies only the rest)."""
    if not update_owned(
        session,
        batch_id=batch_id,
        owner=owner,
        status=BatchStatus.PENDING,
        claimed_by=None,
        heartbeat_at=None,
        started_at=None,
    ):
        return None
    batch = session.get(ImportBatch, batch_id)
    assert batch is not None
    session.refresh(batch)
    return batch.to_api()


def recover_stale(session: Session, *, stale_after: timedelta, me: str) -> list[dict[str, Any]]:
    """Running batches whose owner is gone: ``pending`` again once, then ``error``.

    As for renders (:func:`stinercut_svc.jobs.queue.recover_stale`): gone means a
    heartbeat older than ``stale_after``, or an owner process on this host that no
    longer exists; this instance's own claims are never touched. A batch whose
    cancel was requested while its owner died becomes ``cancelled``.
    """
    cutoff = utcnow() - stale_after
    candidates = session.scalars(
        select(ImportBatch).where(
            ImportBatch.status.in_(ACTIVE_BATCH),
            (ImportBatch.claimed_by != me) | ImportBatch.claimed_by.is_(None),
        )
    ).all()
    recovered: list[dict[str, Any]] = []
    for batch in candidates:
        stale = batch.heartbeat_at is None or batch.heartbeat_at < cutoff
        if not stale and not owners.owner_is_dead(batch.claimed_by):
            continue
        values: dict[str, Any] = {"claimed_by": None, "heartbeat_at": None}
        if batch.cancel_requested:
            values.update(
                status=BatchStatus.CANCELLED, finished_at=utcnow(), cancel_requested=False
            )
        elif batch.interruptions + 1 >= 2:
            values.update(
                status=BatchStatus.ERROR,
                finished_at=utcnow(),
                interruptions=batch.interruptions + 1,
                error_message=INTERRUPTED_TWICE,
            )
        else:
            values.update(
                status=BatchStatus.PENDING, interruptions=batch.interruptions + 1, started_at=None
            )
        same_owner = (
            ImportBatch.claimed_by.is_(None)
            if batch.claimed_by is None
            else ImportBatch.claimed_by == batch.claimed_by
        )
        result = session.execute(
            update(ImportBatch)
            .where(
                ImportBatch.id == batch.id,
                ImportBatch.status.in_(ACTIVE_BATCH),
                same_owner,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            continue
        session.refresh(batch)
        recovered.append(batch.to_api())
    return recovered


# --- starting imports (API and hub triggers share these) ------------------------------

_UUID_RE = re.compile(r"^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$")


async def start_folder_import(app: StinercutApp, raw_path: str) -> dict[str, Any]:
    """The batch that imports the folder ``raw_path`` (checked against the roots).

    Usually a new ``pending`` batch. But when a live batch already reads this card
    (same folder, or the card's known files are its files), that batch is answered
    (``reused: "running"``): never two batches copying one card. And when the card's
    known files belong to a batch that ended ``error``/``cancelled`` whose folder is
    still in storage, that batch is retried (``reused: "retried"``): it copies what
    the card holds that no batch has and analyses its whole folder. The answer's
    ``reused`` key is ``null`` for a new batch.
    """
    real = await trio.to_thread.run_sync(check_import_path, app.settings.import_roots, raw_path)
    mount = str(real)
    identities = await trio.to_thread.run_sync(_card_identities, real)
    input_root = app.storage.input
    for _ in range(3):  # a candidate that changed under us is looked up again
        found = await app.db.run(partial(find_card_batch, mount_path=mount, identities=identities))
        if found is None:
            break
        batch_id, status = found
        if status in LIVE_BATCH:
            live = await app.db.run(partial(_row, batch_id=batch_id))
            if live is not None and live["status"] in LIVE_BATCH:
                log.info(
                    "import of %s: batch %s is already %s", mount, live["uuid"], live["status"]
                )
                return {**live, "reused": "running"}
            continue
        uuid = await app.db.run(partial(_uuid_of, batch_id=batch_id))
        if uuid is None or not await trio.to_thread.run_sync((input_root / uuid).is_dir):
            break  # its files are gone from storage: nothing to finish, a new batch
        reopened = await app.db.run(partial(reopen, batch_id=batch_id, mount_path=mount))
        if reopened is None:
            continue  # a manual retry (or another insert) won: look again
        log.info("import of %s: re-inserted card, batch %s retried", mount, reopened["uuid"])
        await _announce(app, reopened)
        return {**reopened, "reused": "retried"}
    row, _ = await app.db.run(partial(create_batch, source_kind=SourceKind.CARD, mount_path=mount))
    await _announce(app, row)
    return {**row, "reused": None}


def _card_identities(card: Path) -> list[tuple[str, int, int]]:
    """(relative, size, mtime_ns) of the card's copyable files; none when unreadable
    (the batch then reports why when it runs). Blocking: a worker thread."""
    try:
        scan = scan_card(card)
    except CardError:
        return []
    return [(f.relative, f.size, f.mtime_ns) for f in (*scan.videos, *scan.proxies)]


def find_card_batch(
    session: Session, *, mount_path: str, identities: Sequence[tuple[str, int, int]]
) -> tuple[int, BatchStatus] | None:
    """The batch a card being inserted belongs to, if any: ``(id, status)``.

    First a live card batch of the same folder or holding any of the card's files;
    else the ``error``/``cancelled`` batch holding the most of them (newest on a
    tie). Files are matched by (name, size, mtime) as the copy planner does.
    """
    live = session.scalars(
        select(ImportBatch.id)
        .where(
            ImportBatch.status.in_(LIVE_BATCH),
            ImportBatch.source_kind == SourceKind.CARD,
            ImportBatch.mount_path == mount_path,
        )
        .order_by(ImportBatch.id)
        .limit(1)
    ).first()
    if live is not None:
        return live, BatchStatus.PENDING
    if not identities:
        return None
    wanted = set(identities)
    names = sorted({name for name, _, _ in identities})
    counts: dict[int, int] = {}
    for start in range(0, len(names), 500):
        rows = session.execute(
            select(
                ImportedFile.import_batch_id,
                ImportedFile.source_path,
                ImportedFile.size_bytes,
                ImportedFile.mtime_ns,
            ).where(ImportedFile.source_path.in_(names[start : start + 500]))
        )
        for r in rows:
            if (r.source_path, r.size_bytes, r.mtime_ns) in wanted:
                counts[r.import_batch_id] = counts.get(r.import_batch_id, 0) + 1
    if not counts:
        return None
    states: dict[int, BatchStatus] = {
        r.id: r.status
        for r in session.execute(
            select(ImportBatch.id, ImportBatch.status).where(ImportBatch.id.in_(list(counts)))
        )
    }
    for batch_id, status in states.items():
        if status in LIVE_BATCH:
            return batch_id, status
    open_ = [b for b, st in states.items() if st in RETRYABLE]
    if not open_:
        return None
    best = max(open_, key=lambda b: (counts[b], b))
    return best, states[best]


def _row(session: Session, *, batch_id: int) -> dict[str, Any] | None:
    batch = session.get(ImportBatch, batch_id)
    return None if batch is None else batch.to_api()


def _uuid_of(session: Session, *, batch_id: int) -> str | None:
    return session.scalar(select(ImportBatch.uuid).where(ImportBatch.id == batch_id))


def reopen(
    session: Session,
    *,
    batch_id: int,
    skip_copy: bool = False,
    mount_path: str | None = None,
) -> dict[str, Any] | None:
    """Put an ``error``/``cancelled`` batch back to ``pending``; None if it is not one.

    The conditional UPDATE is the transaction's first statement: it takes the row
    lock (MariaDB) or the write lock (SQLite) before anything is read, so of two
    racing reopenings (a manual retry, a re-inserted card) exactly one succeeds.
    Counters stay (the copied files are still there); the error goes. ``mount_path``
    (a re-inserted card, possibly mounted elsewhere now) also reopens the copy
    phase: the card is read again for what it holds that no batch has.
    ``skip_copy`` closes the copy phase instead: analyse what was copied.
    """
    values: dict[str, Any] = {
        "status": BatchStatus.PENDING,
        "error_message": None,
        "finished_at": None,
        "cancel_requested": False,
        "interruptions": 0,
        "claimed_by": None,
        "heartbeat_at": None,
        "started_at": None,
    }
    if mount_path is not None:
        values.update(mount_path=mount_path, copy_completed_at=None)
    if skip_copy:
        values["copy_completed_at"] = func.coalesce(ImportBatch.copy_completed_at, utcnow())
    result = session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch_id, ImportBatch.status.in_(RETRYABLE))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) != 1:
        return None
    batch = session.get(ImportBatch, batch_id)
    assert batch is not None
    session.refresh(batch)
    return batch.to_api()


def retry_batch(session: Session, *, uuid: str, skip_copy: bool) -> dict[str, Any]:
    """``POST /api/imports/{uuid}/retry``: an ``error``/``cancelled`` batch back to pending.

    A card batch whose copy had not finished reads its card again for the files
    still missing (when the card is mounted; when it is not, the batch ends
    ``error`` saying so); ``skip_copy`` analyses what was copied without the card.
    A card batch that copied nothing cannot skip its copy: there is nothing to analyse.
    """
    batch_id = session.scalar(select(ImportBatch.id).where(ImportBatch.uuid == uuid))
    if batch_id is None:
        raise BatchNotFound(f"import {uuid} does not exist", resource="import")
    if skip_copy:
        kind, copied = session.execute(
            select(ImportBatch.source_kind, func.count(ImportedFile.id))
            .outerjoin(ImportedFile, ImportedFile.import_batch_id == ImportBatch.id)
            .where(ImportBatch.id == batch_id)
            .group_by(ImportBatch.id, ImportBatch.source_kind)
        ).one()
        if kind is SourceKind.CARD and not copied:
            raise BatchNotRetryable(
                f"import {uuid} copied no file: there is nothing to analyse without the card; "
                "re-insert the card, or retry without skip_copy",
                skip_copy=True,
            )
    row = reopen(session, batch_id=batch_id, skip_copy=skip_copy)
    if row is None:
        status = session.scalar(select(ImportBatch.status).where(ImportBatch.id == batch_id))
        state = "gone" if status is None else status.value
        raise BatchNotRetryable(
            f"import {uuid} is {state}: only a batch that ended in error or was cancelled "
            "can be retried",
            status=state,
        )
    return row


async def retry_import(app: StinercutApp, uuid: str, *, skip_copy: bool) -> dict[str, Any]:
    """Retry a batch (see :func:`retry_batch`), announce it and wake the supervisor."""
    row = await app.db.run(partial(retry_batch, uuid=uuid, skip_copy=skip_copy))
    log.info("import %s: retried (skip_copy=%s)", uuid, skip_copy)
    await _announce(app, row)
    return row


async def start_input_import(
    app: StinercutApp, uuid: str, mount_path: str | None = None
) -> dict[str, Any]:
    """A batch analysing ``input/<uuid>/`` (the detector copied the files there)."""
    uuid = uuid.strip().lower()
    if not _UUID_RE.match(uuid):
        raise ImportPathInvalid("uuid is not a UUID", field="uuid")
    if mount_path is not None and len(mount_path.encode("utf-8", "surrogatepass")) > MOUNT_PATH_MAX:
        mount_path = None
    row, created = await app.db.run(
        partial(create_batch, source_kind=SourceKind.INPUT, mount_path=mount_path, uuid=uuid)
    )
    if created:
        await _announce(app, row)
    return row


async def _announce(app: StinercutApp, row: dict[str, Any]) -> None:
    await app.supervisor.publish("videofile:batch_status", row)
    app.supervisor.wake()


def install_triggers(app: StinercutApp) -> None:
    """Hub commands that start imports (``target: "backend"``):

    * ``device.mounted {mount_path}`` (the old detector: the service copies the
      card itself) — only with ``INGEST_AUTO=true`` and under ``IMPORT_ROOTS``;
    * ``gopro.copy_completed {uuid, mount_path?}`` (the new detector copied the
      card into ``input/<uuid>/``) — analysed.
    """
    app.hub.handle("device.mounted", partial(_on_device_mounted, app))
    app.hub.handle("gopro.copy_completed", partial(_on_copy_completed, app))


async def _on_device_mounted(app: StinercutApp, message: BackendMessage) -> None:
    path = message.data.get("mount_path")
    if not app.settings.ingest_auto:
        log.info("device.mounted %r: not imported (INGEST_AUTO is off)", path)
        return
    if not isinstance(path, str):
        log.warning("device.mounted without a mount_path string: ignored")
        return
    try:
        row = await start_folder_import(app, path)
    except ImportsError as exc:
        log.warning("device.mounted %r: not imported: %s", path, exc.message)
        await app.supervisor.publish(
            "videofile:analysis_error", {"folder_path": None, "error": exc.message}
        )
        return
    if row["reused"] is None:
        log.info("device.mounted: import %s started", row["uuid"])
        return
    # Which batch took the card: the frontend shows it instead of a new, empty one.
    log.info("device.mounted: import %s reused (%s)", row["uuid"], row["reused"])
    await app.supervisor.publish(
        "videofile:batch_reused",
        {"batch_id": row["uuid"], "reused": row["reused"], "mount_path": row["mount_path"]},
    )


async def _on_copy_completed(app: StinercutApp, message: BackendMessage) -> None:
    uuid = message.data.get("uuid")
    mount = message.data.get("mount_path")
    if not isinstance(uuid, str):
        log.warning("gopro.copy_completed without a uuid string: ignored")
        return
    try:
        row = await start_input_import(app, uuid, mount if isinstance(mount, str) else None)
    except ImportsError as exc:
        log.warning("gopro.copy_completed %r: not imported: %s", uuid, exc.message)
        return
    log.info("gopro.copy_completed: import %s is %s", row["uuid"], row["status"])


__all__ = [
    "BatchFinished",
    "BatchNotFound",
    "BatchNotRetryable",
    "BatchRef",
    "CancelOutcome",
    "ImportPathInvalid",
    "ImportPathRefused",
    "ImportsDisabled",
    "ImportsError",
    "batch_detail",
    "check_import_path",
    "claim",
    "create_batch",
    "heartbeat",
    "install_triggers",
    "list_batches",
    "owns",
    "poll",
    "find_card_batch",
    "recover_stale",
    "release",
    "reopen",
    "request_cancel",
    "requeue",
    "retry_batch",
    "retry_import",
    "start_folder_import",
    "start_input_import",
    "update_owned",
]
