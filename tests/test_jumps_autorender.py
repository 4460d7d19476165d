"""``INGEST_AUTO_RENDER=true``: a jump that resolves queues a render of its customer's
project, through the same job creation as ``POST /api/projects/{uuid}/render``.

The files are real (tiny ffmpeg clips under ``input/<batch>/``), because the job
creation checks that every clip's source file exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import httpx
import pytest
import trio
from sqlalchemy import select
from sqlalchemy.orm import Session

from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.ingest.freefall import Phase
from stinercut_svc.ingest.resolve import JumpState, ManualReason
from stinercut_svc.models import Job, Project
from stinercut_svc.models.ingest import Jump, VideoFile
from stinercut_svc.services import jumps as service
from tests.support.jump_rows import Chapter, JumpSpec, Rec, add_batch
from tests.support.media import make_clip

CUSTOMER = "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return attrs.evolve(settings, ingest_auto_render=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("autorender") / "clip.mp4", seconds=2.0)


@pytest.fixture
async def http(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        yield client


def _card() -> list[JumpSpec]:
    """2 s recordings: a QR shot (code until 0.5 s) and a jump with a 1 s freefall; then
    a second QR-less jump of the same kind."""
    qr = Rec("GH:0001", [Chapter(2.0, [(Phase.QR_CODE, 0.0, 0.5)])], qr=CUSTOMER)
    jump = Rec(
        "GH:0002",
        [Chapter(2.0, [(Phase.FREEFALL, 0.4, 1.4), (Phase.GROUND_AFTER, 1.6, 2.0)])],
    )
    loose = Rec("GH:0003", [Chapter(2.0, [(Phase.FREEFALL, 0.2, 1.2)])])
    return [
        JumpSpec(
            recordings=[qr, jump],
            state=JumpState.RESOLVED,
            qr_code=CUSTOMER,
            freefall=("GH:0002", 0.4, 1.4),
        ),
        JumpSpec(recordings=[loose], reasons=[ManualReason.MISSING_QR]),
    ]


async def _seed(app: StinercutApp, clip: Path, *, with_files: bool = True) -> tuple[str, list[str]]:
    def seed(session: Session) -> tuple[str, list[str], list[str]]:
        session.add(Project(uuid=CUSTOMER, name="Auto Render"))
        session.flush()
        batch = add_batch(session, _card())
        paths = session.scalars(
            select(VideoFile.filepath).where(VideoFile.import_batch_id == batch.id)
        ).all()
        jumps = session.scalars(
            select(Jump.uuid).where(Jump.import_batch_id == batch.id).order_by(Jump.sequence)
        ).all()
        return batch.uuid, list(paths), list(jumps)

    batch, paths, jumps = await app.db.run(seed)
    if with_files:
        for relative in paths:
            target = app.storage.root / "input" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(clip.read_bytes())
    return batch, jumps


async def _jobs(app: StinercutApp) -> list[tuple[str, str]]:
    def load(session: Session) -> list[tuple[str, str]]:
        rows = session.execute(
            select(Job.uuid, Project.uuid).join(Project, Project.id == Job.project_id)
        ).all()
        return [(r[0], r[1]) for r in rows]

    return await app.db.run(load)


async def test_resolved_jump_queues_one_render(app: StinercutApp, clip: Path) -> None:
    batch, _jumps = await _seed(app, clip)
    await service.apply_resolved(app, batch)
    jobs = await _jobs(app)
    assert [project for _job, project in jobs] == [CUSTOMER]
    # a re-run that changes nothing queues nothing more
    await service.apply_resolved(app, batch)
    assert await _jobs(app) == jobs
    # the job renders the filled timeline to the end
    with trio.fail_after(120):
        while True:
            status = await app.db.run(
                lambda s: s.scalars(select(Job.status).where(Job.uuid == jobs[0][0])).one()
            )
            if status.value in ("completed", "failed"):
                break
            await trio.sleep(0.2)
    error = await app.db.run(
        lambda s: s.scalars(select(Job.error_message).where(Job.uuid == jobs[0][0])).one()
    )
    assert status.value == "completed", error


async def test_staff_resolution_answers_with_the_render(
    app: StinercutApp, http: httpx.AsyncClient, clip: Path
) -> None:
    _batch, jumps = await _seed(app, clip)
    other = (await http.post("/api/projects", json={"name": "Walk-in"})).json()["uuid"]
    response = await http.post(f"/api/jumps/{jumps[1]}/assign", json={"project_uuid": other})
    assert response.status_code == 200, response.text
    (render,) = response.json()["renders"]
    assert render["project_uuid"] == other and render["error"] is None
    assert (render["job_uuid"], other) in await _jobs(app)
    # assigning again to the same project changes nothing and renders nothing
    response = await http.post(f"/api/jumps/{jumps[1]}/assign", json={"project_uuid": other})
    assert response.json()["renders"] == []


async def test_a_refused_render_is_reported_not_raised(
    app: StinercutApp, http: httpx.AsyncClient, clip: Path
) -> None:
    _batch, jumps = await _seed(app, clip, with_files=False)
    other = (await http.post("/api/projects", json={"name": "No Files"})).json()["uuid"]
    response = await http.post(f"/api/jumps/{jumps[1]}/assign", json={"project_uuid": other})
    assert response.status_code == 200, response.text
    (render,) = response.json()["renders"]
    assert render["job_uuid"] is None
    assert "GH:0003" in render["error"] and "missing" in render["error"]
    assert await _jobs(app) == []
