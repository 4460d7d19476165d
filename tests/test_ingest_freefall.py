"""Freefall detection from the wind band, on real clips decoded by real ffmpeg."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trio

from stinercut_svc.ingest.freefall import (
    AnalysisError,
    Envelope,
    FreefallConfig,
    Phase,
    analyse_recording,
    detect,
    otsu_threshold,
    runs_above,
)
from tests.support.cards import make_jump_clip, make_plain_clip, write_bytes_file
from tests.support.processes import media_children

TOLERANCE_S = 0.5


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    d = tmp_path_factory.mktemp("freefall")
    made = {
        "jump": make_jump_clip(d / "jump.mp4", seconds=70, freefall=(12.3, 30), canopy=(42.3, 15)),
        "split": make_jump_clip(
            d / "unused.mp4",
            seconds=70,
            freefall=(25.0, 30.0),
            chapters=[(d / "GH010001.MP4", 40.0), (d / "GH020001.MP4", 30.0)],
        ),
        "quiet": make_jump_clip(d / "quiet.mp4", seconds=40),
        "short": make_jump_clip(d / "short.mp4", seconds=40, freefall=(10.0, 10.0)),
        "tone": [make_plain_clip(d / "phone.mp4", seconds=3)],
    }
    return made


async def test_freefall_found_with_start_end_and_phases(clips: dict[str, list[Path]]) -> None:
    result = await analyse_recording(clips["jump"])
    assert result.duration == pytest.approx(70.0, abs=0.1)
    (ff,) = result.freefalls
    assert ff.start == pytest.approx(12.3, abs=TOLERANCE_S)
    assert ff.end == pytest.approx(42.3, abs=TOLERANCE_S)
    assert 0.5 < ff.confidence <= 1.0
    phases = [p.phase for p in result.phases]
    assert phases == [Phase.GROUND_BEFORE, Phase.FREEFALL, Phase.CANOPY, Phase.GROUND_AFTER]
    assert result.landing == pytest.approx(57.3, abs=1.5)
    # Segments tile the recording without gaps.
    bounds = [(p.start, p.end) for p in result.phases]
    assert bounds[0][0] == 0.0 and bounds[-1][1] == pytest.approx(70.0, abs=0.1)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))


async def test_freefall_across_two_chapters_is_found_once(clips: dict[str, list[Path]]) -> None:
    result = await analyse_recording(clips["split"])
    (ff,) = result.freefalls
    assert ff.start == pytest.approx(25.0, abs=TOLERANCE_S)
    assert ff.end == pytest.approx(55.0, abs=TOLERANCE_S)
    # Each chapter alone holds only 15 s of it: too short to call a freefall.
    for chapter in clips["split"]:
        assert (await analyse_recording([chapter])).freefalls == ()


@pytest.mark.parametrize("name", ["quiet", "short", "tone"])
async def test_clips_without_freefall_report_none(clips: dict[str, list[Path]], name: str) -> None:
    result = await analyse_recording(clips[name])
    assert result.freefalls == ()
    assert [p.phase for p in result.phases] == [Phase.UNKNOWN]
    assert result.landing is None


async def test_undecodable_inputs_raise_analysis_error(tmp_path: Path) -> None:
    silent_video = tmp_path / "noaudio.mp4"
    from tests.support.media import make_clip

    make_clip(silent_video, audio=False)
    with pytest.raises(AnalysisError, match="noaudio.mp4"):
        await analyse_recording([silent_video])
    junk = write_bytes_file(tmp_path / "junk.mp4", 5000)
    with pytest.raises(AnalysisError, match="junk.mp4"):
        await analyse_recording([junk])
    with pytest.raises(AnalysisError):
        await analyse_recording([tmp_path / "missing.mp4"])
    with pytest.raises(AnalysisError, match="not installed"):
        await analyse_recording([junk], ffmpeg="/nonexistent/ffmpeg")


async def test_cancelling_analysis_leaves_no_ffmpeg(clips: dict[str, list[Path]]) -> None:
    with trio.move_on_after(0.01) as scope:
        await analyse_recording(clips["jump"] * 20)
    assert scope.cancelled_caught
    assert media_children("ffmpeg") == []


def test_envelope_is_independent_of_chunking() -> None:
    rng = np.random.default_rng(1)
    pcm = (rng.standard_normal(8000 * 3) * 3000).astype("<i2").tobytes()
    whole = Envelope()
    whole.feed(pcm)
    pieces = Envelope()
    for i in range(0, len(pcm), 777):  # odd sizes split samples and windows
        pieces.feed(pcm[i : i + 777])
    assert np.array_equal(whole.levels(), pieces.levels())
    assert whole.levels().size == 30 and whole.duration == 3.0


Span = tuple[float, tuple[float, float]]


def _levels(spans: list[Span], seconds: float, base: float = -60.0) -> np.ndarray:
    """Per-0.1 s levels: ``base`` everywhere, ``(level, start..end)`` stretches on top."""
    t = np.arange(int(seconds * 10)) / 10
    out = np.full(t.size, base)
    for level, (start, end) in spans:
        out[(t >= start) & (t < end)] = level
    return out


def test_freefall_found_inside_a_loud_plane_ride() -> None:
    # 10 min in a loud plane (-30 dB), 45 s freefall (-10 dB), 4 min canopy (-35 dB).
    levels = _levels(
        [(-30.0, (60, 660)), (-10.0, (660, 705)), (-35.0, (705, 945))],
        1000,
    )
    result = detect(levels, FreefallConfig(), 1000.0)
    (ff,) = result.freefalls
    assert ff.start == pytest.approx(660, abs=TOLERANCE_S)
    assert ff.end == pytest.approx(705, abs=TOLERANCE_S)
    assert [p.phase for p in result.phases] == [
        Phase.GROUND_BEFORE,
        Phase.FLIGHT,
        Phase.FREEFALL,
        Phase.CANOPY,
        Phase.GROUND_AFTER,
    ]
    assert result.landing == pytest.approx(945, abs=1.5)


def test_two_freefalls_in_one_recording_are_both_reported() -> None:
    levels = _levels([(-10.0, (50, 90)), (-10.0, (400, 440))], 600)
    result = detect(levels, FreefallConfig(), 600.0)
    assert [(round(f.start), round(f.end)) for f in result.freefalls] == [(50, 90), (400, 440)]


def test_low_contrast_is_not_freefall_and_long_loudness_alone_neither() -> None:
    speechy = _levels([(-55.0, (10, 80))], 100)  # 5 dB above the bed
    assert detect(speechy, FreefallConfig(), 100.0).freefalls == ()
    engine = _levels([(-20.0, (10, 600))], 700)  # 10 min of one loud level
    assert detect(engine, FreefallConfig(), 700.0).freefalls == ()


def test_confidence_drops_outside_the_expected_length() -> None:
    normal = detect(_levels([(-10.0, (50, 90))], 300), FreefallConfig(), 300.0)
    long = detect(_levels([(-10.0, (50, 170))], 300), FreefallConfig(), 300.0)
    assert normal.freefalls[0].confidence == 1.0
    assert long.freefalls[0].confidence == pytest.approx(0.5, abs=0.01)


def test_helpers() -> None:
    assert runs_above(np.array([0, 1, 1, 0, 1, 0, 0, 0, 1], dtype=bool), 1) == [(1, 5), (8, 9)]
    values = np.concatenate([np.full(100, -60.0), np.full(50, -10.0)])
    assert -60.0 < otsu_threshold(values) < -10.0
    assert detect(np.zeros(0), FreefallConfig(), 0.0).freefalls == ()
