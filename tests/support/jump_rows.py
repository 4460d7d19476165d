"""Build an analysed import as rows, the way the import pipeline stores it.

Tests of jump resolution start from rows, not from a card: the analysis that
writes them has its own tests. The conventions are the pipeline's (see
``stinercut_svc/ingest/fill.py``): one ``video_file`` per chapter file, inserted
in camera order; segment times local to their file; the QR shot as a ``qr_code``
segment.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from sqlalchemy.orm import Session

from stinercut_svc.ingest.freefall import Phase
from stinercut_svc.ingest.resolve import JumpState, ManualReason
from stinercut_svc.models.ingest import (
    BatchStatus,
    ImportBatch,
    Jump,
    VideoFile,
    VideoFileSegment,
    VideoFileStatus,
)


@attrs.frozen
class Chapter:
    duration: float
    #: ``(phase, start, end)`` in this file's own seconds
    segments: Sequence[tuple[Phase, float, float]] = ()


@attrs.frozen
class Rec:
    key: str
    chapters: Sequence[Chapter]
    qr: str | None = None
    #: the recording's thumbnail (stored on its first chapter, as the import does)
    thumbnail: bytes | None = None


@attrs.frozen
class JumpSpec:
    recordings: Sequence[Rec]
    state: JumpState = JumpState.NEEDS_MANUAL
    reasons: Sequence[ManualReason] = ()
    qr_code: str | None = None
    project_id: int | None = None
    #: ``(recording key, start, end)`` on the recording's timeline
    freefall: tuple[str, float, float] | None = None


def add_batch(session: Session, jumps: Sequence[JumpSpec]) -> ImportBatch:
    """Insert a batch with its jumps, files and segments; returns the batch."""
    batch = ImportBatch(status=BatchStatus.NEEDS_MANUAL)
    session.add(batch)
    session.flush()
    for sequence, spec in enumerate(jumps, start=1):
        jump = Jump(
            import_batch_id=batch.id,
            sequence=sequence,
            state=spec.state,
            reason=spec.reasons[0] if spec.reasons else None,
            reasons=",".join(r.value for r in spec.reasons) or None,
            qr_code=spec.qr_code,
            project_id=spec.project_id,
        )
        if spec.freefall is not None:
            jump.freefall_recording, jump.freefall_start, jump.freefall_end = spec.freefall
            jump.freefall_confidence = 0.9
        session.add(jump)
        session.flush()
        for rec in spec.recordings:
            for number, chapter in enumerate(rec.chapters, start=1):
                name = f"{rec.key.replace('/', '_')}_{number:02d}.MP4"
                file = VideoFile(
                    import_folder_uuid=batch.uuid,
                    current_folder_uuid=batch.uuid,
                    filepath=f"{batch.uuid}/100GOPRO/{name}",
                    original_filename=name,
                    duration=chapter.duration,
                    width=320,
                    height=240,
                    fps=25.0,
                    codec="h264",
                    status=VideoFileStatus.ANALYZED,
                    import_batch_id=batch.id,
                    jump_id=jump.id,
                    jump_number=sequence,
                    recording_key=rec.key,
                    chapter=number,
                    qr_content=None if rec.qr is None or number > 1 else f"Stinercut: {rec.qr}",
                    detected_project_uuid=None if number > 1 else rec.qr,
                    thumbnail=rec.thumbnail if number == 1 else None,
                )
                session.add(file)
                session.flush()
                for order, (phase, start, end) in enumerate(chapter.segments):
                    session.add(
                        VideoFileSegment(
                            video_file_id=file.id,
                            start_time=start,
                            end_time=end,
                            classification=phase,
                            confidence=0.9,
                            sequence_order=order,
                        )
                    )
    session.flush()
    return batch
