"""Tiny media files made with ffmpeg's lavfi sources, for real end-to-end tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        timeout=600,  # generous: benchmarks make 30 s 720p clips with it too
    )


def make_clip(
    path: Path,
    *,
    seconds: float = 1.0,
    size: str = "320x240",
    rate: str = "25",
    audio: bool = True,
    rotate: int | None = None,
    color_source: str = "testsrc2",
) -> Path:
    """An H.264/AAC MP4 clip; ``rotate`` writes a display-matrix rotation."""
    args = ["-f", "lavfi", "-i", f"{color_source}=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    args += ["-shortest", str(path)]
    ffmpeg(*args)
    if rotate is not None:
        # ffmpeg 5 writes a display matrix only when remuxing with a rotate tag.
        plain = path.with_suffix(".norotate.mp4")
        path.rename(plain)
        ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", f"rotate={rotate}", str(path))
        plain.unlink()
    return path


def make_audio(path: Path, *, seconds: float = 1.0) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}", "-c:a", "aac", str(path))
    return path


def make_png(path: Path, *, size: str = "64x32", alpha: bool = True) -> Path:
    fmt = "rgba" if alpha else "rgb24"
    ffmpeg("-f", "lavfi", "-i", f"color=c=red@0.5:size={size}", "-frames:v", "1", "-pix_fmt", fmt, str(path))
    return path
