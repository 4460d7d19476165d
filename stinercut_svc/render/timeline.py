"""The customer video as data: what plays when, before any ffmpeg syntax exists.

Normalise first, compile second. Options, probed files and assets become one
frozen :class:`Timeline` (intro -> name screen -> clips with transitions ->
outro, every part optional, plus music, watermark and the outputs asked for);
:mod:`.compile` turns it into a filter graph. In between sits ONE pure
function, :func:`schedule`, that says where every item starts and how long the
whole programme is. The compiler (``xfade`` offsets, watermark window, focus
moves), the fast-path decision and the progress bar all read it, so they can
never disagree about time.

Time is counted in **output frames**. Each item lasts a whole number of frames
at the output rate and its audio is cut to exactly that many frames' worth of
samples, so after any number of joins audio and video are still within a
sample of each other (seconds in floats would drift by rounding at every join).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import attrs

from ..media.probe import MediaInfo

if TYPE_CHECKING:
    from ..media.filtergraph import Graph, Stream
    from .recipes.audio import AudioSetup

SegmentKind = Literal["intro", "clip", "outro"]
TransitionKind = Literal["none", "fade", "crossfade", "slide", "wipe"]
Direction = Literal["left", "right", "up", "down"]
#: How an output of another shape than the master is filled: always by cropping
#: around the focus (a vertical edition is never letterboxed).
AUDIO_RATE = 48000
TRANSITION_MIN_S = 0.5
TRANSITION_MAX_S = 2.0


@attrs.frozen
class Transition:
    """How item ``j`` hands over to item ``j + 1``.

    Every kind but ``none`` overlaps the two items by ``duration`` (ffmpeg's
    ``xfade``; ``fade`` is ``fadeblack``: out to black and in again), and the
    sound crossfades over the same stretch.
    """

    kind: TransitionKind = "none"
    duration: float = 0.0
    direction: Direction = "left"

    @property
    def xfade(self) -> str | None:
        """``xfade``'s ``transition`` value, ``None`` for a hard cut."""
        if self.kind == "none" or self.duration <= 0:
            return None
        if self.kind == "fade":
            return "fadeblack"
        if self.kind == "crossfade":
            return "fade"
        return f"{self.kind}{self.direction}"  # slideleft, wipeup, ...


CUT = Transition()


@attrs.frozen
class Segment:
    """A stretch ``[start, start + duration)`` of one source file (seconds in the source)."""

    path: Path
    kind: SegmentKind
    start: float
    duration: float
    info: MediaInfo
    label: str
    trimmed: bool = False
    video_uuid: str | None = None
    #: Horizontal centre of interest (0 = left edge, 1 = right) for cropped editions.
    focus_x: float = 0.5
    #: Freefall window in source seconds (music and sound recipes read it).
    freefall: tuple[float, float] | None = None
    #: Slow-motion windows (the audio helper's ``SlowWindow``); the timeline only
    #: needs their effect on length, given as ``out_duration``.
    slow_motion: tuple[object, ...] = ()
    out_duration: float | None = None

    @property
    def output_seconds(self) -> float:
        """How long the segment plays in the output."""
        return self.out_duration if self.out_duration is not None else self.duration

    @property
    def has_audio(self) -> bool:
        return self.info.audio is not None

    @property
    def rotated(self) -> bool:
        return bool(self.info.video is not None and self.info.video.rotation % 180)


@attrs.frozen
class TitleCard:
    """A generated item (the name screen): the recipe that draws it and how long it is.

    ``build_video(g, width, height, fps)`` must return a ``width``x``height``
    stream of exactly ``round(duration * fps)`` frames starting at 0;
    ``build_audio(g)`` a 48 kHz stereo stream of the same length, or be
    ``None`` for silence.
    """

    duration: float
    build_video: Callable[[Graph, int, int, Fraction], Stream]
    build_audio: Callable[[Graph], Stream] | None = None
    kind: Literal["namescreen"] = "namescreen"
    label: str = "name screen"

    @property
    def output_seconds(self) -> float:
        return self.duration


Item = Segment | TitleCard


@attrs.frozen
class AudioTrack:
    """A music bed under (``mix``) or instead of (``replace``) the programme's sound."""

    path: Path
    mode: Literal["mix", "replace"] = "mix"
    volume: float = 0.8
    fade_out_s: float = 2.0


@attrs.frozen
class Watermark:
    """An image in a corner; on the clips only unless ``on_intro`` (intro, name screen, outro)."""

    path: Path
    position: str = "bottom-right"
    margin: int = 24
    scale: float = 0.15  # of the output's width
    on_intro: bool = False


@attrs.frozen
class OutputSpec:
    """One file the render writes: its size and the encoder arguments for it."""

    name: str
    path: Path
    width: int
    height: int
    video_args: tuple[str, ...]
    audio_args: tuple[str, ...]
    container_args: tuple[str, ...] = ("-movflags", "+faststart", "-f", "mp4")


@attrs.frozen
class Timeline:
    """Everything a render plays, in order; ``transitions[j]`` joins item j and j+1."""

    items: tuple[Item, ...]
    transitions: tuple[Transition, ...]
    width: int
    height: int
    fps: Fraction
    outputs: tuple[OutputSpec, ...]
    music: AudioTrack | None = None
    watermark: Watermark | None = None
    #: The programme's sound (audio helper): music per phase, gains, loudness. When set,
    #: the compiler uses it instead of ``music``.
    audio: AudioSetup | None = None

    def __attrs_post_init__(self) -> None:
        if len(self.transitions) != max(len(self.items) - 1, 0):
            raise ValueError("a timeline needs one transition per join")


@attrs.frozen
class Schedule:
    """Where every item of a timeline plays, in output frames (see :func:`schedule`)."""

    fps: Fraction
    frames: tuple[int, ...]
    starts: tuple[int, ...]
    #: Frames shared by item j and j+1 (0 for a hard cut).
    overlaps: tuple[int, ...]
    total_frames: int
    #: Index of the first and last clip (``None`` without clips).
    clip_range: tuple[int, int] | None

    def seconds(self, frames: int) -> float:
        return float(frames / self.fps)

    def start_s(self, index: int) -> float:
        return self.seconds(self.starts[index])

    def duration_s(self, index: int) -> float:
        return self.seconds(self.frames[index])

    def overlap_s(self, join: int) -> float:
        return self.seconds(self.overlaps[join])

    @property
    def total_s(self) -> float:
        return self.seconds(self.total_frames)

    @property
    def clip_span_s(self) -> tuple[float, float] | None:
        """From the first clip's first frame to the last clip's last (watermark window)."""
        if self.clip_range is None:
            return None
        first, last = self.clip_range
        return self.start_s(first), self.seconds(self.starts[last] + self.frames[last])

    def samples(self, frames: int, rate: int = AUDIO_RATE) -> int:
        """Audio samples in ``frames`` output frames (rounded, never accumulated)."""
        return round(frames * rate / self.fps)


def item_frames(seconds: float, fps: Fraction) -> int:
    """Whole output frames for ``seconds`` of material (at least one)."""
    return max(1, round(Fraction(seconds).limit_denominator(1_000_000) * fps))


def schedule(timeline: Timeline) -> Schedule:
    """Start frame of every item, the overlap at every join and the total length.

    A transition overlaps its neighbours by its duration, clamped so that no
    item is consumed by the transitions at its two ends (at most half of
    either neighbour); a transition clamped to nothing is a cut.
    """
    fps = timeline.fps
    frames = tuple(item_frames(item.output_seconds, fps) for item in timeline.items)
    overlaps: list[int] = []
    for join, transition in enumerate(timeline.transitions):
        if transition.xfade is None:
            overlaps.append(0)
            continue
        wanted = item_frames(transition.duration, fps)
        overlaps.append(max(0, min(wanted, frames[join] // 2, frames[join + 1] // 2)))
    starts: list[int] = []
    position = 0
    for index, length in enumerate(frames):
        if index:
            position -= overlaps[index - 1]
        starts.append(position)
        position += length
    clips = [i for i, item in enumerate(timeline.items) if isinstance(item, Segment)
             and item.kind == "clip"]  # fmt: skip
    return Schedule(
        fps=fps,
        frames=frames,
        starts=tuple(starts),
        overlaps=tuple(overlaps),
        total_frames=position,
        clip_range=(clips[0], clips[-1]) if clips else None,
    )
