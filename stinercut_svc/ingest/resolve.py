"""From analysed recordings to jumps: who each recording belongs to, and what to keep.

The filmer's routine gives the structure: the QR code of the booking is filmed first,
then the jump. So, walking the recordings in camera order:

* a recording with a QR code opens a jump; the recordings after it belong to that jump
  until the next QR recording;
* recordings before the first QR form an *unassigned* group — kept and shown to staff
  with the reason ``missing_qr``, never dropped (the original lost them);
* the same customer's QR filmed twice in a row, with no freefall in between, is one
  jump, not an empty jump followed by the real one.

A jump is ``resolved`` only when it has a known customer and exactly one freefall;
the original counted QR codes and freefalls over the whole card and never checked that
each group holds its own freefall. Otherwise it ``needs_manual``, with every reason
that applies, most fundamental first: ``missing_qr``, ``unknown_customer``,
``no_freefall``, ``two_freefalls``.

Dead time is trimmed by in/out points, never by cutting files: the QR recording starts
after the QR was last seen (the ground before it is the QR shot itself), and the
recording in which the landing happens ends ``ground_after_limit_s`` after it.
Recordings that are entirely QR shot are left out of the edit (kept in the jump).
Everything here is pure: no database, no files.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import attrs

from .phases import FreefallSource


class JumpState(enum.StrEnum):
    RESOLVED = "resolved"
    NEEDS_MANUAL = "needs_manual"


class ManualReason(enum.StrEnum):
    MISSING_QR = "missing_qr"
    UNKNOWN_CUSTOMER = "unknown_customer"
    NO_FREEFALL = "no_freefall"
    TWO_FREEFALLS = "two_freefalls"


@attrs.frozen
class QrSighting:
    """A QR code read in a recording.

    ``code`` is the uuid read from the code; ``customer`` the project it names (its
    uuid), ``None`` when the code names nothing known. ``last_seen`` is the recording
    time (s) of the last frame where the code was read.
    """

    code: str
    customer: str | None
    last_seen: float


@attrs.frozen
class FreefallWindow:
    """A freefall found in a recording, and the signal that found it (``source``:
    the sound, the GoPro altitude or both; the sound when a caller does not say,
    the only signal there was before telemetry)."""

    start: float
    end: float
    confidence: float
    source: FreefallSource = FreefallSource.AUDIO


@attrs.frozen
class RecordingFacts:
    """What the analysis found in one recording (times on the recording's timeline)."""

    key: str
    duration: float
    qr: QrSighting | None = None
    freefalls: tuple[FreefallWindow, ...] = ()
    landing: float | None = None


@attrs.frozen
class ResolveConfig:
    """Tuning of the edit. The service never uses the defaults for the landing cut: the
    import handler passes ``INGEST_GROUND_AFTER_LANDING_S`` as ``ground_after_limit_s``
    (:func:`stinercut_svc.ingest.handler.resolve_config`), the value the project filler
    uses too, so a jump's clips and the customer's timeline end at the same moment."""

    ground_after_limit_s: float = 30.0
    qr_margin_s: float = 0.5
    min_clip_s: float = 1.0


@attrs.frozen
class Clip:
    """A recording's part of the edit: ``[in_point, out_point)`` in recording time."""

    key: str
    in_point: float
    out_point: float


@attrs.frozen
class JumpFreefall:
    """A freefall of the jump: its recording, window, confidence and source (stored on
    the jump row as ``freefall_source`` so staff see which signal found it)."""

    key: str
    start: float
    end: float
    confidence: float
    source: FreefallSource = FreefallSource.AUDIO


@attrs.frozen
class Jump:
    """One jump (or the unassigned group) with its verdict and its edit."""

    sequence: int
    recordings: tuple[str, ...]
    qr_code: str | None
    customer: str | None
    state: JumpState
    reasons: tuple[ManualReason, ...]
    freefalls: tuple[JumpFreefall, ...]
    clips: tuple[Clip, ...]

    @property
    def reason(self) -> ManualReason | None:
        return self.reasons[0] if self.reasons else None

    @property
    def freefall(self) -> JumpFreefall | None:
        """The jump's freefall window, when there is exactly one."""
        return self.freefalls[0] if len(self.freefalls) == 1 else None

    @property
    def unassigned(self) -> bool:
        return self.qr_code is None


def resolve_jumps(
    recordings: Sequence[RecordingFacts], config: ResolveConfig | None = None
) -> tuple[Jump, ...]:
    """Group ordered recordings into jumps and judge each one (pure)."""
    cfg = config or ResolveConfig()
    groups: list[list[RecordingFacts]] = []
    for rec in recordings:
        if rec.qr is not None and not _continues(groups, rec):
            groups.append([rec])
        elif groups:
            groups[-1].append(rec)
        else:
            groups.append([rec])
    return tuple(_judge(i, g, cfg) for i, g in enumerate(groups, start=1))


def _continues(groups: list[list[RecordingFacts]], rec: RecordingFacts) -> bool:
    """A repeated QR of the same code before any freefall stays in the open jump."""
    if not groups or rec.qr is None:
        return False
    head = groups[-1][0].qr
    if head is None or head.code != rec.qr.code:
        return False
    return not any(r.freefalls for r in groups[-1])


def _judge(sequence: int, group: Sequence[RecordingFacts], cfg: ResolveConfig) -> Jump:
    opener = group[0].qr
    freefalls = tuple(
        JumpFreefall(r.key, f.start, f.end, f.confidence, f.source)
        for r in group
        for f in r.freefalls
    )
    reasons: list[ManualReason] = []
    if opener is None:
        reasons.append(ManualReason.MISSING_QR)
    elif opener.customer is None:
        reasons.append(ManualReason.UNKNOWN_CUSTOMER)
    if not freefalls:
        reasons.append(ManualReason.NO_FREEFALL)
    elif len(freefalls) > 1:
        reasons.append(ManualReason.TWO_FREEFALLS)
    return Jump(
        sequence=sequence,
        recordings=tuple(r.key for r in group),
        qr_code=None if opener is None else opener.code,
        customer=None if opener is None else opener.customer,
        state=JumpState.NEEDS_MANUAL if reasons else JumpState.RESOLVED,
        reasons=tuple(reasons),
        freefalls=freefalls,
        clips=_clips(group, cfg),
    )


def _clips(group: Sequence[RecordingFacts], cfg: ResolveConfig) -> tuple[Clip, ...]:
    clips: list[Clip] = []
    landed = False
    for rec in group:
        start = 0.0
        if rec.qr is not None:
            start = min(rec.duration, rec.qr.last_seen + cfg.qr_margin_s)
        end = rec.duration
        if not landed and rec.landing is not None:
            end = min(rec.duration, rec.landing + cfg.ground_after_limit_s)
            landed = True
        if end - start >= cfg.min_clip_s:
            clips.append(Clip(rec.key, round(start, 3), round(end, 3)))
    return tuple(clips)


def chapter_cuts(
    chapter_durations: Sequence[float], in_point: float, out_point: float
) -> list[tuple[int, float, float]]:
    """Map a recording-time range onto its chapters: ``(chapter index, in, out)``.

    The project's timeline holds files, not recordings, so a recording's clip becomes
    one ``video`` row per chapter it touches, each with chapter-local in/out points.
    """
    cuts: list[tuple[int, float, float]] = []
    offset = 0.0
    for index, length in enumerate(chapter_durations):
        lo, hi = max(in_point, offset), min(out_point, offset + length)
        if hi - lo > 1e-6:
            cuts.append((index, round(lo - offset, 3), round(hi - offset, 3)))
        offset += length
    return cuts
