"""Jumps of an import, for staff and for the pipeline: list, assign, split, merge, confirm.

The analysis groups a card's recordings into jumps and judges each one
(:mod:`stinercut_svc.ingest.resolve`); what it cannot decide staff fix here. All of
it is rows: a jump owns its ``video_file`` rows (``jump_id``), its customer is
``jump.project_id``, and what lands on the customer's timeline is re-derived from
those rows by :mod:`stinercut_svc.ingest.fill` after every change. Nothing here
moves, copies or deletes a file, so every decision can be undone by the next one.

* **assign** sets (or clears) the jump's customer project;
* **split** cuts a jump before one of its recordings: the tail becomes a new jump
  (with the QR of its first recording, if it has one);
* **merge** joins two neighbouring jumps of one import into the first;
* **confirm** accepts a jump with a customer as it stands (no or two freefalls);

after each, the jump is judged again (``resolved`` = a customer and exactly one
freefall, or confirmed), its clips are put on (or taken off) the customer's
timeline, and with ``INGEST_AUTO_RENDER`` a jump that resolved starts a render.

QR codes name a customer by uuid: an existing project, or a booking (``workload``)
of the frontend, whose project is then the project with the workload's uuid, found
or created and named after the workload's client.

Failures are :class:`JumpError` (domain words; ``errors.py`` maps them to HTTP).
The sync functions take a :class:`~sqlalchemy.orm.Session` (``Database.run``); the
async ones at the bottom are what routes and the import pipeline call.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import attrs
import trio
from sqlalchemy import inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..ingest.fill import (
    FillConfig,
    FillOutcome,
    RecordingRows,
    apply_verdict,
    fill_jump,
    freefalls_of,
    judge,
    jump_files,
    recordings_of,
)
from ..ingest.resolve import JumpState
from ..models import Project, isoformat, utcnow
from ..models.ingest import BatchStatus, ImportBatch, Jump, VideoFile, VideoFileSegment
from .cleanup import thumbnail_path

if TYPE_CHECKING:
    from ..config import Settings
    from ..context import StinercutApp

log = logging.getLogger(__name__)

ErrorKind = Literal["not_found", "invalid", "conflict"]
_UUID_RE = re.compile(r"^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$")
#: Name of a project made for a booking whose client has no name.
UNNAMED_CUSTOMER = "Customer {short}"


class JumpError(Exception):
    """A request about jumps that cannot be carried out, in domain terms.

    ``kind`` says whose state is wrong: ``not_found`` (a named thing does not exist),
    ``invalid`` (the request contradicts the jump: split at its first recording,
    merge jumps that are not neighbours), ``conflict`` (the jump's current state
    forbids it: two different customers, confirm without a customer).
    """

    def __init__(self, kind: ErrorKind, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.details = details or None


def _missing(what: str, ident: object) -> JumpError:
    return JumpError("not_found", "not_found", f"{what} {ident!s} does not exist", resource=what)


@attrs.frozen
class Change:
    """What one operation did: the jumps as they are now, and projects to render."""

    jumps: tuple[dict[str, Any], ...]
    fills: tuple[FillOutcome, ...]
    #: Projects whose jump resolved or whose timeline changed while resolved.
    render: tuple[str, ...]


def fill_config(settings: Settings) -> FillConfig:
    return FillConfig(ground_after_landing_s=settings.ingest_ground_after_landing_s)


# --- lookups ----------------------------------------------------------------------------


def find_jump(session: Session, uuid: str, *, lock: bool = False) -> Jump:
    query = select(Jump).where(Jump.uuid == uuid)
    if lock:
        query = query.with_for_update()
    jump = session.scalars(query).one_or_none()
    if jump is None:
        raise _missing("jump", uuid)
    return jump


def claim_rows(session: Session, *, jumps: Sequence[str] = (), batch: str | None = None) -> None:
    """Lock the import(s) concerned before anything is read: one change per import
    at a time.

    Every change of an import's jumps (staff's and the pipeline's) starts with this
    UPDATE of its ``import_batch`` row. SQLite then takes its one write lock at once (a
    transaction that read first and wrote later could fail with "database is locked"
    beside another writer); MariaDB makes the others wait on the row, and what they
    read afterwards is what the first one committed — never an older view of a jump
    that would undo its change. One statement, so several rows are locked in one order.
    """
    now = utcnow()
    if jumps:
        owners = select(Jump.import_batch_id).where(Jump.uuid.in_(list(jumps)))
        session.execute(
            update(ImportBatch).where(ImportBatch.id.in_(owners)).values(updated_at=now)
        )
    if batch is not None:
        session.execute(update(ImportBatch).where(ImportBatch.uuid == batch).values(updated_at=now))


def find_batch(session: Session, uuid: str) -> ImportBatch:
    batch = session.scalars(select(ImportBatch).where(ImportBatch.uuid == uuid)).one_or_none()
    if batch is None:
        raise _missing("import", uuid)
    return batch


# --- customers --------------------------------------------------------------------------


def customer_for_code(session: Session, code: str) -> Project | None:
    """The project a QR uuid names: a project, or the project of a frontend booking.

    For a ``workload`` row with that uuid the project with the same uuid is the
    booking's project (so reading the code again finds it directly); it is created
    when missing, named after the workload's client. ``None`` when the uuid names
    neither (the original filed footage under any uuid-looking text).
    """
    code = code.strip().lower()
    if not _UUID_RE.match(code):
        return None
    project = session.scalars(select(Project).where(Project.uuid == code)).one_or_none()
    if project is not None:
        return project
    booking = _workload(session, code)
    if booking is None:
        return None
    name = (booking or "").strip()[:255] or UNNAMED_CUSTOMER.format(short=code[:8])
    try:
        with session.begin_nested():
            project = Project(uuid=code, name=name)
            session.add(project)
    except IntegrityError:
        # Another request created it at the same moment: theirs is the one (a locking
        # read: MariaDB's snapshot of this transaction may predate their commit).
        project = session.scalars(
            select(Project).where(Project.uuid == code).with_for_update()
        ).one()
    return project


def _workload(session: Session, code: str) -> str | None:
    """The client's name of the booking with this uuid ('' when it has none), or None.

    The ``workload`` table is the frontend's and has two shapes: older releases keep
    the customer's ``name`` on it, newer ones a ``client_id`` into ``client``.
    """
    inspector = inspect(session.connection())
    if not inspector.has_table("workload"):
        return None
    columns = {c["name"] for c in inspector.get_columns("workload")}
    if "client_id" in columns and inspector.has_table("client"):
        query = text(
            "SELECT c.name FROM workload w LEFT JOIN client c ON c.id = w.client_id"
            " WHERE w.uuid = :code"
        )
    elif "name" in columns:
        query = text("SELECT name FROM workload WHERE uuid = :code")
    else:
        query = text("SELECT NULL FROM workload WHERE uuid = :code")
    row = session.execute(query, {"code": code}).first()
    if row is None:
        return None
    return "" if row[0] is None else str(row[0])


# --- views ------------------------------------------------------------------------------


def jump_view(
    session: Session, jump: Jump, recordings: Sequence[RecordingRows] | None = None
) -> dict[str, Any]:
    """A jump as the API shows it: verdict, customer, freefall, recordings and files."""
    recs = (
        list(recordings)
        if recordings is not None
        else recordings_of(session, jump_files(session, jump))
    )
    project = None
    if jump.project_id is not None:
        project = session.get(Project, jump.project_id)
    batch_uuid = session.scalars(
        select(ImportBatch.uuid).where(ImportBatch.id == jump.import_batch_id)
    ).one()
    freefall = None
    if jump.freefall_recording is not None and jump.freefall_start is not None:
        freefall = {
            "recording": jump.freefall_recording,
            "start": jump.freefall_start,
            "end": jump.freefall_end,
            "confidence": jump.freefall_confidence,
            # audio | telemetry | both; null when unknown (stored before 0013, or a
            # window staff's changes moved, like the confidence)
            "source": None if jump.freefall_source is None else jump.freefall_source.value,
        }
    return {
        "id": jump.id,
        "uuid": jump.uuid,
        "import_uuid": batch_uuid,
        "sequence": jump.sequence,
        "group": "unassigned" if jump.qr_code is None and jump.project_id is None else "jump",
        "state": jump.state.value,
        "reason": None if jump.reason is None else jump.reason.value,
        "reasons": [r for r in (jump.reasons or "").split(",") if r],
        "qr_code": jump.qr_code,
        "project_uuid": None if project is None else project.uuid,
        "project_name": None if project is None else project.name,
        "freefall": freefall,
        "freefall_count": len(freefalls_of(jump, recs)),
        "confirmed_at": isoformat(jump.confirmed_at),
        "edited_at": isoformat(jump.edited_at),
        "created_at": isoformat(jump.created_at),
        "updated_at": isoformat(jump.updated_at),
        "recordings": [_recording_view(index, rec) for index, rec in enumerate(recs)],
    }


def _recording_view(index: int, rec: RecordingRows) -> dict[str, Any]:
    return {
        "index": index,
        "key": rec.key,
        "duration": round(rec.duration, 3),
        "qr_end": rec.qr_end,
        "freefalls": [{"start": round(w.start, 3), "end": round(w.end, 3)} for w in rec.freefalls],
        "landing": rec.landing,
        "files": [_file_view(f) for f in rec.chapters],
    }


def _file_view(file: VideoFile) -> dict[str, Any]:
    return {
        "uuid": file.uuid,
        "filepath": file.filepath,
        "original_filename": file.original_filename,
        "chapter": file.chapter,
        "duration": file.duration,
        "status": file.status.value,
        "in_point": file.in_point,
        "out_point": file.out_point,
        "qr_content": file.qr_content,
        "error_message": file.error_message,
    }


def batch_jumps(session: Session, batch_uuid: str) -> dict[str, Any]:
    """An import's jumps in camera order, the unassigned group included."""
    batch = find_batch(session, batch_uuid)
    jumps = session.scalars(
        select(Jump).where(Jump.import_batch_id == batch.id).order_by(Jump.sequence)
    ).all()
    views = [jump_view(session, j) for j in jumps]
    # Files in no jump: a re-run of a batch staff already edited adds new files
    # without regrouping (see ingest/store.py); they are shown, never hidden.
    loose = session.scalars(
        select(VideoFile)
        .where(VideoFile.import_batch_id == batch.id, VideoFile.jump_id.is_(None))
        .order_by(VideoFile.id)
    ).all()
    return {
        "import_uuid": batch.uuid,
        "status": batch.status.value,
        "resolved": sum(1 for v in views if v["state"] == JumpState.RESOLVED.value),
        "needs_manual": sum(1 for v in views if v["state"] == JumpState.NEEDS_MANUAL.value),
        "jumps": views,
        "unplaced_files": [_file_view(f) for f in loose],
    }


def jump_detail(session: Session, uuid: str) -> dict[str, Any]:
    return jump_view(session, find_jump(session, uuid))


# --- operations -------------------------------------------------------------------------


def _settle(
    session: Session, jump: Jump, cfg: FillConfig, *, edited: bool = True
) -> tuple[FillOutcome, bool]:
    """Judge the jump from its rows again and put its clips where they belong.

    Returns the fill and whether the jump should render now: it became resolved,
    or its timeline changed while resolved.
    """
    session.flush()
    _forget_deleted_customer(session, jump)
    recs = recordings_of(session, jump_files(session, jump))
    was_resolved = jump.state == JumpState.RESOLVED
    apply_verdict(jump, judge(jump, recs))
    if edited:
        jump.edited_at = utcnow()
    session.flush()
    outcome = fill_jump(session, jump, cfg, recordings=recs)
    resolved = jump.state == JumpState.RESOLVED
    return outcome, resolved and (not was_resolved or outcome.changed)


def _forget_deleted_customer(session: Session, jump: Jump) -> None:
    """A customer project the frontend deleted is no customer (ids are not foreign keys)."""
    if jump.project_id is not None and session.get(Project, jump.project_id) is None:
        jump.project_id = None


def _refresh_batch(session: Session, batch_id: int) -> None:
    """A finished import is ``resolved`` once every jump is, else ``needs_manual``
    (``resolution_type`` keeps what the analysis found). A batch still copying or
    analysing is left to the pipeline."""
    batch = session.get(ImportBatch, batch_id)
    if batch is None or batch.status not in (BatchStatus.RESOLVED, BatchStatus.NEEDS_MANUAL):
        return
    states = session.scalars(select(Jump.state).where(Jump.import_batch_id == batch_id)).all()
    resolved = all(state == JumpState.RESOLVED for state in states)
    status = BatchStatus.RESOLVED if resolved else BatchStatus.NEEDS_MANUAL
    if batch.status != status:
        batch.status = status


def _change(
    session: Session, jumps: Sequence[Jump], settled: Sequence[tuple[FillOutcome, bool]]
) -> Change:
    session.flush()
    for batch_id in {j.import_batch_id for j in jumps}:
        _refresh_batch(session, batch_id)
    render = tuple(
        dict.fromkeys(o.project_uuid for o, go in settled if go and o.project_uuid is not None)
    )
    return Change(
        jumps=tuple(jump_view(session, j) for j in jumps),
        fills=tuple(o for o, _ in settled),
        render=render,
    )


def assign(session: Session, uuid: str, project_uuid: str | None, cfg: FillConfig) -> Change:
    """Make ``project_uuid`` the jump's customer (``None``: no customer)."""
    claim_rows(session, jumps=[uuid])
    jump = find_jump(session, uuid, lock=True)
    if project_uuid is None:
        jump.project_id = None
    else:
        project = session.scalars(select(Project).where(Project.uuid == project_uuid)).one_or_none()
        if project is None:
            raise JumpError(
                "invalid",
                "project_not_found",
                f"project {project_uuid} does not exist",
                field="project_uuid",
            )
        if jump.project_id != project.id:
            jump.confirmed_at = None  # a confirmation was for the other customer
        jump.project_id = project.id
    return _change(session, [jump], [_settle(session, jump, cfg)])


def confirm(session: Session, uuid: str, cfg: FillConfig) -> Change:
    """Accept the jump as it stands; it needs a customer."""
    claim_rows(session, jumps=[uuid])
    jump = find_jump(session, uuid, lock=True)
    _forget_deleted_customer(session, jump)
    if jump.project_id is None:
        raise JumpError(
            "conflict",
            "no_customer",
            f"jump {uuid} has no customer yet; assign it to a project first",
        )
    jump.confirmed_at = utcnow()
    return _change(session, [jump], [_settle(session, jump, cfg)])


def split(session: Session, uuid: str, at: str | int, cfg: FillConfig) -> Change:
    """Cut the jump before recording ``at`` (its index in the jump, or one of its files'
    uuids): that recording and the ones after it become a new jump right after it."""
    claim_rows(session, jumps=[uuid])
    jump = find_jump(session, uuid, lock=True)
    recs = recordings_of(session, jump_files(session, jump))
    index = _split_index(recs, uuid, at)
    tail = recs[index:]
    later = session.scalars(
        select(Jump)
        .where(Jump.import_batch_id == jump.import_batch_id, Jump.sequence > jump.sequence)
        .order_by(Jump.sequence.desc())
        .with_for_update()
    ).all()
    for other in later:  # one by one, highest first: (batch, sequence) stays unique
        _renumber(session, other, other.sequence + 1)
    jump.confirmed_at = None  # a new grouping: staff confirm it again if needed
    opener = tail[0].chapters[0]
    code = _qr_of(session, tail[0])
    customer = None if code is None else customer_for_code(session, code)
    new = Jump(
        import_batch_id=jump.import_batch_id,
        sequence=jump.sequence + 1,
        state=JumpState.NEEDS_MANUAL,
        qr_code=code,
        project_id=None if customer is None else customer.id,
    )
    session.add(new)
    session.flush()
    for rec in tail:
        for file in rec.chapters:
            file.jump_id = new.id
    log.info("jump %s split before recording %s (%s)", uuid, tail[0].key, opener.filepath)
    first = _settle(session, jump, cfg)
    second = _settle(session, new, cfg)
    return _change(session, [jump, new], [first, second])


def _renumber(session: Session, jump: Jump, sequence: int) -> None:
    """Move a jump to another place in its import; its files' ``jump_number`` (the
    original's column) follows."""
    jump.sequence = sequence
    session.flush()
    session.execute(
        update(VideoFile).where(VideoFile.jump_id == jump.id).values(jump_number=sequence)
    )


def _split_index(recs: Sequence[RecordingRows], uuid: str, at: str | int) -> int:
    if len(recs) < 2:
        raise JumpError(
            "invalid",
            "invalid_split",
            f"jump {uuid} has only one recording; nothing to split",
            field="at_recording",
        )
    if isinstance(at, int):
        index = at
        if not 0 <= index < len(recs):
            raise JumpError(
                "invalid",
                "invalid_split",
                f"jump {uuid} has recordings 0..{len(recs) - 1}; there is no recording {index}",
                field="at_recording",
            )
    else:
        found = [i for i, r in enumerate(recs) if any(f.uuid == at for f in r.chapters)]
        if not found:
            raise JumpError(
                "invalid",
                "invalid_split",
                f"video file {at} is not part of jump {uuid}",
                field="at_recording",
            )
        index = found[0]
    if index == 0:
        raise JumpError(
            "invalid",
            "invalid_split",
            "a split before the first recording would leave the jump empty; "
            "split at a later recording",
            field="at_recording",
        )
    return index


def _qr_of(session: Session, rec: RecordingRows) -> str | None:
    """The customer uuid read in this recording, if the analysis read one."""
    for file in rec.chapters:
        if file.detected_project_uuid:
            return file.detected_project_uuid
    ids = [f.id for f in rec.chapters]
    has_qr = session.scalars(
        select(VideoFileSegment.id)
        .where(
            VideoFileSegment.video_file_id.in_(ids), VideoFileSegment.classification == "qr_code"
        )
        .limit(1)
    ).first()
    if has_qr is None:
        return None
    for file in rec.chapters:
        if file.qr_content:
            match = re.search(
                r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", file.qr_content
            )
            if match:
                return match.group(0).lower()
    return None


def merge(session: Session, uuids: Sequence[str], cfg: FillConfig) -> Change:
    """Join two neighbouring jumps of one import into the earlier one."""
    if len(uuids) != 2 or uuids[0] == uuids[1]:
        raise JumpError(
            "invalid", "invalid_merge", "merge takes two different jumps", field="jumps"
        )
    claim_rows(session, jumps=uuids)
    a, b = (find_jump(session, u, lock=True) for u in uuids)
    if a.import_batch_id != b.import_batch_id:
        raise JumpError(
            "invalid", "invalid_merge", "the jumps belong to different imports", field="jumps"
        )
    first, second = sorted((a, b), key=lambda j: j.sequence)
    if second.sequence != first.sequence + 1:
        raise JumpError(
            "invalid",
            "not_adjacent",
            f"jumps {first.sequence} and {second.sequence} of the import are not neighbours; "
            "only neighbouring jumps can be merged",
            field="jumps",
        )
    if (
        first.project_id is not None
        and second.project_id is not None
        and first.project_id != second.project_id
    ):
        names = [session.get(Project, j.project_id) for j in (first, second)]
        raise JumpError(
            "conflict",
            "conflicting_customers",
            "the jumps belong to different customers "
            f"({', '.join(repr(p.name) for p in names if p is not None)}); "
            "assign one of them to the other's project (or to none) first",
            projects=[p.uuid for p in names if p is not None],
        )
    if first.project_id is None:
        first.project_id = second.project_id
    if first.qr_code is None:
        first.qr_code = second.qr_code
    first.confirmed_at = None  # a new grouping: staff confirm it again if needed
    for file in jump_files(session, second):
        file.jump_id = first.id
    session.flush()
    gone = second.sequence
    session.delete(second)
    session.flush()
    later = session.scalars(
        select(Jump)
        .where(Jump.import_batch_id == first.import_batch_id, Jump.sequence > gone)
        .order_by(Jump.sequence)
        .with_for_update()
    ).all()
    for other in later:  # lowest first: (batch, sequence) stays unique
        _renumber(session, other, other.sequence - 1)
    return _change(session, [first], [_settle(session, first, cfg)])


def fill_batch(
    session: Session, batch_uuid: str, cfg: FillConfig
) -> list[tuple[FillOutcome, bool]]:
    """Judge every jump of the import from its rows and put its clips where the verdict
    says (the pipeline's entry). Returns each fill and whether its project should render."""
    claim_rows(session, batch=batch_uuid)
    batch = find_batch(session, batch_uuid)
    settled: list[tuple[FillOutcome, bool]] = []
    for jump in session.scalars(
        select(Jump).where(Jump.import_batch_id == batch.id).order_by(Jump.sequence)
    ).all():
        _forget_deleted_customer(session, jump)
        if jump.project_id is None and jump.qr_code is not None:
            customer = customer_for_code(session, jump.qr_code)
            if customer is not None:
                jump.project_id = customer.id
        settled.append(_settle(session, jump, cfg, edited=False))
    return settled


# --- async entry points -----------------------------------------------------------------


@attrs.frozen
class RenderStart:
    project_uuid: str
    job_uuid: str | None
    error: str | None

    def to_api(self) -> dict[str, Any]:
        return {"project_uuid": self.project_uuid, "job_uuid": self.job_uuid, "error": self.error}


async def start_render(app: StinercutApp, project_uuid: str) -> RenderStart:
    """Queue a render of the project exactly as ``POST /api/projects/{uuid}/render``
    without a body does; a refusal (no clips, already rendering) is returned, not raised."""
    from ..errors import ApiError
    from . import renders

    try:
        view = await renders.queue_render(app, project_uuid, None)
    except ApiError as exc:
        log.warning("no render of project %s after ingest: %s", project_uuid, exc.message)
        return RenderStart(project_uuid, None, exc.message)
    return RenderStart(project_uuid, view["uuid"], None)


async def sync_thumbnails(app: StinercutApp, outcomes: Sequence[FillOutcome]) -> None:
    """Give new timeline rows their recording's thumbnail (``thumbnails/<uuid>.jpg``,
    what ``GET /api/videos/{uuid}/thumbnail`` serves) and drop those of removed rows.

    Best effort after the rows are committed: a full disk costs a picture, never
    the assignment.
    """
    storage = app.storage

    def work() -> None:
        for outcome in outcomes:
            for uuid in outcome.dropped:
                thumbnail_path(storage, uuid).unlink(missing_ok=True)
            for uuid, jpeg in outcome.thumbnails:
                path = thumbnail_path(storage, uuid)
                if path.exists():
                    continue
                partial_path = path.with_name(f".{path.name}.partial")
                partial_path.write_bytes(jpeg)
                os.replace(partial_path, path)

    try:
        await trio.to_thread.run_sync(work)
    except OSError as exc:
        log.warning("timeline thumbnails of an ingest fill not written: %s", exc)


async def _run_change(app: StinercutApp, change: Change) -> dict[str, Any]:
    await sync_thumbnails(app, change.fills)
    renders: list[RenderStart] = []
    if app.settings.ingest_auto_render:
        for project_uuid in change.render:
            renders.append(await start_render(app, project_uuid))
    return {"jumps": list(change.jumps), "renders": [r.to_api() for r in renders]}


async def assign_jump(app: StinercutApp, uuid: str, project_uuid: str | None) -> dict[str, Any]:
    cfg = fill_config(app.settings)
    return await _run_change(
        app, await app.db.run(partial(assign, uuid=uuid, project_uuid=project_uuid, cfg=cfg))
    )


async def split_jump(app: StinercutApp, uuid: str, at: str | int) -> dict[str, Any]:
    cfg = fill_config(app.settings)
    return await _run_change(app, await app.db.run(partial(split, uuid=uuid, at=at, cfg=cfg)))


async def merge_jumps(app: StinercutApp, uuids: Sequence[str]) -> dict[str, Any]:
    cfg = fill_config(app.settings)
    return await _run_change(app, await app.db.run(partial(merge, uuids=uuids, cfg=cfg)))


async def confirm_jump(app: StinercutApp, uuid: str) -> dict[str, Any]:
    cfg = fill_config(app.settings)
    return await _run_change(app, await app.db.run(partial(confirm, uuid=uuid, cfg=cfg)))


async def find_customer(app: StinercutApp, code: str) -> str | None:
    """The uuid of the project a QR uuid names (created for a booking), or None."""

    def lookup(session: Session) -> str | None:
        project = customer_for_code(session, code)
        return None if project is None else project.uuid

    return await app.db.run(lookup)


async def apply_resolved(app: StinercutApp, batch_uuid: str) -> list[FillOutcome]:
    """The import pipeline's call once a batch's jump rows are stored (also on re-runs).

    Each jump is judged again from its rows (the same rule as the analysis, plus
    staff's confirmations and assignments); every resolved jump's clips go onto its customer's timeline (rows updated, never
    duplicated), jumps that are not resolved have none there; with
    ``INGEST_AUTO_RENDER`` each project whose timeline changed gets a render queued.
    A project that cannot render (already rendering, a missing file) is logged and
    skipped: it never fails the import.
    """
    cfg = fill_config(app.settings)
    settled = await app.db.run(partial(fill_batch, batch_uuid=batch_uuid, cfg=cfg))
    await sync_thumbnails(app, [o for o, _ in settled])
    if app.settings.ingest_auto_render:
        projects = dict.fromkeys(o.project_uuid for o, go in settled if go and o.project_uuid)
        for project_uuid in projects:
            if project_uuid is not None:
                await start_render(app, project_uuid)
    return [o for o, _ in settled]
