"""Recipe: the passenger name screen from prepared layers, on the filter graph.

:func:`name_screen` stacks the layers of a
:class:`~stinercut_svc.render.name_screen.PreparedNameScreen` over a background
(a blurred still of the first clip from :func:`blurred_still`, or black):

* each PNG is decoded **once** and repeated by ``loop`` (an ``-loop 1`` input
  would decode the image again for every frame);
* **position**: ``overlay`` with ``eval=frame`` and the layer's x/y tracks
  compiled to piecewise expressions of ``t`` (static layers: ``eval=init``, so
  nothing is evaluated per frame);
* **blending in yuv420** (``overlay=format=yuv420``): with ``format=auto``
  the negotiation chose RGBA for the chain and converted every frame (3x the
  CPU time of the whole screen in bench/name_screen.py);
* **opacity**: ``colorchannelmixer``'s alpha gain ``aa``, driven per frame by a
  ``sendcmd`` ``[expr]`` command holding the opacity track's expression of ``T``.
  Exact (the expression is evaluated for every frame, so any keyframes and
  easing) and cheap (one multiply per pixel of a cropped layer; ``geq`` would
  evaluate the whole expression per pixel).

The result has exactly ``round(duration * fps)`` frames from 0, the prepared
size, ``yuv420p`` and square pixels, as :class:`~.timeline.TitleCard` requires.
:func:`title_card` wraps it all for the timeline.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from ...media.filtergraph import Graph, Stream, format_number
from ..keyframes import Track
from ..name_screen import PreparedNameScreen, RasterLayer
from ..timeline import TitleCard

#: Seconds of the first clip read for the background still (only its first frame is used).
STILL_READ_S = 1.0
#: Fade-out at the end of the name screen's sound, so it never stops mid-note.
SOUND_FADE_S = 0.5


def frame_count(duration: float, fps: Fraction) -> int:
    """Frames of a name screen of ``duration`` seconds at ``fps`` (at least one)."""
    return max(1, round(Fraction(duration) * fps))


def name_screen(
    g: Graph,
    prepared: PreparedNameScreen,
    *,
    fps: Fraction,
    background: Stream | None,
) -> Stream:
    """The animated name screen over ``background`` (a still of ``prepared``'s size).

    Only the first frame of ``background`` is used (:func:`blurred_still` makes
    one). The background and the static layers at the bottom of the stack are
    composed **once**, on that single frame, and the result is repeated; the
    layers above are overlaid per frame, each decoded once and repeated by
    ``loop`` — except the top one, read as a ``-loop 1`` image input (decoded
    per frame, usually small text): with every input ended (all frames made by
    ``loop``) ffmpeg 5/6 has no input to read when the graph waits and polls
    with 10 ms sleeps; on the loaded test machine such runs took up to twice
    the wall time for the same CPU time (on a quiet one the difference
    vanishes), and one live input costs nothing measurable. So the top layer
    is never composed into the background, even when it is static.
    """
    frames = frame_count(prepared.duration, fps)
    size = f"{prepared.width}x{prepared.height}"
    if background is None:
        base = g.filter("color", out_kind="v", c="black", s=size, r=fps)
    else:
        base = g.filter("setpts", background, expr="PTS-STARTPTS")
    base = g.filter("trim", base, end_frame=1)
    base = g.filter("format", base, pix_fmts="yuv420p")
    layers = list(prepared.layers)
    while len(layers) > 1 and layers[0].is_static:
        base = _overlay_static(g, base, layers.pop(0))
    base = g.filter("loop", base, loop=frames - 1, size=1, start=0)
    base = _frame_times(g, base, fps)
    for index, layer in enumerate(layers):
        live = index == len(layers) - 1
        base = _overlay_layer(g, base, layer, fps=fps, frames=frames, live=live)
    base = g.filter("setsar", base, r=1)
    return g.filter("format", base, pix_fmts="yuv420p")


def _frame_times(g: Graph, video: Stream, fps: Fraction) -> Stream:
    """Frame n at exactly n/fps: time base 1/fps, pts = n.

    (``setpts=N/FPS/TB`` computes in floating point and truncates: frame 57 at
    25 fps lands on 56.99999 → pts 56, a duplicate, and a frame goes missing.)
    """
    video = g.filter("settb", video, expr=format_number(1 / fps))
    return g.filter("setpts", video, expr="N")


def _overlay_static(g: Graph, base: Stream, layer: RasterLayer) -> Stream:
    """A static layer on the single background frame (before it is repeated)."""
    image = g.input(layer.png, "v")
    image = g.filter("format", image, pix_fmts="rgba")
    if layer.opacity.final < 1.0:
        image = g.filter("colorchannelmixer", image, aa=layer.opacity.final)
    return g.filter("overlay", base, image, x=_position(layer.x), y=_position(layer.y),
                    eval="init", format="yuv420")


def _overlay_layer(g: Graph, base: Stream, layer: RasterLayer, *, fps: Fraction,
                   frames: int, live: bool) -> Stream:
    if live:
        # Frame n at pts n in 1/fps: image2 numbers the repeated frames itself.
        image = g.input(layer.png, "v", options=["-loop", "1", "-framerate", format_number(fps)])
        image = g.filter("trim", image, end_frame=frames)
        image = g.filter("format", image, pix_fmts="rgba")
    else:
        image = g.input(layer.png, "v")
        image = g.filter("format", image, pix_fmts="rgba")
        image = g.filter("loop", image, loop=frames - 1, size=1, start=0)
        image = _frame_times(g, image, fps)
    if not layer.opacity.is_constant:
        # A unique instance name per layer: sendcmd addresses filters by name.
        target = f"colorchannelmixer@namescreen{g.input_count}"
        command = f"0-{format_number(float(frames / fps) + 1)} [expr] {target} aa " \
                  f"'{layer.opacity.expression('T')}'"
        image = g.filter("sendcmd", image, commands=command)
        image = g.filter(target, image, aa=layer.opacity.value_at(0))
    elif layer.opacity.final < 1.0:  # (static layers are merged with it applied)
        image = g.filter("colorchannelmixer", image, aa=layer.opacity.final)
    animated = not (layer.x.is_constant and layer.y.is_constant)
    return g.filter(
        "overlay",
        base,
        image,
        x=_position(layer.x),
        y=_position(layer.y),
        eval="frame" if animated else "init",
        format="yuv420",
    )


def _position(track: Track) -> str:
    """Whole pixels, rounded (overlay would truncate toward zero)."""
    if track.is_constant:
        return str(round(track.final))
    return f"round({track.expression('t')})"


def blurred_still(
    g: Graph,
    clip: Path,
    *,
    at_s: float,
    width: int,
    height: int,
) -> Stream:
    """One frame of ``clip`` at ``at_s``, filling ``width``x``height``, blurred and dimmed.

    One frame: :func:`name_screen` repeats it, so the cost is one decoded frame
    and one blur, whatever the duration.
    """
    options = ["-ss", format_number(max(at_s, 0.0))] if at_s > 0 else []
    still = g.input(clip, "v", options=[*options, "-t", format_number(STILL_READ_S)])
    still = g.filter("trim", still, end_frame=1)
    still = g.filter("scale", still, w=width, h=height, force_original_aspect_ratio="increase")
    still = g.filter("crop", still, w=width, h=height)
    still = g.filter("gblur", still, sigma=max(2.0, min(width, height) / 40))
    # Dimmed a little so light template art and white names stay readable.
    still = g.filter("eq", still, brightness=-0.12)
    return g.filter("setsar", still, r=1)


def name_screen_audio(g: Graph, sound: Path, *, duration: float) -> Stream:
    """The sound under the name screen: from its start, cut at ``duration`` with a short fade.

    The timeline pads it with silence and cuts it to the picture's exact length.
    """
    audio = g.input(sound, "a", options=["-t", format_number(duration)])
    audio = g.filter("asetpts", audio, expr="PTS-STARTPTS")
    fade = min(SOUND_FADE_S, duration / 2)
    return g.filter("afade", audio, t="out", st=format_number(duration - fade),
                    d=format_number(fade))


def title_card(
    prepared: PreparedNameScreen,
    *,
    background_clip: tuple[Path, float] | None,
    sound: Path | None,
) -> TitleCard:
    """The name screen as a timeline item (``background_clip``: first clip and time)."""

    def build_video(g: Graph, width: int, height: int, fps: Fraction) -> Stream:
        if (width, height) != (prepared.width, prepared.height):
            raise ValueError(
                f"the name screen was rasterised at {prepared.width}x{prepared.height}, "
                f"not {width}x{height}"
            )
        background = None
        if background_clip is not None:
            clip, at_s = background_clip
            background = blurred_still(g, clip, at_s=at_s, width=width, height=height)
        return name_screen(g, prepared, fps=fps, background=background)

    def build_audio(g: Graph) -> Stream:
        assert sound is not None
        return name_screen_audio(g, sound, duration=prepared.duration)

    return TitleCard(
        duration=prepared.duration,
        build_video=build_video,
        build_audio=build_audio if sound is not None else None,
    )
