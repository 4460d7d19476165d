"""Timeline clips: upload and registration with real ffmpeg clips, trims, order, deletion."""

from __future__ import annotations

import io
import os
from pathlib import Path

import attrs
import pytest
from PIL import Image
from sqlalchemy import select

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Video
from tests.support.media import make_audio, make_clip, make_png
from tests.test_uploads import leftovers, multipart


@pytest.fixture(scope="session")
def clips(media_dir: Path) -> dict[str, Path]:
    folder = media_dir / "videos"
    folder.mkdir(exist_ok=True)
    plain = make_clip(folder / "plain.mp4", seconds=1.0)
    truncated = folder / "truncated.mp4"
    data = plain.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # moov atom (at the end) is lost
    text = folder / "notes.txt"
    text.write_text("this is not a video\n" * 50)
    return {
        "plain": plain,
        "silent": make_clip(folder / "silent.mp4", seconds=1.0, audio=False),
        "ntsc": make_clip(folder / "ntsc.mp4", seconds=1.0, rate="30000/1001"),
        "portrait": make_clip(folder / "portrait.mp4", seconds=1.0, size="320x180", rotate=90),
        "audio": make_audio(folder / "music.m4a"),
        "png": make_png(folder / "still.png"),
        "truncated": truncated,
        "text": text,
    }


async def new_project(client) -> str:  # type: ignore[no-untyped-def]
    response = await client.post("/api/projects", json={"name": "clips"})
    return (await response.get_json())["uuid"]


async def upload(client, project: str, path: Path, name: str | None = None):  # type: ignore[no-untyped-def]
    body, ctype = multipart(file=(name or path.name, path.read_bytes()))
    return await client.post(
        f"/api/projects/{project}/videos", data=body, headers={"Content-Type": ctype}
    )


async def test_upload_fills_metadata_and_thumbnail(client, app: StinercutApp, clips) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(client)

    response = await upload(client, project, clips["plain"])
    assert response.status_code == 201
    video = await response.get_json()
    assert video["path"] == f"uploads/{project}/plain.mp4" and video["filename"] == "plain.mp4"
    assert (video["width"], video["height"], video["codec"]) == (320, 240, "h264")
    assert video["fps"] == 25.0 and abs(video["duration"] - 1.0) < 0.1
    assert video["order"] == 0 and video["in_point"] == 0.0
    assert video["out_point"] == video["duration"]
    assert video["probe"]["has_audio"] is True and video["probe"]["rotation"] == 0
    thumb = app.storage.thumbnails / f"{video['uuid']}.jpg"
    with Image.open(thumb) as image:
        assert image.format == "JPEG" and image.size == (320, 240)

    ntsc = await (await upload(client, project, clips["ntsc"])).get_json()
    assert ntsc["fps"] == pytest.approx(29.97, abs=0.001)
    assert ntsc["probe"]["fps_rational"] == "30000/1001" and ntsc["order"] == 1

    silent = await (await upload(client, project, clips["silent"])).get_json()
    assert silent["probe"]["has_audio"] is False and silent["probe"]["audio_codec"] is None

    portrait = await (await upload(client, project, clips["portrait"])).get_json()
    assert portrait["probe"]["rotation"] in (90, 270)
    assert (portrait["probe"]["coded_width"], portrait["probe"]["coded_height"]) == (320, 180)
    assert (portrait["width"], portrait["height"]) == (180, 320)  # as displayed
    with Image.open(app.storage.thumbnails / f"{portrait['uuid']}.jpg") as image:
        assert image.size[0] < image.size[1]

    response = await client.get(f"/api/videos/{portrait['uuid']}/thumbnail")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    Image.open(io.BytesIO(await response.get_data())).verify()

    detail = await (await client.get(f"/api/projects/{project}")).get_json()
    assert [v["uuid"] for v in detail["videos"]] == [
        video["uuid"], ntsc["uuid"], silent["uuid"], portrait["uuid"]
    ]


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("text", "not a video"),
        ("png", "still image"),
        ("truncated", "not a video"),
        ("audio", "only audio"),
    ],
)
async def test_not_a_video_leaves_nothing(client, app: StinercutApp, clips, kind: str, words: str) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(client)
    response = await upload(client, project, clips[kind])
    assert response.status_code == 422
    error = (await response.get_json())["error"]
    assert error["code"] == "invalid_media" and words in error["message"], error
    assert list((app.storage.uploads / project).iterdir()) == []
    assert list(app.storage.thumbnails.iterdir()) == []
    assert leftovers(app.storage.root) == []
    assert await app.db.run(lambda s: s.scalars(select(Video)).all()) == []

    # The same through registration: 422, and the file is left where it was.
    target = app.storage.uploads / "card" / clips[kind].name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(clips[kind].read_bytes())
    response = await client.post(
        f"/api/projects/{project}/videos", json={"path": f"uploads/card/{target.name}"}
    )
    assert response.status_code == 422 and target.exists()


async def test_register_path(client, app: StinercutApp, clips, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(client)
    card = app.storage.uploads / "card-1" / "DCIM"
    card.mkdir(parents=True)
    (card / "GX010042.MP4").write_bytes(clips["plain"].read_bytes())
    url = f"/api/projects/{project}/videos"

    response = await client.post(url, json={"path": "uploads/card-1/DCIM/GX010042.MP4"})
    assert response.status_code == 201
    video = await response.get_json()
    assert video["path"] == "uploads/card-1/DCIM/GX010042.MP4"
    assert video["filename"] == "GX010042.MP4"
    assert (app.storage.thumbnails / f"{video['uuid']}.jpg").exists()

    outside = tmp_path / "outside.mp4"
    outside.write_bytes(clips["plain"].read_bytes())
    os.symlink(outside, app.storage.uploads / "escape.mp4")
    os.symlink(tmp_path, app.storage.uploads / "escape-dir")
    for path in [
        str(outside),
        "/etc/passwd",
        "../outside.mp4",
        "uploads/../../outside.mp4",
        "uploads/escape.mp4",
        "uploads/escape-dir/outside.mp4",
        "uploads/a\x00.mp4",
        "uploads\\card-1\\DCIM\\GX010042.MP4",
    ]:
        response = await client.post(url, json={"path": path})
        error = (await response.get_json())["error"]
        assert response.status_code == 400, (path, error)
        assert error["code"] == "unsafe_path" and error["details"] == {"field": "path"}

    for path in ["uploads/nothing-here.mp4", "uploads/card-1"]:
        response = await client.post(url, json={"path": path})
        assert response.status_code == 422
        assert (await response.get_json())["error"]["code"] == "file_not_found"

    for body in [{}, {"path": ""}, {"path": 7}, {"path": "u" * 501}, {"path": "x", "extra": 1}, []]:
        response = await client.post(url, json=body)
        assert response.status_code == 422, body
        assert (await response.get_json())["error"]["code"] == "validation_error"

    response = await client.post(url, data=b"path=x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    response = await client.post(
        "/api/projects/0d7e2f2c-1111-4222-8333-444455556666/videos",
        json={"path": "uploads/card-1/DCIM/GX010042.MP4"},
    )
    assert response.status_code == 404


async def test_register_refuses_uploads_in_progress(client, app: StinercutApp, clips) -> None:  # type: ignore[no-untyped-def]
    # Files named .upload-… are uploads still being received: never registrable,
    # for clips or assets, whether named directly, as a folder, or via a symlink.
    project = await new_project(client)
    folder = app.storage.uploads / project
    folder.mkdir(parents=True)
    (folder / ".upload-0123456789abcdef.mp4").write_bytes(clips["plain"].read_bytes())
    (folder / ".upload-dir").mkdir()
    (folder / ".upload-dir" / "clip.mp4").write_bytes(clips["plain"].read_bytes())
    os.symlink(folder / ".upload-0123456789abcdef.mp4", folder / "alias.mp4")
    paths = [
        f"uploads/{project}/.upload-0123456789abcdef.mp4",
        f"uploads/{project}/.upload-dir/clip.mp4",
        f"uploads/{project}/alias.mp4",
    ]
    for path in paths:
        for url, body in [
            (f"/api/projects/{project}/videos", {"path": path}),
            ("/api/assets", {"type": "intro", "path": path}),
        ]:
            response = await client.post(url, json=body)
            error = (await response.get_json())["error"]
            assert response.status_code == 400, (url, path, error)
            assert error["code"] == "unsafe_path" and error["details"] == {"field": "path"}
            assert "in progress" in error["message"]
    # A name that merely contains the prefix later on is an ordinary file.
    (folder / "my.upload-clip.mp4").write_bytes(clips["plain"].read_bytes())
    response = await client.post(
        f"/api/projects/{project}/videos", json={"path": f"uploads/{project}/my.upload-clip.mp4"}
    )
    assert response.status_code == 201
    assert await app.db.run(lambda s: len(s.scalars(select(Video)).all())) == 1


@pytest.mark.parametrize("tool", ["ffprobe", "ffmpeg"])
async def test_missing_media_tool_is_503_not_invalid_media(
    settings: Settings, clips, tool: str
) -> None:
    app = create_app(attrs.evolve(settings, **{tool: f"/nonexistent/{tool}"}))
    async with app.test_app():
        client = app.test_client()
        project = await new_project(client)
        target = app.storage.uploads / "card" / "plain.mp4"
        target.parent.mkdir(parents=True)
        target.write_bytes(clips["plain"].read_bytes())
        responses = [
            await client.post(
                f"/api/projects/{project}/videos", json={"path": "uploads/card/plain.mp4"}
            ),
            await upload(client, project, clips["plain"]),
            await client.post("/api/assets", json={"type": "intro", "path": "uploads/card/plain.mp4"}),
        ]
        if tool == "ffmpeg":
            responses.pop()  # assets are probed, not thumbnailed: ffmpeg is not needed
        for response in responses:
            error = (await response.get_json())["error"]
            assert response.status_code == 503, error
            assert error["code"] == "tool_missing" and tool in error["message"], error
        assert list((app.storage.uploads / project).iterdir()) == []
        assert list(app.storage.thumbnails.iterdir()) == []
        assert leftovers(app.storage.root) == []
        assert await app.db.run(lambda s: s.scalars(select(Video)).all()) == []


async def test_get_video_and_uuid_errors(client, clips) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(client)
    video = await (await upload(client, project, clips["plain"])).get_json()
    body = await (await client.get(f"/api/videos/{video['uuid'].upper()}")).get_json()
    assert body["uuid"] == video["uuid"] and "probe" not in body
    for url in ("/api/videos/123", "/api/videos/123/thumbnail", f"/api/projects/{project[:-1]}x-/videos"):
        response = await client.get(url) if "projects" not in url else await client.post(url, json={"path": "x"})
        assert response.status_code == 400, url
    missing = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    for url in (f"/api/videos/{missing}", f"/api/videos/{missing}/thumbnail"):
        assert (await client.get(url)).status_code == 404


async def test_thumbnail_missing_file_is_404(client, app: StinercutApp, clips) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(client)
    video = await (await upload(client, project, clips["plain"])).get_json()
    (app.storage.thumbnails / f"{video['uuid']}.jpg").unlink()
    response = await client.get(f"/api/videos/{video['uuid']}/thumbnail")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "file_missing"


async def test_trim_rules(client, clips) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(client)
    video = await (await upload(client, project, clips["plain"])).get_json()
    url = f"/api/videos/{video['uuid']}"
    duration = video["duration"]

    body = await (await client.patch(url, json={"in_point": 0.2, "out_point": 0.8})).get_json()
    assert (body["in_point"], body["out_point"]) == (0.2, 0.8)
    body = await (await client.patch(url, json={"out_point": duration})).get_json()
    assert (body["in_point"], body["out_point"]) == (0.2, duration)
    body = await (await client.patch(url, json={"in_point": None, "out_point": None})).get_json()
    assert (body["in_point"], body["out_point"]) == (0.0, duration)

    for change, field in [
        ({"in_point": 0.5, "out_point": 0.5}, "in_point"),
        ({"in_point": 0.9, "out_point": 0.3}, "in_point"),
        ({"out_point": duration + 0.5}, "out_point"),
        ({"in_point": duration}, "in_point"),
        ({"in_point": duration + 1, "out_point": None}, "in_point"),
    ]:
        response = await client.patch(url, json=change)
        error = (await response.get_json())["error"]
        assert response.status_code == 422, change
        assert error["code"] == "invalid_trim" and error["details"]["field"] == field, (change, error)

    for change in [{"in_point": -1}, {"out_point": 0}, {"in_point": "a"}, {"speed": 2}]:
        response = await client.patch(url, json=change)
        assert response.status_code == 422, change
        assert (await response.get_json())["error"]["code"] == "validation_error"
    response = await client.patch(
        url, data=b'{"in_point": NaN}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422)

    body = await (await client.get(url)).get_json()
    assert (body["in_point"], body["out_point"]) == (0.0, duration)


async def test_reorder_is_exact_and_atomic(client, clips) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(client)
    other = await new_project(client)
    uuids = [(await (await upload(client, project, clips["plain"])).get_json())["uuid"] for _ in range(3)]
    foreign = (await (await upload(client, other, clips["plain"])).get_json())["uuid"]
    url = f"/api/projects/{project}/videos/order"

    wanted = [uuids[2], uuids[0], uuids[1]]
    body = await (await client.put(url, json={"videos": wanted})).get_json()
    assert [v["uuid"] for v in body["videos"]] == wanted
    assert [v["order"] for v in body["videos"]] == [0, 1, 2]

    for videos, key in [
        (wanted[:2], "missing"),
        (wanted + [foreign], "unknown"),
        (wanted + [wanted[0]], "duplicates"),
        ([wanted[0], wanted[1], foreign], "unknown"),
    ]:
        response = await client.put(url, json={"videos": videos})
        error = (await response.get_json())["error"]
        assert response.status_code == 422 and error["code"] == "invalid_order"
        assert error["details"][key], (videos, error)

    for body in [{"videos": ["nope"]}, {"videos": "x"}, {}, {"videos": wanted, "x": 1}]:
        response = await client.put(url, json=body)
        assert response.status_code == 422, body

    detail = await (await client.get(f"/api/projects/{project}")).get_json()
    assert [v["uuid"] for v in detail["videos"]] == wanted  # nothing half-applied


async def test_delete_video(client, app: StinercutApp, clips) -> None:  # type: ignore[no-untyped-def]
    project = await new_project(client)
    videos = [await (await upload(client, project, clips["plain"])).get_json() for _ in range(3)]
    first, middle, last = videos

    response = await client.delete(f"/api/videos/{middle['uuid']}")
    assert response.status_code == 200
    assert not (app.storage.thumbnails / f"{middle['uuid']}.jpg").exists()
    assert (app.storage.root / middle["path"]).exists()
    detail = await (await client.get(f"/api/projects/{project}")).get_json()
    assert [(v["uuid"], v["order"]) for v in detail["videos"]] == [(first["uuid"], 0), (last["uuid"], 1)]

    response = await client.delete(f"/api/videos/{last['uuid']}?purge_files=true")
    assert (await response.get_json())["removed_files"] == 2
    assert not (app.storage.root / last["path"]).exists()

    assert (await client.delete(f"/api/videos/{last['uuid']}")).status_code == 404
    assert (await client.delete("/api/videos/xyz")).status_code == 400
    assert (await client.delete(f"/api/videos/{first['uuid']}?purge_files=maybe")).status_code == 400
