"""Slow motion: windows of a clip played slower, with real frames when there are any.

A window ``[start, end)`` of a clip (its own file's seconds) at ``speed`` < 1
lasts ``(end - start) / speed`` in the output. Where the camera filmed at a high
frame rate (a GoPro at 120 or 240 fps) the slowed window shows *real* frames:
``setpts`` stretches time and ``fps`` keeps exactly the frames the output needs.
Where it did not (30 fps slowed to 0.5× would show every frame twice),
``minterpolate`` synthesises the missing frames from motion vectors.

Music keeps running: the music bed is laid over the *output* timeline, so it
never sees the stretch. The camera's own sound of a slowed window is stretched
with ``atempo`` (pitch kept), so everything after the window stays in sync.

The timeline needs one fact from here (:func:`output_duration`): a segment with
slow-motion windows lasts longer in the output than in its file.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Literal
from uuid import UUID

import attrs
from pydantic import Field, model_validator

from ...media.filtergraph import Graph, Stream
from ...openapi import StrictModel

Interpolation = Literal["mci", "blend", "dup"]
MIN_SPEED = 0.1
#: Real frames are used when the source delivers at least this share of the frames
#: the slowed output needs (a 119.88 fps clip slowed 4× for 30 fps output counts).
REAL_FRAMES_TOLERANCE = 0.95


class SlowMotionWindow(StrictModel):
    """One slowed stretch of one clip."""

    video: UUID = Field(description="The clip (video uuid).")
    start_s: float = Field(ge=0, description="Start, in seconds of the clip's own file.")
    end_s: float = Field(gt=0, description="End, in seconds of the clip's own file.")
    speed: float = Field(default=0.5, ge=MIN_SPEED, lt=1, description="0.5 = half speed.")

    @model_validator(mode="after")
    def _order(self) -> SlowMotionWindow:
        if self.end_s <= self.start_s:
            raise ValueError("end_s must be after start_s")
        return self


class AroundExit(StrictModel):
    """A window around each clip's exit (freefall start), detected or set by hand."""

    before_s: float = Field(default=1.0, ge=0, le=10)
    after_s: float = Field(default=2.0, ge=0, le=20)
    speed: float = Field(default=0.5, ge=MIN_SPEED, lt=1)

    @model_validator(mode="after")
    def _length(self) -> AroundExit:
        if self.before_s + self.after_s <= 0:
            raise ValueError("the window around the exit must have a length")
        return self


class SlowMotionOptions(StrictModel):
    """Slow-motion windows; none by default."""

    windows: list[SlowMotionWindow] | None = Field(default=None, max_length=50)
    around_exit: AroundExit | None = Field(
        default=None, description="Slow down the exit of every clip that has a freefall start."
    )
    interpolation: Interpolation | None = Field(
        default=None,
        description="How missing frames are made when the source fps is too low: mci "
        "(motion-compensated, default), blend, or dup (repeat frames).",
    )


@attrs.frozen
class SlowWindow:
    """A window in SEGMENT seconds (0 = the segment's first frame)."""

    start: float
    end: float
    speed: float

    @property
    def extra(self) -> float:
        """Seconds the window adds to the output."""
        return (self.end - self.start) * (1 / self.speed - 1)


def output_duration(duration: float, windows: Sequence[SlowWindow]) -> float:
    """A segment's length in the output: its source length plus what slowing adds."""
    return duration + sum(w.extra for w in windows)


def clip_windows(
    options: SlowMotionOptions | None,
    video_uuid: str | None,
    in_point: float,
    duration: float,
    freefall: tuple[float, float] | None,
) -> tuple[SlowWindow, ...]:
    """The clip's slow-motion windows in segment seconds, clipped to its trim, merged.

    Windows given by hand come first; overlapping windows keep the earlier one's
    speed for their union (a window never plays twice).
    """
    if options is None or video_uuid is None:
        return ()
    found: list[tuple[float, float, float]] = []
    for window in options.windows or ():
        if str(window.video) == video_uuid:
            found.append((window.start_s, window.end_s, window.speed))
    if options.around_exit is not None and freefall is not None:
        around = options.around_exit
        found.append((freefall[0] - around.before_s, freefall[0] + around.after_s, around.speed))
    result: list[SlowWindow] = []
    for start, end, speed in sorted(found):
        lo = max(start, in_point) - in_point
        hi = min(end, in_point + duration) - in_point
        if hi - lo < 0.04:  # less than a frame: nothing to slow
            continue
        if result and lo < result[-1].end:
            last = result[-1]
            result[-1] = SlowWindow(last.start, max(last.end, hi), last.speed)
        else:
            result.append(SlowWindow(round(lo, 6), round(hi, 6), speed))
    return tuple(result)


def real_frames(source_fps: Fraction | float | None, out_fps: Fraction, speed: float) -> bool:
    """Does the source have enough frames to show the slowed window without inventing any?"""
    if not source_fps:
        return False
    return float(source_fps) * speed >= float(out_fps) * REAL_FRAMES_TOLERANCE


def _pieces(duration: float, windows: Sequence[SlowWindow]) -> list[tuple[float, float, float]]:
    """``(start, end, speed)`` pieces covering ``[0, duration)``; speed 1 between windows."""
    pieces: list[tuple[float, float, float]] = []
    cursor = 0.0
    for window in windows:
        if window.start > cursor:
            pieces.append((cursor, window.start, 1.0))
        pieces.append((window.start, window.end, window.speed))
        cursor = window.end
    if cursor < duration:
        pieces.append((cursor, duration, 1.0))
    return [p for p in pieces if p[1] - p[0] > 1e-6]


def slow_motion(
    g: Graph,
    video: Stream,
    *,
    duration: float,
    windows: Sequence[SlowWindow],
    out_fps: Fraction,
    source_fps: Fraction | float | None,
    interpolation: Interpolation = "mci",
) -> Stream:
    """A segment's picture (PTS from 0) with its windows slowed, at ``out_fps``.

    The segment is cut into pieces with ``trim``; slowed pieces get
    ``setpts=(PTS-STARTPTS)/speed`` then ``fps`` (real frames) or ``minterpolate``;
    all pieces are brought to ``out_fps``, cut to their frame count on the output
    timeline and joined with ``concat``.

    Why the cut after ``fps``: ``fps`` repeats the last frame up to the timestamp its
    end-of-stream arrives with, and a ``trim`` branch of a ``split`` reports the
    timestamp of however far the source had been read by then — which depends on
    what the rest of the graph asked for first. Without the cut a piece could come
    out 40 frames long (1.3 s: a render whose vertical edition changed the order of
    requests showed the clip after a window that far behind).
    """
    if not windows:
        return video
    pieces = _pieces(duration, windows)
    parts: list[Stream] = []
    out_t = 0.0  # output seconds where the piece starts
    for start, end, speed in pieces:
        piece_s = (end - start) / speed
        frames = round((out_t + piece_s) * out_fps) - round(out_t * out_fps)
        out_t += piece_s
        part = g.filter("trim", video, start=start, end=end)
        if speed >= 1:
            part = g.filter("setpts", part, expr="PTS-STARTPTS")
            part = g.filter("fps", part, fps=out_fps)
        else:
            part = g.filter("setpts", part, expr=f"(PTS-STARTPTS)/{speed:g}")
            if real_frames(source_fps, out_fps, speed) or interpolation == "dup":
                part = g.filter("fps", part, fps=out_fps)
            else:
                part = g.filter("minterpolate", part, fps=out_fps, mi_mode=interpolation)
                part = g.filter("fps", part, fps=out_fps)
        if frames > 0:  # a sliver shorter than half a frame shows no frame of its own
            parts.append(g.filter("trim", part, end_frame=frames))
    if len(parts) == 1:
        return parts[0]
    return g.filter("concat", *parts, n=len(parts), v=1, a=0)


def _atempo_chain(g: Graph, stream: Stream, speed: float) -> Stream:
    # atempo takes 0.5..100 per instance: chain halvings for slower speeds.
    remaining = speed
    while remaining < 0.5 - 1e-9:
        stream = g.filter("atempo", stream, tempo=0.5)
        remaining /= 0.5
    return g.filter("atempo", stream, tempo=round(remaining, 6))


def slow_motion_audio(
    g: Graph, audio: Stream, *, duration: float, windows: Sequence[SlowWindow]
) -> Stream:
    """A segment's own sound (PTS from 0) with the windows stretched (pitch kept).

    Every piece is padded and cut to its exact output length, so the result lasts
    :func:`output_duration` to the sample.
    """
    if not windows:
        return audio
    parts: list[Stream] = []
    for start, end, speed in _pieces(duration, windows):
        part = g.filter("atrim", audio, start=start, end=end)
        part = g.filter("asetpts", part, expr="PTS-STARTPTS")
        if speed < 1:
            part = _atempo_chain(g, part, speed)
        # Exactly as long as its picture (atempo's output is a few ms off; a source
        # whose sound ends early is padded), so what follows stays in sync.
        part = g.filter("apad", part)
        part = g.filter("atrim", part, end=round((end - start) / speed, 6))
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    return g.filter("concat", *parts, n=len(parts), v=0, a=1)


def to_output(t: float, windows: Sequence[SlowWindow]) -> float:
    """Segment seconds → seconds after the segment's output start (windows stretched)."""
    shift = 0.0
    for window in windows:
        if t >= window.end:
            shift += window.extra
        elif t > window.start:
            shift += (t - window.start) * (1 / window.speed - 1)
    return t + shift
