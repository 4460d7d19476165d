"""Transitions rendered by the real ffmpeg: a marker clip lands where the schedule says.

Three solid clips (red, blue, green); the blue one is the marker. Whatever the
transition, the first frame that is entirely blue is the one after the
incoming transition ends, and the last entirely blue frame the one before the
outgoing transition starts, both computed by :func:`schedule`. The sound must
end with the picture (acrossfade overlaps exactly as much as xfade).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stinercut_svc.render.timeline import Transition
from tests.test_timeline_helpers import (
    FPS,
    frames_rgb,
    output,
    pure,
    render,
    segment,
    solid_clip,
    stream_durations,
    timeline,
)

BLUE = (0, 0, 255)


@pytest.fixture(scope="module")
def marker_clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("marker")
    return [
        solid_clip(folder / "red.mp4", "red", seconds=1.6, tone=300),
        solid_clip(folder / "blue.mp4", "blue", seconds=2.0, tone=600),
        solid_clip(folder / "green.mp4", "green", seconds=1.6, tone=900),
    ]


@pytest.mark.parametrize(
    "transition",
    [
        Transition("none"),
        Transition("fade", 0.5),
        Transition("crossfade", 0.6),
        Transition("slide", 0.5, "up"),
        Transition("wipe", 0.5, "right"),
    ],
    ids=lambda t: f"{t.kind}-{t.direction}",
)
def test_marker_clip_appears_where_the_schedule_says(
    transition: Transition, marker_clips: list[Path], tmp_path: Path
) -> None:
    items = [segment(p) for p in marker_clips]
    line = timeline(items, transition, [output(tmp_path / "out.mp4")])
    compiled = render(line, tmp_path)
    plan = compiled.schedule
    frames = frames_rgb(tmp_path / "out.mp4")
    assert len(frames) == plan.total_frames
    blue = np.flatnonzero(pure(frames, BLUE))
    first_expected = plan.starts[1] + plan.overlaps[0]
    last_expected = plan.starts[1] + plan.frames[1] - plan.overlaps[1] - 1
    assert abs(int(blue[0]) - first_expected) <= 1
    assert abs(int(blue[-1]) - last_expected) <= 1
    # Before the marker's own stretch no frame is pure blue (it really is blended in).
    assert blue[0] >= plan.starts[1]
    if transition.kind != "none":
        assert plan.overlaps[0] == round(transition.duration * FPS)
        # The transition shows something else than the two clips' own colours part way.
        mid = plan.starts[1] + plan.overlaps[0] // 2
        assert not pure(frames[mid : mid + 1], BLUE)[0]
        assert not pure(frames[mid : mid + 1], (255, 0, 0))[0]
    durations = stream_durations(tmp_path / "out.mp4")
    assert durations["audio"] == pytest.approx(plan.total_s, abs=float(1 / FPS))
    assert durations["video"] == pytest.approx(plan.total_s, abs=float(1 / FPS))


def test_fade_goes_through_black(marker_clips: list[Path], tmp_path: Path) -> None:
    items = [segment(p) for p in marker_clips[:2]]
    line = timeline(items, Transition("fade", 1.0), [output(tmp_path / "out.mp4")])
    plan = render(line, tmp_path).schedule
    frames = frames_rgb(tmp_path / "out.mp4")
    brightest = frames.reshape(len(frames), -1).max(axis=1)
    # ffmpeg's fadeblack dips early (about a quarter in) and rises slowly: black
    # somewhere inside the overlap, bright at both of its ends.
    assert brightest[plan.starts[1] : plan.starts[1] + plan.overlaps[0]].min() < 20
    assert brightest[plan.starts[1] - 1] > 200 and brightest[plan.starts[1] + plan.overlaps[0]] > 200
    dark = np.flatnonzero(brightest < 40)
    assert dark.min() >= plan.starts[1] and dark.max() < plan.starts[1] + plan.overlaps[0]
