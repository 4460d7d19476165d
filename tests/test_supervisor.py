"""Supervision: hub progress, shutdown → pending, recovery, limits, shared queue, remote cancel."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import trio
import trio_websocket
from sqlalchemy import select

from stinercut_svc import schema
from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.database import Database
from stinercut_svc.jobs import queue
from stinercut_svc.jobs.supervisor import TEMP_MARKER
from stinercut_svc.models import Job, JobStatus, Project, utcnow
from tests.test_render_helpers import (
    LONG_RENDER,
    add_project,
    clip,
    job_row,
    long_clip,
    media_children,
    render_folders,
    set_setting,
    start_render,
    wait_job,
    wait_rendering,
)

FAST = {"output": {"preset": "ultrafast"}}


async def _insert_jobs(app: StinercutApp, project_uuids: list[str], **values) -> list[str]:  # type: ignore[no-untyped-def]
    def insert(session) -> list[str]:  # type: ignore[no-untyped-def]
        uuids = []
        for project_uuid in project_uuids:
            project_id = session.scalars(select(Project.id).where(Project.uuid == project_uuid)).one()
            job = Job(project_id=project_id, progress=0, options=json.dumps(FAST))
            job.status = values.get("status", JobStatus.PENDING)
            for key, value in values.items():
                setattr(job, key, value)
            session.add(job)
            session.flush()
            uuids.append(job.uuid)
        return uuids

    return await app.db.run(insert)


async def test_progress_reaches_a_real_hub_client_in_order(
    app: StinercutApp, live_url: str, media_dir: Path
) -> None:
    project = await add_project(app, [long_clip(media_dir)])
    ws_url = live_url.replace("http://", "ws://") + "/ws?client_type=frontend"
    progress: list[int] = []
    statuses: list[str] = []
    async with trio_websocket.open_websocket_url(ws_url) as ws:
        async with httpx.AsyncClient(base_url=live_url) as http:
            response = await http.post(
                f"/api/projects/{project}/render",
                json={"output": {"width": 640, "height": 360, "preset": "veryfast"}},
            )
        assert response.status_code == 202
        job = response.json()["uuid"]
        with trio.fail_after(120):
            while "completed" not in statuses:
                message = json.loads(await ws.get_message())
                data = message["data"]
                if data.get("job") != job:
                    continue
                assert message["sender"] == "backend" and data["project"] == project
                if message["command"] == "job:progress":
                    assert set(data) == {"job", "project", "progress", "speed", "eta_seconds"}
                    progress.append(data["progress"])
                elif message["command"] == "job:status":
                    statuses.append(data["status"])
                    assert data["status"] != "failed", data
    assert statuses == ["pending", "processing", "completed"]
    assert progress == sorted(progress) and progress[-1] == 100
    assert all(0 <= p <= 99 for p in progress[:-1]) and len(progress) >= 2
    assert (await job_row(app, job))["progress"] == 100


async def test_shutdown_requeues_the_running_job_and_next_start_runs_it(
    settings: Settings, media_dir: Path
) -> None:
    app = create_app(settings)
    async with app.test_app():
        project = await add_project(app, [long_clip(media_dir)])
        job = await start_render(app.test_client(), project, LONG_RENDER)
        await wait_rendering(app, job["uuid"])
    row = await job_row(app, job["uuid"])
    assert row["status"] == "pending", row
    assert (row["claimed_by"], row["started_at"], row["progress"], row["interruptions"]) == (None, None, 0, 0)
    assert media_children() == [] and render_folders(app) == []

    again = create_app(settings)
    async with again.test_app():
        await wait_rendering(again, job["uuid"])
        response = await again.test_client().post(f"/api/jobs/{job['uuid']}/cancel")
        assert (await response.get_json())["status"] == "cancelled"
    assert media_children() == []


async def test_restart_recovery(settings: Settings, media_dir: Path) -> None:
    short = clip(media_dir, "c1s", seconds=1, size="160x120")
    first = create_app(settings)
    async with first.test_app():
        projects = [await add_project(first, [short], name=f"P{i}") for i in range(4)]
        hour_ago = utcnow() - timedelta(hours=1)
        (died,) = await _insert_jobs(
            first, projects[:1], status=JobStatus.PROCESSING, claimed_by="gone-host:1:dead",
            heartbeat_at=hour_ago,
        )  # fmt: skip
        (twice,) = await _insert_jobs(
            first, projects[1:2], status=JobStatus.PROCESSING, interruptions=1, heartbeat_at=None
        )
        (alive,) = await _insert_jobs(
            first, projects[2:3], status=JobStatus.PROCESSING, claimed_by="other-host:1:alive",
            heartbeat_at=utcnow() + timedelta(minutes=5),  # keeps beating for this test's life
        )  # fmt: skip
        dead_pid = _dead_pid()
        (local_dead,) = await _insert_jobs(
            first, projects[3:4], status=JobStatus.PROCESSING,
            claimed_by=f"{socket.gethostname()}:{dead_pid}:x", heartbeat_at=utcnow(),
        )  # fmt: skip
    for name, marker in ((died, True), (alive, True), ("not-a-render", False)):
        folder = first.storage.temp / name
        folder.mkdir(parents=True)
        if marker:
            (folder / TEMP_MARKER).touch()

    second = create_app(settings)
    async with second.test_app():
        assert (await wait_job(second, died))["status"] == "completed"
        assert (await wait_job(second, local_dead))["status"] == "completed"
        failed = await job_row(second, twice)
        assert failed["status"] == "failed" and "interrupted twice" in failed["error_message"]
        assert failed["interruptions"] == 2
        assert (await job_row(second, alive))["status"] == "processing"  # not ours to touch
        assert (await job_row(second, died))["interruptions"] == 1
        assert render_folders(second) == sorted([alive, "not-a-render"])


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


async def test_concurrency_limit_is_respected(
    app: StinercutApp, client, media_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    await set_setting(app, "render.max_concurrent_jobs", "2")
    projects = [await add_project(app, [long_clip(media_dir)], name=f"L{i}") for i in range(3)]
    jobs = [(await start_render(client, p, LONG_RENDER))["uuid"] for p in projects]

    async def statuses() -> list[str]:
        return [(await job_row(app, j))["status"] for j in jobs]

    with trio.fail_after(30):
        while (await statuses()).count("processing") < 2:
            await trio.sleep(0.05)
    for _ in range(20):  # a second and more of watching: never a third
        current = await statuses()
        assert current.count("processing") == 2 and current.count("pending") == 1, current
        assert len(app.supervisor.running) == 2
        await trio.sleep(0.1)
    for job in reversed(jobs):
        response = await client.post(f"/api/jobs/{job}/cancel")
        assert (await response.get_json())["status"] == "cancelled"
    assert media_children() == [] and render_folders(app) == []


async def test_concurrent_claims_never_share_a_job(database_url: str) -> None:
    db = Database(database_url)
    try:
        await trio.to_thread.run_sync(schema.upgrade, db.engine)

        def seed(session) -> None:  # type: ignore[no-untyped-def]
            project = Project(name="queue")
            session.add(project)
            session.flush()
            session.add_all(Job(project_id=project.id, progress=0) for _ in range(40))

        await db.run(seed)
        taken: dict[str, list[str]] = {}

        async def claimer(name: str) -> None:
            taken[name] = []
            while True:
                refs = await db.run(
                    lambda s: queue.claim(s, owner=name, running=0, mysql=db.is_mysql)
                )
                if not refs:
                    return
                taken[name] += [r.uuid for r in refs]

        async with trio.open_nursery() as nursery:
            for i in range(8):
                nursery.start_soon(claimer, f"worker-{i}")
        every = [uuid for claims in taken.values() for uuid in claims]
        assert len(every) == 40 and len(set(every)) == 40
        owners = await db.run(
            lambda s: {j.uuid: j.claimed_by for j in s.scalars(select(Job))}
        )
        for name, claims in taken.items():
            assert all(owners[uuid] == name for uuid in claims)
    finally:
        db.dispose()


@pytest.mark.mysql_only
async def test_two_supervisors_on_mysql_never_run_the_same_job(
    settings: Settings, media_dir: Path
) -> None:
    short = clip(media_dir, "c1s", seconds=1, size="160x120")
    one, two = create_app(settings), create_app(settings)
    async with one.test_app(), two.test_app():
        await set_setting(one, "render.max_concurrent_jobs", "2")
        projects = [await add_project(one, [short], name=f"S{i}") for i in range(8)]
        jobs = await _insert_jobs(one, projects)  # all at once: both instances race for them
        one.supervisor.wake()
        two.supervisor.wake()
        for job in jobs:
            assert (await wait_job(one, job))["status"] == "completed"
    ran_one, ran_two = set(one.supervisor.claimed), set(two.supervisor.claimed)
    assert ran_one.isdisjoint(ran_two)
    assert ran_one | ran_two == set(jobs)
    assert len(one.supervisor.claimed) + len(two.supervisor.claimed) == len(jobs)


async def test_cancel_reaches_the_instance_running_the_job(
    settings: Settings, media_dir: Path
) -> None:
    runner = create_app(settings)
    async with runner.test_app():
        project = await add_project(runner, [long_clip(media_dir)])
        job = await start_render(runner.test_client(), project, LONG_RENDER)
        await wait_rendering(runner, job["uuid"])
        assert runner.supervisor.running == [job["uuid"]]
        other = create_app(settings)
        async with other.test_app():
            assert other.supervisor.running == []
            response = await other.test_client().post(f"/api/jobs/{job['uuid']}/cancel")
            assert response.status_code == 200, await response.get_data(as_text=True)
            assert (await response.get_json())["status"] == "cancelled"
            assert media_children() == []
            assert render_folders(runner) == []
            # The row says cancelled once ffmpeg is reaped and the folder gone; the
            # runner forgets the job a moment later, in its task's last step.
            with trio.fail_after(5):
                while runner.supervisor.running:
                    await trio.sleep(0.01)
    row = await job_row(runner, job["uuid"])
    assert row["status"] == "cancelled" and row["cancel_requested"] is False


def test_owner_liveness() -> None:
    assert queue.owner_is_dead(None)
    assert not queue.owner_is_dead(f"{socket.gethostname()}:{os.getpid()}:abc")
    assert queue.owner_is_dead(f"{socket.gethostname()}:{_dead_pid()}:abc")
    assert not queue.owner_is_dead("some-other-host:1:abc")


async def test_max_concurrent_setting_is_read_defensively(app: StinercutApp) -> None:
    for raw, expected in (("3", 3), ("0", 1), ("-2", 1), ("lots", 1), ("1000", 1)):
        await set_setting(app, "render.max_concurrent_jobs", raw)
        values = await app.db.run(queue.read_render_settings)
        assert queue.max_concurrent(values) == expected, raw
