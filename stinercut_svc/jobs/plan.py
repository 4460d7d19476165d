"""The render plan: a pure function from probed inputs and options to ffmpeg's arguments.

Nothing here touches the disk, the database or a process, so every decision
(fast path or not, output size, filter graph, expected duration) is testable
on its own and the benchmark can run the very same command by hand.

Two shapes of command:

* **fast path** - the concat demuxer with stream copy, used only when nothing
  needs re-encoding: no trims, no intro/outro/watermark/music, and clips whose
  codec parameters are identical and already what the output asks for.
* **re-encode** - one ffmpeg process with one filter graph: each segment is
  trimmed by input seeking (``-ss``/``-t`` before ``-i``: fast on 4 GB camera
  files, frame-accurate because the video is decoded), brought to one frame
  rate and size (black bars for clips, a blurred fill for intro/outro of
  another aspect), given silent audio where it has none, concatenated; then
  the watermark is overlaid and the music mixed in or substituted. Only the
  filter outputs are mapped, so camera timecode/telemetry streams never reach
  the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import attrs

from ..media.probe import MediaInfo
from ..models.job import RenderPath
from .options import ResolvedOptions

DEFAULT_FPS = Fraction(25)
#: Trims closer than this to the file's ends count as "no trim" (container
#: durations and the frontend's slider values differ by a few milliseconds).
TRIM_TOLERANCE_S = 0.05
AUDIO_RATE = 48000
AUDIO_BITRATE = "192k"
ASPECT_TOLERANCE = 0.01


class PlanError(ValueError):
    """The inputs cannot make a video; the message says which input and why."""


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
    raise PlanError(
        f"video codec {codec!r} ({source}) is not available: this ffmpeg has no {wanted}; "
        f"available codecs: {', '.join(usable) or 'none'}"
    )


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
    inputs: RenderInputs, output: Path, concat_list_path: Path, *, allow_fastpath: bool = True
) -> RenderPlan:
    """The ffmpeg arguments (without the runner's own flags) for ``inputs``.

    ``allow_fastpath=False`` forces the re-encode (the benchmark compares both).
    """
    clips = [s for s in inputs.segments if s.kind == "clip"]
    if not clips:
        raise PlanError("the project has no clips")
    encoder = video_encoder(inputs.options.codec, inputs.options.codec_source, inputs.encoders)
    width, height = output_size(inputs.options, clips[0].source.info)
    fps = inputs.options.fps or _clip_fps(clips[0].source.info) or DEFAULT_FPS
    duration = sum(s.duration for s in inputs.segments)
    reason = (
        fastpath_refusal(inputs, width, height, fps, encoder) if allow_fastpath else "not allowed"
    )
    if reason is None:
        listing = concat_listing([s.source.path for s in clips])
        args = (
            "-f", "concat", "-safe", "0", "-i", str(concat_list_path),
            "-map", "0:v:0", "-map", "0:a:0", "-c", "copy",
            "-movflags", "+faststart", "-f", "mp4", "-y", str(output),
        )  # fmt: skip
        return RenderPlan(
            args, RenderPath.FASTPATH, duration, width, height, fps, concat_list=listing
        )
    encode_args = _reencode_args(inputs, output, width, height, fps, duration, encoder)
    return RenderPlan(
        tuple(encode_args),
        RenderPath.REENCODE,
        duration,
        width,
        height,
        fps,
        reencode_reason=reason,
    )


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
) -> str | None:
    """Why the fast path cannot be used, or ``None`` when stream copy is enough."""
    if encoder is None:
        encoder = ENCODERS["h264"][0]
    opts = inputs.options
    if any(s.kind != "clip" for s in inputs.segments):
        return "intro or outro"
    if inputs.watermark is not None or opts.watermark_asset:
        return "watermark"
    if inputs.music is not None or opts.audio_asset:
        return "music"
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


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _reencode_args(
    inputs: RenderInputs,
    output: Path,
    width: int,
    height: int,
    fps: Fraction,
    duration: float,
    encoder: VideoEncoder,
) -> list[str]:
    opts = inputs.options
    args: list[str] = []
    graph: list[str] = []
    replace_audio = inputs.music is not None and opts.audio_mode == "replace"
    fps_text = f"{fps.numerator}/{fps.denominator}"
    blur = max(1, min(width, height) // 20)
    pads: list[str] = []

    for i, seg in enumerate(inputs.segments):
        if seg.start > 0:
            args += ["-ss", _num(seg.start)]
        args += ["-t", _num(seg.duration), "-i", str(seg.source.path)]
        head = f"[{i}:v:0]setpts=PTS-STARTPTS,fps={fps_text}"
        if seg.kind != "clip" and _aspect_differs(seg.source.info, width, height):
            # Intro/outro of another shape: the picture over a blurred, cropped copy.
            graph.append(f"{head},split=2[bg{i}][fg{i}]")
            graph.append(
                f"[bg{i}]scale={width}:{height}:force_original_aspect_ratio=increase,"
                f"crop={width}:{height},boxblur={blur}:2[bgb{i}]"
            )
            graph.append(
                f"[fg{i}]scale={width}:{height}:force_original_aspect_ratio=decrease:"
                f"force_divisible_by=2[fgs{i}]"
            )
            graph.append(f"[bgb{i}][fgs{i}]overlay=(W-w)/2:(H-h)/2,setsar=1,format=yuv420p[v{i}]")
        else:
            graph.append(
                f"{head},scale={width}:{height}:force_original_aspect_ratio=decrease:"
                f"force_divisible_by=2,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,"
                f"setsar=1,format=yuv420p[v{i}]"
            )
        pads.append(f"[v{i}]")
        if replace_audio:
            continue
        norm = f"aformat=sample_fmts=fltp:sample_rates={AUDIO_RATE}:channel_layouts=stereo"
        if seg.source.info.audio is not None:
            # Padded then cut: every segment's audio lasts exactly as long as the segment.
            graph.append(
                f"[{i}:a:0]asetpts=PTS-STARTPTS,aresample={AUDIO_RATE},{norm},apad,"
                f"atrim=end={_num(seg.duration)},asetpts=PTS-STARTPTS[a{i}]"
            )
        else:
            graph.append(
                f"anullsrc=r={AUDIO_RATE}:cl=stereo,{norm},atrim=end={_num(seg.duration)},"
                f"asetpts=PTS-STARTPTS[a{i}]"
            )
        pads.append(f"[a{i}]")

    n = len(inputs.segments)
    audio_streams = 0 if replace_audio else 1
    outputs = "[vcat]" if replace_audio else "[vcat][acat]"
    graph.append(f"{''.join(pads)}concat=n={n}:v=1:a={audio_streams}{outputs}")
    video_out, audio_out = "[vcat]", "[acat]"
    next_input = n

    if inputs.watermark is not None:
        args += ["-i", str(inputs.watermark.path)]
        mark_w = _even(width * opts.watermark_scale)
        x, y = _corner(opts.watermark_position, opts.watermark_margin)
        graph.append(f"[{next_input}:v:0]scale={mark_w}:-2,format=rgba[wm]")
        graph.append(f"{video_out}[wm]overlay={x}:{y}:format=auto,format=yuv420p[vout]")
        video_out = "[vout]"
        next_input += 1

    if inputs.music is not None:
        # Looped so short music still covers the video; cut to length, faded out.
        args += ["-stream_loop", "-1", "-i", str(inputs.music.path)]
        fade = min(opts.music_fade_s, duration)
        chain = (
            f"[{next_input}:a:0]aresample={AUDIO_RATE},"
            f"aformat=sample_fmts=fltp:sample_rates={AUDIO_RATE}:channel_layouts=stereo,"
            f"volume={_num(opts.music_volume)},atrim=end={_num(duration)},asetpts=PTS-STARTPTS"
        )
        if fade > 0:
            chain += f",afade=t=out:st={_num(duration - fade)}:d={_num(fade)}"
        if replace_audio:
            graph.append(f"{chain}[aout]")
        else:
            graph.append(f"{chain}[mus]")
            graph.append(
                f"{audio_out}[mus]amix=inputs=2:duration=first:dropout_transition=0:"
                "normalize=0[aout]"
            )
        audio_out = "[aout]"
        next_input += 1

    args += [
        "-filter_complex", ";".join(graph),
        "-map", video_out, "-map", audio_out,
        *encoder.args(opts.preset, opts.crf, opts.max_bitrate),
        "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ar", str(AUDIO_RATE), "-ac", "2",
        "-t", _num(duration),
        "-movflags", "+faststart", "-f", "mp4", "-y", str(output),
    ]  # fmt: skip
    return args


def _aspect_differs(info: MediaInfo, width: int, height: int) -> bool:
    assert info.video is not None
    w, h = info.video.display_size
    return abs(w / h - width / height) > ASPECT_TOLERANCE


def _corner(position: str, margin: int) -> tuple[str, str]:
    """overlay x/y expressions (W/H: video, w/h: watermark) for a corner."""
    left, top = str(margin), str(margin)
    right, bottom = f"W-w-{margin}", f"H-h-{margin}"
    return {
        "top-left": (left, top),
        "top-right": (right, top),
        "bottom-left": (left, bottom),
        "bottom-right": (right, bottom),
    }[position]
