"""Video recipes: functions from streams to streams on a :class:`~..filtergraph.Graph`.

Each one is a small product decision in filter form, kept apart so it can be
tested by its exact compiled arguments and reused by every part of the
timeline (segments, name screen background, editions).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from ...media.filtergraph import Graph, Stream, format_number

#: Aspect ratios closer than this are "the same shape": scaled, not filled or cropped.
ASPECT_TOLERANCE = 0.01


def even(value: float) -> int:
    """Nearest even integer >= 2 (yuv420p needs even sizes)."""
    return max(2, int(round(value / 2)) * 2)


def same_aspect(w1: int, h1: int, w2: int, h2: int) -> bool:
    return abs(w1 / h1 - w2 / h2) <= ASPECT_TOLERANCE * (w2 / h2)


def exact_frames(g: Graph, video: Stream, *, fps: Fraction, frames: int) -> Stream:
    """Exactly ``frames`` frames at ``fps`` from 0: the timeline's unit of time.

    The source may end a frame early (rounding, or a camera file whose audio
    runs past its last picture): the last frame is held, never a gap left for
    the next item to slide into.
    """
    video = g.filter("setpts", video, expr="PTS-STARTPTS")
    video = g.filter("fps", video, fps=fps)
    video = g.filter("tpad", video, stop=-1, stop_mode="clone")
    return g.filter("trim", video, end_frame=frames)


def blurred_fill(g: Graph, video: Stream, *, width: int, height: int) -> Stream:
    """The picture whole, centred over a blurred copy of itself filling ``width``x``height``.

    For sources of another shape (a portrait phone clip, a rotated camera, a 4:3
    intro): no black bars, and nothing of the picture cut away.
    """
    radius = max(1, min(width, height) // 20)
    background = g.filter("scale", video, w=width, h=height,
                          force_original_aspect_ratio="increase")  # fmt: skip
    background = g.filter("crop", background, w=width, h=height)
    background = g.filter("boxblur", background, luma_radius=radius, luma_power=2)
    front = g.filter("scale", video, w=width, h=height, force_original_aspect_ratio="decrease",
                     force_divisible_by=2)  # fmt: skip
    return g.filter("overlay", background, front, x="(W-w)/2", y="(H-h)/2")


def fit(g: Graph, video: Stream, *, source: tuple[int, int], width: int, height: int) -> Stream:
    """``video`` (displayed ``source`` size) on a ``width``x``height`` yuv420p canvas."""
    if source == (width, height):
        out = video
    elif same_aspect(*source, width, height):
        out = g.filter("scale", video, w=width, h=height)
    else:
        out = blurred_fill(g, video, width=width, height=height)
    out = g.filter("setsar", out, r=1)
    return g.filter("format", out, pix_fmts="yuv420p")


def focus_expression(points: Sequence[tuple[float, float]]) -> str:
    """``crop``'s ``x`` as a function of ``t``: piecewise linear through ``(time, focus)``.

    ``points`` are sorted by time; two points at the same time make a jump (a
    hard cut), two at different times a smooth pan (over a crossfade). The
    focus (0..1) is scaled to the free width ``iw-ow``.
    """
    focus_values = {round(f, 6) for _, f in points}
    if len(focus_values) <= 1:
        return f"(iw-ow)*{_num(points[0][1] if points else 0.5)}"
    expr = _num(points[-1][1])
    for (t0, f0), (t1, f1) in reversed(list(zip(points, points[1:], strict=False))):
        if t1 <= t0:
            piece = _num(f1)
        elif f0 == f1:
            piece = _num(f0)
        else:
            piece = f"{_num(f0)}+({_num(f1 - f0)})*(t-{_num(t0)})/{_num(t1 - t0)}"
        expr = f"if(lt(t,{_num(t1)}),{piece},{expr})"
    first_t, first_f = points[0]
    return f"(iw-ow)*if(lt(t,{_num(first_t)}),{_num(first_f)},{expr})"


def reframe(
    g: Graph,
    video: Stream,
    *,
    source: tuple[int, int],
    width: int,
    height: int,
    focus_x: str = "(iw-ow)/2",
) -> Stream:
    """An edition of another shape: crop around the focus, then scale. Never letterboxed.

    A narrower target (9:16 from 16:9) keeps the full height and takes a
    window at ``focus_x`` (an expression of ``t``); a wider one keeps the full
    width, centred vertically.
    """
    src_w, src_h = source
    if (src_w, src_h) == (width, height):
        return video
    if not same_aspect(src_w, src_h, width, height):
        if width / height < src_w / src_h:
            crop_w, crop_h = min(src_w, even(src_h * width / height)), src_h
            video = g.filter("crop", video, w=crop_w, h=crop_h, x=focus_x, y=0)
        else:
            crop_w, crop_h = src_w, min(src_h, even(src_w * height / width))
            video = g.filter("crop", video, w=crop_w, h=crop_h, x=0, y="(ih-oh)/2")
    return g.filter("scale", video, w=width, h=height)


def watermark(
    g: Graph,
    video: Stream,
    mark: Stream,
    *,
    width: int,
    position: str,
    margin: int,
    scale: float,
    window: tuple[float, float] | None = None,
) -> Stream:
    """``mark`` scaled to ``scale`` of the frame width, in a corner; only inside ``window``."""
    mark = g.filter("scale", mark, w=even(width * scale), h=-2)
    mark = g.filter("format", mark, pix_fmts="rgba")
    x, y = corner(position, margin)
    enable = None if window is None else f"between(t,{_num(window[0])},{_num(window[1])})"
    out = g.filter("overlay", video, mark, x=x, y=y, format="auto", enable=enable)
    return g.filter("format", out, pix_fmts="yuv420p")


def corner(position: str, margin: int) -> tuple[str, str]:
    """overlay x/y expressions (W/H: video, w/h: watermark) for a corner."""
    left, top = str(margin), str(margin)
    right, bottom = f"W-w-{margin}", f"H-h-{margin}"
    return {
        "top-left": (left, top),
        "top-right": (right, top),
        "bottom-left": (left, bottom),
        "bottom-right": (right, bottom),
    }[position]


def _num(value: float) -> str:
    return format_number(value)
