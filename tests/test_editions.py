"""Editions: several outputs of one render, listed and downloaded over HTTP.

One real render through the API: an intro, a landscape clip whose left half is
red and right half blue, and a phone clip rotated 90 degrees; a watermark;
editions ``vertical`` (9:16) and ``preview`` (160 px wide). Checked: every
file exists with its size; the vertical edition is cropped at the clip's focus
(focus 0: only the red half), never letterboxed; the rotated clip fills the
main frame over a blurred copy of itself (no black bars); the watermark is on
the clips but not on the intro; bad edition options are 422.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from sqlalchemy import select

from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Video
from tests.test_render_helpers import (
    add_asset,
    add_project,
    clip,
    ffprobe_json,
    frame_rgb,
    opaque_png,
    pixel,
    start_render,
    wait_job,
)
from tests.test_timeline_helpers import AUDIO_ARGS, VIDEO_ARGS, ffmpeg


def _halves(media_dir: Path) -> Path:
    path = media_dir / "halves-red-blue.mp4"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "color=red:s=160x240:r=25:d=1",
               "-f", "lavfi", "-i", "color=blue:s=160x240:r=25:d=1",
               "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=48000:duration=1",
               "-filter_complex", "[0:v][1:v]hstack[v]", "-map", "[v]", "-map", "2:a",
               *VIDEO_ARGS, *AUDIO_ARGS, str(path))  # fmt: skip
    return path


def _size(path: Path) -> tuple[int, int]:
    video = next(s for s in ffprobe_json(path)["streams"] if s["codec_type"] == "video")
    return video["width"], video["height"]


async def _video_uuids(app: StinercutApp, project: str) -> list[str]:
    from stinercut_svc.models import Project

    def load(session) -> list[str]:  # type: ignore[no-untyped-def]
        pid = session.scalars(select(Project.id).where(Project.uuid == project)).one()
        return list(session.scalars(select(Video.uuid).where(Video.project_id == pid)
                                    .order_by(Video.order)))  # fmt: skip

    return await app.db.run(load)


def _red(rgb: tuple[int, int, int]) -> bool:
    return rgb[0] > 200 and rgb[1] < 60 and rgb[2] < 60


async def test_one_render_writes_every_edition(
    app: StinercutApp, client, media_dir: Path, built_in_defaults: None  # type: ignore[no-untyped-def]
) -> None:
    intro = await add_asset(app, "intro", clip(media_dir, "black1", seconds=1, size="320x240",
                                               color_source="color"), "Intro")  # fmt: skip
    mark = await add_asset(app, "watermark", opaque_png(media_dir), "Logo")
    rotated = clip(media_dir, "phone-rot90", seconds=1, size="320x240", rotate=90)
    project = await add_project(app, [_halves(media_dir), rotated])
    halves_uuid, _ = await _video_uuids(app, project)
    body: dict[str, Any] = {
        "intro_asset": intro,
        "watermark_asset": mark,
        "watermark_position": "top-right",
        "watermark_margin": 8,
        "watermark_scale": 0.2,
        "clip_focus": {halves_uuid: 0.0},
        "editions": [
            {"name": "vertical", "width": 180, "height": 320},
            {"name": "preview", "width": 160},
        ],
        "output": {"preset": "ultrafast", "fps": 25, "width": 320, "height": 240},
    }
    job = await start_render(client, project, body)
    done = await wait_job(app, job["uuid"])
    assert done["status"] == "completed", done
    assert done["render_path"] == "reencode"

    listing = await (await client.get(f"/api/jobs/{job['uuid']}/outputs")).get_json()
    names = [item["name"] for item in listing["items"]]
    assert names == ["main", "vertical", "preview"]
    sizes = {i["name"]: (i["width"], i["height"]) for i in listing["items"][1:]}
    assert sizes == {"vertical": (180, 320), "preview": (160, 120)}
    assert all(i["size_bytes"] > 0 for i in listing["items"][1:])

    files: dict[str, Path] = {}
    for item in listing["items"]:
        response = await client.get(item["download_url"])
        assert response.status_code == 200 and response.mimetype == "video/mp4"
        files[item["name"]] = media_dir / f"dl-{job['uuid']}-{item['name']}.mp4"
        files[item["name"]].write_bytes(await response.get_data())
    assert _size(files["main"]) == (320, 240)
    assert _size(files["vertical"]) == (180, 320)
    assert _size(files["preview"]) == (160, 120)
    ranged = await client.get(listing["items"][1]["download_url"], headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(await ranged.get_data()) == 100

    # Vertical: the halves clip (1.0-2.0 s) cropped at focus 0 -> red edge to edge.
    vertical = frame_rgb(files["vertical"], 1.5)
    for x in (2, 90, 177):
        assert _red(pixel(vertical, x, 300)), (x, pixel(vertical, x, 300))
    # Main: the rotated phone clip (2.0-3.0 s) over its blurred copy: no black bars.
    main_rotated = frame_rgb(files["main"], 2.5)
    assert sum(pixel(main_rotated, 3, 120)) > 60 and sum(pixel(main_rotated, 316, 200)) > 60
    # Watermark (red, top-right): on the clips, not on the intro.
    corner = (320 - 8 - 32, 8 + 8)
    assert _red(pixel(frame_rgb(files["main"], 1.5), *corner))
    assert sum(pixel(frame_rgb(files["main"], 0.5), *corner)) < 60

    # Deleting the job removes every file it wrote.
    stored = [app.storage.output / project / f"{job['uuid']}{s}.mp4"
              for s in ("", "-vertical", "-preview")]  # fmt: skip
    assert all(p.is_file() for p in stored)
    response = await client.delete(f"/api/jobs/{job['uuid']}")
    assert (await response.get_json())["removed_files"] == 3
    assert not any(p.exists() for p in stored)


async def test_edition_routes_refuse_bad_requests(
    app: StinercutApp, client, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    project = await add_project(app, [clip(media_dir, "c1s", seconds=1, size="160x120")])
    for editions in (
        [{"name": "main"}],
        [{"name": "v"}, {"name": "v"}],
        [{"name": "Bad Name"}],
        [{"name": "odd", "width": 181}],
        [{"name": f"e{n}"} for n in range(5)],
        [{"name": "x", "codec": "mpeg2"}],
    ):
        response = await client.post(f"/api/projects/{project}/render", json={"editions": editions})
        assert response.status_code == 422, editions
        assert (await response.get_json())["error"]
    missing = "00000000-0000-4000-8000-000000000000"
    assert (await client.get(f"/api/jobs/{missing}/outputs")).status_code == 404
    assert (await client.get("/api/jobs/nope/outputs")).status_code == 400
    job = await start_render(client, project, {"output": {"preset": "ultrafast"}})
    await wait_job(app, job["uuid"])
    unknown = await client.get(f"/api/jobs/{job['uuid']}/outputs/vertical/download")
    assert unknown.status_code == 404
    bad = await client.get(f"/api/jobs/{job['uuid']}/outputs/..%2Fx/download")
    assert bad.status_code in (400, 404)
    listing = await (await client.get(f"/api/jobs/{job['uuid']}/outputs")).get_json()
    assert [i["name"] for i in listing["items"]] == ["main"]


async def test_cancel_in_a_crossfade_with_editions_leaves_nothing(
    app: StinercutApp, client, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    """A 2 s clip crossfading (1-2 s) into a 30 s one, three outputs: cancelled once
    progress reaches the crossfade, no process, temp folder or output file is left."""
    from tests.test_render_helpers import (
        job_row,
        long_clip,
        media_children,
        render_folders,
        wait_rendering,
    )

    short = clip(media_dir, "c2s", seconds=2, size="160x120")
    project = await add_project(app, [short, long_clip(media_dir)], name="Two")
    body = {
        "transition": "crossfade",
        "transition_duration": 1.0,
        "editions": [{"name": "vertical", "width": 360, "height": 640}, {"name": "preview",
                                                                         "width": 320}],
        "output": {"width": 1280, "height": 720, "preset": "medium"},
    }  # fmt: skip
    job = await start_render(client, project, body)
    await wait_rendering(app, job["uuid"])
    with trio.fail_after(120):
        while (row := await job_row(app, job["uuid"]))["progress"] < 4:  # 1 s of 31
            assert row["status"] == "processing", row
            await trio.sleep(0.05)
    response = await client.post(f"/api/jobs/{job['uuid']}/cancel")
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert (await response.get_json())["status"] == "cancelled"
    assert media_children() == []
    assert render_folders(app) == []
    folder = app.storage.output / project
    assert not folder.exists() or list(folder.iterdir()) == []
    listing = await (await client.get(f"/api/jobs/{job['uuid']}/outputs")).get_json()
    assert listing["items"] == []


def test_vertical_edition_shows_intro_whole_and_crops_clips(media_dir: Path, tmp_path: Path) -> None:
    """In a 9:16 edition the intro (laid out for 16:9) is fitted over a blurred fill,
    while a clip is cropped at its focus; the main output is untouched."""
    from stinercut_svc.render.timeline import Transition
    from tests.test_timeline_helpers import output, render, segment, timeline

    halves = _halves(media_dir)  # 320x240: left half red, right half blue
    # Both at focus 0: a crop would show only the red half of the intro too.
    items = [segment(halves, kind="intro", focus_x=0.0), segment(halves, focus_x=0.0)]
    outputs = [output(tmp_path / "main.mp4"), output(tmp_path / "vertical.mp4", 136, 240,
                                                       "vertical")]  # fmt: skip
    compiled = render(timeline(items, Transition(), outputs), tmp_path)
    assert "eof_action=pass" in compiled.filter_text
    intro = frame_rgb(tmp_path / "vertical.mp4", 0.5)
    row = 120  # the fitted 136x102 picture is centred vertically
    assert _red(pixel(intro, 20, row)) and pixel(intro, 116, row)[2] > 200  # both halves
    clip_frame = frame_rgb(tmp_path / "vertical.mp4", 1.5)
    assert all(_red(pixel(clip_frame, x, row)) for x in (2, 68, 133))  # cropped at focus 0
    main = frame_rgb(tmp_path / "main.mp4", 0.5)
    assert _red(pixel(main, 20, row)) and pixel(main, 300, row)[2] > 200


def test_vertical_edition_shows_the_outro_whole_and_the_clip_before_it_cropped(
    media_dir: Path, tmp_path: Path
) -> None:
    """A window later in the programme (the outro) is padded, not drawn, before it starts:
    the clip before it is cropped at its focus (no black padding over it), the outro is
    fitted whole."""
    from stinercut_svc.render.timeline import Transition
    from tests.test_timeline_helpers import output, render, segment, timeline

    halves = _halves(media_dir)
    items = [segment(halves, focus_x=0.0), segment(halves, kind="outro", focus_x=0.0)]
    outputs = [output(tmp_path / "main.mp4"), output(tmp_path / "vertical.mp4", 136, 240,
                                                       "vertical")]  # fmt: skip
    compiled = render(timeline(items, Transition(), outputs), tmp_path)
    assert "tpad=start=25" in compiled.filter_text  # the outro starts at frame 25
    assert _size(tmp_path / "vertical.mp4") == (136, 240)
    row = 120
    for at_s in (0.1, 0.5, 0.9):  # the clip: only the red half, never the black padding
        clip_frame = frame_rgb(tmp_path / "vertical.mp4", at_s)
        assert all(_red(pixel(clip_frame, x, row)) for x in (2, 68, 133)), at_s
    outro = frame_rgb(tmp_path / "vertical.mp4", 1.5)
    assert _red(pixel(outro, 20, row)) and pixel(outro, 116, row)[2] > 200  # both halves


async def test_recovery_records_the_editions_a_dead_instance_left_in_output(
    settings, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    """An instance that died between moving its files into ``output/`` and recording the
    completion: the next start records the job completed *with* its editions, read
    from the files; an edition file that is not a readable video is not listed."""
    import json
    import shutil
    from datetime import timedelta

    from stinercut_svc.app import create_app
    from stinercut_svc.models import Job, JobOutput, JobStatus, Project, utcnow

    main = clip(media_dir, "c1s", seconds=1, size="160x120")
    tall = clip(media_dir, "tall-90x160", seconds=1, size="90x160")
    first = create_app(settings)
    async with first.test_app():
        project = await add_project(first, [main], name="Recovered editions")

        def insert(session) -> tuple[str, int]:  # type: ignore[no-untyped-def]
            pid = session.scalars(select(Project.id).where(Project.uuid == project)).one()
            options = {"editions": [{"name": "vertical", "width": 90, "height": 160},
                                    {"name": "preview", "width": 80},
                                    {"name": "square", "width": 64, "height": 64}]}  # fmt: skip
            job = Job(project_id=pid, progress=40, options=json.dumps(options),
                      status=JobStatus.PROCESSING, claimed_by="gone-host:1:dead",
                      heartbeat_at=utcnow() - timedelta(hours=1))  # fmt: skip
            session.add(job)
            session.flush()
            return job.uuid, job.id

        job_uuid, job_id = await first.db.run(insert)
    folder = first.storage.output / project
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tall, folder / f"{job_uuid}-vertical.mp4")
    (folder / f"{job_uuid}-preview.mp4").write_bytes(b"not a video at all")  # damaged
    # No -square file at all (it was never written): not listed, nothing invented.
    shutil.copyfile(main, folder / f"{job_uuid}.mp4")

    second = create_app(settings)
    async with second.test_app():
        done = await wait_job(second, job_uuid)
        assert done["status"] == "completed", done
        client = second.test_client()
        listing = await (await client.get(f"/api/jobs/{job_uuid}/outputs")).get_json()
        items = {i["name"]: i for i in listing["items"]}
        assert list(items) == ["main", "vertical"], listing
        vertical = items["vertical"]
        assert (vertical["width"], vertical["height"]) == (90, 160)
        assert vertical["size_bytes"] == (folder / f"{job_uuid}-vertical.mp4").stat().st_size
        response = await client.get(vertical["download_url"])
        assert response.status_code == 200
        rows = await second.db.run(
            lambda s: s.scalars(select(JobOutput).where(JobOutput.job_id == job_id)).all()
        )
        assert [(r.name, r.codec) for r in rows] == [("vertical", "h264")]
