"""Real renders of the audio recipes on tiny lavfi clips, checked by ear... by numpy and ebur128.

The "jump" clip is 8 s of 160x120 picture with a mono camera track: "speech"
(pink noise high-passed above 3 kHz) from 0.5 to 2 s, loud "wind" (white noise
above 3 kHz) in the freefall window 3.0-5.5 s, quiet elsewhere. The music is two
sines, 440 Hz (the bed, 3 s long so it loops) and 1000 Hz (the freefall track),
so which track plays is readable from the spectrum, and the camera's band
(> 3 kHz) never blurs it.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stinercut_svc.media.filtergraph import Graph
from stinercut_svc.media.loudness import LoudnessCache
from stinercut_svc.render.music import AudioOptions, Placement, plan_music, resolve_audio
from stinercut_svc.render.recipes.audio import (
    CameraPart,
    Track,
    camera_audio,
    finish,
    music_bed,
    plan_levels,
    programme,
    stereo_chain,
)
from tests.support.media import ffmpeg

BED = "00000000-0000-0000-0000-0000000000b1"
FREEFALL = "00000000-0000-0000-0000-0000000000f1"
EXIT, DEPLOYMENT, LENGTH = 3.0, 5.5, 8.0
RATE = 48000


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio_sources")
    level = (
        "volume='if(between(t,0.5,2),1,if(between(t,3,5.5),4,0.02))':eval=frame,"
        "highpass=f=3000,highpass=f=3000"
    )
    speech_and_wind = f"anoisesrc=d={LENGTH}:c=pink:a=0.25:r={RATE}:seed=7[n];[n]{level}[a]"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=160x120:r=25:d={LENGTH}",
        "-filter_complex", speech_and_wind, "-map", "0:v", "-map", "[a]",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k", "-ac", "1", "-shortest", str(d / "jump.mp4"),
    )  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", f"sine=f=440:r={RATE}:d=3", "-ac", "2", str(d / "bed.wav"))
    ffmpeg("-f", "lavfi", "-i", "sine=f=1000:r=44100:d=10", str(d / "ff.wav"))
    # The same noise as mono and as two identical channels.
    noise = f"anoisesrc=d=4:c=pink:a=0.2:r={RATE}:seed=3"
    ffmpeg("-f", "lavfi", "-i", noise, "-ac", "1", str(d / "mono.wav"))
    ffmpeg("-f", "lavfi", "-i", noise, "-af", "pan=stereo|c0=c0|c1=c0", str(d / "stereo.wav"))
    return {p.stem: p for p in d.iterdir()}


async def render(
    sources: dict[str, Path],
    out: Path,
    options: dict[str, Any],
    *,
    camera: str = "jump",
    channels: int = 1,
    freefall: Sequence[tuple[float, float]] = ((EXIT, DEPLOYMENT),),
    music: bool = True,
) -> Any:
    """Measure, plan and render ``camera`` (8 s) with the music; returns the levels."""
    audio = resolve_audio(AudioOptions.model_validate(options), audio_asset=BED if music else None)
    plan = plan_music([Placement(0.0, LENGTH, None, tuple(freefall))], LENGTH, audio, {BED: 3.0})
    cache = LoudnessCache(out.parent / "loudness-cache")
    cam = await cache.get(sources[camera], stereo_chain(channels))
    measured = {BED: await cache.get(sources["bed"], stereo_chain(2)),
             FREEFALL: await cache.get(sources["ff"], stereo_chain(1))}  # fmt: skip
    levels = plan_levels([CameraPart(cam, 0.0, LENGTH, 0.0, LENGTH)], plan, measured, audio)
    g = Graph()
    src = g.input(sources[camera], "a")
    sound = camera_audio(g, src, channels=channels, gain_db=levels.camera_gain_db[0])
    sound = g.filter("apad", sound)
    sound = g.filter("atrim", sound, end=LENGTH)
    files = {BED: (sources["bed"], 2), FREEFALL: (sources["ff"], 1)}
    tracks = {uuid: Track(*files[uuid], gain) for uuid, gain in levels.music_gain_db.items()}
    bed = music_bed(g, plan, tracks) if audio.has_music else None
    mix = programme(g, sound, bed, plan, audio)
    assert mix is not None
    final = finish(g, mix, gain_db=levels.programme_gain_db, true_peak_dbtp=audio.true_peak_dbtp)
    g.output(out, final, options=["-c:a", "aac", "-b:a", "192k", "-t", str(LENGTH), "-y"])
    ffmpeg(*g.compile(script_dir=out.parent))
    return levels


def pcm(path: Path, *, mono: bool = True) -> np.ndarray:
    args = ["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ar", str(RATE)]
    args += ["-ac", "1"] if mono else ["-ac", "2"]
    raw = subprocess.run([*args, "-"], capture_output=True, check=True).stdout
    data = np.frombuffer(raw, "<f4").astype(np.float64)
    return data if mono else data.reshape(-1, 2)


def tone_level(x: np.ndarray, freq: float, *, window: int = 4800, hop: int = 480) -> tuple:
    """Magnitude (dB) of one frequency over time (Hann windows of 0.1 s every 10 ms)."""
    t = np.arange(window) / RATE
    probe = np.exp(-2j * np.pi * freq * t) * np.hanning(window)
    starts = np.arange(0, x.size - window, hop)
    mags = np.array([abs(np.dot(x[s : s + window], probe)) for s in starts])
    times = (starts + window / 2) / RATE
    return times, 20 * np.log10(np.maximum(mags, 1e-9))


def switch_times(x: np.ndarray, low: float, high: float, margin_db: float = 6.0) -> list[float]:
    """Where the dominant tone changes, with hysteresis (each side clearly ahead)."""
    times, a = tone_level(x, low)
    _, b = tone_level(x, high)
    diff = b - a
    state, last_zero, found = None, None, []
    for i, d in enumerate(diff):
        if i and np.sign(d) != np.sign(diff[i - 1]):
            last_zero = times[i]
        side = "high" if d > margin_db else "low" if d < -margin_db else None
        if side and state and side != state and last_zero is not None:
            found.append(float(last_zero))
        state = side or state
    return found


def loudness(path: Path, af: str = "") -> dict[str, float]:
    chain = f"{af}," if af else ""
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path),
         "-af", f"{chain}ebur128=peak=true", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = done.stderr[done.stderr.rindex("Summary:") :]
    return {
        "I": float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)),  # type: ignore[union-attr]
        "TP": float(re.search(r"Peak:\s+(-?[\d.inf]+) dBFS", summary).group(1)),  # type: ignore[union-attr]
    }


async def test_music_switches_at_exit_and_deployment_in_the_spectrum(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "switch.mp4"
    await render(sources, out, {"music": {"freefall": FREEFALL}})
    found = switch_times(pcm(out), 440.0, 1000.0)
    assert len(found) == 2, found
    assert found[0] == pytest.approx(EXIT, abs=0.25)
    assert found[1] == pytest.approx(DEPLOYMENT, abs=0.25)


async def test_switch_points_follow_a_window_set_elsewhere(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    # Same sources, a hand-set window 1.5-6.5 s: the switches move with it.
    out = tmp_path / "moved.mp4"
    await render(sources, out, {"music": {"freefall": FREEFALL}}, freefall=((1.5, 6.5),))
    found = switch_times(pcm(out), 440.0, 1000.0)
    assert [round(t, 1) for t in found] == pytest.approx([1.5, 6.5], abs=0.25)


@pytest.mark.parametrize("target", [-14.0, -20.0])
async def test_programme_loudness_on_target_in_one_render(
    sources: dict[str, Path], tmp_path: Path, target: float
) -> None:
    out = tmp_path / "loud.mp4"
    levels = await render(sources, out, {"music": {"freefall": FREEFALL}, "loudness_lufs": target})
    measured = loudness(out)
    assert measured["I"] == pytest.approx(target, abs=1.0), (measured, levels)
    # The limiter holds the default -1 dBTP ceiling (AAC's own overshoot allowed for).
    assert measured["TP"] <= -0.5


async def test_ducking_follows_speech_not_wind(sources: dict[str, Path], tmp_path: Path) -> None:
    """The bed dips under speech (0.5-2 s) but the freefall track is not ducked by wind."""
    base = {"music": {"freefall": FREEFALL}, "normalize": False, "fade_in_s": 0, "fade_out_s": 0}
    ducked, plain = tmp_path / "ducked.mp4", tmp_path / "plain.mp4"
    await render(sources, ducked, base)
    await render(sources, plain, {**base, "ducking": False})
    t, bed_on = tone_level(pcm(ducked), 440.0)
    _, bed_off = tone_level(pcm(plain), 440.0)
    _, ff_on = tone_level(pcm(ducked), 1000.0)
    _, ff_off = tone_level(pcm(plain), 1000.0)
    speech = (t > 0.9) & (t < 1.8)
    wind = (t > 3.8) & (t < 4.8)
    assert np.median(bed_off[speech] - bed_on[speech]) >= 6.0
    assert abs(np.median(ff_off[wind] - ff_on[wind])) <= 1.0


async def test_camera_is_lowered_to_ten_percent_in_freefall(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "camera.mp4"
    await render(sources, out, {"normalize": False}, music=False)
    reference = tmp_path / "camera_full.mp4"
    await render(sources, reference, {"normalize": False, "freefall_camera_level": 1}, music=False)
    band = "highpass=f=3000"
    inside = (
        loudness(out, f"atrim=3.5:5,{band}")["I"] - loudness(reference, f"atrim=3.5:5,{band}")["I"]
    )
    outside = (
        loudness(out, f"atrim=0.5:2,{band}")["I"] - loudness(reference, f"atrim=0.5:2,{band}")["I"]
    )
    assert inside == pytest.approx(-20.0, abs=1.0)  # 10 % = -20 dB
    assert outside == pytest.approx(0.0, abs=0.5)


async def test_mono_source_ends_on_both_channels_at_the_loudness_of_stereo(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    levels: list[dict[str, float]] = []
    for name, channels in (("mono", 1), ("stereo", 2)):
        g = Graph()
        out = camera_audio(g, g.input(sources[name], "a"), channels=channels)
        target = tmp_path / f"{name}.wav"
        g.output(target, out, options=["-y"])
        ffmpeg(*g.compile())
        both = pcm(target, mono=False)
        left = loudness(target, "pan=mono|c0=c0")["I"]
        right = loudness(target, "pan=mono|c0=c1")["I"]
        assert left == pytest.approx(right, abs=0.05)
        assert np.allclose(both[:, 0], both[:, 1])
        levels.append(loudness(target))
    assert levels[0]["I"] == pytest.approx(levels[1]["I"], abs=0.1)


async def test_measurement_matches_ffmpeg_ebur128_and_is_cached(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    cache = LoudnessCache(tmp_path / "cache")
    measured = await cache.get(sources["jump"], stereo_chain(1))
    reference = loudness(sources["jump"], "pan=stereo|c0=c0|c1=c0")["I"]
    assert measured.integrated() == pytest.approx(reference, abs=0.15)
    files = sorted(p.suffix for p in (tmp_path / "cache").iterdir())
    assert files == [".json", ".npy"]
    meta = json.loads(next((tmp_path / "cache").glob("*.json")).read_text())
    assert meta["duration"] == pytest.approx(LENGTH, abs=0.05)
    # A fresh cache object reads the stored entry instead of measuring: planted numbers
    # come back as they are.
    planted = np.full(3, 0.5)
    np.save(next((tmp_path / "cache").glob("*.npy")), planted)
    assert np.array_equal((await LoudnessCache(tmp_path / "cache").get(
        sources["jump"], stereo_chain(1))).blocks, planted)  # fmt: skip
    # A changed file (new mtime) is measured again.
    copy = tmp_path / "jump.mp4"
    copy.write_bytes(sources["jump"].read_bytes())
    remeasured = await LoudnessCache(tmp_path / "cache").get(copy, stereo_chain(1))
    assert np.allclose(remeasured.blocks, measured.blocks)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


async def test_cancelled_measurement_stops_at_once_and_leaves_no_ffmpeg(tmp_path: Path) -> None:
    """A cancel (job cancelled while its sources are measured) ends the decode promptly:
    the cancelled reader stops reading, so ffmpeg sits blocked on a full pipe, where
    SIGTERM alone would not reach it; the closed pipe does."""
    import trio

    from stinercut_svc.media.loudness import measure
    from tests.support.processes import media_children

    long = tmp_path / "long.wav"
    ffmpeg("-f", "lavfi", "-i", f"anoisesrc=d=120:r={RATE}", "-ac", "2", str(long))
    # A liveness bound, not a timing figure: before, the cancel waited for trio's 5 s
    # kill fallback (SIGTERM does not interrupt ffmpeg's blocked write).
    with trio.fail_after(3):
        with trio.move_on_after(0.3):
            await measure(long, stereo_chain(2))
    assert media_children() == []
