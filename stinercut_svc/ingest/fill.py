"""From a jump's rows to the customer's timeline: which clips, trimmed where, in what order.

A jump is stored as rows (``jump``, its ``video_file`` chapters and their
``video_file_segment`` phases), and staff may regroup those rows at any time (split,
merge, assign). So everything here is derived from the rows again on every call,
never from the analysis run that first wrote them:

* **Recordings.** A jump's files are grouped by ``recording_key`` into recordings
  (chapters ordered by ``chapter``); recordings are in camera order, which is the
  order the import stored them in (the smallest ``video_file.id`` of each). A
  recording has one continuous timeline: each chapter starts where the previous one
  ended (``duration`` of each file).
* **Facts.** Segment times are local to their file; on the recording's timeline
  freefall segments that touch across a chapter boundary are one freefall. The QR
  shot ends where the ``qr_code`` segment ends; the landing is the first
  ``ground_after`` after the freefall. Without any segment (an import that stored
  none) the jump's own ``freefall_*`` columns are the one freefall.
* **Edit.** Dead time is dropped by in/out points only (files never move): a QR
  recording starts ``qr_margin_s`` after the QR shot; the recording with the landing
  ends ``ground_after_landing_s`` after it (``INGEST_GROUND_AFTER_LANDING_S``);
  recordings after the landing recording are deliberate shots (a statement after the
  jump) and stay whole; what is left shorter than ``min_clip_s`` (a pure QR shot) is
  not put on the timeline. A recording's clip becomes one ``video`` row per chapter it
  touches (:func:`~stinercut_svc.ingest.resolve.chapter_cuts`).
* **Freefall for the render.** The jump's one freefall is written onto the rows of
  the files it lies in, as ``video.freefall_start_s``/``freefall_end_s`` in seconds
  on that file's own timeline (a freefall across two chapters: the end of one file,
  the start of the next).
* **Rows, not copies.** A file's clip on a timeline is found again by
  ``video.video_file_id``, so filling twice updates the rows, filling into another
  project moves them, and a jump that is no longer resolved takes them out again.

Synchronous functions on a :class:`~sqlalchemy.orm.Session` (run them through
``Database.run``); no files are read or written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..models import Project, Video, utcnow
from ..models.ingest import Jump, VideoFile, VideoFileSegment, VideoFileStatus
from .phases import Phase
from .resolve import JumpState, ManualReason, chapter_cuts

#: Storage folder the imported files live in (``input/<batch uuid>/...``); a
#: ``video_file.filepath`` is relative to it.
INPUT_FOLDER = "input"
#: Freefall pieces closer than this (s) on a recording's timeline are one freefall
#: (two chapters' segments meet at the boundary, up to rounding of the stored times).
TOUCH_S = 0.05


@attrs.frozen
class FillConfig:
    ground_after_landing_s: float = 20.0
    qr_margin_s: float = 0.5
    min_clip_s: float = 1.0


@attrs.frozen
class Window:
    """A time range on a recording's timeline (seconds)."""

    start: float
    end: float


@attrs.frozen
class RecordingRows:
    """One recording of a jump, rebuilt from its chapter rows."""

    key: str
    chapters: tuple[VideoFile, ...]
    #: Start of each chapter on the recording's timeline.
    offsets: tuple[float, ...]
    duration: float
    qr_end: float | None
    freefalls: tuple[Window, ...]
    landing: float | None

    def chapter_durations(self) -> list[float]:
        return [float(c.duration or 0.0) for c in self.chapters]


@attrs.frozen
class PlannedClip:
    """One ``video`` row the jump wants on its customer's timeline."""

    file: VideoFile
    in_point: float
    out_point: float
    freefall_start_s: float | None
    freefall_end_s: float | None


@attrs.frozen
class Verdict:
    state: JumpState
    reasons: tuple[ManualReason, ...]
    freefall: tuple[str, Window] | None
    freefall_count: int


@attrs.frozen
class FillOutcome:
    """What filling one jump did. ``changed`` is false when the rows were already right."""

    jump_uuid: str
    project_uuid: str | None
    created: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    #: ``(video uuid, JPEG)`` for rows on the timeline whose recording has a thumbnail:
    #: the caller writes the ones missing as ``thumbnails/<video uuid>.jpg``.
    thumbnails: tuple[tuple[str, bytes], ...] = attrs.field(default=(), repr=False)
    #: Uuids of rows taken off a timeline (their thumbnail files go).
    dropped: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.moved or self.removed)


def storage_path(file: VideoFile) -> str:
    """The file's path relative to the storage root (what ``video.path`` holds)."""
    return f"{INPUT_FOLDER}/{file.filepath}"


# --- rows -> recordings ----------------------------------------------------------------


def jump_files(session: Session, jump: Jump) -> list[VideoFile]:
    return list(
        session.scalars(
            select(VideoFile).where(VideoFile.jump_id == jump.id).order_by(VideoFile.id)
        )
    )


def recordings_of(session: Session, files: Sequence[VideoFile]) -> list[RecordingRows]:
    """Group chapter rows into recordings in camera order, with their facts."""
    groups: dict[str, list[VideoFile]] = {}
    for file in sorted(files, key=lambda f: f.id):
        groups.setdefault(file.recording_key or file.filepath, []).append(file)
    segments = _segments_by_file(session, [f.id for f in files])
    return [
        _recording(key, sorted(chapters, key=lambda f: (f.chapter or 0, f.id)), segments)
        for key, chapters in groups.items()
    ]


def _segments_by_file(session: Session, ids: Sequence[int]) -> dict[int, list[VideoFileSegment]]:
    found: dict[int, list[VideoFileSegment]] = {}
    if not ids:
        return found
    rows = session.scalars(
        select(VideoFileSegment)
        .where(VideoFileSegment.video_file_id.in_(ids))
        .order_by(VideoFileSegment.video_file_id, VideoFileSegment.start_time)
    )
    for seg in rows:
        found.setdefault(seg.video_file_id, []).append(seg)
    return found


def _recording(
    key: str, chapters: list[VideoFile], segments: dict[int, list[VideoFileSegment]]
) -> RecordingRows:
    offsets: list[float] = []
    at = 0.0
    pieces: dict[Phase, list[Window]] = {}
    for chapter in chapters:
        offsets.append(at)
        for seg in segments.get(chapter.id, ()):
            window = Window(at + float(seg.start_time), at + float(seg.end_time))
            pieces.setdefault(seg.classification, []).append(window)
        at += float(chapter.duration or 0.0)
    freefalls = _joined(pieces.get(Phase.FREEFALL, []))
    qr = pieces.get(Phase.QR_CODE)
    landing = None
    if freefalls:
        after = [w.start for w in pieces.get(Phase.GROUND_AFTER, []) if w.start >= freefalls[0].end]
        landing = min(after) if after else None
    return RecordingRows(
        key=key,
        chapters=tuple(chapters),
        offsets=tuple(offsets),
        duration=at,
        qr_end=max(w.end for w in qr) if qr else None,
        freefalls=tuple(freefalls),
        landing=landing,
    )


def _joined(windows: Iterable[Window]) -> list[Window]:
    """Pieces of one freefall in different chapters become one window."""
    joined: list[Window] = []
    for w in sorted(windows, key=lambda w: w.start):
        if joined and w.start - joined[-1].end <= TOUCH_S:
            joined[-1] = Window(joined[-1].start, max(joined[-1].end, w.end))
        else:
            joined.append(w)
    return joined


# --- verdict ------------------------------------------------------------------------


def freefalls_of(jump: Jump, recordings: Sequence[RecordingRows]) -> list[tuple[str, Window]]:
    """Every freefall of the jump, in order, as ``(recording key, window)``.

    From the segments when the import stored any; otherwise the jump's own columns
    (the analysis's single freefall), as long as its recording is still in the jump.
    """
    found = [(r.key, w) for r in recordings for w in r.freefalls]
    if found:
        return found
    has_segments = any(r.qr_end is not None or r.landing is not None for r in recordings)
    keys = {r.key for r in recordings}
    if (
        not has_segments
        and jump.freefall_recording in keys
        and jump.freefall_start is not None
        and jump.freefall_end is not None
    ):
        return [(jump.freefall_recording, Window(jump.freefall_start, jump.freefall_end))]
    return []


def judge(jump: Jump, recordings: Sequence[RecordingRows]) -> Verdict:
    """``resolved`` = a customer and exactly one freefall, or a customer and staff's
    confirmation; otherwise ``needs_manual`` with every reason, most fundamental first."""
    freefalls = freefalls_of(jump, recordings)
    reasons: list[ManualReason] = []
    if jump.project_id is None:
        reasons.append(
            ManualReason.MISSING_QR if jump.qr_code is None else ManualReason.UNKNOWN_CUSTOMER
        )
    if not freefalls:
        reasons.append(ManualReason.NO_FREEFALL)
    elif len(freefalls) > 1:
        reasons.append(ManualReason.TWO_FREEFALLS)
    resolved = jump.project_id is not None and (
        len(freefalls) == 1 or jump.confirmed_at is not None
    )
    return Verdict(
        state=JumpState.RESOLVED if resolved else JumpState.NEEDS_MANUAL,
        reasons=() if resolved else tuple(reasons),
        freefall=freefalls[0] if len(freefalls) == 1 else None,
        freefall_count=len(freefalls),
    )


def apply_verdict(jump: Jump, verdict: Verdict) -> None:
    """Write the verdict onto the jump row (state, reasons, freefall columns)."""
    jump.state = verdict.state
    jump.reason = verdict.reasons[0] if verdict.reasons else None
    jump.reasons = ",".join(r.value for r in verdict.reasons) or None
    if verdict.freefall is None:
        jump.freefall_recording = None
        jump.freefall_start = jump.freefall_end = None
        jump.freefall_confidence = None
        jump.freefall_source = None
    else:
        key, window = verdict.freefall
        if (jump.freefall_recording, jump.freefall_start, jump.freefall_end) != (
            key,
            round(window.start, 3),
            round(window.end, 3),
        ):
            # The analysis's confidence and source were for another window.
            jump.freefall_confidence = None
            jump.freefall_source = None
        jump.freefall_recording = key
        jump.freefall_start = round(window.start, 3)
        jump.freefall_end = round(window.end, 3)


# --- the edit ---------------------------------------------------------------------------


def plan_clips(
    recordings: Sequence[RecordingRows], freefall: tuple[str, Window] | None, cfg: FillConfig
) -> list[PlannedClip]:
    """The jump's clips in timeline order, one per chapter file kept."""
    planned: list[PlannedClip] = []
    landed = False
    for rec in recordings:
        start = 0.0
        if rec.qr_end is not None:
            start = min(rec.duration, rec.qr_end + cfg.qr_margin_s)
        end = rec.duration
        if not landed and rec.landing is not None:
            end = min(rec.duration, rec.landing + cfg.ground_after_landing_s)
            landed = True
        if end - start < cfg.min_clip_s:
            continue
        window = freefall[1] if freefall is not None and freefall[0] == rec.key else None
        for index, cut_in, cut_out in chapter_cuts(rec.chapter_durations(), start, end):
            ff_start = ff_end = None
            if window is not None:
                offset, length = rec.offsets[index], rec.chapter_durations()[index]
                lo, hi = max(window.start, offset), min(window.end, offset + length)
                if hi - lo > 1e-6:
                    ff_start, ff_end = round(lo - offset, 3), round(hi - offset, 3)
            planned.append(PlannedClip(rec.chapters[index], cut_in, cut_out, ff_start, ff_end))
    return planned


def fill_jump(
    session: Session,
    jump: Jump,
    cfg: FillConfig,
    *,
    recordings: Sequence[RecordingRows] | None = None,
) -> FillOutcome:
    """Make the customer's timeline hold exactly this jump's clips (or none of them).

    The target is the jump's project when the jump is ``resolved``, else no project:
    rows of the jump's files elsewhere are moved or removed accordingly. The jump's
    clips keep the place of its first row already on the target timeline, else they
    are appended; the project's other clips keep their order.
    """
    files = jump_files(session, jump)
    recs = list(recordings) if recordings is not None else recordings_of(session, files)
    target = jump.project_id if jump.state == JumpState.RESOLVED else None
    if target is not None and session.get(Project, target) is None:
        target = None  # the frontend deleted the project: nothing to fill
    plan = plan_clips(recs, _freefall_from_jump(jump), cfg) if target is not None else []
    wanted = {clip.file.id: clip for clip in plan}

    # The rows this jump's files have on any timeline (one per file; extras, which
    # only a crash between two fills could leave, are removed below).
    existing: dict[int, Video] = {}
    extras: list[Video] = []
    if files:
        for row in session.scalars(
            select(Video)
            .where(Video.video_file_id.in_([f.id for f in files]))
            .order_by(Video.id)
            .with_for_update()
        ):
            assert row.video_file_id is not None
            if row.video_file_id in existing:
                extras.append(row)
            else:
                existing[row.video_file_id] = row

    touched: set[int | None] = {target} | {row.project_id for row in existing.values()}
    for locked in sorted(p for p in touched if p is not None):
        _lock_project(session, locked)

    # Where the jump's block goes: where its first row already is on the target.
    anchors = {row.id for row in existing.values() if row.project_id == target}
    dropped: list[str] = []
    created = updated = moved = removed = 0
    for row in extras:
        dropped.append(row.uuid)
        session.delete(row)
        removed += 1
    for file_id, row in list(existing.items()):
        if file_id not in wanted:
            dropped.append(row.uuid)
            session.delete(row)
            del existing[file_id]
            removed += 1
    session.flush()

    placed: list[Video] = []
    for clip in plan:
        assert target is not None  # a plan exists only for a target
        found = existing.get(clip.file.id)
        if found is None:
            found = Video(
                project_id=target, path=storage_path(clip.file), video_file_id=clip.file.id
            )
            session.add(found)
            created += 1
            _set_clip(found, clip)
        else:
            if found.project_id != target:
                found.project_id = target
                moved += 1
            if _set_clip(found, clip):
                updated += 1
        placed.append(found)
    session.flush()

    for file in files:
        file.project_id = target
        kept = wanted.get(file.id)
        file.in_point = None if kept is None else kept.in_point
        file.out_point = None if kept is None else kept.out_point
        if target is not None and file.status in (
            VideoFileStatus.ANALYZED,
            VideoFileStatus.PENDING,
        ):
            file.status = VideoFileStatus.MATCHED
        elif target is None and file.status == VideoFileStatus.MATCHED:
            file.status = VideoFileStatus.ANALYZED
        file.jump_number = jump.sequence

    if target is not None:
        _order_timeline(session, target, placed, anchors)
    for other in touched - {target}:
        if other is not None:
            _order_timeline(session, other, [], set())
    project_uuid = None
    if target is not None:
        project_uuid = session.scalars(select(Project.uuid).where(Project.id == target)).one()
    return FillOutcome(
        jump_uuid=jump.uuid,
        project_uuid=project_uuid,
        created=created,
        updated=updated,
        moved=moved,
        removed=removed,
        thumbnails=_thumbnails(plan, placed, recs),
        dropped=tuple(dropped),
    )


def _thumbnails(
    plan: Sequence[PlannedClip], placed: Sequence[Video], recs: Sequence[RecordingRows]
) -> tuple[tuple[str, bytes], ...]:
    """Each placed row's picture: its file's own thumbnail, else its recording's
    (the import makes one per recording, on the first chapter)."""
    per_recording: dict[int, bytes | None] = {}
    for rec in recs:
        found = next((c.thumbnail for c in rec.chapters if c.thumbnail), None)
        for chapter in rec.chapters:
            per_recording[chapter.id] = found
    pictures: list[tuple[str, bytes]] = []
    for clip, row in zip(plan, placed, strict=True):
        picture = clip.file.thumbnail or per_recording.get(clip.file.id)
        if picture:
            pictures.append((row.uuid, picture))
    return tuple(pictures)


def _freefall_from_jump(jump: Jump) -> tuple[str, Window] | None:
    if jump.freefall_recording is None or jump.freefall_start is None or jump.freefall_end is None:
        return None
    return jump.freefall_recording, Window(float(jump.freefall_start), float(jump.freefall_end))


def _set_clip(row: Video, clip: PlannedClip) -> bool:
    """Copy the planned values onto the row; True when anything differed."""
    file = clip.file
    values = {
        "filename": file.original_filename,
        "duration": None if file.duration is None else float(file.duration),
        "width": file.width,
        "height": file.height,
        "codec": file.codec,
        "fps": None if file.fps is None else float(file.fps),
        "in_point": clip.in_point,
        "out_point": clip.out_point,
        "freefall_start_s": clip.freefall_start_s,
        "freefall_end_s": clip.freefall_end_s,
    }
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _lock_project(session: Session, project_id: int) -> None:
    # An UPDATE takes MariaDB's row lock (and SQLite's write lock) before the
    # timeline is read, so two fills of one project, or a fill and a reorder
    # through the API, serialise.
    session.execute(update(Project).where(Project.id == project_id).values(updated_at=utcnow()))


def _order_timeline(
    session: Session, project_id: int, placed: list[Video], anchors: set[int]
) -> None:
    """Number the project's clips 0..n-1: the others keep their order; ``placed`` go
    as one block where the first of ``anchors`` (rows already there) was, else last."""
    rows = list(
        session.scalars(
            select(Video)
            .where(Video.project_id == project_id)
            .order_by(Video.order, Video.id)
            # a locking read sees rows other transactions committed meanwhile
            # (a plain one would read MariaDB's snapshot from before the lock)
            .with_for_update()
        )
    )
    ours = {id(row) for row in placed}
    others = [row for row in rows if id(row) not in ours]
    at = len(others)
    seen_others = 0
    for row in rows:
        if row.id in anchors:
            at = seen_others
            break
        if id(row) not in ours:
            seen_others += 1
    for order, row in enumerate(others[:at] + placed + others[at:]):
        if row.order != order:
            row.order = order
