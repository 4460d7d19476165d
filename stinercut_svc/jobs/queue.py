"""The job queue in the database: claiming, heartbeats, cancel requests, recovery.

Every function here is synchronous and takes a SQLAlchemy session: callers run
them through ``app.db.run`` (one transaction each). The ``job`` table *is* the
queue, shared by every service instance that points at the same database.

Claiming is safe on both backends:

* MySQL/MariaDB: ``SELECT … FOR UPDATE SKIP LOCKED`` picks the oldest pending
  rows that no other instance is claiming right now, without waiting for it.
* SQLite ignores ``FOR UPDATE``; there the guarded ``UPDATE … WHERE id = ? AND
  status = 'pending'`` (also used on MySQL, as a second belt) lets exactly one
  claimer win, told by the row count (MariaDB has no ``UPDATE … RETURNING``).

Ownership: a claimed row records ``claimed_by`` (see :mod:`.owner`: host, boot,
pid and process start time, token) and a ``heartbeat_at`` the owner refreshes.
Rows whose owner stopped heartbeating, or whose owner process on this host is
provably gone, are recovered by any *other* instance: back to ``pending`` once,
``failed`` the second time. An instance never recovers its own claims: a job it
is still finishing (say, waiting out a database outage to record completion) is
live work, however old its heartbeat.

Project status is never written here directly: every change of a job's state
calls :func:`~stinercut_svc.services.project_status.refresh` in the same
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

import attrs
from sqlalchemy import CursorResult, func, select, text, update
from sqlalchemy.orm import Session

from ..models import Job, JobStatus, Project, Setting, Video, utcnow
from ..models.asset import Asset
from ..render.music import PHASES as MUSIC_PHASES
from ..services import project_status
from ..webhooks import outbox
from . import owner as owners
from .options import MAX_CONCURRENT_KEY, MUSIC_FADE_KEY, SETTING_KEYS, RenderOptions

INTERRUPTED_TWICE = "interrupted twice: the service stopped while rendering it, twice"
ACTIVE = (JobStatus.PENDING, JobStatus.PROCESSING)


def new_owner_id() -> str:
    """This supervisor's ``claimed_by`` value (see :func:`.owner.new_owner_id`)."""
    return owners.new_owner_id()


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner``'s process is provably gone (see :func:`.owner.owner_is_dead`)."""
    return owners.owner_is_dead(owner)


@attrs.frozen
class JobRef:
    """Enough about a job to run it, publish about it, and find it again."""

    id: int
    uuid: str
    project_id: int
    project_uuid: str
    status: JobStatus
    progress: int = 0


def _ref(job: Job, project_uuid: str) -> JobRef:
    return JobRef(job.id, job.uuid, job.project_id, project_uuid, job.status, job.progress)


def _project_uuid(session: Session, project_id: int) -> str:
    return session.scalars(select(Project.uuid).where(Project.id == project_id)).one()


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (``Session.execute`` is typed as returning a plain Result)."""
    return int(cast(CursorResult[Any], result).rowcount)


def _refresh_project(session: Session, project_id: int) -> None:
    project_status.refresh(session, project_id)


def _state_changed(session: Session, job: Job) -> None:
    """Everything that follows a job's state change, in the same transaction: the
    project's derived status and the job's webhook (the outbox row)."""
    _refresh_project(session, job.project_id)
    outbox.job_changed(session, job)


# --- settings --------------------------------------------------------------------


def read_render_settings(session: Session) -> dict[str, Any]:
    """The typed values of the ``render.*`` setting rows (unreadable ones as ``None``)."""
    keys = [*SETTING_KEYS, MAX_CONCURRENT_KEY, MUSIC_FADE_KEY]
    values: dict[str, Any] = {}
    for row in session.scalars(select(Setting).where(Setting.key.in_(keys))):
        try:
            values[row.key] = row.typed_value
        except ValueError:
            values[row.key] = None
    return values


def max_concurrent(values: dict[str, Any], default: int = 1) -> int:
    value = values.get(MAX_CONCURRENT_KEY)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64:
        return value
    return default


# --- claiming --------------------------------------------------------------------


def claim(session: Session, *, owner: str, running: int, mysql: bool) -> list[JobRef]:
    """Claim the oldest pending jobs, as many as ``render.max_concurrent_jobs`` allows."""
    limit = max_concurrent(read_render_settings(session)) - running
    if limit <= 0:
        return []
    query = (
        select(Job.id)
        .where(Job.status == JobStatus.PENDING)
        .order_by(Job.created_at, Job.id)
        .limit(limit)
    )
    if mysql:
        query = query.with_for_update(skip_locked=True)
    now = utcnow()
    claimed: list[JobRef] = []
    for job_id in session.scalars(query).all():
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.PENDING)
            .values(
                status=JobStatus.PROCESSING,
                claimed_by=owner,
                heartbeat_at=now,
                started_at=now,
                completed_at=None,
                progress=0,
                cancel_requested=False,
                error_message=None,
                output_path=None,
                render_path=None,
            )
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            continue  # another instance won this one
        job = session.get(Job, job_id)
        assert job is not None
        session.refresh(job)
        _state_changed(session, job)
        claimed.append(_ref(job, _project_uuid(session, job.project_id)))
    return claimed


# --- the owner's bookkeeping -----------------------------------------------------


@attrs.frozen
class RowState:
    status: JobStatus
    claimed_by: str | None
    cancel_requested: bool


def poll(session: Session, job_ids: list[int]) -> dict[int, RowState]:
    """Current state of the given rows (absent ids: the row was deleted)."""
    if not job_ids:
        return {}
    rows = session.execute(
        select(Job.id, Job.status, Job.claimed_by, Job.cancel_requested).where(Job.id.in_(job_ids))
    )
    return {
        row.id: RowState(row.status, row.claimed_by, bool(row.cancel_requested)) for row in rows
    }


def heartbeat(session: Session, *, owner: str, job_ids: list[int]) -> None:
    if job_ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.claimed_by == owner, Job.status == JobStatus.PROCESSING)
            .values(heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def _owned(job_id: int, owner: str) -> Any:
    return update(Job).where(
        Job.id == job_id, Job.claimed_by == owner, Job.status == JobStatus.PROCESSING
    )


def store_progress(session: Session, *, job_id: int, owner: str, progress: int) -> None:
    session.execute(
        _owned(job_id, owner)
        .values(progress=progress, heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def store_render_path(session: Session, *, job_id: int, owner: str, render_path: str) -> None:
    session.execute(
        _owned(job_id, owner)
        .values(render_path=render_path)
        .execution_options(synchronize_session=False)
    )


def finish(
    session: Session,
    *,
    job_id: int,
    owner: str,
    status: JobStatus,
    output_path: str | None = None,
    error_message: str | None = None,
) -> Job | None:
    """Record a job's end (completed, failed or cancelled) if this owner still holds it."""
    values: dict[str, Any] = {
        "status": status,
        "completed_at": utcnow(),
        "heartbeat_at": None,
        "cancel_requested": False,
    }
    if status is JobStatus.COMPLETED:
        values.update(progress=100, output_path=output_path, error_message=None)
    if error_message is not None:
        values["error_message"] = error_message
    result = session.execute(
        _owned(job_id, owner).values(**values).execution_options(synchronize_session=False)
    )
    job = session.get(Job, job_id)
    if _rowcount(result) != 1:
        # Idempotent for completion: when a retry follows an attempt whose commit
        # went through but whose answer was lost (the connection dropped), the row
        # already says what this call wants it to say.
        if (
            job is not None
            and status is JobStatus.COMPLETED
            and job.status is JobStatus.COMPLETED
            and job.output_path == output_path
        ):
            session.refresh(job)
            return job
        return None
    assert job is not None
    session.refresh(job)
    _state_changed(session, job)
    return job


def requeue(session: Session, *, job_id: int, owner: str) -> Job | None:
    """Shutdown: the job goes back to ``pending`` (not an interruption, not a cancel)."""
    result = session.execute(
        _owned(job_id, owner)
        .values(
            status=JobStatus.PENDING,
            claimed_by=None,
            heartbeat_at=None,
            started_at=None,
            progress=0,
            render_path=None,
        )
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) != 1:
        return None
    job = session.get(Job, job_id)
    assert job is not None
    session.refresh(job)
    _state_changed(session, job)
    return job


# --- recovery --------------------------------------------------------------------


@attrs.frozen
class Recovered:
    job: dict[str, Any]
    project_uuid: str


def recover_stale(
    session: Session,
    *,
    stale_after: timedelta,
    me: str | None = None,
    finished_output: Callable[[str, str], str | None] | None = None,
    kill_leftovers: Callable[[str, str], int] | None = None,
    completed: Callable[[Session, Job, str], None] | None = None,
) -> list[Recovered]:
    """Processing jobs whose owner is gone: ``pending`` again once, then ``failed``.

    An owner is gone when its heartbeat is older than ``stale_after`` (any host)
    or when it ran on this host in a process that no longer exists. ``me``'s own
    claims are never touched: this instance knows its own jobs are alive.

    For each job taken over: ``kill_leftovers(claimed_by, job_uuid)`` first stops
    any ffmpeg the dead owner left behind, so a re-run never renders beside it;
    ``finished_output(project_uuid, job_uuid)`` names the job's output when the
    dead owner had already moved it into ``output/`` (it only ever moves complete
    files there) — then the job is recorded ``completed`` instead of rendered again.
    ``completed(session, job, project_uuid)`` then records what else the finished
    job left (its editions) in the same transaction.
    A job whose cancel was requested while its owner died simply becomes ``cancelled``.
    """
    cutoff = utcnow() - stale_after
    query = select(Job).where(Job.status == JobStatus.PROCESSING)
    if me is not None:
        query = query.where((Job.claimed_by != me) | Job.claimed_by.is_(None))
    candidates = session.scalars(query).all()
    recovered: list[Recovered] = []
    for job in candidates:
        stale = job.heartbeat_at is None or job.heartbeat_at < cutoff
        if not stale and not owner_is_dead(job.claimed_by):
            continue
        if kill_leftovers is not None and job.claimed_by:
            kill_leftovers(job.claimed_by, job.uuid)
        project_uuid = _project_uuid(session, job.project_id)
        output = finished_output(project_uuid, job.uuid) if finished_output else None
        values: dict[str, Any] = {"claimed_by": None, "heartbeat_at": None}
        if output is not None:
            values.update(
                status=JobStatus.COMPLETED,
                completed_at=utcnow(),
                progress=100,
                output_path=output,
                error_message=None,
                cancel_requested=False,
            )
        elif job.cancel_requested:
            values.update(status=JobStatus.CANCELLED, completed_at=utcnow(), cancel_requested=False)
        elif job.interruptions + 1 >= 2:
            values.update(
                status=JobStatus.FAILED,
                completed_at=utcnow(),
                interruptions=job.interruptions + 1,
                error_message=INTERRUPTED_TWICE,
            )
        else:
            values.update(
                status=JobStatus.PENDING,
                interruptions=job.interruptions + 1,
                started_at=None,
                progress=0,
                render_path=None,
            )
        same_owner = (
            Job.claimed_by.is_(None) if job.claimed_by is None else Job.claimed_by == job.claimed_by
        )
        guard = update(Job).where(
            Job.id == job.id, Job.status == JobStatus.PROCESSING, same_owner
        )
        result = session.execute(
            guard.values(**values).execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            continue
        session.refresh(job)
        if output is not None and completed is not None:
            completed(session, job, project_uuid)
        _state_changed(session, job)
        recovered.append(Recovered(job.to_api(), project_uuid))
    return recovered


def live_job_uuids(session: Session, *, stale_after: timedelta) -> set[str]:
    """Uuids of processing jobs whose owner looks alive (their temp folders stay)."""
    cutoff = utcnow() - stale_after
    rows = session.execute(
        select(Job.uuid, Job.heartbeat_at, Job.claimed_by).where(
            Job.status == JobStatus.PROCESSING
        )
    )
    return {
        row.uuid
        for row in rows
        if row.heartbeat_at is not None
        and row.heartbeat_at >= cutoff
        and not owner_is_dead(row.claimed_by)
    }


# --- what a job needs to run -----------------------------------------------------


@attrs.frozen
class ClipRow:
    uuid: str
    filename: str
    path: str
    in_point: float | None
    out_point: float | None
    #: Freefall window in the file's own seconds (jump resolution), for the music (audio helper).
    freefall_start_s: float | None = None
    freefall_end_s: float | None = None


@attrs.frozen
class AssetRow:
    uuid: str
    type: str
    name: str
    path: str


@attrs.frozen
class JobContext:
    job_uuid: str
    project_uuid: str
    project_name: str
    options: RenderOptions
    clips: tuple[ClipRow, ...]
    assets: dict[str, AssetRow]  # option name ("intro_asset", …) → asset
    settings: dict[str, Any]
    # --- name screen (namescreen helper) ---
    #: ``name_screen``'s assets ("template_asset", "sound_asset") → asset; only when enabled.
    name_screen_assets: dict[str, AssetRow] = attrs.field(factory=dict)
    #: For the name screen's ``{{date}}``.
    project_created_at: datetime | None = None


class ContextError(ValueError):
    """The job's stored options or referenced rows no longer make sense."""


def load_context(session: Session, job_id: int) -> JobContext:
    job = session.get(Job, job_id)
    if job is None:
        raise ContextError("the job no longer exists")
    project = session.get(Project, job.project_id)
    assert project is not None
    try:
        options = RenderOptions.model_validate(json.loads(job.options or "{}"))
    except ValueError as exc:
        raise ContextError(f"stored render options are invalid: {exc}") from None
    clips = tuple(
        ClipRow(v.uuid, v.filename, v.path, v.in_point, v.out_point,
                v.freefall_start_s, v.freefall_end_s)  # fmt: skip
        for v in session.scalars(
            select(Video).where(Video.project_id == project.id).order_by(Video.order, Video.id)
        )
    )
    assets = _asset_rows(session, requested_assets(options))
    # --- name screen (namescreen helper): its assets sit in a nested option ---
    screen = options.name_screen
    screen_assets: dict[str, AssetRow] = {}
    if screen is not None and screen.enabled:
        wanted = {name: getattr(screen, name) for name in NAME_SCREEN_ASSET_TYPES}
        screen_assets = _asset_rows(session, wanted, prefix="name_screen.")
    return JobContext(
        job.uuid, project.uuid, project.name, options, clips, assets, read_render_settings(session),
        name_screen_assets=screen_assets, project_created_at=project.created_at,
    )


def _asset_rows(
    session: Session, wanted: dict[str, Any], *, prefix: str = ""
) -> dict[str, AssetRow]:
    """Option name → asset row for every set uuid; a uuid without a row is a ContextError."""
    rows: dict[str, AssetRow] = {}
    for name, value in wanted.items():
        if value is None:
            continue
        asset = session.scalars(select(Asset).where(Asset.uuid == str(value))).first()
        if asset is None:
            raise ContextError(f"{prefix}{name}: asset {value} no longer exists")
        rows[name] = AssetRow(asset.uuid, asset.type.value, asset.name, asset.path)
    return rows


def requested_assets(options: RenderOptions) -> dict[str, Any]:
    """Option name → asset uuid (or ``None``) for every asset option, the music per phase
    included (``music.freefall``: nested in ``audio``; audio helper)."""
    wanted = dict(options.model_dump(include=set(ASSET_TYPES)))
    music = options.audio.music if options.audio is not None else None
    if music is not None:
        wanted.update({f"music.{phase}": getattr(music, phase) for phase in MUSIC_PHASES})
    return wanted


#: Which asset types each option accepts.
ASSET_TYPES: dict[str, tuple[str, ...]] = {
    "intro_asset": ("intro",),
    "outro_asset": ("outro",),
    "watermark_asset": ("watermark",),
    "audio_asset": ("audio", "audio_freefall"),
    # audio helper: AudioOptions.music.<phase>
    **{f"music.{phase}": ("audio", "audio_freefall") for phase in MUSIC_PHASES},
}
#: Which asset types ``name_screen``'s asset options accept (namescreen helper).
NAME_SCREEN_ASSET_TYPES: dict[str, tuple[str, ...]] = {
    "template_asset": ("pax_template",),
    "sound_asset": ("audio", "audio_freefall"),
}


# --- requests from the API -------------------------------------------------------


def lock_project(session: Session, project_id: int) -> None:
    """Take the project row's write lock (InnoDB row lock; SQLite's database lock).

    A no-op write rather than ``SELECT … FOR UPDATE`` because SQLite ignores the
    latter: two render requests for one project must not both see "no job yet".
    """
    session.execute(text("UPDATE project SET id = id WHERE id = :id"), {"id": project_id})


def active_job(session: Session, project_id: int) -> Job | None:
    return session.scalars(
        select(Job).where(Job.project_id == project_id, Job.status.in_(ACTIVE)).limit(1)
    ).first()


@attrs.frozen
class CancelOutcome:
    job: dict[str, Any]
    project_uuid: str
    #: "cancelled_pending", "requested", "finished" (status unchanged), "missing".
    action: str
    owner: str | None = None
    heartbeat_at: datetime | None = None


def request_cancel(session: Session, job_uuid: str) -> CancelOutcome | None:
    """Pending → cancelled at once; processing → ``cancel_requested`` for its owner."""
    job = session.scalars(select(Job).where(Job.uuid == job_uuid)).first()
    if job is None:
        return None
    now = utcnow()
    done = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.PENDING)
        .values(status=JobStatus.CANCELLED, completed_at=now, claimed_by=None)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(done) == 1:
        action = "cancelled_pending"
    else:
        asked = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == JobStatus.PROCESSING)
            .values(cancel_requested=True)
            .execution_options(synchronize_session=False)
        )
        action = "requested" if _rowcount(asked) == 1 else "finished"
    session.refresh(job)
    if action == "cancelled_pending":
        _state_changed(session, job)
    project_uuid = _project_uuid(session, job.project_id)
    return CancelOutcome(job.to_api(), project_uuid, action, job.claimed_by, job.heartbeat_at)


def count_jobs(session: Session, query: Any) -> int:
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
