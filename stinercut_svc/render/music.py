"""Music that follows the jump: the audio options and the pure music plan.

A customer video's sound has two layers. The camera's own audio carries the
speech on the ground and under the canopy; during freefall it is a wall of wind,
so it is lowered there (default 10 %). Under it runs music chosen per *phase* of
the jump: a bed for the ground and the plane ride, a freefall track that starts
at the exit and stops at the deployment, and the canopy ride (by default the bed
again, resumed where it left off). Each switch is a crossfade centred on the
event, so the changeover is heard *at* the exit and *at* the deployment.

This module holds no ffmpeg: :class:`AudioOptions` is what a project or a render
request may set (validated, documented in the OpenAPI schema), :func:`resolve_audio`
gives every knob a value, and :func:`plan_music` turns the output timeline's
placements (their start times come from render-core's timeline, the one place
start times are computed) into :class:`MusicCue` values the recipes in
:mod:`stinercut_svc.render.recipes.audio` compile. Being pure, the plan is what a
test compares the rendered spectrum against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal
from uuid import UUID

import attrs
from pydantic import Field, model_validator

from ..openapi import StrictModel

#: Phases of a jump as far as the music goes (the ingest's ``ground_before`` /
#: ``ground_after`` are ``ground``, its ``flight`` is ``plane``).
Phase = Literal["ground", "plane", "freefall", "canopy"]
PHASES: tuple[Phase, ...] = ("ground", "plane", "freefall", "canopy")

DEFAULT_CROSSFADE_S = 1.0
DEFAULT_FADE_IN_S = 2.0
DEFAULT_FADE_OUT_S = 3.0
DEFAULT_FREEFALL_CAMERA_LEVEL = 0.1
DEFAULT_DUCK_DB = 12.0
DEFAULT_TARGET_LUFS = -14.0
DEFAULT_TRUE_PEAK_DBTP = -1.0
#: Spans shorter than this between two switches are not worth a track of their own.
MIN_SPAN_S = 0.05


class MusicTracks(StrictModel):
    """One music asset per phase; unset phases fall back (see :func:`track_for`)."""

    ground: UUID | None = Field(
        default=None, description="Asset (type audio) for the ground; default: audio_asset."
    )
    plane: UUID | None = Field(
        default=None,
        description="Asset (type audio) for the plane ride; default: the ground track.",
    )
    freefall: UUID | None = Field(
        default=None,
        description="Asset (type audio_freefall or audio) from exit to deployment; "
        "default: no switch, the surrounding track keeps playing.",
    )
    canopy: UUID | None = Field(
        default=None,
        description="Asset (type audio) after the deployment; default: the plane/ground track, "
        "resumed where it stopped.",
    )


class ClipPhases(StrictModel):
    """Per-clip facts set by hand; they override what the ingest detected."""

    freefall_start_s: float | None = Field(
        default=None, ge=0, description="Exit, in seconds of the clip's own file."
    )
    freefall_end_s: float | None = Field(
        default=None, gt=0, description="Deployment, in seconds of the clip's own file."
    )
    phase: Phase | None = Field(
        default=None,
        description="Phase of the clip outside its freefall window (e.g. ground for a "
        "briefing shot before boarding); default: plane before the first exit, canopy after.",
    )

    @model_validator(mode="after")
    def _window(self) -> ClipPhases:
        start, end = self.freefall_start_s, self.freefall_end_s
        if (start is None) != (end is None):
            raise ValueError("freefall_start_s and freefall_end_s are set together")
        if start is not None and end is not None and end <= start:
            raise ValueError("freefall_end_s must be after freefall_start_s")
        return self


class AudioOptions(StrictModel):
    """Music per phase, camera sound, ducking and programme loudness."""

    music: MusicTracks | None = None
    crossfade_s: float | None = Field(
        default=None, ge=0, le=5, description="Crossfade at each music switch (default 1 s)."
    )
    fade_in_s: float | None = Field(
        default=None, ge=0, le=30, description="Music fade-in at the start (default 2 s)."
    )
    fade_out_s: float | None = Field(
        default=None, ge=0, le=30, description="Music fade-out at the end (default 3 s)."
    )
    freefall_camera_level: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Camera audio level during freefall, linear (default 0.1: wind lowered).",
    )
    ducking: bool | None = Field(
        default=None, description="Lower the music under camera speech (default true)."
    )
    duck_db: float | None = Field(
        default=None,
        ge=1,
        le=40,
        description="How far speech pushes the music down (default 12 dB).",
    )
    normalize: bool | None = Field(
        default=None, description="Bring the programme to the loudness target (default true)."
    )
    loudness_lufs: float | None = Field(
        default=None, ge=-36, le=-6, description="Integrated loudness target (default -14 LUFS)."
    )
    true_peak_dbtp: float | None = Field(
        default=None, ge=-9, le=0, description="True-peak ceiling (default -1 dBTP)."
    )
    clips: dict[UUID, ClipPhases] | None = Field(
        default=None,
        description="Per clip (video uuid): freefall window and phase set by hand.",
    )


@attrs.frozen
class ResolvedAudio:
    """Every audio knob with a value (asset uuids as strings, ``None`` = none)."""

    tracks: Mapping[Phase, str | None] = attrs.field(factory=dict)
    keep_camera: bool = True
    music_volume: float = 0.8
    crossfade_s: float = DEFAULT_CROSSFADE_S
    fade_in_s: float = DEFAULT_FADE_IN_S
    fade_out_s: float = DEFAULT_FADE_OUT_S
    freefall_camera_level: float = DEFAULT_FREEFALL_CAMERA_LEVEL
    ducking: bool = True
    duck_db: float = DEFAULT_DUCK_DB
    normalize: bool = True
    loudness_lufs: float = DEFAULT_TARGET_LUFS
    true_peak_dbtp: float = DEFAULT_TRUE_PEAK_DBTP
    clips: Mapping[str, ClipPhases] = attrs.field(factory=dict)

    @property
    def has_music(self) -> bool:
        return any(self.tracks.values())

    @property
    def asset_uuids(self) -> dict[str, str]:
        """``music.<phase>`` → asset uuid, for the assets the render must load."""
        return {f"music.{phase}": uuid for phase, uuid in self.tracks.items() if uuid}


def resolve_audio(
    options: AudioOptions | None,
    *,
    audio_asset: str | None = None,
    audio_mode: str = "mix",
    music_volume: float = 0.8,
) -> ResolvedAudio:
    """Fill every unset knob; the flat legacy options (``audio_asset``, ``audio_mode``,
    ``music_volume``) keep meaning what they meant: the bed, whether the camera's
    sound stays, and the music's level against the speech."""
    opts = options or AudioOptions()
    music = opts.music or MusicTracks()
    tracks: dict[Phase, str | None] = {
        phase: None if getattr(music, phase) is None else str(getattr(music, phase))
        for phase in PHASES
    }
    if tracks["ground"] is None:
        tracks["ground"] = audio_asset

    def pick(value: float | bool | None, default: float | bool) -> float | bool:
        return default if value is None else value

    return ResolvedAudio(
        tracks=tracks,
        keep_camera=audio_mode != "replace",
        music_volume=music_volume,
        crossfade_s=float(pick(opts.crossfade_s, DEFAULT_CROSSFADE_S)),
        fade_in_s=float(pick(opts.fade_in_s, DEFAULT_FADE_IN_S)),
        fade_out_s=float(pick(opts.fade_out_s, DEFAULT_FADE_OUT_S)),
        freefall_camera_level=float(
            pick(opts.freefall_camera_level, DEFAULT_FREEFALL_CAMERA_LEVEL)
        ),
        ducking=bool(pick(opts.ducking, True)),
        duck_db=float(pick(opts.duck_db, DEFAULT_DUCK_DB)),
        normalize=bool(pick(opts.normalize, True)),
        loudness_lufs=float(pick(opts.loudness_lufs, DEFAULT_TARGET_LUFS)),
        true_peak_dbtp=float(pick(opts.true_peak_dbtp, DEFAULT_TRUE_PEAK_DBTP)),
        clips={str(uuid): phases for uuid, phases in (opts.clips or {}).items()},
    )


def clip_freefall(
    audio: ResolvedAudio,
    video_uuid: str,
    detected_start: float | None,
    detected_end: float | None,
) -> tuple[float, float] | None:
    """A clip's freefall window in its own file's seconds: set by hand, else detected."""
    by_hand = audio.clips.get(video_uuid)
    if by_hand is not None and by_hand.freefall_start_s is not None:
        assert by_hand.freefall_end_s is not None
        return by_hand.freefall_start_s, by_hand.freefall_end_s
    if detected_start is None or detected_end is None or detected_end <= detected_start:
        return None
    return float(detected_start), float(detected_end)


# --- the plan ---------------------------------------------------------------------


@attrs.frozen
class Placement:
    """One part of the programme on the output timeline (seconds of the output).

    ``phase`` is the part's phase outside its freefall windows: ``ground`` for the
    intro, name screen and outro, ``None`` for a clip (plane before the first exit,
    canopy after a deployment) unless set by hand.
    """

    out_start: float
    out_duration: float
    phase: Phase | None = None
    #: Freefall windows in OUTPUT seconds (clipped to the part by the planner).
    freefall: tuple[tuple[float, float], ...] = ()

    @property
    def out_end(self) -> float:
        return self.out_start + self.out_duration


@attrs.frozen
class Span:
    """A stretch of the output during which one phase holds."""

    start: float
    end: float
    phase: Phase


@attrs.frozen
class MusicCue:
    """One track playing over ``[start, end)`` of the output.

    ``offset`` is where in the (looped) track the cue begins; ``fade_in``/``fade_out``
    are the crossfades with its neighbours (``0`` at the programme's ends, where the
    programme fades apply instead). Consecutive cues overlap by the crossfade:
    ``cue[i].end - cue[i+1].start == cue[i].fade_out == cue[i+1].fade_in``.
    """

    asset: str
    phase: Phase
    start: float
    end: float
    offset: float
    fade_in: float
    fade_out: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@attrs.frozen
class MusicPlan:
    cues: tuple[MusicCue, ...]
    #: Output time of each switch from one track to another (the crossfades' centres).
    switches: tuple[float, ...]
    #: Freefall windows on the output timeline (camera lowered, ducking key off).
    freefall: tuple[tuple[float, float], ...]
    total_s: float
    fade_in_s: float
    fade_out_s: float


def track_for(phase: Phase, tracks: Mapping[Phase, str | None]) -> str | None:
    """The asset playing in ``phase``: its own track, else the phase it falls back to.

    plane → ground; canopy → plane → ground; freefall → the track that would play
    without it (so an unset freefall track means no switch at all).
    """
    chain: dict[Phase, tuple[Phase, ...]] = {
        "ground": ("ground",),
        "plane": ("plane", "ground"),
        "canopy": ("canopy", "plane", "ground"),
        "freefall": ("freefall",),
    }
    for candidate in chain[phase]:
        if tracks.get(candidate):
            return tracks[candidate]
    return None


def phase_spans(placements: Sequence[Placement], total_s: float) -> tuple[Span, ...]:
    """The phase of every moment of the output, as ordered, non-overlapping spans.

    Parts overlap during transitions; the later part wins from its start on, so a
    switch between two clips lands at the start of the transition. Gaps (none in a
    well-formed timeline) are ``ground``.
    """
    windows = freefall_windows(placements, total_s)
    first_exit = windows[0][0] if windows else None

    def outside(part: Placement, at: float) -> Phase:
        if part.phase is not None:
            return part.phase
        if first_exit is None:
            return "ground"
        return "plane" if at < first_exit else "canopy"

    raw: list[Span] = []
    ordered = sorted(placements, key=lambda p: p.out_start)
    for index, part in enumerate(ordered):
        start = max(0.0, part.out_start)
        end = ordered[index + 1].out_start if index + 1 < len(ordered) else total_s
        end = min(end, total_s)
        cursor = start
        for ff_start, ff_end in windows:
            if ff_end <= cursor or ff_start >= end:
                continue
            if ff_start > cursor:
                raw.append(Span(cursor, ff_start, outside(part, cursor)))
            raw.append(Span(max(cursor, ff_start), min(end, ff_end), "freefall"))
            cursor = min(end, ff_end)
        if cursor < end:
            raw.append(Span(cursor, end, outside(part, cursor)))
    return _merge(raw)


def _merge(spans: Sequence[Span]) -> tuple[Span, ...]:
    merged: list[Span] = []
    for span in spans:
        if span.end - span.start <= 0:
            continue
        if merged and merged[-1].phase == span.phase and abs(merged[-1].end - span.start) < 1e-9:
            merged[-1] = Span(merged[-1].start, span.end, span.phase)
        else:
            merged.append(span)
    return tuple(merged)


def freefall_windows(
    placements: Sequence[Placement], total_s: float
) -> tuple[tuple[float, float], ...]:
    """Every freefall window on the output, clipped to its part and the output, merged."""
    windows: list[tuple[float, float]] = []
    for part in placements:
        for start, end in part.freefall:
            lo = max(start, part.out_start, 0.0)
            hi = min(end, part.out_end, total_s)
            if hi - lo > 0:
                windows.append((lo, hi))
    windows.sort()
    merged: list[tuple[float, float]] = []
    for lo, hi in windows:
        if merged and lo <= merged[-1][1] + 1e-9:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def plan_music(
    placements: Sequence[Placement],
    total_s: float,
    audio: ResolvedAudio,
    track_durations: Mapping[str, float] | None = None,
) -> MusicPlan:
    """Which track plays when, with crossfades centred on each switch.

    Each switch's crossfade is ``audio.crossfade_s`` long, shortened where a span
    is shorter than that (it never reaches past the middle of its neighbours).
    A track that comes back (the bed after the freefall) resumes where it
    stopped; a short track loops, a long one is cut (the recipe loops the input
    and trims it; ``track_durations`` only keeps the offset inside one loop).
    """
    windows = freefall_windows(placements, total_s)
    fade_in = min(audio.fade_in_s, total_s)
    fade_out = min(audio.fade_out_s, max(total_s - fade_in, 0.0))
    if total_s <= 0 or not audio.has_music:
        return MusicPlan((), (), windows, total_s, fade_in, fade_out)
    runs: list[tuple[float, float, str, Phase]] = []
    for span in phase_spans(placements, total_s):
        asset = track_for(span.phase, audio.tracks)
        if asset is None:
            asset = track_for("canopy", audio.tracks)  # the bed (an unset phase never drops music)
        if asset is None:
            continue
        if runs and runs[-1][2] == asset:
            runs[-1] = (runs[-1][0], span.end, asset, runs[-1][3])
        else:
            runs.append((span.start, span.end, asset, span.phase))
    # Slivers shorter than MIN_SPAN_S join the previous run.
    cleaned: list[tuple[float, float, str, Phase]] = []
    for run in runs:
        if cleaned and (run[1] - run[0] < MIN_SPAN_S or cleaned[-1][2] == run[2]):
            cleaned[-1] = (cleaned[-1][0], run[1], cleaned[-1][2], cleaned[-1][3])
        else:
            cleaned.append(run)
    if not cleaned:
        return MusicPlan((), (), windows, total_s, fade_in, fade_out)
    # The first run starts at 0 and the last ends at the total (music under everything).
    first, last = cleaned[0], cleaned[-1]
    cleaned[0] = (0.0, first[1], first[2], first[3])
    cleaned[-1] = (cleaned[-1][0], total_s, last[2], last[3])
    switches = tuple(run[0] for run in cleaned[1:])
    fades: list[float] = []
    for index in range(len(cleaned) - 1):
        left, right = cleaned[index], cleaned[index + 1]
        fades.append(min(audio.crossfade_s, left[1] - left[0], right[1] - right[0]))
    played: dict[str, float] = {}
    cues: list[MusicCue] = []
    for index, (start, end, asset, phase) in enumerate(cleaned):
        before = fades[index - 1] if index > 0 else 0.0
        after = fades[index] if index < len(fades) else 0.0
        cue_start = start - before / 2
        cue_end = end + after / 2
        offset = played.get(asset, 0.0)
        length = (track_durations or {}).get(asset)
        if length and length > 0:
            offset = math.fmod(offset, length)
        played[asset] = played.get(asset, 0.0) + (cue_end - cue_start)
        cues.append(
            MusicCue(
                asset,
                phase,
                _round(cue_start),
                _round(cue_end),
                _round(offset),
                _round(before),
                _round(after),
            )  # fmt: skip
        )
    return MusicPlan(tuple(cues), switches, windows, total_s, fade_in, fade_out)


def _round(value: float) -> float:
    # Microseconds: the plan is compared exactly in tests and compiled into options.
    return round(value, 6)
