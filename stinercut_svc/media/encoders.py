"""Which video encoders this ffmpeg has (``ffmpeg -encoders``), asked once per binary.

The render plan needs it to pick an AV1 encoder (SVT-AV1, else libaom) and to
fail a job with a clear message ("codec 'h265' is not available: this ffmpeg has
no libx265; available codecs: ...") instead of ffmpeg's own error half-way.
A build does not change while the service runs, so the answer is cached; a
failed probe is not cached, and returns ``None`` (= not checked).
"""

from __future__ import annotations

import logging
import re

import trio

from .runner import ToolError, run_capture

log = logging.getLogger(__name__)

_CACHE: dict[str, frozenset[str]] = {}
_LOCK = trio.Lock()
#: `` V....D libx264   libx264 H.264 ...``: capability flags, then the encoder name
#: (the legend above the list, `` V..... = Video``, has no name).
_LINE = re.compile(r"^\s*V[A-Z.]{5}\s+([A-Za-z0-9][\w-]*)\s", re.MULTILINE)


def parse_encoders(listing: str) -> frozenset[str]:
    """Video encoder names in ``ffmpeg -encoders`` output."""
    return frozenset(_LINE.findall(listing))


async def video_encoders(ffmpeg: str, *, timeout: float = 10.0) -> frozenset[str] | None:
    """This ffmpeg's video encoders, or ``None`` when it could not be asked."""
    cached = _CACHE.get(ffmpeg)
    if cached is not None:
        return cached
    async with _LOCK:
        if ffmpeg in _CACHE:
            return _CACHE[ffmpeg]
        try:
            done = await run_capture([ffmpeg, "-hide_banner", "-encoders"], timeout=timeout)
        except ToolError as exc:
            log.warning("could not list ffmpeg's encoders: %s", exc)
            return None
        names = parse_encoders(done.stdout.decode("utf-8", "replace"))
        if done.returncode != 0 or not names:
            log.warning("ffmpeg -encoders exited with code %s", done.returncode)
            return None
        _CACHE[ffmpeg] = names
        return names
