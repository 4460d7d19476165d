"""Job routes: render refusals, list/show, cancel (pending and processing), delete, download."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import select

from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Job, JobStatus, Project, Video
from tests.test_render_helpers import (
    LONG_RENDER,
    add_asset,
    add_project,
    broken_clip,
    clip,
    job_row,
    long_clip,
    media_children,
    opaque_png,
    project_status,
    render_folders,
    start_render,
    wait_job,
    wait_rendering,
)

FAST = {"output": {"preset": "ultrafast"}}


async def _error(response) -> dict:  # type: ignore[no-untyped-def]
    body = await response.get_json()
    assert set(body) == {"error", "detail"}, body
    return body["error"]


async def test_render_refusals(app: StinercutApp, client, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    short = clip(media_dir, "c1s", seconds=1, size="160x120")
    empty = await add_project(app, [])
    response = await client.post(f"/api/projects/{empty}/render")
    assert response.status_code == 422 and "no clips" in (await _error(response))["message"]

    project = await add_project(app, [short])
    missing = str(uuid.uuid4())
    mark = await add_asset(app, "watermark", opaque_png(media_dir), "Logo")
    cases = [
        ({"intro_asset": missing}, 422, f"intro_asset: asset {missing} does not exist"),
        ({"intro_asset": mark}, 422, "is a watermark asset, not intro"),
        ({"bogus": 1}, 422, "bogus"),
        ({"watermark_position": "middle"}, 422, "watermark_position"),
        ({"output": {"width": 33}}, 422, "output.width"),
    ]
    for body, status, text in cases:
        response = await client.post(f"/api/projects/{project}/render", json=body)
        assert response.status_code == status, (body, await response.get_data(as_text=True))
        assert text in (await _error(response))["message"], body

    response = await client.post(
        f"/api/projects/{project}/render", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    response = await client.post(f"/api/projects/{uuid.uuid4()}/render")
    assert response.status_code == 404
    response = await client.post("/api/projects/not-a-uuid/render")
    assert response.status_code == 400

    # Bad settings stored by someone else are named, not a 500.
    bad = await add_project(app, [short], settings={"watermark_scale": 7})
    response = await client.post(f"/api/projects/{bad}/render")
    assert response.status_code == 422 and "watermark_scale" in (await _error(response))["message"]

    # A clip whose file vanished.
    gone = await add_project(app, [short])

    def clip_path(session) -> str:  # type: ignore[no-untyped-def]
        project_id = session.scalars(select(Project.id).where(Project.uuid == gone)).one()
        return session.scalars(select(Video.path).where(Video.project_id == project_id)).one()

    app.storage.resolve(await app.db.run(clip_path)).unlink()
    response = await client.post(f"/api/projects/{gone}/render")
    assert response.status_code == 422 and "is missing" in (await _error(response))["message"]
    assert await app.db.run(lambda s: s.scalar(select(Job.id).limit(1))) is None


async def test_render_list_show_download_delete(
    app: StinercutApp, client, media_dir: Path, built_in_defaults: None  # type: ignore[no-untyped-def]
) -> None:
    project = await add_project(app, [clip(media_dir, "c1s", seconds=1, size="160x120")], name="Jump Ä/1")
    job = await start_render(client, project, FAST)
    response = await client.post(f"/api/projects/{project}/render", json=FAST)
    assert response.status_code == 409  # one active job per project
    assert (await _error(response))["details"]["job"] == job["uuid"]
    response = await client.get(f"/api/jobs/{job['uuid']}/output")
    assert response.status_code in (409, 200)  # may already be done on a fast machine

    done = await wait_job(app, job["uuid"])
    assert done["status"] == "completed"
    shown = await (await client.get(f"/api/jobs/{job['uuid']}")).get_json()
    assert shown["status"] == "completed" and shown["project_uuid"] == project
    assert shown["options"] == FAST and shown["render_path"] == "fastpath"

    listing = await (await client.get(f"/api/jobs?project={project}&status=completed")).get_json()
    assert [j["uuid"] for j in listing["items"]] == [job["uuid"]] and listing["total"] == 1
    listing = await (await client.get("/api/jobs?status=failed")).get_json()
    assert listing["items"] == [] and listing["total"] == 0
    for query, status in (("status=done", 400), ("limit=0", 400), ("project=x", 400),
                          (f"project={uuid.uuid4()}", 404), ("colour=red", 400)):  # fmt: skip
        response = await client.get(f"/api/jobs?{query}")
        assert response.status_code == status, query
    assert (await client.get(f"/api/jobs/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/api/jobs/nope")).status_code == 400

    path = app.storage.resolve(done["output_path"])
    whole = await client.get(f"/api/jobs/{job['uuid']}/output")
    assert whole.status_code == 200
    assert whole.headers["Content-Type"] == "video/mp4"
    disposition = whole.headers["Content-Disposition"]
    # "Jump Ä/1": the name keeps its letter in filename* (RFC 6266), ASCII fallback beside it
    assert disposition.startswith("attachment") and 'filename="Jump-A-1-' in disposition
    assert "filename*=UTF-8''Jump-%C3%84-1-" in disposition and disposition.endswith(".mp4")
    assert await whole.get_data() == path.read_bytes()
    part = await client.get(f"/api/jobs/{job['uuid']}/output", headers={"Range": "bytes=10-109"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 10-109/{path.stat().st_size}"
    assert await part.get_data() == path.read_bytes()[10:110]

    assert (await client.post(f"/api/jobs/{job['uuid']}/cancel")).status_code == 409
    response = await client.delete(f"/api/jobs/{job['uuid']}")
    assert response.status_code == 200
    assert await response.get_json() == {"deleted": job["uuid"], "removed_files": 1}
    assert not path.exists()
    assert (await client.get(f"/api/jobs/{job['uuid']}")).status_code == 404
    assert (await client.delete(f"/api/jobs/{job['uuid']}")).status_code == 404


async def test_cancel_pending_then_processing(
    app: StinercutApp, client, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    busy = await add_project(app, [long_clip(media_dir)], name="Long")
    waiting = await add_project(app, [clip(media_dir, "c1s", seconds=1, size="160x120")], name="Queued")
    running = await start_render(client, busy, LONG_RENDER)
    await wait_rendering(app, running["uuid"])
    queued = await start_render(client, waiting, FAST)
    assert (await job_row(app, queued["uuid"]))["status"] == "pending"  # one job at a time

    # Pending: cancelled at once, and it never runs.
    response = await client.post(f"/api/jobs/{queued['uuid']}/cancel")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "cancelled" and body["completed_at"] is not None
    assert (await client.post(f"/api/jobs/{queued['uuid']}/cancel")).status_code == 200  # idempotent
    assert await project_status(app, waiting) == "draft"

    # Processing: the answer comes once ffmpeg is gone and nothing is left behind.
    assert (await client.delete(f"/api/jobs/{running['uuid']}")).status_code == 409
    response = await client.post(f"/api/jobs/{running['uuid']}/cancel")
    assert response.status_code == 200, await response.get_data(as_text=True)
    body = await response.get_json()
    assert body["status"] == "cancelled" and body["completed_at"] is not None
    assert body["output_path"] is None
    assert media_children() == []
    assert render_folders(app) == []
    assert not (app.storage.output / busy).exists() or list((app.storage.output / busy).iterdir()) == []
    assert await project_status(app, busy) == "draft"
    assert app.supervisor.running == []
    assert (await job_row(app, queued["uuid"]))["status"] == "cancelled"


async def test_ffmpeg_failure_is_recorded_with_its_stderr(
    app: StinercutApp, client, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    project = await add_project(app, [broken_clip(media_dir)])
    job = await start_render(client, project, FAST)
    done = await wait_job(app, job["uuid"])
    assert done["status"] == "failed"
    assert done["error_message"].startswith("ffmpeg failed (exit code")
    assert "Invalid" in done["error_message"] or "Error" in done["error_message"]
    assert done["output_path"] is None and done["completed_at"] is not None
    assert await project_status(app, project) == "error"
    assert render_folders(app) == [] and media_children() == []
    response = await client.get(f"/api/jobs/{job['uuid']}/output")
    assert response.status_code == 409


async def test_input_missing_at_run_time_fails_clearly(
    app: StinercutApp, media_dir: Path
) -> None:
    project = await add_project(app, [clip(media_dir, "c1s", seconds=1, size="160x120")])

    def remove_file_then_queue(session) -> str:  # type: ignore[no-untyped-def]
        # The file disappears after the request was accepted: the job row is
        # inserted directly, as if the route had checked it a moment earlier.
        row = session.scalars(select(Project).where(Project.uuid == project)).one()
        video = session.scalars(select(Video).where(Video.project_id == row.id)).one()
        app.storage.resolve(video.path).unlink()
        job = Job(project_id=row.id, status=JobStatus.PENDING, progress=0, options=json.dumps({}))
        session.add(job)
        session.flush()
        return job.uuid

    job_uuid = await app.db.run(remove_file_then_queue)
    app.supervisor.wake()
    done = await wait_job(app, job_uuid)
    assert done["status"] == "failed"
    assert "source file" in done["error_message"] and "is missing" in done["error_message"]
    assert render_folders(app) == []


async def test_missing_ffprobe_fails_the_job_with_a_clear_message(
    settings, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    import attrs

    from stinercut_svc.app import create_app
    from tests.support.server import running_server

    app = create_app(attrs.evolve(settings, ffprobe="/nonexistent/ffprobe"))
    async with running_server(app):
        project = await add_project(app, [clip(media_dir, "c1s", seconds=1, size="160x120")])
        job = await start_render(app.test_client(), project, FAST)
        done = await wait_job(app, job["uuid"])
    assert done["status"] == "failed"
    assert "/nonexistent/ffprobe is not installed" in done["error_message"]
    assert "internal error" not in done["error_message"]
