"""The render plan: a pure function from probed inputs and options to ffmpeg's arguments.

Nothing here touches the disk, the database or a process, so every decision
(fast path or not, output size, the timeline, expected duration) is testable
on its own and the benchmark can run the very same command by hand.

Two shapes of command:

* **fast path** - the concat demuxer with stream copy, used only when nothing
  needs re-encoding: no trims, no intro/outro/name screen/watermark/music/
  transitions/editions, and clips whose codec parameters are identical and
  already what the output asks for.
* **re-encode** - the inputs become a :class:`~stinercut_svc.render.timeline.Timeline`
  (intro -> name screen -> clips with transitions -> outro), which
  :func:`~stinercut_svc.render.compile.compile_timeline` turns into ONE ffmpeg
  run writing the main output and every edition. Segments are trimmed by input
  seeking (``-ss``/``-t`` before ``-i``: fast on 4 GB camera files,
  frame-accurate because the video is decoded). Only filter outputs are mapped,
  so camera timecode/telemetry streams never reach the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import attrs

from ..media.filtergraph import Graph
from ..media.probe import MediaInfo
from ..models.job import RenderPath
from ..render.compile import compile_timeline
from ..render.music import clip_freefall
from ..render.recipes import audio as audio_recipes
from ..render.recipes.audio import AudioSetup
from ..render.recipes.slowmo import clip_windows, output_duration
from ..render.recipes.video import even
from ..render.timeline import (
    AudioTrack,
    OutputSpec,
    Schedule,
    Timeline,
    TitleCard,
    Transition,
    Watermark,
)
from ..render.timeline import Segment as TimelineSegment
from ..render.timeline import schedule as schedule_of
from .errors import CodecUnavailable, PlanError
from .options import EditionOptions, RenderOptions, ResolvedOptions, parse_bitrate

DEFAULT_FPS = Fraction(25)
#: Trims closer than this to the file's ends count as "no trim" (container
#: durations and the frontend's slider values differ by a few milliseconds).
TRIM_TOLERANCE_S = 0.05
AUDIO_RATE = 48000
AUDIO_BITRATE = "192k"
#: The deliverable's sound: AAC-LC, 48 kHz stereo, 192 kb/s.
AUDIO_ARGS = ("-c:a", "aac", "-profile:a", "aac_low", "-b:a", AUDIO_BITRATE,
              "-ar", str(AUDIO_RATE), "-ac", "2")  # fmt: skip




# --- codecs -----------------------------------------------------------------------


@attrs.frozen
class VideoEncoder:
    """How one output codec is encoded: ffmpeg encoder, its speed knob, rate control."""

    codec: str  # the option value: h264 | h265 | vp9 | av1
    encoder: str  # ffmpeg's encoder name
    probe_name: str  # what ffprobe calls the codec (fast path comparison)
    label: str  # for messages: "H.264"
    #: Extra arguments always given to this encoder.
    extra: tuple[str, ...] = ()

    def args(self, preset: str, crf: int, max_bitrate: int | None) -> list[str]:
        """``-c:v`` and everything about speed and rate for this encoder."""
        args = ["-c:v", self.encoder, *self.extra]
        speed = PRESETS.index(preset) if preset in PRESETS else PRESETS.index("veryfast")
        if self.encoder == "libx264" and (crf > 0 or max_bitrate):
            # The deliverable: H.264 High, yuv420p (lossless CRF 0 needs High 4:4:4).
            args += ["-profile:v", "high"]
        if self.encoder in ("libx264", "libx265"):
            # CRF 0 is lossless there, and lossless ignores the VBV ceiling: 1 keeps it.
            args += ["-preset", preset, "-crf", str(max(crf, 1) if max_bitrate else crf)]
        elif self.encoder == "libvpx-vp9":
            args += ["-deadline", "good", "-cpu-used", str(8 - speed), "-row-mt", "1"]
        elif self.encoder == "libaom-av1":
            args += ["-cpu-used", str(8 - speed), "-row-mt", "1"]
        elif self.encoder == "libsvtav1":
            args += ["-preset", str(12 - speed)]
        if self.encoder in ("libvpx-vp9", "libaom-av1"):
            # Constant quality, or constrained quality under the cap (-b:v is the ceiling).
            args += ["-crf", str(crf), "-b:v", str(max_bitrate or 0)]
        elif self.encoder == "libsvtav1":
            args += ["-crf", str(max(crf, 1))]  # SVT-AV1's CRF starts at 1
        if max_bitrate and self.encoder in ("libx264", "libx265", "libsvtav1"):
            # Capped CRF: quality as asked, never above the ceiling (VBV buffer 2 s).
            args += ["-maxrate", str(max_bitrate), "-bufsize", str(2 * max_bitrate)]
        return args + ["-pix_fmt", "yuv420p"]


#: x264's preset names, fastest first; other encoders' speed knobs follow the same index.
PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
)  # fmt: skip

#: Every output codec with its encoders, preferred first. All four fit in MP4
#: (H.265 tagged ``hvc1`` so Apple players accept it), so the output stays ``.mp4``.
ENCODERS: dict[str, tuple[VideoEncoder, ...]] = {
    "h264": (VideoEncoder("h264", "libx264", "h264", "H.264"),),
    "h265": (
        VideoEncoder(
            "h265",
            "libx265",
            "hevc",
            "H.265",
            ("-tag:v", "hvc1", "-x265-params", "log-level=error"),
        ),
    ),
    "vp9": (VideoEncoder("vp9", "libvpx-vp9", "vp9", "VP9"),),
    # SVT-AV1 is many times faster than libaom at the same quality; libaom is the fallback.
    "av1": (
        VideoEncoder("av1", "libsvtav1", "av1", "AV1"),
        VideoEncoder("av1", "libaom-av1", "av1", "AV1"),
    ),
}


def video_encoder(codec: str, source: str, available: frozenset[str] | None) -> VideoEncoder:
    """The encoder for ``codec``, or a :class:`PlanError` naming the value and the choices.

    ``available``: the encoders this ffmpeg has (``None`` = not checked).
    """
    choices = ENCODERS.get(codec)
    if choices is None:
        raise PlanError(
            f"video codec {codec!r} ({source}) is not supported; supported codecs: "
            + ", ".join(ENCODERS)
        )
    for choice in choices:
        if available is None or choice.encoder in available:
            return choice
    usable = [name for name, options in ENCODERS.items()
              if available is None or any(o.encoder in available for o in options)]  # fmt: skip
    wanted = " or ".join(c.encoder for c in choices)
    raise CodecUnavailable(
        f"video codec {codec!r} ({source}) is not available: this ffmpeg has no {wanted}; "
        f"available codecs: {', '.join(usable) or 'none'}",
        codec=codec,
        available=usable,
    )


def check_requested_codecs(options: RenderOptions, available: frozenset[str] | None) -> None:
    """Raise :class:`CodecUnavailable` for a codec the request names that ffmpeg lacks.

    Checked when the render is requested, so the caller gets a 422 naming the
    codecs this ffmpeg has, instead of a job that fails later.
    """
    wanted = []
    if options.output is not None and options.output.codec is not None:
        wanted.append((options.output.codec, "option output.codec"))
    for edition in options.editions or ():
        if edition.codec is not None:
            wanted.append((edition.codec, f"edition {edition.name!r} codec"))
    for codec, source in wanted:
        video_encoder(codec, source, available)


@attrs.frozen
class Source:
    """One input file and what ffprobe said about it."""

    path: Path
    info: MediaInfo
    label: str  # for messages: "clip 'a.mp4'", "intro asset 'Logo'"


@attrs.frozen
class Segment:
    """A stretch of one source on the timeline."""

    source: Source
    kind: str  # "intro" | "clip" | "outro"
    start: float
    duration: float
    trimmed: bool


@attrs.frozen
class RenderInputs:
    segments: tuple[Segment, ...]
    options: ResolvedOptions
    watermark: Source | None = None
    music: Source | None = None
    #: Video encoders this ffmpeg has (:func:`stinercut_svc.media.encoders.video_encoders`);
    #: ``None`` = not checked (ffmpeg then reports a missing one itself).
    encoders: frozenset[str] | None = None
    #: The name screen, placed after the intro (built by the name-screen recipe).
    title_card: TitleCard | None = None
    #: Video uuid of each clip segment, in order (focus points, music phases).
    clip_uuids: tuple[str | None, ...] = ()
    #: audio helper: music files and measured loudness (``None``: the plain music mix).
    audio_setup: AudioSetup | None = None
    #: Detected freefall window (file seconds) of each clip, in order.
    clip_freefall: tuple[tuple[float | None, float | None], ...] = ()


@attrs.frozen
class Edition:
    """An extra output file of the render (the main output is ``RenderPlan``'s own)."""

    name: str
    path: Path
    width: int
    height: int
    codec: str


@attrs.frozen
class RenderPlan:
    args: tuple[str, ...]
    render_path: RenderPath
    duration: float
    width: int
    height: int
    fps: Fraction
    #: Contents of the concat demuxer's list file (fast path only).
    concat_list: str | None = None
    #: Why the fast path was not taken (``None`` when it was).
    reencode_reason: str | None = None
    #: Extra outputs written by the same run (re-encode only).
    editions: tuple[Edition, ...] = ()
    #: ``(path, text)`` of the filter script the args name, written before the run.
    filter_script: tuple[Path, str] | None = None
    #: When every item plays (re-encode only): progress and tests read it.
    schedule: Schedule | None = None
    timeline: Timeline | None = None


def clip_segment(
    source: Source, in_point: float | None = None, out_point: float | None = None
) -> Segment:
    """The ``[in_point, out_point)`` stretch of a clip, checked against its duration."""
    duration = _require_video(source)
    start = max(float(in_point or 0.0), 0.0)
    end = duration if out_point is None else min(float(out_point), duration)
    if start >= duration:
        raise PlanError(f"{source.label}: in point {start:g} s is beyond its end ({duration:g} s)")
    if end - start <= 0:
        raise PlanError(f"{source.label}: out point {end:g} s is not after in point {start:g} s")
    trimmed = start > TRIM_TOLERANCE_S or end < duration - TRIM_TOLERANCE_S
    return Segment(source, "clip", start, end - start, trimmed)


def whole_segment(source: Source, kind: str) -> Segment:
    """An intro or outro: the whole file."""
    duration = _require_video(source)
    if source.info.is_still_image:
        raise PlanError(f"{source.label} is a still image; an {kind} must be a video")
    return Segment(source, kind, 0.0, duration, False)


def _require_video(source: Source) -> float:
    if source.info.video is None:
        raise PlanError(f"{source.label} has no video stream")
    if not source.info.duration or source.info.duration <= 0:
        raise PlanError(f"{source.label} has no known duration")
    return source.info.duration


def build_plan(
    inputs: RenderInputs,
    output: Path,
    concat_list_path: Path,
    *,
    allow_fastpath: bool = True,
    ffmpeg_version: tuple[int, ...] | None = None,
) -> RenderPlan:
    """The ffmpeg arguments (without the runner's own flags) for ``inputs``.

    ``allow_fastpath=False`` forces the re-encode (the benchmark compares both).
    Editions are written next to ``output`` as ``<name>.mp4``; a long filter
    graph as ``filter_complex.txt`` there (see ``RenderPlan.filter_script``).
    """
    clips = [s for s in inputs.segments if s.kind == "clip"]
    if not clips:
        raise PlanError("the project has no clips")
    opts = inputs.options
    encoder = video_encoder(opts.codec, opts.codec_source, inputs.encoders)
    width, height = output_size(opts, clips[0].source.info)
    fps = opts.fps or _clip_fps(clips[0].source.info) or DEFAULT_FPS
    # The timeline without its outputs: its schedule is what the decision reads.
    draft = build_timeline(inputs, width, height, fps, ())
    times = schedule_of(draft)
    reason = (
        fastpath_refusal(inputs, width, height, fps, encoder, times)
        if allow_fastpath
        else "not allowed"
    )
    if reason is None:
        # Stream copy keeps each file's own length (not rounded to frames).
        duration = sum(s.duration for s in inputs.segments)
        listing = concat_listing([s.source.path for s in clips])
        prep, items = None, []
        if inputs.audio_setup is not None:  # audio helper: gains, freefall, loudness
            prep = audio_recipes.audio_prep(draft, times, inputs.audio_setup)
            items = [i for i in draft.items if isinstance(i, TimelineSegment)]
        args = tuple(fastpath_args(clips, concat_list_path, output, prep=prep, items=items))
        return RenderPlan(
            args, RenderPath.FASTPATH, duration, width, height, fps, concat_list=listing
        )
    editions = tuple(
        _edition(e, output.parent, width, height, opts, inputs.encoders) for e in opts.editions
    )
    main = OutputSpec("main", output, width, height,
                      tuple(encoder.args(opts.preset, opts.crf, opts.max_bitrate)), AUDIO_ARGS,
                      ("-movflags", "+faststart", "-f", "mp4", "-y"))  # fmt: skip
    specs = [main, *(spec for _, spec in editions)]
    timeline = attrs.evolve(draft, outputs=tuple(specs))
    compiled = compile_timeline(timeline, script_dir=output.parent, ffmpeg_version=ffmpeg_version)
    return RenderPlan(
        compiled.argv,
        RenderPath.REENCODE,
        compiled.schedule.total_s,
        width,
        height,
        fps,
        reencode_reason=reason,
        editions=tuple(edition for edition, _ in editions),
        filter_script=compiled.script,
        schedule=compiled.schedule,
        timeline=timeline,
    )


def build_timeline(
    inputs: RenderInputs, width: int, height: int, fps: Fraction, outputs: tuple[OutputSpec, ...]
) -> Timeline:
    """Intro -> name screen -> clips (with transitions) -> outro, as a timeline."""
    opts = inputs.options
    focus = dict(opts.clip_focus)
    uuids = list(inputs.clip_uuids)
    items: list[TimelineSegment | TitleCard] = []
    clip_number = 0
    for seg in inputs.segments:
        uuid = None
        if seg.kind == "clip":
            uuid = uuids[clip_number] if clip_number < len(uuids) else None
            clip_number += 1
        freefall, windows = _clip_audio_facts(inputs, seg, uuid, clip_number - 1)
        items.append(TimelineSegment(
            seg.source.path, seg.kind, seg.start, seg.duration, seg.source.info,  # type: ignore[arg-type]
            seg.source.label, seg.trimmed, video_uuid=uuid,
            focus_x=focus.get(uuid or "", opts.focus_x),
            freefall=freefall, slow_motion=windows,
            out_duration=output_duration(seg.duration, windows) if windows else None,
        ))  # fmt: skip
        if seg.kind == "intro" and inputs.title_card is not None:
            items.append(inputs.title_card)
    if inputs.title_card is not None and not any(s.kind == "intro" for s in inputs.segments):
        items.insert(0, inputs.title_card)
    between = Transition(opts.transition, opts.transition_duration,  # type: ignore[arg-type]
                         opts.transition_direction)  # type: ignore[arg-type]
    transitions = tuple(
        between if _is_clip(a) and _is_clip(b) else Transition()
        for a, b in zip(items, items[1:], strict=False)
    )
    music = None
    if inputs.music is not None:
        music = AudioTrack(inputs.music.path, "replace" if opts.audio_mode == "replace" else "mix",
                           opts.music_volume, opts.music_fade_s)  # fmt: skip
    mark = None
    if inputs.watermark is not None:
        mark = Watermark(inputs.watermark.path, opts.watermark_position, opts.watermark_margin,
                         opts.watermark_scale, opts.watermark_on_intro)  # fmt: skip
    return Timeline(tuple(items), transitions, width, height, fps, outputs, music, mark,
                    audio=inputs.audio_setup)  # fmt: skip


def _clip_audio_facts(
    inputs: RenderInputs, seg: Segment, uuid: str | None, clip_index: int
) -> tuple[tuple[float, float] | None, tuple[audio_recipes.SlowWindow, ...]]:
    """A clip's freefall window (file seconds) and slow-motion windows (audio helper)."""
    if seg.kind != "clip" or inputs.audio_setup is None:
        return None, ()
    detected: tuple[float | None, float | None] = (None, None)
    if 0 <= clip_index < len(inputs.clip_freefall):
        detected = inputs.clip_freefall[clip_index]
    freefall = clip_freefall(inputs.audio_setup.audio, uuid or "", *detected)
    slow = inputs.audio_setup.slow_motion
    windows = clip_windows(slow, uuid, seg.start, seg.duration, freefall)
    return freefall, windows


def _is_clip(item: TimelineSegment | TitleCard) -> bool:
    return isinstance(item, TimelineSegment) and item.kind == "clip"


def _edition(
    edition: EditionOptions,
    folder: Path,
    width: int,
    height: int,
    opts: ResolvedOptions,
    encoders: frozenset[str] | None,
) -> tuple[Edition, OutputSpec]:
    """An edition's size (one side given: the other follows the main output's aspect) and codec."""
    if edition.width and edition.height:
        w, h = edition.width, edition.height
    elif edition.width:
        w, h = edition.width, even(edition.width * height / width)
    elif edition.height:
        w, h = even(edition.height * width / height), edition.height
    else:
        w, h = width, height
    codec = edition.codec or opts.codec
    source = f"edition {edition.name!r} codec" if edition.codec else opts.codec_source
    encoder = video_encoder(codec, source, encoders)
    cap = parse_bitrate(edition.bitrate) if edition.bitrate is not None else opts.max_bitrate
    args = encoder.args(edition.preset or opts.preset,
                        opts.crf if edition.crf is None else edition.crf, cap)  # fmt: skip
    path = folder / f"{edition.name}.mp4"
    spec = OutputSpec(edition.name, path, w, h, tuple(args), AUDIO_ARGS,
                      ("-movflags", "+faststart", "-f", "mp4", "-y"))  # fmt: skip
    return Edition(edition.name, path, w, h, codec), spec


def fastpath_args(
    clips: Sequence[Segment],
    concat_list_path: Path,
    output: Path,
    *,
    prep: audio_recipes.AudioPrep | None = None,
    items: Sequence[TimelineSegment] = (),
) -> list[str]:
    """Video copied through the concat demuxer; the sound decoded per clip and re-encoded.

    Copying AAC across joins is not exact: every file starts with its
    encoder's priming samples (1024, 21 ms), which a player skips once per
    file, but a concatenated stream plays at every join, and the concat demuxer
    places each file's picture after the previous file's *container* duration.
    Over ten camera clips the sound ends up a quarter of a second late. So
    each clip's sound is decoded on its own (priming skipped) and padded or cut
    to exactly the span the demuxer gives its picture; audio is cheap to
    encode, the picture, where the time goes, is still copied.
    """
    g = Graph()
    g.input(concat_list_path, "v", options=["-f", "concat", "-safe", "0"])
    sounds = []
    for index, seg in enumerate(clips):
        sound = g.input(seg.source.path, "a")
        if prep is not None:  # audio helper: mono on both channels, the clip's gain
            sound = audio_recipes.segment_sound(g, sound, items[index], prep.camera_gain(index))
        else:
            sound = g.filter("aresample", sound, sample_rate=AUDIO_RATE)
            sound = g.filter("aformat", sound, sample_fmts="fltp", sample_rates=AUDIO_RATE,
                             channel_layouts="stereo")  # fmt: skip
        sound = g.filter("apad", sound)
        sounds.append(g.filter("atrim", sound, end_sample=round(seg.duration * AUDIO_RATE)))
    joined = g.filter("concat", *sounds, n=len(sounds), v=0, a=1)
    if prep is not None:  # audio helper: freefall lowering, loudness, limiter
        joined = audio_recipes.programme_sound(g, joined, prep)
    picture = g.input_stream(index=0, kind="v", position=0)
    g.output(output, picture, joined,
             options=["-c:v", "copy", *AUDIO_ARGS, "-movflags", "+faststart", "-f", "mp4",
                      "-y"])  # fmt: skip
    return g.compile()


def output_size(options: ResolvedOptions, first: MediaInfo) -> tuple[int, int]:
    """Requested size, else the first clip's displayed size (even numbers for yuv420p)."""
    assert first.video is not None
    clip_w, clip_h = first.video.display_size
    width, height = options.width, options.height
    if width and height:
        return width, height
    if width:
        return width, _even(width * clip_h / clip_w)
    if height:
        return _even(height * clip_w / clip_h), height
    return _even(clip_w), _even(clip_h)


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _clip_fps(info: MediaInfo) -> Fraction | None:
    if info.video is None or not info.video.fps_rational:
        return None
    return Fraction(info.video.fps_rational)


def fastpath_refusal(
    inputs: RenderInputs,
    width: int,
    height: int,
    fps: Fraction,
    encoder: VideoEncoder | None = None,
    times: Schedule | None = None,
) -> str | None:
    """Why the fast path cannot be used, or ``None`` when stream copy is enough.

    ``times``: the timeline's schedule; a join that overlaps (a transition the
    schedule kept) needs the picture re-encoded.
    """
    if encoder is None:
        encoder = ENCODERS["h264"][0]
    opts = inputs.options
    if any(s.kind != "clip" for s in inputs.segments):
        return "intro or outro"
    if inputs.title_card is not None:
        return "name screen"
    if opts.editions:
        return "several editions"
    if times is not None and any(times.overlaps):
        return f"{opts.transition} transitions"
    if inputs.watermark is not None or opts.watermark_asset:
        return "watermark"
    if inputs.music is not None or opts.audio_asset:
        return "music"
    if inputs.audio_setup is not None and inputs.audio_setup.audio.has_music:
        return "music"
    if any(_clip_audio_facts(inputs, seg, uuid, i)[1]
           for i, (seg, uuid) in enumerate(zip(inputs.segments, inputs.clip_uuids, strict=False))):  # fmt: skip
        return "slow motion"
    if any(s.trimmed for s in inputs.segments):
        return "trimmed clip"
    keys = {_stream_key(s.source.info) for s in inputs.segments}
    if len(keys) != 1:
        return "clips differ in codec parameters"
    first = inputs.segments[0].source.info
    assert first.video is not None
    if first.video.codec != encoder.probe_name or first.video.rotation:
        return f"video is not unrotated {encoder.label}"
    cap = opts.max_bitrate
    if cap and any((s.source.info.video and s.source.info.video.bit_rate or cap + 1) > cap
                   for s in inputs.segments):  # fmt: skip
        return "clip bitrate above the cap (or unknown)"
    if first.audio is None or first.audio.codec != "aac":
        return "audio is missing or not AAC"
    if (first.video.width, first.video.height) != (width, height):
        return "output size differs from the clips"
    if _clip_fps(first) != fps:
        return "output frame rate differs from the clips"
    return None


def _stream_key(info: MediaInfo) -> tuple[object, ...]:
    v, a = info.video, info.audio
    video = None
    if v is not None:
        video = (v.codec, v.width, v.height, v.pix_fmt, v.fps_rational, v.profile, v.rotation)
    return video, None if a is None else (a.codec, a.channels, a.sample_rate)


def concat_listing(paths: Sequence[Path]) -> str:
    """An ``ffconcat`` file naming ``paths`` (single quotes escaped the demuxer's way)."""
    lines = ["ffconcat version 1.0"]
    for path in paths:
        quoted = str(path).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"
