"""Keyframe tracks: Python values and the compiled ffmpeg expression agree.

The expression is evaluated by ffmpeg itself (``aevalsrc`` samples it at 100 Hz),
so a wrong operator order, a missing parenthesis or a segment boundary off by
one keyframe shows up as a sample that differs from :meth:`Track.value_at`.
"""

from __future__ import annotations

import subprocess
from array import array

import pytest

from stinercut_svc.render.keyframes import EASINGS, Keyframe, Track, ease

RATE = 100


def ffmpeg_samples(expression: str, seconds: float) -> list[float]:
    """``expression`` of ``t`` evaluated by ffmpeg at RATE samples per second."""
    source = f"aevalsrc=exprs='{expression}':s={RATE}:d={seconds}"
    result = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", source,
         "-f", "f64le", "-c:a", "pcm_f64le", "-"],
        check=True, capture_output=True, timeout=60,
    )
    samples = array("d")
    samples.frombytes(result.stdout)
    return list(samples)


def test_easing_curves_end_points_and_shape() -> None:
    for easing in EASINGS:
        assert ease(easing, 0.0) == 0.0  # type: ignore[arg-type]
        assert ease(easing, 1.0) == 1.0  # type: ignore[arg-type]
    assert ease("ease-in", 0.5) == 0.25  # slow start
    assert ease("ease-out", 0.5) == 0.75  # slow end
    assert ease("ease-in-out", 0.5) == 0.5
    assert ease("ease-in-out", 0.25) < 0.25 and ease("ease-in-out", 0.75) > 0.75


def test_value_at_holds_before_and_after_and_interpolates() -> None:
    track = Track.of([(1.0, -400), (3.0, 0), (4.0, 0), (5.0, 100)], ["ease-out", "linear",
                                                                       "ease-in"])
    assert track.value_at(0.0) == -400
    assert track.value_at(1.0) == -400
    assert track.value_at(2.0) == pytest.approx(-400 + 400 * 0.75)
    assert track.value_at(3.5) == 0
    assert track.value_at(4.5) == pytest.approx(25)
    assert track.value_at(9.0) == 100


def test_jump_between_equal_times() -> None:
    track = Track.of([(0.0, 0), (1.0, 0), (1.0, 1), (2.0, 1)], "linear")
    assert track.value_at(0.999) == 0
    assert track.value_at(1.0) == 1
    assert ffmpeg_samples(track.expression(), 2.0)[99:102] == [0, 1, 1]


def test_decreasing_times_and_bad_easing_are_refused() -> None:
    with pytest.raises(ValueError, match="must not decrease"):
        Track((Keyframe(2, 0), Keyframe(1, 1)), ("linear",))
    with pytest.raises(ValueError, match="unknown easing"):
        Track.of([(0, 0), (1, 1)], "bounce")  # type: ignore[arg-type]


def test_constant_track_compiles_to_a_number() -> None:
    assert Track.constant(0.5).expression() == "0.5"
    assert Track.of([(0, 3), (2, 3)]).expression() == "3"


@pytest.mark.parametrize("easing", EASINGS)
def test_ffmpeg_evaluates_the_expression_like_python(easing: str) -> None:
    # Many keyframes, negative values, non-round times, all segments of one easing.
    track = Track.of(
        [(0.25, -400.5), (1.1, 120), (1.9, 37.25), (2.6, 640), (3.05, 0)],
        easing,  # type: ignore[arg-type]
    )
    samples = ffmpeg_samples(track.expression(), 3.5)
    assert len(samples) == 350
    for index, sample in enumerate(samples):
        expected = track.value_at(index / RATE)
        assert sample == pytest.approx(expected, abs=1e-6), f"t={index / RATE}"


def test_mixed_easings_and_value_mapping() -> None:
    track = Track.of([(0, 0), (1, 1), (2, 0)], ["ease-in", "ease-in-out"])
    scaled = track.map_values(lambda v: 10 + 2 * v).map_times(lambda t: t * 1.5)
    samples = ffmpeg_samples(scaled.expression("t"), 3.2)
    for index, sample in enumerate(samples):
        t = index / RATE
        assert sample == pytest.approx(10 + 2 * track.value_at(t / 1.5), abs=1e-5)
