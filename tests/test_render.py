"""Render plan decisions (pure) and real renders: duration, size, fps, watermark, music."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from stinercut_svc.context import StinercutApp
from stinercut_svc.jobs.options import (
    RenderOptions,
    ResolvedOptions,
    merge,
    project_options,
    resolve,
    setting_overrides,
)
from stinercut_svc.jobs.plan import (
    PlanError,
    RenderInputs,
    Source,
    build_plan,
    clip_segment,
    concat_listing,
    whole_segment,
)
from stinercut_svc.media.probe import AudioStream, MediaInfo, VideoStream
from stinercut_svc.models.job import RenderPath
from tests.test_render_helpers import (
    add_asset,
    add_project,
    audio,
    clip,
    ffprobe_json,
    frame_rgb,
    mean_volume,
    opaque_png,
    pixel,
    project_status,
    render_folders,
    start_render,
    wait_job,
)

FRAME = 1 / 25


# --- pure: plan and options ---------------------------------------------------------


def info(
    *, w: int = 320, h: int = 240, fps: str = "25/1", codec: str = "h264", audio: bool = True,
    duration: float = 2.0, rotation: int = 0,
) -> MediaInfo:  # fmt: skip
    return MediaInfo(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        duration=duration,
        video=VideoStream(codec, w, h, float(Fraction(fps)), fps, "yuv420p", rotation, "High", None),
        audio=AudioStream("aac", 2, 48000) if audio else None,
        other_streams=0,
    )


def src(name: str = "a.mp4", **kwargs) -> Source:  # type: ignore[no-untyped-def]
    return Source(Path(f"/media/{name}"), info(**kwargs), f"clip '{name}'")


def plan_for(segments, options=None, **extra):  # type: ignore[no-untyped-def]
    inputs = RenderInputs(tuple(segments), options or ResolvedOptions(), **extra)
    return build_plan(inputs, Path("/tmp/out.mp4"), Path("/tmp/list.ffconcat"))


def test_identical_untrimmed_clips_take_the_fast_path() -> None:
    plan = plan_for([clip_segment(src("a.mp4"), None, None), clip_segment(src("b.mp4"), 0, 2.0)])
    assert plan.render_path is RenderPath.FASTPATH
    assert plan.duration == pytest.approx(4.0)
    assert plan.args[plan.args.index("-c:v") + 1] == "copy"
    # Only video and audio are mapped: camera data/timecode streams stay behind.
    maps = [plan.args[i + 1] for i, a in enumerate(plan.args) if a == "-map"]
    assert maps[0] == "0:v:0" and maps[1].startswith("[") and len(maps) == 2
    # The sound is decoded per clip and cut to each clip's span (exact joins).
    graph = plan.args[plan.args.index("-filter_complex") + 1]
    assert "[1:a]" in graph and "[2:a]" in graph and "atrim=end_sample=96000" in graph
    assert plan.concat_list is not None and "file '/media/b.mp4'" in plan.concat_list


@pytest.mark.parametrize(
    ("segments", "extra", "options", "reason"),
    [
        ([clip_segment(src(), 0.5, None)], {}, None, "trimmed clip"),
        ([clip_segment(src(), None, 1.5)], {}, None, "trimmed clip"),
        ([clip_segment(src()), clip_segment(src(w=640, h=480))], {}, None, "codec parameters"),
        ([clip_segment(src()), clip_segment(src(audio=False))], {}, None, "codec parameters"),
        ([clip_segment(src(audio=False))], {}, None, "audio"),
        ([clip_segment(src(codec="hevc"))], {}, None, "H.264"),
        ([clip_segment(src(rotation=90))], {}, None, "H.264"),
        ([whole_segment(src("i.mp4"), "intro"), clip_segment(src())], {}, None, "intro"),
        ([clip_segment(src())], {"watermark": src("w.png")}, None, "watermark"),
        ([clip_segment(src())], {"music": src("m.m4a")}, None, "music"),
        ([clip_segment(src())], {}, ResolvedOptions(width=160, height=120), "size"),
        ([clip_segment(src())], {}, ResolvedOptions(fps=Fraction(30)), "frame rate"),
    ],
)
def test_anything_needing_an_encode_refuses_the_fast_path(segments, extra, options, reason) -> None:  # type: ignore[no-untyped-def]
    plan = plan_for(segments, options, **extra)
    assert plan.render_path is RenderPath.REENCODE
    assert plan.reencode_reason is not None and reason in plan.reencode_reason
    assert plan.args[-1] == "/tmp/out.mp4"
    graph = plan.args[plan.args.index("-filter_complex") + 1]
    assert ("overlay=" in graph) == ("watermark" in extra)
    assert ("amix=" in graph) == ("music" in extra)
    # Only filter outputs are mapped: camera data/timecode streams stay behind.
    maps = [plan.args[i + 1] for i, a in enumerate(plan.args) if a == "-map"]
    assert len(maps) == 2 and all(m.startswith("[") for m in maps)
    assert plan.schedule is not None and plan.duration == plan.schedule.total_s


def test_output_size_defaults_to_first_clip_and_keeps_aspect_for_one_side() -> None:
    first = src(w=1920, h=1080)
    assert (plan_for([clip_segment(first)]).width, plan_for([clip_segment(first)]).height) == (1920, 1080)
    plan = plan_for([clip_segment(first)], ResolvedOptions(width=1280))
    assert (plan.width, plan.height) == (1280, 720)
    rotated = src(w=1920, h=1080, rotation=90)
    plan = plan_for([clip_segment(rotated)])
    assert (plan.width, plan.height) == (1080, 1920)
    assert plan_for([clip_segment(src(fps="30000/1001"))]).fps == Fraction(30000, 1001)


def test_trims_are_checked_against_the_clip() -> None:
    source = src(duration=2.0)
    assert clip_segment(source, 0.5, 1.5).duration == pytest.approx(1.0)
    assert clip_segment(source, None, 5.0).duration == pytest.approx(2.0)  # clamped
    with pytest.raises(PlanError, match="not after"):
        clip_segment(source, 1.5, 1.0)
    with pytest.raises(PlanError, match="beyond its end"):
        clip_segment(source, 2.5, None)
    still = Source(Path("/m/x.png"), MediaInfo("png_pipe", 1.0, info().video, None, 0), "intro 'x'")
    with pytest.raises(PlanError, match="still image"):
        whole_segment(still, "intro")
    with pytest.raises(PlanError, match="no clips"):
        plan_for([whole_segment(src(), "intro")])


def test_concat_listing_escapes_quotes() -> None:
    text = concat_listing([Path("/m/it's.mp4")])
    assert text.splitlines() == ["ffconcat version 1.0", "file '/m/it'\\''s.mp4'"]


def test_options_merge_and_defaults() -> None:
    project = project_options(
        {"watermark_position": "top-left", "output": {"crf": 30}, "frontend_only_key": 1}
    )
    request = RenderOptions.model_validate({"output": {"width": 640}, "music_volume": 0.5})
    merged = merge(project, request)
    assert merged.stored() == {
        "watermark_position": "top-left",
        "music_volume": 0.5,
        "output": {"crf": 30, "width": 640},
    }
    defaults, ignored = setting_overrides(
        {
            "render.output_width": 0,
            "render.output_fps": "30000/1001",
            "render.output_preset": "nonsense",
            "render.watermark_scale": "0.25",
            "render.music_fade_seconds": "3",
        }
    )
    assert ignored == ["render.output_preset"]
    resolved = resolve(merged, defaults)
    assert resolved.width == 640 and resolved.height is None
    assert resolved.fps == Fraction(30000, 1001)
    assert (resolved.crf, resolved.preset) == (30, "veryfast")
    assert (resolved.watermark_scale, resolved.watermark_position) == (0.25, "top-left")
    assert resolved.music_fade_s == 3.0
    with pytest.raises(ValueError):
        project_options({"watermark_position": "middle"})


# --- real renders -------------------------------------------------------------------


def _streams(path: Path) -> tuple[dict, dict | None, float]:
    data = ffprobe_json(path)
    video = next(s for s in data["streams"] if s["codec_type"] == "video")
    audio_s = next((s for s in data["streams"] if s["codec_type"] == "audio"), None)
    return video, audio_s, float(data["format"]["duration"])


async def test_full_pipeline_intro_trims_silent_clip_outro_music(
    app: StinercutApp, client, media_dir: Path, built_in_defaults: None  # type: ignore[no-untyped-def]
) -> None:
    intro = await add_asset(app, "intro", clip(media_dir, "intro-portrait", seconds=1, size="120x160"), "Intro")
    outro = await add_asset(app, "outro", clip(media_dir, "outro", seconds=1, size="160x120"), "Outro")
    music = await add_asset(app, "audio", audio(media_dir), "Song")
    project = await add_project(
        app,
        [
            (clip(media_dir, "c2s", seconds=2, size="160x120"), 0.5, 1.5),
            clip(media_dir, "c1s-silent", seconds=1, size="160x120", audio=False),
        ],
        settings={"intro_asset": intro, "outro_asset": outro, "audio_asset": music},
    )
    job = await start_render(client, project, {"output": {"preset": "ultrafast", "fps": 25}})
    assert job["status"] == "pending" and job["project_uuid"] == project
    done = await wait_job(app, job["uuid"])
    assert done["status"] == "completed", done
    assert done["progress"] == 100 and done["render_path"] == "reencode"
    assert done["output_path"] == f"output/{project}/{job['uuid']}.mp4"
    video, sound, duration = _streams(app.storage.resolve(done["output_path"]))
    assert duration == pytest.approx(1 + 1.0 + 1 + 1, abs=FRAME + 0.03)
    assert float(video["duration"]) == pytest.approx(4.0, abs=FRAME)
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 160, 120)
    assert video["avg_frame_rate"] == "25/1"
    assert sound is not None and sound["codec_name"] == "aac" and sound["channels"] == 2
    assert await project_status(app, project) == "completed"
    assert render_folders(app) == []


async def test_watermark_lands_in_the_requested_corner(
    app: StinercutApp, client, media_dir: Path, built_in_defaults: None  # type: ignore[no-untyped-def]
) -> None:
    mark = await add_asset(app, "watermark", opaque_png(media_dir), "Logo")
    black = clip(media_dir, "black", seconds=1, size="320x240", color_source="color")
    project = await add_project(app, [black])
    body = {
        "watermark_asset": mark,
        "watermark_position": "top-right",
        "watermark_margin": 10,
        "watermark_scale": 0.25,  # 80 px wide, 40 px high
        "output": {"preset": "ultrafast"},
    }
    job = await start_render(client, project, body)
    done = await wait_job(app, job["uuid"])
    assert done["status"] == "completed", done
    frame = frame_rgb(app.storage.resolve(done["output_path"]), 0.5)
    assert frame[:2] == (320, 240)
    r, g, b = pixel(frame, 320 - 10 - 40, 10 + 20)  # centre of the top-right mark
    assert r > 150 and g < 90 and b < 90, (r, g, b)
    for x, y in ((10 + 40, 10 + 20), (10 + 40, 240 - 30), (320 - 50, 240 - 30)):
        assert max(pixel(frame, x, y)) < 40, (x, y, pixel(frame, x, y))


async def test_music_mixed_under_a_silent_clip_and_silence_without_music(
    app: StinercutApp, client, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    silent = clip(media_dir, "c1s-silent", seconds=1, size="160x120", audio=False)
    music = await add_asset(app, "audio", audio(media_dir), "Song")
    with_music = await add_project(app, [silent], settings={"audio_asset": music, "audio_mode": "mix"})
    without = await add_project(app, [silent], name="No music")
    first = await start_render(client, with_music, {"output": {"preset": "ultrafast"}})
    second = await start_render(client, without, {"output": {"preset": "ultrafast"}})
    done_music = await wait_job(app, first["uuid"])
    done_silent = await wait_job(app, second["uuid"])
    assert (done_music["status"], done_silent["status"]) == ("completed", "completed")
    assert mean_volume(app.storage.resolve(done_music["output_path"])) > -40
    assert mean_volume(app.storage.resolve(done_silent["output_path"])) < -80


async def test_music_replaces_clip_sound(app: StinercutApp, client, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    music = await add_asset(app, "audio", audio(media_dir, "music2", seconds=2), "Song")
    project = await add_project(app, [clip(media_dir, "c1s", seconds=1, size="160x120")])
    job = await start_render(
        client, project, {"audio_asset": music, "audio_mode": "replace", "music_volume": 1.0,
                          "output": {"preset": "ultrafast"}},
    )  # fmt: skip
    done = await wait_job(app, job["uuid"])
    assert done["status"] == "completed", done
    _, sound, duration = _streams(app.storage.resolve(done["output_path"]))
    assert sound is not None and duration == pytest.approx(1.0, abs=FRAME + 0.03)


async def test_fast_path_for_matching_clips(app: StinercutApp, client, media_dir: Path, built_in_defaults: None) -> None:  # type: ignore[no-untyped-def]
    same = clip(media_dir, "c1s", seconds=1, size="160x120")
    project = await add_project(app, [same, same, same])
    job = await start_render(client, project)
    done = await wait_job(app, job["uuid"])
    assert done["status"] == "completed" and done["render_path"] == "fastpath", done
    video, sound, duration = _streams(app.storage.resolve(done["output_path"]))
    assert duration == pytest.approx(3.0, abs=FRAME + 0.03)
    assert (video["width"], video["height"], sound is not None) == (160, 120, True)


async def test_output_options_and_settings_defaults(
    app: StinercutApp, client, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    from tests.test_render_helpers import set_setting

    await set_setting(app, "render.output_preset", "ultrafast")
    await set_setting(app, "render.output_fps", "15")
    project = await add_project(app, [clip(media_dir, "c1s", seconds=1, size="160x120")])
    job = await start_render(client, project, {"output": {"width": 96, "height": 96}})
    done = await wait_job(app, job["uuid"])
    assert done["status"] == "completed" and done["render_path"] == "reencode", done
    video, _, duration = _streams(app.storage.resolve(done["output_path"]))
    assert (video["width"], video["height"], video["avg_frame_rate"]) == (96, 96, "15/1")
    assert duration == pytest.approx(1.0, abs=1 / 15 + 0.03)
