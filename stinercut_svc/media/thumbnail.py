"""A JPEG poster frame for a clip, written atomically.

ffmpeg applies the stream's rotation while decoding, so portrait phone clips
get portrait thumbnails. The frame is taken a little into the clip (the first
frames of camera footage are often black); if seeking there yields nothing,
the first frame is used. The file appears under its final name only once
complete (written to a hidden temporary name, then renamed).
"""

from __future__ import annotations

import os
from pathlib import Path

import trio

from .runner import PROTOCOL_WHITELIST, ToolError, ToolMissingError, run_capture

THUMBNAIL_TIMEOUT_S = 60.0
THUMBNAIL_MAX_SIDE = 480
SEEK_FRACTION = 0.25
SEEK_MAX_S = 1.0


class ThumbnailError(RuntimeError):
    """No frame could be decoded; the message says why, for an API answer."""


def seek_points(duration: float | None) -> list[float]:
    if duration is None or duration <= 0:
        return [0.0]
    at = min(SEEK_MAX_S, duration * SEEK_FRACTION)
    return [round(at, 3), 0.0] if at > 0 else [0.0]


async def make_thumbnail(
    source: Path, dest: Path, *, duration: float | None, ffmpeg: str = "ffmpeg"
) -> None:
    """Write ``dest`` (JPEG, longest side at most 480 px); raise :class:`ThumbnailError`.

    A missing ffmpeg raises :class:`ToolMissingError` (a service fault, not the file's).
    """
    partial = dest.with_name(f".{dest.stem}.part.jpg")
    reason = "no frame decoded"
    try:
        for at in seek_points(duration):
            argv = [
                ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                "-ss", f"{at:.3f}", "-protocol_whitelist", PROTOCOL_WHITELIST, "-i", str(source),
                "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn",
                "-vf",
                # Fit in a 480 px box without enlarging small clips.
                f"scale=w='min({THUMBNAIL_MAX_SIDE},iw)':h='min({THUMBNAIL_MAX_SIDE},ih)'"
                ":force_original_aspect_ratio=decrease:force_divisible_by=2",
                "-q:v", "4", "-f", "image2", "-c:v", "mjpeg", str(partial),
            ]  # fmt: skip
            try:
                done = await run_capture(argv, timeout=THUMBNAIL_TIMEOUT_S)
            except ToolMissingError:
                raise
            except ToolError as exc:
                raise ThumbnailError(str(exc)) from None
            if done.returncode == 0 and await trio.to_thread.run_sync(_non_empty, partial):
                await trio.to_thread.run_sync(os.replace, partial, dest)
                return
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            if lines:
                reason = lines[-1][:300]
        raise ThumbnailError(f"could not decode a frame: {reason}")
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_unlink_quietly, partial)


def _non_empty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
