"""Audio recipes compiled: the exact ffmpeg arguments each one produces."""

from __future__ import annotations

from pathlib import Path

from stinercut_svc.media.filtergraph import Graph
from stinercut_svc.media.loudness import measure_command
from stinercut_svc.render.music import AudioOptions, Placement, plan_music, resolve_audio
from stinercut_svc.render.recipes.audio import (
    Track,
    camera_audio,
    finish,
    music_bed,
    programme,
    stereo_chain,
)

BED = "00000000-0000-0000-0000-0000000000b1"
FREEFALL = "00000000-0000-0000-0000-0000000000f1"


def compiled(g: Graph, stream: object) -> list[str]:
    g.output("out.wav", stream)  # type: ignore[arg-type]
    return g.compile()


def test_mono_camera_goes_to_both_channels_at_full_level() -> None:
    g = Graph()
    out = camera_audio(g, g.input("cam.mp4", "a"), channels=1, gain_db=-3.5)
    assert compiled(g, out) == [
        "-i", "cam.mp4", "-filter_complex",
        "[0:a]aresample=osr=48000[a1];"
        "[a1]pan=args=\\'stereo|c0=c0|c1=c0\\'[a2];"
        "[a2]aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[a3];"
        "[a3]volume=volume=-3.5dB[a4]",
        "-map", "[a4]", "out.wav",
    ]  # fmt: skip


def test_stereo_camera_unchanged_surround_down_mixed_no_gain_no_volume() -> None:
    g = Graph()
    out = camera_audio(g, g.input("cam.mp4", "a"), channels=2)
    assert g.filter_text() == (
        "[0:a]aresample=osr=48000[a1];"
        "[a1]aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[a2];"
        "[a2]anullsink"  # nothing consumes it in this test
    )
    assert out.label == "a2"
    g = Graph()
    camera_audio(g, g.input("cam.mp4", "a"), channels=6)
    assert "[a1]aformat=channel_layouts=stereo[a2]" in g.filter_text()


def test_measurement_feeds_the_same_stereo_chain() -> None:
    assert stereo_chain(1) == "pan=args=stereo|c0=c0|c1=c0"
    assert stereo_chain(2) == ""
    argv = measure_command(Path("/m/a.wav"), stereo_chain(1))
    chain = argv[argv.index("-af") + 1]
    assert chain.startswith("aresample=48000,pan=args=stereo|c0=c0|c1=c0,aformat=sample_fmts=dbl,")
    assert chain.endswith(
        "biquad=b0=1.0:b1=-2.0:b2=1.0:a0=1.0:a1=-1.99004745483398:a2=0.99007225036621,"
        "asetnsamples=n=48000"
    )
    assert argv[argv.index("-f") + 1] == "f32le" and argv[-1] == "pipe:1"


def test_music_bed_with_a_freefall_switch() -> None:
    audio = resolve_audio(
        AudioOptions.model_validate({"music": {"freefall": FREEFALL}}), audio_asset=BED
    )
    plan = plan_music([Placement(0.0, 8.0, None, ((3.0, 5.5),))], 8.0, audio)
    g = Graph()
    tracks = {BED: Track(Path("bed.mp3"), 2, -3.25), FREEFALL: Track(Path("ff.wav"), 1, 0.0)}
    bed = music_bed(g, plan, tracks)
    argv = compiled(g, bed)
    assert argv[:12] == [
        "-stream_loop", "-1", "-i", "bed.mp3",
        "-stream_loop", "-1", "-i", "ff.wav",
        "-stream_loop", "-1", "-i", "bed.mp3",
    ]  # fmt: skip
    assert argv[12] == "-filter_complex"
    assert argv[13].split(";") == [
        "[0:a]aresample=osr=48000[a1]",
        "[a1]aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[a2]",
        "[a2]atrim=start=0:duration=3.5[a3]",
        "[a3]asetpts=expr=PTS-STARTPTS[a4]",
        "[a4]volume=volume=-3.25dB[a5]",
        "[1:a]aresample=osr=48000[a6]",
        "[a6]pan=args=\\'stereo|c0=c0|c1=c0\\'[a7]",
        "[a7]aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[a8]",
        "[a8]atrim=start=0:duration=3.5[a9]",
        "[a9]asetpts=expr=PTS-STARTPTS[a10]",
        "[a5][a10]acrossfade=d=1:c1=qsin:c2=qsin[a11]",
        "[2:a]aresample=osr=48000[a12]",
        "[a12]aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo[a13]",
        "[a13]atrim=start=3.5:duration=3[a14]",
        "[a14]asetpts=expr=PTS-STARTPTS[a15]",
        "[a15]volume=volume=-3.25dB[a16]",
        "[a11][a16]acrossfade=d=1:c1=qsin:c2=qsin[a17]",
        "[a17]afade=t=in:st=0:d=2[a18]",
        "[a18]afade=t=out:st=5:d=3[a19]",
        "[a19]apad[a20]",
        "[a20]atrim=end=8[a21]",
    ]


def test_no_music_no_bed() -> None:
    plan = plan_music([Placement(0.0, 8.0)], 8.0, resolve_audio(None))
    assert music_bed(Graph(), plan, {}) is None


def test_programme_lowers_freefall_ducks_with_a_gated_key_and_mixes() -> None:
    audio = resolve_audio(None, audio_asset=BED)
    plan = plan_music([Placement(0.0, 8.0, None, ((3.0, 5.5),))], 8.0, audio)
    g = Graph()
    camera = g.input("cam.wav", "a")
    music = g.input("bed.wav", "a")
    mix = programme(g, camera, music, plan, audio)
    assert mix is not None
    out = finish(g, mix, gain_db=4.2, true_peak_dbtp=-1.0)
    window = "clip(min((t-3)/0.3+0.5\\,(5.5-t)/0.3+0.5)\\,0\\,1)"
    assert compiled(g, out)[4:6] == [
        "-filter_complex",
        "[0:a]asplit=2[0_as0][0_as1];"
        f"[0_as0]volume=volume=1-0.9*({window}):eval=frame[a1];"
        f"[0_as1]volume=volume=max(0\\,1-({window})):eval=frame[a2];"
        "[1:a][a2]sidechaincompress=threshold=0.025119:ratio=3:attack=20:release=400:"
        "level_sc=3.981072[a3];"
        "[a1][a3]amix=inputs=2:duration=first:dropout_transition=0:normalize=0[a4];"
        "[a4]volume=volume=4.2dB[a5];"
        "[a5]alimiter=limit=0.841395:attack=5:release=50:level=0:latency=1[a6]",
    ]


def test_programme_without_ducking_without_windows_or_without_camera() -> None:
    audio = resolve_audio(AudioOptions(ducking=False), audio_asset=BED)
    plan = plan_music([Placement(0.0, 8.0)], 8.0, audio)
    g = Graph()
    programme(g, g.input("cam.wav", "a"), g.input("bed.wav", "a"), plan, audio)
    assert g.filter_text() == (
        "[0:a][1:a]amix=inputs=2:duration=first:dropout_transition=0:normalize=0[a1];[a1]anullsink"
    )
    g = Graph()
    music = g.input("bed.wav", "a")
    assert programme(g, None, music, plan, audio) == music
    g = Graph()
    assert programme(g, None, None, plan, audio) is None
