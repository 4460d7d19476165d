"""Helpers for the timeline, transition and edition tests: marker clips, renders, measurements.

Marker clips are solid colours (found frame-exactly in an output) and
flash+beep clips (a white frame and a 1 kHz burst at the same instant, whose
distance in the output is the audio/video sync error).
"""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from stinercut_svc.media.probe import MediaInfo, parse_probe
from stinercut_svc.render.compile import CompiledRender, compile_timeline
from stinercut_svc.render.timeline import (
    OutputSpec,
    Segment,
    Timeline,
    Transition,
)

FPS = Fraction(25)
SIZE = (320, 240)
VIDEO_ARGS = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
AUDIO_ARGS = ("-c:a", "aac", "-b:a", "96k", "-ar", "48000", "-ac", "2")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                   check=True, timeout=120)  # fmt: skip


def probe_info(path: Path) -> MediaInfo:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         str(path)], capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    return parse_probe(json.loads(done.stdout))


def stream_durations(path: Path) -> dict[str, float]:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(path)],
        capture_output=True, check=True, timeout=30,
    )
    return {s["codec_type"]: float(s["duration"]) for s in json.loads(done.stdout)["streams"]}


def solid_clip(path: Path, color: str, *, seconds: float = 1.0, tone: int = 440,
               size: str = "320x240", rate: int = 25) -> Path:  # fmt: skip
    """A clip of one colour with a steady tone."""
    ffmpeg("-f", "lavfi", "-i", f"color=c={color}:s={size}:r={rate}:d={seconds}",
           "-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000:duration={seconds}",
           *VIDEO_ARGS, *AUDIO_ARGS, "-shortest", str(path))  # fmt: skip
    return path


def flash_beep_clip(path: Path, *, seconds: float = 1.0, at: float = 0.5,
                    audio_extra: float = 0.064) -> Path:  # fmt: skip
    """Camera-like: dark picture with one white frame at ``at``, a 1 kHz beep starting then,
    and audio that runs ``audio_extra`` seconds past the last video frame."""
    video = (f"color=c=0x202020:s=320x240:r=25:d={seconds},"
             f"drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:"
             f"enable='between(t,{at},{at + 0.039})'")  # fmt: skip
    audio = (f"aevalsrc='if(between(t,{at},{at + 0.1}),0.8*sin(2*PI*1000*t),0)'"
             f":s=48000:d={seconds + audio_extra}")  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
           *VIDEO_ARGS, *AUDIO_ARGS, str(path))  # fmt: skip
    return path


def segment(path: Path, *, kind: str = "clip", start: float = 0.0,
            duration: float | None = None, focus_x: float = 0.5) -> Segment:  # fmt: skip
    info = probe_info(path)
    assert info.duration is not None
    return Segment(path, kind, start, duration or info.duration - start, info,  # type: ignore[arg-type]
                   f"clip '{path.name}'", focus_x=focus_x)  # fmt: skip


def output(path: Path, width: int = 320, height: int = 240, name: str = "main") -> OutputSpec:
    return OutputSpec(name, path, width, height, VIDEO_ARGS, AUDIO_ARGS,
                      ("-f", "mp4"))  # fmt: skip


def timeline(items: list[Segment], transition: Transition, outputs: list[OutputSpec],
             **extra: object) -> Timeline:  # fmt: skip
    joins = tuple(transition for _ in items[1:])
    return Timeline(tuple(items), joins, SIZE[0], SIZE[1], FPS, tuple(outputs), **extra)  # type: ignore[arg-type]


def render(line: Timeline, work: Path) -> CompiledRender:
    """Compile and run with the real ffmpeg (graph through a script file, as in production)."""
    compiled = compile_timeline(line, script_dir=work)
    if compiled.script is not None:
        compiled.script[0].write_text(compiled.script[1])
    ffmpeg(*compiled.argv)
    return compiled


def frames_rgb(path: Path, size: tuple[int, int] = (32, 24), *,
               passthrough: bool = False) -> np.ndarray:  # fmt: skip
    """Every frame, shrunk to ``size``: array (frames, h, w, 3).

    ``passthrough``: each decoded frame once (no frames duplicated or dropped
    to make the output constant-rate), to pair with :func:`frame_times`.
    """
    w, h = size
    sync = ["-fps_mode", "passthrough"] if passthrough else []
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"scale={w}:{h}:flags=area", *sync,
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    data = np.frombuffer(done.stdout, dtype=np.uint8)
    return data.reshape(-1, h, w, 3)


def pure(frames: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 12) -> np.ndarray:
    """Per frame: is every pixel within ``tolerance`` of ``rgb``?"""
    diff = np.abs(frames.astype(int) - np.array(rgb)).max(axis=(1, 2, 3))
    return diff <= tolerance


def frame_times(path: Path) -> list[float]:
    """Presentation time of every video frame (players show frames by these, gaps held)."""
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
         "-of", "csv=p=0", str(path)], capture_output=True, check=True, timeout=60, text=True,
    )  # fmt: skip
    return [float(line.strip(",")) for line in done.stdout.split() if line.strip(",")]


def audio_start(path: Path) -> float:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=start_time",
         "-of", "csv=p=0", str(path)], capture_output=True, check=True, timeout=30, text=True,
    )  # fmt: skip
    return float(done.stdout.strip() or 0)


def flash_times(path: Path) -> list[float]:
    """Presentation times of the first frame of each white flash."""
    lum = frames_rgb(path, (8, 6), passthrough=True).mean(axis=(1, 2, 3))
    times = frame_times(path)
    assert len(times) == len(lum)
    bright = lum > 160
    starts = [i for i in range(len(bright)) if bright[i] and (i == 0 or not bright[i - 1])]
    return [times[i] for i in starts]


def beep_times(path: Path, rate: int = 48000) -> list[float]:
    """Onset times of each beep (first sample above half the burst level)."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(rate),
         "-f", "s16le", "-"], capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    samples = np.abs(np.frombuffer(done.stdout, dtype=np.int16).astype(float))
    loud = np.flatnonzero(samples > 0.4 * 32768 * 0.8)
    onsets: list[float] = []
    last = -rate
    for index in loud:
        if index - last > rate * 0.2:
            onsets.append(index / rate)
        last = index
    start = audio_start(path)
    return [start + t for t in onsets]
