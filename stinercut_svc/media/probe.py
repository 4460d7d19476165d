"""ffprobe a file into a typed :class:`MediaInfo`.

Camera files are the main input: GoPro MP4s carry a timecode (``tmcd``) and a
telemetry data stream beside video and audio, phones store portrait video as
landscape frames plus a rotation. Only the first video and first audio stream
matter to this service; the rest is counted, not interpreted.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs

from .runner import PROTOCOL_WHITELIST, ToolError, ToolMissingError, run_capture

PROBE_TIMEOUT_S = 30.0


class ProbeError(ValueError):
    """The file is not readable media; the message says why, for an API answer."""


@attrs.frozen
class VideoStream:
    codec: str
    width: int
    height: int
    fps: float | None
    fps_rational: str | None
    pix_fmt: str | None
    rotation: int
    profile: str | None
    bit_rate: int | None

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown, after the stream's rotation."""
        if self.rotation % 180:
            return self.height, self.width
        return self.width, self.height


@attrs.frozen
class AudioStream:
    codec: str
    channels: int | None
    sample_rate: int | None


@attrs.frozen
class MediaInfo:
    format_name: str
    duration: float | None
    video: VideoStream | None
    audio: AudioStream | None
    other_streams: int

    @property
    def is_still_image(self) -> bool:
        """An image decoder (png, mjpeg single frame, …) rather than a moving picture."""
        return self.video is not None and (
            "image2" in self.format_name.split(",")
            or self.format_name.endswith("_pipe")
            or self.video.codec in {"png", "bmp", "webp", "gif", "tiff"}
        )


async def probe(path: Path, *, ffprobe: str = "ffprobe") -> MediaInfo:
    """Probe ``path``; raise :class:`ProbeError` when ffprobe cannot read it.

    A missing ffprobe is the service's fault, not the file's: that
    :class:`ToolMissingError` propagates (the API answers 503).
    """
    argv = [
        ffprobe,
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        # Local files only, also for what a playlist (HLS, concat list) names.
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "--",
        str(path),
    ]
    try:
        done = await run_capture(argv, timeout=PROBE_TIMEOUT_S)
    except ToolMissingError:
        raise
    except ToolError as exc:
        raise ProbeError(str(exc)) from None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ProbeError(f"not a readable media file ({reason[-1] if reason else 'ffprobe failed'})")
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise ProbeError("ffprobe produced no readable description") from None
    return parse_probe(data)


def parse_probe(data: dict[str, Any]) -> MediaInfo:
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    if not streams:
        raise ProbeError("the file contains no audio or video streams")
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover(s)), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    used = sum(1 for s in (video, audio) if s is not None)
    return MediaInfo(
        format_name=str(fmt.get("format_name", "")),
        duration=_duration(fmt, video, audio),
        video=_video(video) if video else None,
        audio=_audio(audio) if audio else None,
        other_streams=len(streams) - used,
    )


def _is_cover(stream: dict[str, Any]) -> bool:
    # Album art in audio files shows up as a one-frame "video" stream.
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def _video(s: dict[str, Any]) -> VideoStream:
    rate = _rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate"))
    return VideoStream(
        codec=str(s.get("codec_name", "unknown")),
        width=int(s.get("width") or 0),
        height=int(s.get("height") or 0),
        fps=None if rate is None else round(float(rate), 3),
        fps_rational=None if rate is None else f"{rate.numerator}/{rate.denominator}",
        pix_fmt=s.get("pix_fmt"),
        rotation=_rotation(s),
        profile=s.get("profile"),
        bit_rate=_int(s.get("bit_rate")),
    )


def _audio(s: dict[str, Any]) -> AudioStream:
    return AudioStream(
        codec=str(s.get("codec_name", "unknown")),
        channels=_int(s.get("channels")),
        sample_rate=_int(s.get("sample_rate")),
    )


def _rate(text: Any) -> Fraction | None:
    """``30000/1001`` → Fraction; ``0/0`` and junk → None."""
    if not isinstance(text, str) or "/" not in text:
        return None
    num, _, den = text.partition("/")
    try:
        n, d = int(num), int(den)
    except ValueError:
        return None
    if n <= 0 or d <= 0:
        return None
    return Fraction(n, d)


def _rotation(s: dict[str, Any]) -> int:
    """Display rotation in degrees as ffprobe reports it, normalised to 0..359.

    ffmpeg ≥ 5 reports it as display-matrix side data; older files carry a
    ``rotate`` tag. ffmpeg applies it itself when decoding, so the service only
    needs it to know the displayed size (90/270 swap width and height).
    """
    for side in s.get("side_data_list") or []:
        if "rotation" in side:
            return int(float(side["rotation"])) % 360
    tag = (s.get("tags") or {}).get("rotate")
    if tag is not None:
        try:
            return int(float(tag)) % 360
        except ValueError:
            return 0
    return 0


def _duration(fmt: dict[str, Any], *streams: dict[str, Any] | None) -> float | None:
    for source in (fmt, *streams):
        if source is None:
            continue
        raw = source.get("duration")
        if raw is None:
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            continue
        if value > 0:
            return value
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
