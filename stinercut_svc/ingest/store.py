"""Persistence of an import's results: copy records and analysis rows.

The pure core (:mod:`.service`) returns values; this module turns them into rows, in
one transaction per call (callers run these through ``Database.run``):

* :func:`record_copied` — one ``imported_file`` row per file completely copied,
  written as each file lands, so a batch killed mid-copy still knows what it has
  and a restart copies only the rest.
* :func:`known_files` — every ``imported_file`` row as the copy planner's
  :class:`~.copy.KnownFile` (identity is kept on the server, never on the card).
* :func:`store_analysis` — ``video_file`` (one row per chapter file),
  ``video_file_segment`` (phases per file, on the file's own timeline, plus the
  ``qr_code`` span where a code was read) and ``jump`` rows, and the batch's
  counts, status and resolution type.

Re-running a batch updates rows, never duplicates them: files are keyed by
(batch, ``filepath``), jumps by (batch, ``sequence``), a file's segments are
replaced as a whole (they are derived data). Jumps staff already edited or
confirmed (``jump.edited_at`` / ``confirmed_at``, see :mod:`stinercut_svc.services.jumps`)
are left exactly as they are: the analysis refreshes file facts and segments
only, and files it sees for the first time stay without a jump for staff to place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from ..models import Project, utcnow
from ..models.ingest import (
    BatchStatus,
    ImportBatch,
    ImportedFile,
    Jump,
    ResolutionType,
    VideoFile,
    VideoFileSegment,
    VideoFileStatus,
)
from .copy import CopiedFile, KnownFile
from .phases import Phase
from .resolve import Jump as ResolvedJump
from .resolve import JumpState, ManualReason
from .service import BatchAnalysis, RecordingResult

#: A phase shorter than this inside one chapter file is not worth a segment row.
MIN_SEGMENT_S = 0.05


@attrs.frozen
class FileFacts:
    """What ffprobe said about one chapter file (all optional: a broken file has none)."""

    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    codec: str | None = None
    recorded_at: datetime | None = None


@attrs.frozen
class StoredBatch:
    """The batch's verdict after :func:`store_analysis` (for events and the hooks)."""

    status: BatchStatus
    resolution_type: ResolutionType | None
    total_files: int
    errors: int
    detected_qr_count: int
    detected_freefall_count: int
    resolved_jumps: int

    def event(self, batch_uuid: str) -> dict[str, Any]:
        """The ``videofile:batch_completed`` payload (the original's keys)."""
        return {
            "batch_id": batch_uuid,
            "status": self.status.value,
            "resolution_type": None if self.resolution_type is None else self.resolution_type.value,
            "total": self.total_files,
            "success": self.total_files - self.errors,
            "errors": self.errors,
            "detected_qr_count": self.detected_qr_count,
            "detected_freefall_count": self.detected_freefall_count,
            "resolved_jumps": self.resolved_jumps,
        }


# --- copying ---------------------------------------------------------------------------


def known_files(session: Session) -> list[KnownFile]:
    rows = session.execute(
        select(
            ImportedFile.source_path,
            ImportedFile.size_bytes,
            ImportedFile.mtime_ns,
            ImportedFile.quick_hash,
        )
    )
    return [KnownFile(r.source_path, r.size_bytes, r.mtime_ns, r.quick_hash) for r in rows]


def record_copied(session: Session, *, batch_id: int, copied: CopiedFile, stored_path: str) -> None:
    """Upsert the ``imported_file`` row of one completely copied file."""
    row = session.scalars(
        select(ImportedFile).where(
            ImportedFile.import_batch_id == batch_id, ImportedFile.source_path == copied.relative
        )
    ).one_or_none()
    if row is None:
        row = ImportedFile(import_batch_id=batch_id, source_path=copied.relative)
        session.add(row)
    row.size_bytes = copied.size
    row.mtime_ns = copied.mtime_ns
    row.quick_hash = copied.quick_hash
    row.stored_path = stored_path


def copy_counts(session: Session, *, batch_id: int) -> tuple[int, int]:
    """Files and bytes this batch copied so far (from its ``imported_file`` rows)."""
    files, size = session.execute(
        select(
            func.count(ImportedFile.id), func.coalesce(func.sum(ImportedFile.size_bytes), 0)
        ).where(ImportedFile.import_batch_id == batch_id)
    ).one()
    return int(files), int(size)


# --- analysis --------------------------------------------------------------------------


def store_analysis(
    session: Session,
    *,
    batch_id: int,
    batch_uuid: str,
    analysis: BatchAnalysis,
    facts: Mapping[str, FileFacts],
    thumbnails: Mapping[str, bytes],
    proxies_root: str,
) -> StoredBatch:
    """Write the analysis of a batch folder; see the module docstring for the rules.

    ``facts`` and ``thumbnails`` are keyed by the file's path inside the batch
    folder (``CardFile.relative``); ``thumbnails`` only for a recording's first
    chapter. ``proxies_root`` is the storage-relative batch folder (``input/<uuid>``).
    """
    batch = session.get(ImportBatch, batch_id)
    assert batch is not None
    staff_touched = _staff_touched(session, batch_id)
    jump_rows = {} if staff_touched else _store_jumps(session, batch_id, analysis.jumps)
    jump_of = {key: jump for jump in analysis.jumps for key in jump.recordings}
    existing = {
        f.filepath: f
        for f in session.scalars(select(VideoFile).where(VideoFile.import_batch_id == batch_id))
    }
    errors = 0
    for result in analysis.recordings:
        jump = jump_of.get(result.recording.key)
        jump_row = None if jump is None else jump_rows.get(jump.sequence)
        cuts = _chapter_cuts(result, facts, jump)
        offset = 0.0
        for chapter in result.recording.chapters:
            relative = chapter.file.relative
            filepath = f"{batch_uuid}/{relative}"
            fact = facts.get(relative, FileFacts())
            length = fact.duration if fact.duration is not None else 0.0
            row = existing.get(filepath)
            if row is None:
                row = VideoFile(
                    import_batch_id=batch_id,
                    filepath=filepath,
                    import_folder_uuid=batch_uuid,
                    current_folder_uuid=batch_uuid,
                )
                session.add(row)
                existing[filepath] = row
            row.original_filename = chapter.file.name
            row.file_size_bytes = chapter.file.size
            row.duration = fact.duration
            row.width, row.height, row.fps, row.codec = (
                fact.width,
                fact.height,
                fact.fps,
                fact.codec,
            )
            row.recorded_at = fact.recorded_at or _offset(result.recording.creation_time, offset)
            row.recording_key = result.recording.key
            row.chapter = chapter.index
            row.proxy_path = (
                None if chapter.proxy is None else f"{proxies_root}/{chapter.proxy.relative}"
            )
            if relative in thumbnails:
                row.thumbnail = thumbnails[relative]
            first = chapter is result.recording.chapters[0]
            qr = result.qr
            row.qr_content = qr.code if (qr is not None and first) else None
            row.detected_project_uuid = qr.customer if (qr is not None and first) else None
            if result.error is not None:
                errors += 1
                row.status = VideoFileStatus.ERROR
                row.error_message = result.error[:4000]
            else:
                row.status = VideoFileStatus.ANALYZED
                row.error_message = None
            if not staff_touched:
                row.jump_id = None if jump_row is None else jump_row.id
                row.jump_number = None if jump is None else jump.sequence
                row.project_id = None if jump_row is None else jump_row.project_id
                if row.project_id is not None and row.status is VideoFileStatus.ANALYZED:
                    row.status = VideoFileStatus.MATCHED
                cut = cuts.get(chapter.index)
                row.in_point, row.out_point = (None, None) if cut is None else cut
            segments = _file_segments(result, offset, length, first)
            _replace_segments(session, row, segments)
            if segments:
                main = max(segments, key=lambda s: (s[2] - s[1], s[0] is Phase.FREEFALL))
                row.dominant_classification = main[0]
                row.classification_confidence = round(main[3], 4)
            else:
                row.dominant_classification = Phase.UNKNOWN
                row.classification_confidence = None
            offset += length
    total = sum(len(r.recording.chapters) for r in analysis.recordings)
    codes = {r.qr.code for r in analysis.recordings if r.qr is not None}
    freefalls = sum(0 if r.audio is None else len(r.audio.freefalls) for r in analysis.recordings)
    status, resolution = verdict(analysis.jumps)
    batch.total_files = total
    batch.analyzed_files = total
    batch.detected_qr_count = len(codes)
    batch.detected_freefall_count = freefalls
    batch.status = status
    batch.resolution_type = resolution
    batch.error_message = None
    return StoredBatch(
        status=status,
        resolution_type=resolution,
        total_files=total,
        errors=errors,
        detected_qr_count=len(codes),
        detected_freefall_count=freefalls,
        resolved_jumps=sum(1 for j in analysis.jumps if j.state is JumpState.RESOLVED),
    )


def verdict(jumps: Sequence[ResolvedJump]) -> tuple[BatchStatus, ResolutionType | None]:
    """The batch's status and the original's ``resolution_type`` from its jumps.

    All jumps resolved: ``auto_single`` (one customer) or ``auto_multi``; else the
    batch needs staff: ``missing_qr`` when any jump lacks a QR, ``ambiguous``
    otherwise (an unknown customer, no or two freefalls).
    """
    if not jumps:
        return BatchStatus.RESOLVED, None
    if all(j.state is JumpState.RESOLVED for j in jumps):
        customers = {j.customer for j in jumps}
        single = len(customers) == 1
        return BatchStatus.RESOLVED, (
            ResolutionType.AUTO_SINGLE if single else ResolutionType.AUTO_MULTI
        )
    if any(ManualReason.MISSING_QR in j.reasons for j in jumps):
        return BatchStatus.NEEDS_MANUAL, ResolutionType.MISSING_QR
    return BatchStatus.NEEDS_MANUAL, ResolutionType.AMBIGUOUS


def _staff_touched(session: Session, batch_id: int) -> bool:
    touched = session.scalar(
        select(func.count(Jump.id)).where(
            Jump.import_batch_id == batch_id,
            (Jump.edited_at.is_not(None)) | (Jump.confirmed_at.is_not(None)),
        )
    )
    return bool(touched)


def _store_jumps(session: Session, batch_id: int, jumps: Sequence[ResolvedJump]) -> dict[int, Jump]:
    """Upsert by (batch, sequence); rows beyond the new count go (their files' jump_id
    is set to NULL by the foreign key, and re-set just after)."""
    rows = {
        j.sequence: j for j in session.scalars(select(Jump).where(Jump.import_batch_id == batch_id))
    }
    customers = {j.customer for j in jumps if j.customer is not None}
    project_ids: dict[str, int] = {}
    if customers:
        project_ids = {
            uuid: pid
            for uuid, pid in session.execute(
                select(Project.uuid, Project.id).where(Project.uuid.in_(customers))
            )
        }
    wanted = {j.sequence for j in jumps}
    for sequence, row in list(rows.items()):
        if sequence not in wanted:
            session.execute(
                update(VideoFile)
                .where(VideoFile.jump_id == row.id)
                .values(jump_id=None)
                .execution_options(synchronize_session=False)
            )
            session.delete(row)
            del rows[sequence]
    session.flush()
    for jump in jumps:
        found = rows.get(jump.sequence)
        if found is None:
            found = Jump(import_batch_id=batch_id, sequence=jump.sequence)
            session.add(found)
            rows[jump.sequence] = found
        row = found
        row.state = jump.state
        row.reason = jump.reason
        row.reasons = ",".join(r.value for r in jump.reasons) or None
        row.qr_code = jump.qr_code
        row.project_id = None if jump.customer is None else project_ids.get(jump.customer)
        freefall = jump.freefall
        row.freefall_recording = None if freefall is None else freefall.key
        row.freefall_start = None if freefall is None else freefall.start
        row.freefall_end = None if freefall is None else freefall.end
        row.freefall_confidence = None if freefall is None else freefall.confidence
        row.freefall_source = None if freefall is None else freefall.source
    session.flush()  # ids for the files' jump_id
    return rows


def _chapter_cuts(
    result: RecordingResult, facts: Mapping[str, FileFacts], jump: ResolvedJump | None
) -> dict[int, tuple[float, float]]:
    """The jump's clip of this recording as chapter-local (in, out) per chapter index."""
    if jump is None:
        return {}
    clip = next((c for c in jump.clips if c.key == result.recording.key), None)
    if clip is None:
        return {}
    cuts: dict[int, tuple[float, float]] = {}
    offset = 0.0
    for chapter in result.recording.chapters:
        length = facts.get(chapter.file.relative, FileFacts()).duration or 0.0
        lo, hi = max(clip.in_point, offset), min(clip.out_point, offset + length)
        if hi - lo > 1e-6:
            cuts[chapter.index] = (round(lo - offset, 3), round(hi - offset, 3))
        offset += length
    return cuts


def _file_segments(
    result: RecordingResult, offset: float, length: float, first: bool
) -> list[tuple[Phase, float, float, float]]:
    """Phases cut to one chapter file, on its own timeline; the QR span on the first."""
    segments: list[tuple[Phase, float, float, float]] = []
    if first and result.qr is not None:
        end = result.qr.last_seen if length <= 0 else min(result.qr.last_seen, length)
        segments.append((Phase.QR_CODE, 0.0, round(max(end, 0.0), 3), 1.0))
    if result.audio is None:
        return segments
    end_of_file = offset + length if length > 0 else float("inf")
    for phase in result.audio.phases:
        lo, hi = max(phase.start, offset), min(phase.end, end_of_file)
        if hi - lo >= MIN_SEGMENT_S:
            segments.append(
                (phase.phase, round(lo - offset, 3), round(hi - offset, 3), phase.confidence)
            )
    return segments


def _replace_segments(
    session: Session, row: VideoFile, segments: Sequence[tuple[Phase, float, float, float]]
) -> None:
    if row.id is not None:
        session.execute(delete(VideoFileSegment).where(VideoFileSegment.video_file_id == row.id))
        session.expire(row, ["segments"])
    else:
        session.flush()
    for order, (phase, start, end, confidence) in enumerate(segments):
        session.add(
            VideoFileSegment(
                video_file_id=row.id,
                start_time=start,
                end_time=end,
                classification=phase,
                confidence=round(min(max(confidence, 0.0), 1.0), 4),
                sequence_order=order,
            )
        )


def _offset(start: datetime | None, seconds: float) -> datetime | None:
    return None if start is None else start + timedelta(seconds=seconds)


# --- the batch row ---------------------------------------------------------------------


def mark_empty(session: Session, *, batch_id: int) -> None:
    """Nothing new on the card: the batch is done with no files of its own."""
    batch = session.get(ImportBatch, batch_id)
    assert batch is not None
    batch.status = BatchStatus.RESOLVED
    batch.resolution_type = None
    batch.total_files = batch.analyzed_files = 0
    batch.error_message = None
    batch.finished_at = utcnow()


__all__ = [
    "FileFacts",
    "StoredBatch",
    "copy_counts",
    "known_files",
    "mark_empty",
    "record_copied",
    "store_analysis",
    "verdict",
]
