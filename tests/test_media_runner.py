"""The ffmpeg runner and ffprobe on real, tiny lavfi media."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from stinercut_svc.media.probe import ProbeError, probe
from stinercut_svc.media.runner import (
    Progress,
    ToolError,
    ToolMissingError,
    parse_progress,
    run_capture,
    run_ffmpeg,
)
from tests.support.media import make_audio, make_clip, make_png
from tests.support.processes import media_children


async def test_render_reports_progress_and_writes_the_file(tmp_path: Path) -> None:
    seen: list[Progress] = []

    async def record(p: Progress) -> None:
        seen.append(p)

    out = tmp_path / "out.mp4"
    await run_ffmpeg(
        ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2",
         "-c:v", "libx264", "-preset", "ultrafast", str(out)],
        on_progress=record,
    )  # fmt: skip
    assert out.stat().st_size > 0
    assert seen and seen[-1].done
    times = [p.out_time_s for p in seen if p.out_time_s is not None]
    assert times == sorted(times)
    assert times[-1] == pytest.approx(2.0, abs=0.1)


async def test_failure_carries_stderr_tail(tmp_path: Path) -> None:
    with pytest.raises(ToolError) as info:
        await run_ffmpeg(["-i", str(tmp_path / "missing.mp4"), str(tmp_path / "o.mp4")])
    assert info.value.returncode not in (0, None)
    assert "missing.mp4" in info.value.stderr_tail


async def test_missing_binary() -> None:
    with pytest.raises(ToolMissingError):
        await run_ffmpeg(["-version"], binary="/nonexistent/ffmpeg")
    with pytest.raises(ToolMissingError):
        await run_capture(["/nonexistent/ffprobe"], timeout=1)


async def test_cancel_reaps_the_child(tmp_path: Path) -> None:
    pids: list[int] = []

    async def remember(_: Progress) -> None:
        if not pids:
            pids.extend(media_children("ffmpeg"))

    with trio.move_on_after(1.5) as scope:
        await run_ffmpeg(
            ["-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=60",
             "-c:v", "libx264", "-preset", "ultrafast", str(tmp_path / "long.mp4")],
            on_progress=remember,
        )  # fmt: skip
    assert scope.cancelled_caught
    assert pids, "ffmpeg never reported progress"
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)


async def test_capture_timeout_kills() -> None:
    from stinercut_svc.media.runner import ToolTimeoutError

    with pytest.raises(ToolTimeoutError):
        await run_capture(["sleep", "30"], timeout=0.3)


def test_parse_progress_handles_na_and_padding() -> None:
    p = parse_progress({"out_time_us": "N/A", "speed": "   0x", "progress": "continue"})
    assert p == Progress(out_time_s=None, speed=0.0, frame=None, done=False)
    p = parse_progress({"out_time_us": "1500000", "speed": "2.5x", "frame": "37", "progress": "end"})
    assert p == Progress(out_time_s=1.5, speed=2.5, frame=37, done=True)


async def test_probe_video_with_ntsc_rate_and_rotation(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "r.mp4", rate="30000/1001", rotate=90, seconds=1)
    info = await probe(clip)
    assert info.video is not None and info.audio is not None
    assert info.video.fps_rational == "30000/1001"
    assert info.video.fps == pytest.approx(29.97, abs=0.01)
    assert info.video.rotation in (90, 270)
    assert info.video.display_size == (240, 320)
    assert info.duration == pytest.approx(1.0, abs=0.1)
    assert not info.is_still_image


async def test_probe_audio_only_image_and_junk(tmp_path: Path) -> None:
    audio = await probe(make_audio(tmp_path / "a.m4a"))
    assert audio.video is None and audio.audio is not None
    png = await probe(make_png(tmp_path / "w.png"))
    assert png.is_still_image
    junk = tmp_path / "notes.mp4"
    junk.write_text("this is not a video")
    with pytest.raises(ProbeError, match="not a readable media file"):
        await probe(junk)
