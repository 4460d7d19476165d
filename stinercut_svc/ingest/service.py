"""Batch orchestration over the pure core: copy a card, analyse it, resolve its jumps.

Plain async functions taking their dependencies explicitly (tools, a ``publish``
callable, a QR reader, the known-file records), so the supervisor's import handler can
call them inside a job's cancel scope and persist what they return. Nothing here
touches the database: rows are the caller's business (the wiring session maps
:class:`CopyOutcome` to ``imported_file`` rows and :class:`BatchAnalysis` to
``video_file``/``video_file_segment``/``jump`` rows).

Events use the original's ``videofile:*`` vocabulary (``INGEST_NOTES.md``) plus
``videofile:analysis_progress`` (percent, at most one a second, and always 100 at the
end) that the original planned and never sent.

Freefall per recording (:func:`analyse_signals`): the sound always; GoPro telemetry
(altitude) too when the recording has a ``gpmd`` track, fused by
:func:`.freefall.fuse`. A recording without telemetry is analysed exactly as by sound
alone; unreadable telemetry is logged and ignored (the sound still counts).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from .card import CardScan, Recording, group_recordings, read_creation_time, scan_card
from .copy import CopiedFile, CopyPlan, KnownFile, copy_files, plan_copy
from .freefall import (
    AnalysisError,
    AudioAnalysis,
    FreefallConfig,
    analyse_recording,
    decode_levels,
    fuse,
)
from .resolve import (
    FreefallWindow,
    Jump,
    QrSighting,
    RecordingFacts,
    ResolveConfig,
    resolve_jumps,
)
from .telemetry import TelemetryConfig, TelemetryError, analyse_altitude, load_altitude_track

log = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]
QrReader = Callable[[Recording], Awaitable[QrSighting | None]]
PROGRESS_INTERVAL_S = 1.0


@attrs.frozen
class CopyOutcome:
    scan: CardScan
    plan: CopyPlan
    copied: tuple[CopiedFile, ...]


class _Throttle:
    """Lets a progress event through at most once per interval (trio clock)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = -math.inf

    def ready(self) -> bool:
        now = trio.current_time()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False


async def copy_card(
    card: Path,
    destination: Path,
    known: Sequence[KnownFile],
    *,
    batch_uuid: str,
    publish: Publish,
    on_file: Callable[[CopiedFile], Awaitable[None]] | None = None,
) -> CopyOutcome:
    """Scan ``card``, copy only what ``known`` does not hold, report progress.

    Blocking steps (scan, plan with its quick hashes) run in worker threads.
    ``CardError`` and ``CopyInterrupted`` propagate to the caller, which marks the
    batch ``error`` with the message (and the files copied, from the exception).
    """
    scan = await trio.to_thread.run_sync(scan_card, card)
    files = [*scan.videos, *scan.proxies]
    plan = await trio.to_thread.run_sync(plan_copy, files, known)
    if not plan.new:
        await publish(
            "videofile:copy_skipped",
            {"batch_id": batch_uuid, "reason": "all_copied", "known_files": len(plan.known)},
        )
        return CopyOutcome(scan=scan, plan=plan, copied=())
    throttle = _Throttle(PROGRESS_INTERVAL_S)

    async def on_progress(done: int, total: int) -> None:
        if throttle.ready() or done == total:
            await publish(
                "videofile:copy_progress",
                {
                    "batch_id": batch_uuid,
                    "bytes_copied": done,
                    "total_bytes": total,
                    "percent": round(100 * done / total) if total else 100,
                },
            )

    await publish(
        "videofile:copy_started",
        {"batch_id": batch_uuid, "files": len(plan.new), "total_bytes": plan.new_bytes},
    )
    copied = await copy_files(plan.new, destination, on_progress=on_progress, on_file=on_file)
    await publish(
        "videofile:copy_completed",
        {"batch_id": batch_uuid, "files": len(copied), "bytes": plan.new_bytes},
    )
    return CopyOutcome(scan=scan, plan=plan, copied=tuple(copied))


@attrs.frozen
class RecordingResult:
    recording: Recording
    audio: AudioAnalysis | None
    qr: QrSighting | None
    error: str | None


@attrs.frozen
class BatchAnalysis:
    recordings: tuple[RecordingResult, ...]
    jumps: tuple[Jump, ...]


async def analyse_folder(
    folder: Path,
    *,
    batch_uuid: str,
    publish: Publish,
    read_qr: QrReader,
    ffmpeg: str = "ffmpeg",
    ffprobe: str = "ffprobe",
    freefall_config: FreefallConfig | None = None,
    resolve_config: ResolveConfig | None = None,
    telemetry_config: TelemetryConfig | None = None,
) -> BatchAnalysis:
    """Group the batch folder's files into recordings, analyse each, resolve the jumps.

    A recording whose audio cannot be decoded is kept with its ``error`` (it still
    belongs to a jump, without freefall), never dropped.
    """
    scan = await trio.to_thread.run_sync(scan_card, folder)
    times: dict[str, Any] = {}
    for video in scan.videos:
        times[video.relative] = await read_creation_time(video.path, ffprobe=ffprobe)
    grouping = group_recordings(scan.videos, scan.proxies, times)
    recordings = grouping.recordings
    await publish(
        "videofile:analysis_started",
        {"batch_id": batch_uuid, "total_files": len(scan.videos), "recordings": len(recordings)},
    )
    throttle = _Throttle(PROGRESS_INTERVAL_S)
    results: list[RecordingResult] = []
    for index, rec in enumerate(recordings, start=1):
        qr = await read_qr(rec)
        audio: AudioAnalysis | None = None
        error: str | None = None
        try:
            audio = await analyse_signals(
                [c.file.path for c in rec.chapters],
                ffmpeg=ffmpeg,
                config=freefall_config,
                telemetry_config=telemetry_config,
            )
        except AnalysisError as exc:
            error = str(exc)
        results.append(RecordingResult(recording=rec, audio=audio, qr=qr, error=error))
        for chapter in rec.chapters:
            await publish(
                "videofile:file_analyzed",
                {
                    "batch_id": batch_uuid,
                    "filename": chapter.file.relative,
                    "recording": rec.key,
                    "freefalls": 0 if audio is None else len(audio.freefalls),
                    "freefall_sources": []
                    if audio is None
                    else [f.source.value for f in audio.freefalls],
                    "segments_count": 0 if audio is None else len(audio.phases),
                    "project_uuid": None if qr is None else qr.customer,
                    "error": error,
                },
            )
        if throttle.ready() or index == len(recordings):
            await publish(
                "videofile:analysis_progress",
                {"batch_id": batch_uuid, "percent": round(100 * index / len(recordings))},
            )
    jumps = resolve_jumps([facts(r) for r in results], resolve_config)
    return BatchAnalysis(recordings=tuple(results), jumps=jumps)


async def analyse_signals(
    chapters: Sequence[Path],
    *,
    ffmpeg: str = "ffmpeg",
    config: FreefallConfig | None = None,
    telemetry_config: TelemetryConfig | None = None,
) -> AudioAnalysis:
    """Freefalls and phases of one recording from its sound and, if any, its telemetry.

    Without a ``gpmd`` track (or with an unreadable one) this is
    :func:`.freefall.analyse_recording`. With one, a recording whose sound cannot be
    decoded is still analysed from the altitude when that finds a freefall; otherwise
    the sound's :class:`AnalysisError` propagates. Blocking work (the telemetry read,
    detection, fusion) runs in worker threads; ffmpeg runs in the caller's scope.
    """
    cfg = config or FreefallConfig()
    try:
        track = await load_altitude_track(chapters)
    except TelemetryError as exc:
        log.warning("telemetry ignored: %s", exc)
        track = None
    if track is None:
        return await analyse_recording(chapters, ffmpeg=ffmpeg, config=cfg)
    telemetry = await trio.to_thread.run_sync(analyse_altitude, track, telemetry_config)
    try:
        levels, duration = await decode_levels(chapters, ffmpeg=ffmpeg, config=cfg)
    except AnalysisError:
        if not telemetry.freefalls:
            raise
        return await trio.to_thread.run_sync(fuse, None, track.duration, telemetry, cfg)
    return await trio.to_thread.run_sync(fuse, levels, duration, telemetry, cfg)


def facts(result: RecordingResult) -> RecordingFacts:
    """What :func:`resolve_jumps` needs from one analysed recording."""
    audio = result.audio
    return RecordingFacts(
        key=result.recording.key,
        duration=0.0 if audio is None else audio.duration,
        qr=result.qr,
        freefalls=()
        if audio is None
        else tuple(
            FreefallWindow(f.start, f.end, f.confidence, f.source) for f in audio.freefalls
        ),
        landing=None if audio is None else audio.landing,
    )


def qr_reader_from(mapping: Mapping[str, QrSighting]) -> QrReader:
    """A QR reader answering from a table keyed by recording key (manual input, tests)."""

    async def read(recording: Recording) -> QrSighting | None:
        return mapping.get(recording.key)

    return read
