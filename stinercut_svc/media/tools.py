"""Is ffmpeg/ffprobe here, and which version? Used by the health check."""

from __future__ import annotations

import attrs

from .runner import ToolError, run_capture


@attrs.frozen
class ToolStatus:
    ok: bool
    detail: str


async def tool_version(binary: str, *, timeout: float = 3.0) -> ToolStatus:
    """Run ``<binary> -version`` and report the first line, or why it failed."""
    try:
        done = await run_capture([binary, "-hide_banner", "-version"], timeout=timeout)
    except ToolError as exc:
        return ToolStatus(False, str(exc))
    first = done.stdout.decode("utf-8", "replace").strip().splitlines()
    if done.returncode != 0 or not first:
        return ToolStatus(False, f"{binary} -version exited with code {done.returncode}")
    return ToolStatus(True, first[0])
