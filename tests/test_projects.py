"""``/api/projects``: listing and filters, creation, settings validation, detail, delete."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Asset, AssetType, Job, JobStatus, Project, ProjectStatus, Video
from tests.support.media import make_clip
from tests.test_uploads import multipart


async def create(client, name: str = "Jump", **extra) -> dict:  # type: ignore[no-untyped-def]
    response = await client.post("/api/projects", json={"name": name, **extra})
    assert response.status_code == 201, await response.get_data()
    return await response.get_json()


async def error_of(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, await response.get_data()
    body = await response.get_json()
    assert set(body) <= {"error", "detail"} and "error" in body  # detail: the original's key
    return body["error"]


async def test_create_and_get(client) -> None:  # type: ignore[no-untyped-def]
    project = await create(client, "  Tandem Anna  ", settings={"audio_mode": "mix"})
    assert project["name"] == "Tandem Anna"
    assert project["status"] == "draft"
    assert project["settings"] == {"audio_mode": "mix"}
    assert project["created_at"].endswith("Z") and isinstance(project["id"], int)

    response = await client.get(f"/api/projects/{project['uuid']}")
    detail = await response.get_json()
    assert response.status_code == 200
    assert detail["uuid"] == project["uuid"]
    assert detail["videos"] == [] and detail["jobs"] == []


async def test_create_validation(client) -> None:  # type: ignore[no-untyped-def]
    cases = [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": 5}, "name"),
        ({"name": "ok", "colour": "red"}, "colour"),
        ({"name": "ok", "settings": {"bogus": 1}}, "settings.bogus"),
        ({"name": "ok", "settings": {"music_volume": "loud"}}, "settings.music_volume"),
        ({"name": "ok", "settings": {"output": {"width": 333}}}, "settings.output.width"),
        ({"name": "ok", "settings": []}, "settings"),
    ]
    for body, field in cases:
        error = await error_of(await client.post("/api/projects", json=body), 422)
        fields = [f["field"] for f in error["details"]["fields"]]
        assert any(f == field or f.startswith(field) for f in fields), (body, fields)

    error = await error_of(
        await client.post(
            "/api/projects", data=b'{"name": ', headers={"Content-Type": "application/json"}
        ),
        400,
    )
    assert error["code"] == "invalid_json"


async def test_settings_asset_references(client, app: StinercutApp) -> None:  # type: ignore[no-untyped-def]
    def add_assets(session) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        intro = Asset(type=AssetType.INTRO, name="intro", path="uploads/assets/i.mp4")
        music = Asset(type=AssetType.AUDIO_FREEFALL, name="ff", path="uploads/assets/m.m4a")
        session.add_all([intro, music])
        session.flush()
        return intro.uuid, music.uuid

    intro, music = await app.db.run(add_assets)
    project = await create(client, settings={"intro_asset": intro, "audio_asset": music})
    assert project["settings"] == {"intro_asset": intro, "audio_asset": music}

    error = await error_of(
        await client.post("/api/projects", json={"name": "x", "settings": {"outro_asset": intro}}),
        422,
    )
    assert "is a intro" in error["message"] and error["details"]["field"] == "settings.outro_asset"
    missing = "00000000-0000-4000-8000-000000000000"
    error = await error_of(
        await client.post(
            "/api/projects", json={"name": "x", "settings": {"watermark_asset": missing}}
        ),
        422,
    )
    assert "does not exist" in error["message"]


async def test_list_filters_and_paging(client, app: StinercutApp) -> None:  # type: ignore[no-untyped-def]
    for name in ["Alpha jump", "beta JUMP", "Gamma", "100%_done"]:
        await create(client, name)

    def mark(session) -> None:  # type: ignore[no-untyped-def]
        project = session.scalars(select(Project).where(Project.name == "Gamma")).one()
        project.status = ProjectStatus.COMPLETED

    await app.db.run(mark)

    body = await (await client.get("/api/projects")).get_json()
    assert body["total"] == 4 and len(body["items"]) == 4
    assert body["limit"] == 50 and body["offset"] == 0

    body = await (await client.get("/api/projects?q=jump")).get_json()
    assert sorted(p["name"] for p in body["items"]) == ["Alpha jump", "beta JUMP"]
    # LIKE wildcards in q are literal characters.
    body = await (await client.get("/api/projects?q=%25_")).get_json()
    assert [p["name"] for p in body["items"]] == ["100%_done"]

    body = await (await client.get("/api/projects?status=completed")).get_json()
    assert [p["name"] for p in body["items"]] == ["Gamma"] and body["total"] == 1

    page = await (await client.get("/api/projects?limit=3&offset=2")).get_json()
    assert page["total"] == 4 and len(page["items"]) == 2

    for query, field in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("offset=-1", "offset"),
        ("limit=abc", "limit"),
        ("status=bogus", "status"),
        ("colour=red", "colour"),
    ]:
        error = await error_of(await client.get(f"/api/projects?{query}"), 400)
        assert field in error["message"], query


async def test_patch(client) -> None:  # type: ignore[no-untyped-def]
    project = await create(client, settings={"audio_mode": "mix", "music_volume": 0.5})
    url = f"/api/projects/{project['uuid']}"

    body = await (await client.patch(url, json={"name": "Renamed"})).get_json()
    assert body["name"] == "Renamed" and body["settings"] == {"audio_mode": "mix", "music_volume": 0.5}

    body = await (await client.patch(url, json={"settings": {"audio_mode": "replace"}})).get_json()
    assert body["settings"] == {"audio_mode": "replace"}  # replaced as a whole

    body = await (await client.patch(url, json={"settings": None})).get_json()
    assert body["settings"] == {}

    await error_of(await client.patch(url, json={"name": None}), 422)
    await error_of(await client.patch(url, json={"settings": {"preset": "fast"}}), 422)
    await error_of(await client.patch(url, json={"uuid": "x"}), 422)


async def test_uuid_errors(client) -> None:  # type: ignore[no-untyped-def]
    for method in ("get", "patch", "delete"):
        call = getattr(client, method)
        kwargs = {"json": {}} if method == "patch" else {}
        error = await error_of(await call("/api/projects/not-a-uuid", **kwargs), 400)
        assert error["code"] == "invalid_uuid" and error["details"] == {"field": "uuid"}
        error = await error_of(
            await call("/api/projects/3f2b8a9e-0000-4000-8000-000000000000", **kwargs), 404
        )
        assert error["code"] == "not_found"


async def test_detail_lists_timeline_and_recent_jobs(client, app: StinercutApp) -> None:  # type: ignore[no-untyped-def]
    project = await create(client)

    def fill(session) -> None:  # type: ignore[no-untyped-def]
        row = session.scalars(select(Project).where(Project.uuid == project["uuid"])).one()
        for order in (2, 0, 1):
            session.add(Video(project_id=row.id, filename=f"{order}.mp4", path=f"uploads/{order}.mp4", order=order))
        for _ in range(12):
            session.add(Job(project_id=row.id, status=JobStatus.COMPLETED, progress=100))

    await app.db.run(fill)
    detail = await (await client.get(f"/api/projects/{project['uuid']}")).get_json()
    assert [v["filename"] for v in detail["videos"]] == ["0.mp4", "1.mp4", "2.mp4"]
    assert len(detail["jobs"]) == 10
    assert detail["jobs"][0]["id"] > detail["jobs"][-1]["id"]


async def test_delete_removes_rows_thumbnails_outputs(
    client, app: StinercutApp, media_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    clip = media_dir / "project-delete.mp4"
    if not clip.exists():
        make_clip(clip, seconds=0.5)
    project = await create(client)
    url = f"/api/projects/{project['uuid']}"
    body, ctype = multipart(file=("a.mp4", clip.read_bytes()))
    video = await (await client.post(f"{url}/videos", data=body, headers={"Content-Type": ctype})).get_json()
    source = app.storage.root / video["path"]
    thumb = app.storage.thumbnails / f"{video['uuid']}.jpg"
    output = app.storage.output / "render.mp4"
    output.write_bytes(b"rendered")

    def add_job(session, status: JobStatus) -> str:  # type: ignore[no-untyped-def]
        row = session.scalars(select(Project).where(Project.uuid == project["uuid"])).one()
        job = Job(project_id=row.id, status=status, progress=0, output_path="output/render.mp4")
        session.add(job)
        session.flush()
        return job.uuid

    running = await app.db.run(lambda s: add_job(s, JobStatus.PROCESSING))
    error = await error_of(await client.delete(url), 409)
    assert error["details"]["jobs"] == [running]

    def finish(session) -> None:  # type: ignore[no-untyped-def]
        session.scalars(select(Job).where(Job.uuid == running)).one().status = JobStatus.COMPLETED

    await app.db.run(finish)
    response = await client.delete(url)
    assert response.status_code == 200
    assert (await response.get_json())["removed_files"] == 2
    assert not thumb.exists() and not output.exists()
    assert source.exists()  # uploaded sources stay without purge_files
    await error_of(await client.get(url), 404)
    counts = await app.db.run(
        lambda s: (len(s.scalars(select(Video)).all()), len(s.scalars(select(Job)).all()))
    )
    assert counts == (0, 0)


async def test_delete_with_purge_keeps_shared_files(
    client, app: StinercutApp, media_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    clip = media_dir / "project-purge.mp4"
    if not clip.exists():
        make_clip(clip, seconds=0.5)
    first = await create(client, "first")
    second = await create(client, "second")
    body, ctype = multipart(file=("own.mp4", clip.read_bytes()))
    own = await (
        await client.post(f"/api/projects/{first['uuid']}/videos", data=body, headers={"Content-Type": ctype})
    ).get_json()
    shared_file = app.storage.uploads / "card" / "GX01.MP4"
    shared_file.parent.mkdir(parents=True)
    shared_file.write_bytes(clip.read_bytes())
    for project in (first, second):
        response = await client.post(
            f"/api/projects/{project['uuid']}/videos", json={"path": "uploads/card/GX01.MP4"}
        )
        assert response.status_code == 201

    response = await client.delete(f"/api/projects/{first['uuid']}?purge_files=true")
    assert response.status_code == 200
    assert not (app.storage.root / own["path"]).exists()
    assert not (app.storage.uploads / first["uuid"]).exists()
    assert shared_file.exists()  # still used by the second project
    detail = await (await client.get(f"/api/projects/{second['uuid']}")).get_json()
    assert len(detail["videos"]) == 1

    stored = await app.db.run(lambda s: s.scalars(select(Project.settings)).all())
    assert all(json.loads(text) == {} for text in stored)


async def test_concurrent_detail_reads_never_stale(live_url: str) -> None:
    # Readers hammer one project over real sockets (their reads are shared) while a
    # writer renames it: a read that starts after a rename was acknowledged must
    # show it, however the reads were grouped.
    import httpx
    import trio

    limits = httpx.Limits(max_connections=12)
    async with httpx.AsyncClient(base_url=live_url, limits=limits, timeout=30) as http:
        project = (await http.post("/api/projects", json={"name": "v0"})).json()
        target = f"/api/projects/{project['uuid']}"
        seen: list[str] = []
        stop = trio.Event()

        async def reader() -> None:
            while not stop.is_set():
                response = await http.get(target)
                assert response.status_code == 200
                seen.append(response.json()["name"])

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(reader)
            for version in range(1, 16):
                patched = await http.patch(target, json={"name": f"v{version}"})
                assert patched.status_code == 200
                assert (await http.get(target)).json()["name"] == f"v{version}"
            stop.set()
        unknown = await http.get("/api/projects/00000000-0000-4000-8000-000000000000")
        assert unknown.status_code == 404
    assert len(seen) > 15  # the readers really ran beside the writer
