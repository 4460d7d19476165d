"""Timeline -> filter graph -> ffmpeg argv: the whole customer video in ONE ffmpeg run.

The shape of the graph::

    item 0 ─ exact frames ─ fit ─┐                 ┌─ main     (scale/crop, watermark) ─ encode
    item 1 ─ exact frames ─ fit ─┼─ concat/xfade ──┼─ vertical (crop at focus, watermark) ─ encode
    ...                          │  acrossfade     └─ preview  ...
    item n ─ exact frames ─ fit ─┘  (+ music)

Every input is decoded once; the master picture and programme sound are split
for the editions (the graph inserts the ``split``/``asplit``), so three outputs
cost one decode and one timeline, plus an encode each.

Runs of hard cuts are joined by one ``concat``; a transition joins two runs by
``xfade`` at the offset :func:`~.timeline.schedule` computed, and the sound by
``acrossfade`` over the same number of samples. Nothing here decides *when*
anything happens; it only reads the schedule.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from ..media.filtergraph import SCRIPT_NAME, Graph, Stream, format_number, script_flag
from .recipes import audio as audio_recipes
from .recipes import video as recipes
from .timeline import AUDIO_RATE, Schedule, Segment, Timeline, TitleCard, schedule


@attrs.frozen
class CompiledRender:
    """The argv (after ``ffmpeg`` and the runner's flags) and the schedule it follows."""

    argv: tuple[str, ...]
    schedule: Schedule
    filter_text: str
    #: ``(path, text)`` of the filter script the argv names, to be written before
    #: the run (``None``: the graph is inline). Compiling stays free of I/O.
    script: tuple[Path, str] | None = None


def compile_timeline(
    timeline: Timeline,
    *,
    script_dir: Path | None = None,
    ffmpeg_version: tuple[int, ...] | None = None,
) -> CompiledRender:
    """One ffmpeg command writing every output of ``timeline``."""
    if not timeline.items:
        raise ValueError("an empty timeline has nothing to render")
    plan = schedule(timeline)
    # Audio helper: music plan and every gain, from the schedule (pure).
    prep = None if timeline.audio is None else audio_recipes.audio_prep(timeline, plan, timeline.audio)
    g = Graph()
    pictures: list[Stream] = []
    sounds: list[Stream] = []
    for index, item in enumerate(timeline.items):
        if isinstance(item, Segment):
            gain = None if prep is None else prep.camera_gain(index)
            v, a = _segment(g, item, timeline, plan.frames[index], plan, gain)
        else:
            v, a = _title_card(g, item, timeline, plan.frames[index], plan)
        pictures.append(v)
        sounds.append(a)
    names = [t.xfade or "fade" for t in timeline.transitions]
    master_v, master_a = _join(g, pictures, sounds, plan, names)
    if prep is not None:  # audio helper: music per phase, ducking, loudness, limiter
        master_a = audio_recipes.programme_sound(g, master_a, prep)
    elif timeline.music is not None:
        master_a = _music(g, master_a, timeline, plan)
    mark = None
    if timeline.watermark is not None:
        mark = g.input(timeline.watermark.path, "v")
    window = None
    if timeline.watermark is not None and not timeline.watermark.on_intro:
        window = plan.clip_span_s
    focus = recipes.focus_expression(_focus_points(timeline, plan))
    framed = _framed_windows(timeline, plan)
    for spec in timeline.outputs:
        out = recipes.reframe(g, master_v, source=(timeline.width, timeline.height),
                              width=spec.width, height=spec.height, focus_x=focus)  # fmt: skip
        if out is not master_v and not recipes.same_aspect(
            timeline.width, timeline.height, spec.width, spec.height
        ):
            # Intro, name screen and outro are laid out for the master's shape: in an
            # edition of another shape they are shown whole over a blurred fill (a
            # crop would cut the name off), only the clips are cropped at the focus.
            for first, end in framed:
                part = g.filter("trim", master_v, start_frame=first, end_frame=end)
                if first:
                    part = g.filter("setpts", part, expr="PTS-STARTPTS")
                part = recipes.fit(g, part, source=(timeline.width, timeline.height),
                                   width=spec.width, height=spec.height)  # fmt: skip
                enable = None
                if first:
                    # A window later in the programme (the outro) is preceded by padding
                    # frames, not drawn: overlay waits for its second input's first
                    # frame before it outputs anything, and meanwhile every other
                    # output of the master's split queued every frame since the start
                    # (1080p, 30 s: 5 GB; it grew with the programme's length).
                    part = g.filter("tpad", part, start=first)
                    enable = f"gte(t,{_secs(plan.seconds(first) - 0.5 / float(timeline.fps))})"
                out = g.filter("overlay", out, part, x=0, y=0, eof_action="pass", enable=enable)
        if mark is not None and timeline.watermark is not None:
            wm = timeline.watermark
            out = recipes.watermark(g, out, mark, width=spec.width, position=wm.position,
                                    margin=wm.margin, scale=wm.scale, window=window)  # fmt: skip
        g.output(spec.path, out, master_a,
                 options=[*spec.video_args, *spec.audio_args, *spec.container_args])  # fmt: skip
    argv = g.compile(script_dir, flag=script_flag(ffmpeg_version), write_script=False)
    script = None
    named = [a for a in argv if a.endswith(SCRIPT_NAME)]
    if script_dir is not None and named:
        script = (Path(named[0]), g.script_text())
    return CompiledRender(tuple(argv), plan, g.filter_text(), script)


def _segment(
    g: Graph,
    seg: Segment,
    timeline: Timeline,
    frames: int,
    plan: Schedule,
    gain_db: float | None = None,
) -> tuple[Stream, Stream]:
    options = ["-ss", _secs(seg.start)] if seg.start > 0 else []
    options += ["-t", _secs(seg.duration)]
    video = g.input(seg.path, "v", options=options)
    index = g.input_count - 1
    assert seg.info.video is not None
    if timeline.audio is not None:  # audio helper: slow-motion windows (no-op without)
        video = audio_recipes.segment_picture(g, video, seg, fps=timeline.fps,
                                              interpolation=timeline.audio.interpolation)  # fmt: skip
    video = recipes.exact_frames(g, video, fps=timeline.fps, frames=frames)
    video = recipes.fit(g, video, source=seg.info.video.display_size,
                        width=timeline.width, height=timeline.height)  # fmt: skip
    samples = plan.samples(frames)
    if seg.has_audio:
        sound = g.input_stream(index=index, kind="a")
        sound = g.filter("asetpts", sound, expr="PTS-STARTPTS")
        if gain_db is not None:  # audio helper: slow motion, mono on both channels, gain
            sound = audio_recipes.segment_sound(g, sound, seg, gain_db)
        else:
            sound = g.filter("aresample", sound, sample_rate=AUDIO_RATE)
            sound = _stereo(g, sound)
        sound = g.filter("apad", sound)
    else:
        sound = _silence(g)
    return video, _cut(g, sound, samples)


def _title_card(
    g: Graph, card: TitleCard, timeline: Timeline, frames: int, plan: Schedule
) -> tuple[Stream, Stream]:
    video = card.build_video(g, timeline.width, timeline.height, timeline.fps)
    video = g.filter("trim", video, end_frame=frames)  # the recipe's rounding, pinned
    sound = card.build_audio(g) if card.build_audio is not None else _silence(g)
    sound = g.filter("apad", _stereo(g, sound))
    return video, _cut(g, sound, plan.samples(frames))


def _stereo(g: Graph, sound: Stream) -> Stream:
    return g.filter("aformat", sound, sample_fmts="fltp", sample_rates=AUDIO_RATE,
                    channel_layouts="stereo")  # fmt: skip


def _silence(g: Graph) -> Stream:
    return g.filter("anullsrc", out_kind="a", r=AUDIO_RATE, cl="stereo")


def _cut(g: Graph, sound: Stream, samples: int) -> Stream:
    """Exactly ``samples`` samples from 0: audio as long as its picture, to the sample."""
    sound = g.filter("atrim", sound, end_sample=samples)
    return g.filter("asetpts", sound, expr="PTS-STARTPTS")


def _join(
    g: Graph, pictures: list[Stream], sounds: list[Stream], plan: Schedule, names: list[str]
) -> tuple[Stream, Stream]:
    """Runs of cuts concatenated, runs joined by ``xfade``/``acrossfade`` at the schedule's times."""
    runs: list[list[int]] = [[0]]
    for join, overlap in enumerate(plan.overlaps):
        if overlap:
            runs.append([join + 1])
        else:
            runs[-1].append(join + 1)

    def run_streams(run: list[int]) -> tuple[Stream, Stream]:
        if len(run) == 1:
            return pictures[run[0]], sounds[run[0]]
        pads = [s for i in run for s in (pictures[i], sounds[i])]
        v, a = g.filter_multi("concat", *pads, outputs=["v", "a"], n=len(run), v=1, a=1)
        return v, a

    video, sound = run_streams(runs[0])
    for run in runs[1:]:
        first = run[0]
        overlap = plan.overlaps[first - 1]
        nv, na = run_streams(run)
        # xfade wants equal time bases on its inputs; concat outputs microseconds.
        # (``settb``, not ``fps``: fps at a trimmed EOF can emit one frame more.)
        video = g.filter("settb", video, expr=1 / plan.fps)
        nv = g.filter("settb", nv, expr=1 / plan.fps)
        video = g.filter("xfade", video, nv, transition=names[first - 1],
                         duration=plan.seconds(overlap), offset=plan.start_s(first))  # fmt: skip
        sound = g.filter("acrossfade", sound, na, ns=plan.samples(overlap))
    return video, sound


def _music(g: Graph, programme: Stream, timeline: Timeline, plan: Schedule) -> Stream:
    """The music bed, looped and cut to the programme, faded out; mixed in or instead."""
    track = timeline.music
    assert track is not None
    music = g.input(track.path, "a", options=["-stream_loop", "-1"])
    music = g.filter("aresample", music, sample_rate=AUDIO_RATE)
    music = _stereo(g, music)
    music = g.filter("volume", music, volume=track.volume)
    music = _cut(g, music, plan.samples(plan.total_frames))
    fade = min(track.fade_out_s, plan.total_s)
    if fade > 0:
        music = g.filter("afade", music, t="out", st=plan.total_s - fade, d=fade)
    if track.mode == "replace":
        return music
    return g.filter("amix", programme, music, inputs=2, duration="first",
                    dropout_transition=0, normalize=0)  # fmt: skip


def _framed_windows(timeline: Timeline, plan: Schedule) -> list[tuple[int, int]]:
    """``[first, end)`` master frames of the items that are not clips (merged when adjacent)."""
    windows: list[tuple[int, int]] = []
    for index, item in enumerate(timeline.items):
        if isinstance(item, Segment) and item.kind == "clip":
            continue
        first, end = plan.starts[index], plan.starts[index] + plan.frames[index]
        if windows and windows[-1][1] >= first:
            windows[-1] = (windows[-1][0], max(end, windows[-1][1]))
        else:
            windows.append((first, end))
    return windows


def _focus_points(timeline: Timeline, plan: Schedule) -> list[tuple[float, float]]:
    """(time, focus) through the programme: steady in each item, panned over transitions."""
    points: list[tuple[float, float]] = []
    for index, item in enumerate(timeline.items):
        focus = item.focus_x if isinstance(item, Segment) else 0.5
        start = plan.starts[index] + (plan.overlaps[index - 1] if index else 0)
        end = plan.starts[index] + plan.frames[index]
        if index + 1 < len(timeline.items):
            end -= plan.overlaps[index]
        points += [(plan.seconds(start), focus), (plan.seconds(end), focus)]
    return points


def _secs(value: float) -> str:
    return format_number(value)
