"""Slow motion: windows, output length, exact recipe arguments, and real renders.

Real frames vs made-up frames is checked on the rendered file: testsrc2 draws a
different picture every frame, so a window slowed from a 120 fps source shows
only distinct frames, the same window from a 30 fps source with ``dup`` shows
each frame four times, and with ``mci`` shows interpolated (distinct) frames.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from pydantic import ValidationError

from stinercut_svc.media.filtergraph import Graph
from stinercut_svc.render.recipes.slowmo import (
    SlowMotionOptions,
    SlowWindow,
    clip_windows,
    output_duration,
    real_frames,
    slow_motion,
    slow_motion_audio,
    to_output,
)
from tests.support.media import ffmpeg

CLIP = "00000000-0000-0000-0000-00000000c110"
OUT_FPS = Fraction(30)


def options(**values: object) -> SlowMotionOptions:
    return SlowMotionOptions.model_validate(values)


def test_output_duration_and_time_mapping() -> None:
    windows = (SlowWindow(1.0, 2.0, 0.25), SlowWindow(3.0, 3.5, 0.5))
    assert output_duration(4.0, windows) == pytest.approx(4.0 + 3.0 + 0.5)
    assert output_duration(4.0, ()) == 4.0
    assert to_output(0.5, windows) == 0.5
    assert to_output(1.5, windows) == pytest.approx(1.0 + 0.5 * 4)
    assert to_output(2.5, windows) == pytest.approx(2.5 + 3.0)
    assert to_output(4.0, windows) == pytest.approx(7.5)


def test_windows_by_hand_and_around_exit_clipped_to_the_trim_and_merged() -> None:
    opts = options(
        windows=[
            {"video": CLIP, "start_s": 11.0, "end_s": 13.0, "speed": 0.25},
            {"video": CLIP, "start_s": 40.0, "end_s": 60.0},  # past the out point
            {"video": "00000000-0000-0000-0000-000000000999", "start_s": 11, "end_s": 12},
        ],
        around_exit={"before_s": 1.0, "after_s": 2.0, "speed": 0.5},
    )
    # Clip trimmed to 10..45 s of its file, exit at 20 s.
    windows = clip_windows(opts, CLIP, 10.0, 35.0, (20.0, 50.0))
    assert windows == (
        SlowWindow(1.0, 3.0, 0.25),
        SlowWindow(9.0, 12.0, 0.5),
        SlowWindow(30.0, 35.0, 0.5),
    )
    # Overlapping windows merge (the earlier one's speed).
    merged = clip_windows(
        options(windows=[{"video": CLIP, "start_s": 1, "end_s": 3, "speed": 0.25},
                         {"video": CLIP, "start_s": 2, "end_s": 4, "speed": 0.5}]),  # fmt: skip
        CLIP, 0.0, 10.0, None,
    )  # fmt: skip
    assert merged == (SlowWindow(1.0, 4.0, 0.25),)
    assert clip_windows(None, CLIP, 0.0, 10.0, None) == ()
    assert clip_windows(opts, None, 0.0, 10.0, None) == ()


@pytest.mark.parametrize(
    "bad",
    [
        {"windows": [{"video": CLIP, "start_s": 3, "end_s": 2}]},
        {"windows": [{"video": CLIP, "start_s": 1, "end_s": 2, "speed": 1}]},
        {"windows": [{"video": CLIP, "start_s": 1, "end_s": 2, "speed": 0.05}]},
        {"windows": [{"video": "nope", "start_s": 1, "end_s": 2}]},
        {"around_exit": {"before_s": 0, "after_s": 0}},
        {"interpolation": "magic"},
    ],
)
def test_bad_options_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SlowMotionOptions.model_validate(bad)


def test_real_frames_decision() -> None:
    assert real_frames(120, OUT_FPS, 0.25)
    assert real_frames(Fraction(120000, 1001), OUT_FPS, 0.25)  # 119.88 counts
    assert not real_frames(30, OUT_FPS, 0.5)
    assert not real_frames(None, OUT_FPS, 0.5)


def test_recipe_arguments_real_frames_and_interpolated() -> None:
    window = (SlowWindow(1.0, 2.0, 0.25),)
    g = Graph()
    out = slow_motion(g, g.input("hfr.mp4"), duration=4.0, windows=window,
                      out_fps=OUT_FPS, source_fps=120)  # fmt: skip
    g.output("o.mp4", out)
    assert g.filter_text().split(";") == [
        "[0:v]split=3[0_vs0][0_vs1][0_vs2]",
        "[0_vs0]trim=start=0:end=1[v1]",
        "[v1]setpts=expr=PTS-STARTPTS[v2]",
        "[v2]fps=fps=30[v3]",
        "[v3]trim=end_frame=30[v4]",  # each piece cut to its frames on the output timeline
        "[0_vs1]trim=start=1:end=2[v5]",
        "[v5]setpts=expr=(PTS-STARTPTS)/0.25[v6]",
        "[v6]fps=fps=30[v7]",
        "[v7]trim=end_frame=120[v8]",
        "[0_vs2]trim=start=2:end=4[v9]",
        "[v9]setpts=expr=PTS-STARTPTS[v10]",
        "[v10]fps=fps=30[v11]",
        "[v11]trim=end_frame=60[v12]",
        "[v4][v8][v12]concat=n=3:v=1:a=0[v13]",
    ]
    g = Graph()
    out = slow_motion(g, g.input("cam.mp4"), duration=4.0, windows=window,
                      out_fps=OUT_FPS, source_fps=30)  # fmt: skip
    g.output("o.mp4", out)
    assert "[v5]setpts=expr=(PTS-STARTPTS)/0.25[v6];[v6]minterpolate=fps=30:mi_mode=mci[v7];" \
        "[v7]fps=fps=30[v8];[v8]trim=end_frame=120[v9]" in g.filter_text()  # fmt: skip
    g = Graph()
    source = g.input("cam.mp4")
    assert (
        slow_motion(g, source, duration=4.0, windows=(), out_fps=OUT_FPS, source_fps=30) == source
    )


def test_audio_recipe_stretches_the_window_with_atempo() -> None:
    g = Graph()
    out = slow_motion_audio(g, g.input("cam.mp4", "a"), duration=4.0,
                            windows=(SlowWindow(1.0, 2.0, 0.25),))  # fmt: skip
    g.output("o.wav", out)
    assert g.filter_text().split(";")[5:11] == [
        "[0_as1]atrim=start=1:end=2[a5]",
        "[a5]asetpts=expr=PTS-STARTPTS[a6]",
        "[a6]atempo=tempo=0.5[a7]",
        "[a7]atempo=tempo=0.5[a8]",
        "[a8]apad[a9]",
        "[a9]atrim=end=4[a10]",
    ]


def frame_hashes(path: Path) -> list[str]:
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [line.rsplit(",", 1)[1].strip() for line in done.stdout.splitlines()
            if line and not line.startswith("#")]  # fmt: skip


def audio_seconds(path: Path) -> float:
    """Length of the first audio stream, counted in decoded samples."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", "48000",
         "-f", "s16le", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    return len(done.stdout) / 2 / 48000


@pytest.mark.parametrize(
    ("rate", "mode", "distinct"),
    # Share of distinct frames in the slowed window: real frames all; repeated 1/4;
    # interpolated nearly all (minterpolate repeats at the piece's ends).
    [(120, "mci", (1.0, 1.0)), (30, "dup", (0.2, 0.3)), (30, "mci", (0.9, 1.0))],
)
def test_slowed_window_rendered(
    media_dir: Path, tmp_path: Path, rate: int, mode: str, distinct: tuple[float, float]
) -> None:
    source = media_dir / f"slowmo_{rate}.mp4"
    if not source.exists():
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=160x120:r={rate}:d=4",
               "-f", "lavfi", "-i", "sine=f=500:r=48000:d=4",
               "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p",
               "-c:a", "pcm_s16le", "-shortest", str(source.with_suffix(".mkv")))  # fmt: skip
        source.with_suffix(".mkv").rename(source)
    windows = (SlowWindow(1.0, 2.0, 0.25),)
    g = Graph()
    video = g.input(source, "v")
    sound = g.input_stream(index=0, kind="a")
    picture = slow_motion(g, video, duration=4.0, windows=windows, out_fps=OUT_FPS,
                          source_fps=rate, interpolation=mode)  # type: ignore[arg-type]  # fmt: skip
    audio = slow_motion_audio(g, sound, duration=4.0, windows=windows)
    out = tmp_path / "slow.mkv"
    g.output(out, picture, audio, options=["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
                                           "-c:a", "pcm_s16le", "-y"])  # fmt: skip
    ffmpeg(*g.compile())
    hashes = frame_hashes(out)
    assert len(hashes) == round(output_duration(4.0, windows) * 30)  # 7 s at 30 fps
    slowed = hashes[30:150]  # output 1..5 s = the window
    share = len(set(slowed)) / len(slowed)
    assert distinct[0] <= share <= distinct[1]
    # The camera sound is stretched with the picture: everything after stays in sync.
    assert audio_seconds(out) == pytest.approx(7.0, abs=0.001)
