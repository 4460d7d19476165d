"""The music plan, the audio options and the level plan: pure functions, no ffmpeg.

The real renders that check these plans against the output's spectrum and
loudness are in test_audio_render.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from stinercut_svc.media.loudness import (
    BLOCK_S,
    SILENCE_LUFS,
    SourceLoudness,
    integrated_lufs,
    place,
)
from stinercut_svc.render.music import (
    AudioOptions,
    ClipPhases,
    Phase,
    Placement,
    ResolvedAudio,
    clip_freefall,
    phase_spans,
    plan_music,
    resolve_audio,
    track_for,
)
from stinercut_svc.render.recipes.audio import CameraPart, duck_params, plan_levels

BED = "00000000-0000-0000-0000-0000000000b1"
FREEFALL = "00000000-0000-0000-0000-0000000000f1"
CANOPY = "00000000-0000-0000-0000-0000000000c1"
CLIP = "00000000-0000-0000-0000-00000000c110"


def audio_with(**options: object) -> ResolvedAudio:
    return resolve_audio(AudioOptions.model_validate(options), audio_asset=BED)


def jump_timeline() -> tuple[list[Placement], float]:
    """Intro 3 s, a 40 s clip with freefall 10..30 s of it, outro 3 s (hard cuts)."""
    return [
        Placement(0.0, 3.0, "ground"),
        Placement(3.0, 40.0, None, ((13.0, 33.0),)),
        Placement(43.0, 3.0, "ground"),
    ], 46.0


# --- options ---------------------------------------------------------------------------


def test_defaults_match_the_issue() -> None:
    audio = resolve_audio(None, audio_asset=BED)
    assert (audio.crossfade_s, audio.fade_in_s, audio.fade_out_s) == (1.0, 2.0, 3.0)
    assert audio.freefall_camera_level == 0.1
    assert (audio.loudness_lufs, audio.true_peak_dbtp) == (-14.0, -1.0)
    assert audio.ducking and audio.normalize and audio.keep_camera
    assert audio.tracks["ground"] == BED and audio.tracks["freefall"] is None


@pytest.mark.parametrize(
    "bad",
    [
        {"loudness_lufs": -40},
        {"true_peak_dbtp": 1},
        {"crossfade_s": -1},
        {"freefall_camera_level": 1.5},
        {"music": {"freefall": "not-a-uuid"}},
        {"music": {"space": BED}},
        {"clips": {CLIP: {"freefall_start_s": 5}}},
        {"clips": {CLIP: {"freefall_start_s": 5, "freefall_end_s": 4}}},
        {"clips": {CLIP: {"phase": "orbit"}}},
        {"volume": 3},
    ],
)
def test_bad_options_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AudioOptions.model_validate(bad)


def test_replace_mode_drops_the_camera_and_music_volume_passes_through() -> None:
    audio = resolve_audio(None, audio_asset=BED, audio_mode="replace", music_volume=0.5)
    assert not audio.keep_camera and audio.music_volume == 0.5


def test_freefall_by_hand_wins_over_the_detected_one() -> None:
    audio = audio_with(clips={CLIP: {"freefall_start_s": 12.5, "freefall_end_s": 50}})
    assert clip_freefall(audio, CLIP, 10.0, 40.0) == (12.5, 50.0)
    assert clip_freefall(audio, "other", 10.0, 40.0) == (10.0, 40.0)
    assert clip_freefall(audio, "other", None, None) is None
    assert clip_freefall(audio, "other", 40.0, 10.0) is None


def test_fallback_chain_of_tracks() -> None:
    tracks: dict[Phase, str | None] = {
        "ground": BED, "plane": None, "freefall": None, "canopy": CANOPY,
    }  # fmt: skip
    assert track_for("plane", tracks) == BED
    assert track_for("canopy", tracks) == CANOPY
    assert track_for("freefall", tracks) is None


# --- phases and cues -------------------------------------------------------------------


def test_phases_follow_exit_and_deployment() -> None:
    parts, total = jump_timeline()
    spans = [(s.start, s.end, s.phase) for s in phase_spans(parts, total)]
    assert spans == [
        (0.0, 3.0, "ground"),
        (3.0, 13.0, "plane"),
        (13.0, 33.0, "freefall"),
        (33.0, 43.0, "canopy"),
        (43.0, 46.0, "ground"),
    ]


def test_freefall_track_switches_at_exit_and_deployment_with_centred_crossfades() -> None:
    parts, total = jump_timeline()
    plan = plan_music(parts, total, audio_with(music={"freefall": FREEFALL}))
    assert plan.switches == (13.0, 33.0)
    assert [(c.asset, c.start, c.end, c.fade_in, c.fade_out) for c in plan.cues] == [
        (BED, 0.0, 13.5, 0.0, 1.0),
        (FREEFALL, 12.5, 33.5, 1.0, 1.0),
        (BED, 32.5, 46.0, 1.0, 0.0),
    ]
    # The bed resumes where it stopped (offset = what it played so far).
    assert plan.cues[2].offset == 13.5
    assert plan.freefall == ((13.0, 33.0),)
    # The cues chained with their crossfades last exactly the programme.
    assert sum(c.duration for c in plan.cues) - sum(c.fade_in for c in plan.cues) == total


def test_offsets_stay_inside_one_loop_of_a_short_track() -> None:
    parts, total = jump_timeline()
    plan = plan_music(parts, total, audio_with(music={"freefall": FREEFALL}), {BED: 10.0})
    assert plan.cues[2].offset == 3.5


def test_no_freefall_track_means_no_switch() -> None:
    parts, total = jump_timeline()
    plan = plan_music(parts, total, audio_with())
    assert plan.switches == ()
    assert [(c.asset, c.start, c.end) for c in plan.cues] == [(BED, 0.0, 46.0)]


def test_canopy_track_and_crossfade_length_option() -> None:
    parts, total = jump_timeline()
    plan = plan_music(
        parts, total, audio_with(music={"freefall": FREEFALL, "canopy": CANOPY}, crossfade_s=2)
    )
    assert [(c.asset, c.start, c.end) for c in plan.cues] == [
        (BED, 0.0, 14.0),
        (FREEFALL, 12.0, 34.0),
        (CANOPY, 32.0, 44.0),
        (BED, 42.0, 46.0),
    ]


def test_short_freefall_shrinks_its_crossfades() -> None:
    parts = [Placement(0.0, 10.0, None, ((4.0, 4.6),))]
    plan = plan_music(parts, 10.0, audio_with(music={"freefall": FREEFALL}))
    fades = [(c.fade_in, c.fade_out) for c in plan.cues]
    assert fades == [(0.0, 0.6), (0.6, 0.6), (0.6, 0.0)]
    assert plan.switches == (4.0, 4.6)


def test_clip_marked_ground_keeps_the_bed_before_the_plane() -> None:
    plane = "00000000-0000-0000-0000-0000000000a1"
    parts = [
        Placement(0.0, 5.0, "ground"),  # briefing, set by hand
        Placement(5.0, 20.0, None, ((10.0, 15.0),)),
    ]
    plan = plan_music(parts, 25.0, audio_with(music={"plane": plane, "freefall": FREEFALL}))
    assert [(c.asset, c.phase) for c in plan.cues] == [
        (BED, "ground"), (plane, "plane"), (FREEFALL, "freefall"), (plane, "canopy"),
    ]  # fmt: skip
    assert plan.switches == (5.0, 10.0, 15.0)


def test_transition_overlap_switches_at_the_later_part() -> None:
    # Clip 2 starts 1 s before clip 1 ends (a crossfade); clip 2 is all freefall.
    parts = [Placement(0.0, 10.0, None), Placement(9.0, 10.0, None, ((9.0, 19.0),))]
    plan = plan_music(parts, 19.0, audio_with(music={"freefall": FREEFALL}))
    assert plan.switches == (9.0,)


def test_no_music_gives_an_empty_plan_but_keeps_the_freefall_windows() -> None:
    parts, total = jump_timeline()
    plan = plan_music(parts, total, resolve_audio(None))
    assert plan.cues == () and plan.freefall == ((13.0, 33.0),)


def test_programme_fades_fit_a_short_programme() -> None:
    plan = plan_music([Placement(0.0, 4.0)], 4.0, audio_with())
    assert (plan.fade_in_s, plan.fade_out_s) == (2.0, 2.0)


# --- loudness arithmetic ------------------------------------------------------------------


def tone_blocks(lufs: float, seconds: float) -> np.ndarray:
    """Sub-blocks of a steady signal of ``lufs``."""
    return np.full(int(round(seconds / BLOCK_S)), 10 ** ((lufs + 0.691) / 10))


def test_integrated_lufs_gates_silence_and_quiet_parts() -> None:
    steady = tone_blocks(-20.0, 10.0)
    assert integrated_lufs(steady) == pytest.approx(-20.0, abs=1e-9)
    with_silence = np.concatenate([steady, np.zeros(100)])
    # 97 whole gating blocks plus the 3 straddling the edge (3/4, 1/2, 1/4 of the energy);
    # the all-silent ones are gated out.
    assert integrated_lufs(with_silence) == pytest.approx(-20 + 10 * math.log10(98.5 / 100))
    # 15 LU under the rest: below the relative gate, ignored (ungated it would be ~-22.9;
    # the few blocks straddling the step still count).
    with_quiet = np.concatenate([steady, tone_blocks(-35.0, 10.0)])
    assert integrated_lufs(with_quiet) == pytest.approx(-20.0, abs=0.1)
    assert integrated_lufs(np.zeros(50)) == SILENCE_LUFS


def test_loop_window_and_place() -> None:
    source = SourceLoudness(np.arange(1.0, 11.0), 1.0)
    assert list(source.looped(0.7, 0.6)) == [8.0, 9.0, 10.0, 1.0, 2.0, 3.0]
    assert list(source.window(0.8, 0.4)) == [9.0, 10.0, 0.0, 0.0]
    assert list(place(5, [(0.1, np.ones(2)), (0.2, np.ones(5))])) == [0, 1, 2, 1, 1]


def test_level_plan_reaches_the_target_for_steady_sources() -> None:
    parts, total = jump_timeline()
    audio = audio_with(music={"freefall": FREEFALL}, ducking=False)
    plan = plan_music(parts, total, audio)
    music = {BED: SourceLoudness(tone_blocks(-18.0, 30.0), 30.0),
             FREEFALL: SourceLoudness(tone_blocks(-10.0, 5.0), 5.0)}  # fmt: skip
    levels = plan_levels([], plan, music, audio)
    # Each track to the speech reference + 20 log10(0.8).
    wanted = -23.0 + 20 * math.log10(0.8)
    assert levels.music_gain_db == {BED: round(wanted + 18.0, 2), FREEFALL: round(wanted + 10.0, 2)}
    # Equal-power crossfades and gated fades: the prediction is the tracks' common level.
    assert levels.predicted_lufs == pytest.approx(wanted, abs=0.3)
    assert levels.programme_gain_db == pytest.approx(-14.0 - levels.predicted_lufs, abs=0.01)


def test_camera_gain_ignores_the_freefall_wind_and_is_clamped() -> None:
    parts, total = jump_timeline()
    audio = audio_with()
    plan = plan_music(parts, total, audio)
    # 40 s clip: speech at -30 LUFS, wind at -5 LUFS inside its freefall (10..30 s).
    clip = np.concatenate([tone_blocks(-30.0, 10), tone_blocks(-5.0, 20), tone_blocks(-30.0, 10)])
    quiet = SourceLoudness(tone_blocks(-60.0, 3.0), 3.0)
    camera = [
        CameraPart(quiet, 0.0, 3.0, 0.0, 3.0),
        CameraPart(SourceLoudness(clip, 40.0), 0.0, 40.0, 3.0, 40.0),
        CameraPart(None, 0.0, 3.0, 43.0, 3.0),
    ]
    levels = plan_levels(camera, plan, {BED: SourceLoudness(tone_blocks(-20, 60), 60)}, audio)
    # Quiet intro: boosted only by the clamp; the clip: -23 - (-30) from its speech alone
    # (the wind would have given -12); no audio: nothing.
    assert levels.camera_gain_db[0] == 12.0
    assert levels.camera_gain_db[1] == pytest.approx(7.0, abs=0.1)
    assert levels.camera_gain_db[2] == 0.0


def test_ducking_params_give_the_asked_reduction_at_the_reference() -> None:
    for duck in (6.0, 12.0, 40.0):
        threshold, ratio = duck_params(duck)
        key = -23.0 - 3.0 + 12.0
        over = key - 20 * math.log10(threshold)
        assert over * (1 - 1 / ratio) == pytest.approx(duck, abs=0.01)
        assert 0.000976563 <= threshold <= 1 and 1 <= ratio <= 20


def test_clip_phases_model_alone() -> None:
    assert ClipPhases(phase="canopy").freefall_start_s is None
