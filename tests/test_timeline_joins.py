"""Exact joins: audio stays within one frame of video over a 10-clip join.

The clips are camera-like: their audio runs past the last video frame (64 ms
here, about what action cameras write). Each clip has a white flash frame and
a 1 kHz beep starting at the same instant; in the output every flash and its
beep must still be within one frame of each other, on the fast path (stream
copy), on the re-encode with hard cuts and with crossfades. Drift would show
most in the last clip, so all ten pairs are measured.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from stinercut_svc.jobs.options import ResolvedOptions
from stinercut_svc.jobs.plan import RenderInputs, Source, build_plan, clip_segment
from stinercut_svc.models.job import RenderPath
from tests.test_timeline_helpers import beep_times, flash_beep_clip, flash_times, probe_info

FRAME = 1 / 25
CLIPS = 10
AT = 0.52  # on a frame (13 at 25 fps): the flash frame and the beep start together


@pytest.fixture(scope="module")
def camera_clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("camera")
    first = flash_beep_clip(folder / "c00.mp4", seconds=1.0, at=AT)
    clips = [first]
    for n in range(1, CLIPS):  # identical files: the fast path may copy them
        copy = folder / f"c{n:02d}.mp4"
        copy.write_bytes(first.read_bytes())
        clips.append(copy)
    return clips


def _render(clips: list[Path], work: Path, options: ResolvedOptions, *, fast: bool):  # type: ignore[no-untyped-def]
    sources = [Source(p, probe_info(p), f"clip '{p.name}'") for p in clips]
    inputs = RenderInputs(tuple(clip_segment(s) for s in sources), options)
    plan = build_plan(inputs, work / "out.mp4", work / "list.ffconcat", allow_fastpath=fast)
    if plan.concat_list is not None:
        (work / "list.ffconcat").write_text(plan.concat_list)
    if plan.filter_script is not None:
        plan.filter_script[0].write_text(plan.filter_script[1])
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *plan.args],
                   check=True, timeout=300)  # fmt: skip
    return plan


@pytest.mark.parametrize(
    ("fast", "transition", "path"),
    [
        (True, "none", RenderPath.FASTPATH),
        (False, "none", RenderPath.REENCODE),
        (False, "crossfade", RenderPath.REENCODE),
    ],
)
def test_flash_and_beep_stay_together_over_ten_joins(
    camera_clips: list[Path], tmp_path: Path, fast: bool, transition: str, path: RenderPath
) -> None:
    options = ResolvedOptions(transition=transition, transition_duration=0.5,
                              width=320, height=240, fps=Fraction(25))  # fmt: skip
    plan = _render(camera_clips, tmp_path, options, fast=fast)
    assert plan.render_path is path
    flashes = flash_times(tmp_path / "out.mp4")
    beeps = beep_times(tmp_path / "out.mp4")
    assert len(flashes) == CLIPS and len(beeps) == CLIPS
    for flash, beep in zip(flashes, beeps, strict=True):
        assert abs(flash - beep) <= FRAME + 1e-6, (flashes, beeps)
    if plan.schedule is not None:
        # The last clip's flash is where the timeline puts it, to the frame.
        expected = plan.schedule.start_s(CLIPS - 1) + AT
        assert abs(flashes[-1] - expected) <= FRAME + 1e-6
