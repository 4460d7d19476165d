"""Clips with QR codes in them: a real QR image (segno) overlaid on a lavfi clip by ffmpeg.

The code can be shown for a time window only, scaled small, rotated, and placed
anywhere, so tests and the bench can say exactly where a scan must find it.
"""

from __future__ import annotations

import math
from pathlib import Path

import segno

from .media import ffmpeg


def qr_png(path: Path, text: str, *, module_px: int = 8, border: int = 4) -> Path:
    """A black-on-white QR code (error correction M, like the printed ones) as PNG."""
    segno.make_qr(text, error="m").save(str(path), scale=module_px, border=border)
    return path


def make_qr_clip(
    path: Path,
    text: str | None,
    *,
    seconds: float,
    size: str = "640x360",
    rate: str = "25",
    visible: tuple[float, float] | None = None,
    module_px: int = 6,
    angle_deg: float = 0.0,
    position: tuple[int, int] = (40, 40),
    gop: int = 25,
    rotate: int | None = None,
) -> Path:
    """An H.264 MP4 of ``testsrc2`` with the QR code of ``text`` on top.

    ``visible`` = (start, end) seconds limits when the code is shown (else the
    whole clip); ``text=None`` makes a clip without any code. ``gop`` frames per
    keyframe (camera footage has short GOPs; 25 = one second here). ``rotate``
    writes a display-matrix rotation, as phones do for portrait video.
    """
    source = f"testsrc2=size={size}:rate={rate}:duration={seconds}"
    encode = ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop), "-pix_fmt", "yuv420p"]
    if text is None:
        ffmpeg("-f", "lavfi", "-i", source, *encode, "-an", str(path))
        return path
    image = qr_png(path.with_suffix(".qr.png"), text, module_px=module_px)
    code = "[1:v]format=rgba"
    if angle_deg:
        radians = math.radians(angle_deg)
        code += f",rotate={radians:.6f}:ow=rotw({radians:.6f}):oh=roth({radians:.6f}):c=white"
    enable = "" if visible is None else f":enable='between(t,{visible[0]},{visible[1]})'"
    x, y = position
    graph = f"{code}[code];[0:v][code]overlay=x={x}:y={y}:shortest=1{enable}[out]"
    ffmpeg(
        "-f", "lavfi", "-i", source,
        "-loop", "1", "-framerate", rate, "-i", str(image),
        "-filter_complex", graph, "-map", "[out]", *encode, "-an", "-t", str(seconds), str(path),
    )  # fmt: skip
    image.unlink()
    if rotate is not None:
        # ffmpeg 5 writes a display matrix only when remuxing with a rotate tag.
        plain = path.with_suffix(".norotate.mp4")
        path.rename(plain)
        ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", f"rotate={rotate}", str(path))
        plain.unlink()
    return path


def make_gopro_qr_shot(path: Path, code: str, *, creation_time: str) -> Path:
    """A 3 s camera QR shot of ``Stinercut: <code>`` with quiet camera audio (pink noise
    at 1 %) and a ``creation_time`` tag, as a GoPro-named recording on a test card."""
    silent = path.with_name(f"{path.stem}.noaudio.mp4")
    make_qr_clip(
        silent, f"Stinercut: {code}", seconds=3, size="320x240", rate="10", gop=10,
        module_px=4, position=(10, 10),
    )  # fmt: skip
    ffmpeg(
        "-i", str(silent), "-f", "lavfi", "-i", "anoisesrc=d=3:c=pink:a=0.01:r=48000",
        "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "64k",
        "-shortest", "-metadata", f"creation_time={creation_time}", "-f", "mp4", str(path),
    )  # fmt: skip
    silent.unlink()
    return path
