"""Keyframe tracks: one animated number over time, in Python and as an ffmpeg expression.

A name-screen layer animates ``x``, ``y`` and ``opacity`` through any number of
keyframes. The same :class:`Track` is used twice: :meth:`Track.value_at` computes
the value in Python (to lay layers out and to test), :meth:`Track.expression`
compiles it into a piecewise ffmpeg expression (``if(lt(t,…),…,…)``) that the
overlay filter (``eval=frame``) or ``sendcmd``'s ``[expr]`` commands evaluate once
per frame. Both are built from the same segment list, with the same numbers
printed by :func:`~stinercut_svc.media.filtergraph.format_number`, so what the
tests compute is what ffmpeg computes (tests/test_keyframes.py compares them
sample by sample with ``aevalsrc``).

Semantics (CSS-like ``fill-mode: both``): before the first keyframe the value
holds the first keyframe's value, after the last it holds the last one's;
between two keyframes it moves from one value to the next along the easing of
that segment. Two keyframes at the same time make a jump.

Easing curves are polynomials of the segment's progress ``p`` in [0, 1], chosen
because ffmpeg's expression language evaluates them exactly and cheaply (CSS's
cubic Béziers would need a solver per frame):

* ``linear``: ``p``
* ``ease-in``: ``p²`` (starts slow)
* ``ease-out``: ``p·(2−p)`` (ends slow)
* ``ease-in-out``: ``p²·(3−2p)`` (smoothstep: slow at both ends)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, get_args

import attrs

from ..media.filtergraph import format_number

Easing = Literal["linear", "ease-in", "ease-out", "ease-in-out"]
EASINGS: tuple[str, ...] = get_args(Easing)


def ease(easing: Easing, p: float) -> float:
    """The eased progress for a linear progress ``p`` in [0, 1]."""
    if easing == "linear":
        return p
    if easing == "ease-in":
        return p * p
    if easing == "ease-out":
        return p * (2 - p)
    if easing == "ease-in-out":
        return p * p * (3 - 2 * p)
    raise ValueError(f"unknown easing {easing!r}; known: {', '.join(EASINGS)}")


def _ease_expr(easing: Easing, p: str) -> str:
    """:func:`ease` as ffmpeg expression text of the progress expression ``p``."""
    if easing == "linear":
        return p
    if easing == "ease-in":
        return f"{p}*{p}"
    if easing == "ease-out":
        return f"{p}*(2-{p})"
    if easing == "ease-in-out":
        return f"{p}*{p}*(3-2*{p})"
    raise ValueError(f"unknown easing {easing!r}; known: {', '.join(EASINGS)}")


def _num(value: float) -> float:
    """``value`` rounded exactly as it is printed into expressions (microunits).

    Python and ffmpeg must compute with the same numbers; the graph prints at
    most six decimals, so the Python side uses those same rounded values.
    """
    return float(format_number(value))


@attrs.frozen
class Keyframe:
    """The value at one time (seconds from the start of the name screen)."""

    time: float = attrs.field(converter=_num)
    value: float = attrs.field(converter=_num)


@attrs.frozen
class Track:
    """Keyframes in time order and the easing of each segment between neighbours.

    ``easings[i]`` shapes the move from ``keyframes[i]`` to ``keyframes[i + 1]``,
    so there is one easing fewer than keyframes (none for a constant).
    """

    keyframes: tuple[Keyframe, ...]
    easings: tuple[Easing, ...]

    def __attrs_post_init__(self) -> None:
        if not self.keyframes:
            raise ValueError("a track needs at least one keyframe")
        if len(self.easings) != len(self.keyframes) - 1:
            raise ValueError("a track needs one easing per segment between keyframes")
        times = [k.time for k in self.keyframes]
        if times != sorted(times):
            raise ValueError("keyframe times must not decrease")
        for easing in self.easings:
            if easing not in EASINGS:
                raise ValueError(f"unknown easing {easing!r}; known: {', '.join(EASINGS)}")

    @classmethod
    def constant(cls, value: float) -> Track:
        return cls((Keyframe(0.0, value),), ())

    @classmethod
    def of(
        cls, points: Sequence[tuple[float, float]], easing: Easing | Sequence[Easing] = "linear"
    ) -> Track:
        """A track from ``(time, value)`` pairs (sorted by time here, stable for jumps)."""
        ordered = sorted(points, key=lambda point: point[0])
        count = max(len(ordered) - 1, 0)
        easings = (easing,) * count if isinstance(easing, str) else tuple(easing)
        return cls(tuple(Keyframe(t, v) for t, v in ordered), easings)  # type: ignore[arg-type]

    @property
    def is_constant(self) -> bool:
        """True when every keyframe has the same value (no per-frame work needed)."""
        first = self.keyframes[0].value
        return all(k.value == first for k in self.keyframes)

    @property
    def start(self) -> float:
        return self.keyframes[0].time

    @property
    def end(self) -> float:
        return self.keyframes[-1].time

    @property
    def final(self) -> float:
        """The value the track rests at after its last keyframe."""
        return self.keyframes[-1].value

    def map_values(self, function: Callable[[float], float]) -> Track:
        """The same timing with every keyframe value mapped (use affine maps only:
        easing interpolation commutes with them, so positions can be scaled to
        output pixels before compiling)."""
        return Track(tuple(Keyframe(k.time, function(k.value)) for k in self.keyframes),
                     self.easings)

    def map_times(self, function: Callable[[float], float]) -> Track:
        """The same values at mapped times (an increasing function, e.g. a stretch)."""
        return Track(tuple(Keyframe(function(k.time), k.value) for k in self.keyframes),
                     self.easings)

    def _segments(self) -> list[tuple[Keyframe, Keyframe, Easing]]:
        """Segments with a length (a zero-length segment is a jump, not a move)."""
        return [
            (a, b, easing)
            for a, b, easing in zip(self.keyframes[:-1], self.keyframes[1:], self.easings, strict=True)
            if b.time > a.time
        ]

    def value_at(self, t: float) -> float:
        """The value at time ``t``, exactly as :meth:`expression` computes it."""
        if t < self.start:
            return self.keyframes[0].value
        for a, b, easing in self._segments():
            if t < b.time:
                p = (t - a.time) / _num(b.time - a.time)
                return a.value + _num(b.value - a.value) * ease(easing, p)
        return self.final

    def expression(self, var: str = "t") -> str:
        """A piecewise ffmpeg expression of ``var`` (seconds) for this track.

        Nested ``if(lt(var,end),segment,rest)`` from the first segment on, so
        ffmpeg evaluates at most one comparison per keyframe and one segment
        polynomial per frame. A constant track is just its number.
        """
        if self.is_constant:
            return format_number(self.final)
        text = format_number(self.final)
        for a, b, easing in reversed(self._segments()):
            length = format_number(_num(b.time - a.time))
            start = format_number(a.time)
            progress = f"(({var}-{start})/{length})"
            delta = format_number(_num(b.value - a.value))
            segment = f"{format_number(a.value)}+({delta})*({_ease_expr(easing, progress)})"
            text = f"if(lt({var},{format_number(b.time)}),{segment},{text})"
        first = self.keyframes[0]
        return f"if(lt({var},{format_number(first.time)}),{format_number(first.value)},{text})"
