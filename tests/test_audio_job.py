"""The audio features through the whole service: HTTP render request -> job -> file.

A project with one 8 s camera clip (mono sound) whose video row carries the
freefall window 3.0-5.5 s (what jump resolution writes), a bed (``audio``
asset, 440 Hz) and a freefall track (``audio_freefall`` asset, 1000 Hz). The
rendered file is checked like the recipe tests do: switch points in the
spectrum, loudness with ffmpeg's ebur128; with a slow-motion window around the
exit, the switches move to where the timeline puts exit and deployment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from stinercut_svc.app import StinercutApp
from stinercut_svc.models import Video
from stinercut_svc.render.recipes.slowmo import SlowWindow, output_duration, to_output
from tests.support.media import ffmpeg
from tests.test_audio_render import loudness, pcm, switch_times
from tests.test_render_helpers import (
    add_asset,
    add_project,
    ffprobe_json,
    start_render,
    wait_job,
)

EXIT, DEPLOYMENT, LENGTH = 3.0, 5.5, 8.0


@pytest.fixture(scope="module")
def jump_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio_job")
    level = "volume='if(between(t,0.5,2),1,if(between(t,3,5.5),4,0.02))':eval=frame"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s=160x120:r=25:d={LENGTH}",
        "-f", "lavfi", "-i", f"anoisesrc=d={LENGTH}:c=pink:a=0.25:r=48000:seed=7",
        "-filter_complex", f"[1:a]{level},highpass=f=3000,highpass=f=3000[a]",
        "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1", "-shortest", str(d / "jump.mp4"),
    )  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:r=48000:d=3", "-ac", "2", "-c:a", "aac",
           str(d / "bed.m4a"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "sine=f=1000:r=44100:d=20", "-c:a", "aac", str(d / "ff.m4a"))
    return {p.stem: p for p in d.iterdir()}


async def jump_project(app: StinercutApp, files: dict[str, Path], body: dict[str, Any]) -> str:
    project = await add_project(app, [files["jump"]])

    def set_freefall(session) -> None:  # type: ignore[no-untyped-def]
        session.execute(
            update(Video).values(freefall_start_s=EXIT, freefall_end_s=DEPLOYMENT)
        )

    await app.db.run(set_freefall)
    return project


async def render(app: StinercutApp, client, files: dict[str, Path], options: dict[str, Any]) -> Path:  # type: ignore[no-untyped-def]
    bed = await add_asset(app, "audio", files["bed"], "Bed")
    freefall = await add_asset(app, "audio_freefall", files["ff"], "Freefall")
    project = await jump_project(app, files, options)
    body = {"audio_asset": bed, "audio": {"music": {"freefall": freefall}},
            "output": {"preset": "ultrafast"}, **options}  # fmt: skip
    job = await start_render(client, project, body)
    done = await wait_job(app, job["uuid"], timeout=120)
    assert done["status"] == "completed", done
    return app.storage.resolve(done["output_path"])


async def test_rendered_job_switches_music_at_the_clips_freefall_and_hits_the_loudness(
    app: StinercutApp, client, jump_files: dict[str, Path], built_in_defaults: None  # type: ignore[no-untyped-def]
) -> None:
    output = await render(app, client, jump_files, {})
    found = switch_times(pcm(output), 440.0, 1000.0)
    assert found == pytest.approx([EXIT, DEPLOYMENT], abs=0.25)
    assert loudness(output)["I"] == pytest.approx(-14.0, abs=1.0)


async def test_slow_motion_around_the_exit_stretches_the_timeline_music_keeps_running(
    app: StinercutApp, client, jump_files: dict[str, Path], built_in_defaults: None  # type: ignore[no-untyped-def]
) -> None:
    slow = {"around_exit": {"before_s": 1.0, "after_s": 2.0, "speed": 0.5}}
    output = await render(app, client, jump_files, {"slow_motion": slow})
    window = (SlowWindow(EXIT - 1.0, EXIT + 2.0, 0.5),)
    expected = output_duration(LENGTH, window)  # 8 + 3 s
    sound = pcm(output)
    assert sound.size / 48000 == pytest.approx(expected, abs=0.05)
    frames = int(ffprobe_json(output)["streams"][0]["nb_frames"])
    assert frames == round(expected * 25)  # the picture is stretched by the same window
    found = switch_times(sound, 440.0, 1000.0)
    assert found == pytest.approx([to_output(EXIT, window), to_output(DEPLOYMENT, window)], abs=0.25)


async def test_bad_audio_options_and_a_wrong_music_asset_are_422(
    app: StinercutApp, client, jump_files: dict[str, Path]  # type: ignore[no-untyped-def]
) -> None:
    project = await jump_project(app, jump_files, {})
    answer = await client.post(f"/api/projects/{project}/render", json={"audio": {"loudness_lufs": 5}})
    assert answer.status_code == 422
    assert "loudness_lufs" in (await answer.get_data(as_text=True))
    answer = await client.post(
        f"/api/projects/{project}/render", json={"slow_motion": {"around_exit": {"speed": 2}}}
    )
    assert answer.status_code == 422
    # A music asset nested in audio.music is checked like the flat ones, at request time.
    intro = await add_asset(app, "intro", jump_files["jump"], "Intro")
    answer = await client.post(
        f"/api/projects/{project}/render", json={"audio": {"music": {"freefall": intro}}}
    )
    assert answer.status_code == 422
    text = await answer.get_data(as_text=True)
    assert "music.freefall: asset 'Intro' is a intro asset, not audio or audio_freefall" in text
    missing = "00000000-0000-0000-0000-00000000dead"
    answer = await client.post(
        f"/api/projects/{project}/render", json={"audio": {"music": {"canopy": missing}}}
    )
    assert answer.status_code == 422
    assert f"music.canopy: asset {missing} does not exist" in (await answer.get_data(as_text=True))


async def test_fast_path_sound_is_on_target_too(
    app: StinercutApp, client, media_dir: Path, built_in_defaults: None  # type: ignore[no-untyped-def]
) -> None:
    """Picture copied, sound through the same chain: the mono sine clips come out stereo,
    equal on both channels, at the programme target."""
    from tests.test_render_helpers import clip

    same = clip(media_dir, "c1s", seconds=1, size="160x120")
    project = await add_project(app, [same, same])
    job = await start_render(client, project, {"audio": {"loudness_lufs": -18}})
    done = await wait_job(app, job["uuid"], timeout=60)
    assert done["status"] == "completed", done
    output = app.storage.resolve(done["output_path"])
    assert done["render_path"] == "fastpath"
    assert loudness(output)["I"] == pytest.approx(-18.0, abs=1.0)
    left = loudness(output, "pan=mono|c0=c0")["I"]
    assert left == pytest.approx(loudness(output, "pan=mono|c0=c1")["I"], abs=0.05)


async def test_loudness_and_switches_hold_over_an_intro_and_crossfaded_clips(
    app: StinercutApp, client, jump_files: dict[str, Path], media_dir: Path, built_in_defaults: None  # type: ignore[no-untyped-def]
) -> None:
    """Intro 2 s (its own loud sine), a 3 s stereo clip, then the jump clip joined by a 1 s
    crossfade: the switches land where the schedule puts the jump clip's freefall."""
    from tests.test_render_helpers import clip

    intro = await add_asset(app, "intro", clip(media_dir, "c2s", seconds=2, size="160x120"), "In")
    first = clip(media_dir, "c3s", seconds=3, size="160x120")
    bed = await add_asset(app, "audio", jump_files["bed"], "Bed")
    freefall = await add_asset(app, "audio_freefall", jump_files["ff"], "Freefall")
    project = await add_project(app, [first, jump_files["jump"]])

    def set_freefall(session) -> None:  # type: ignore[no-untyped-def]
        session.execute(
            update(Video).where(Video.filename == "jump.mp4")
            .values(freefall_start_s=EXIT, freefall_end_s=DEPLOYMENT)
        )  # fmt: skip

    await app.db.run(set_freefall)
    body = {"intro_asset": intro, "audio_asset": bed, "audio": {"music": {"freefall": freefall}},
            "transition": "crossfade", "transition_duration": 1.0,
            "output": {"preset": "ultrafast"}}  # fmt: skip
    job = await start_render(client, project, body)
    done = await wait_job(app, job["uuid"], timeout=120)
    assert done["status"] == "completed", done
    output = app.storage.resolve(done["output_path"])
    # intro 0-2, clip 2-5, jump from 4 (1 s crossfade) -> its exit at 7, deployment at 9.5.
    jump_start = 2.0 + 3.0 - 1.0
    found = switch_times(pcm(output), 440.0, 1000.0)
    assert found == pytest.approx([jump_start + EXIT, jump_start + DEPLOYMENT], abs=0.25)
    assert loudness(output)["I"] == pytest.approx(-14.0, abs=1.0)
