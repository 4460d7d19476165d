"""One setting cuts the ground after the landing: ``INGEST_GROUND_AFTER_LANDING_S``.

The resolver (the jump's clip ranges, stored as the batch files' in/out points) and the
project filler (the customer's ``video`` rows) both end the landing recording that many
seconds after the landing; the resolver used a fixed 30 s before, so a jump waiting for
staff showed one edit and a customer's timeline another. Real card, real server, real
analysis, run with two values of the setting: both cuts move with it, and agree.

Two identical jumps: one with the customer's QR (resolved), one with a QR naming nobody
(needs_manual). The resolver's cut is read from the files' rows as the analysis stored
them, at the moment the pipeline calls its ``apply_resolved`` hook (a pass-through
wrapper around the real one; the filler then rewrites the rows of the jumps it places).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.ingest.handler import ImportHandler, app_hooks
from stinercut_svc.jobs.supervisor import Supervisor, kinds
from stinercut_svc.models import Project
from stinercut_svc.models.ingest import VideoFile
from tests.support.cards import gopro_folder, make_jump_clip
from tests.support.server import running_server
from tests.test_imports import finished, qr_clip, wait_for

CUSTOMER = "3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b"
NOBODY = "4f5a6b7c-8d9e-4f0a-9b1c-2d3e4f5a6b7c"
LANDING_S = 30.0  # freefall 5 s .. 30 s, quiet after it: the landing
TOLERANCE = 0.6  # the detector's ±0.5 s plus the stored rounding


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("landing-card") / "card"
    g = gopro_folder(root)
    qr_clip(g / "GH010001.MP4", CUSTOMER, seconds=3, creation_time="2026-12-01T09:00:00Z")
    make_jump_clip(
        g / "GH010002.MP4", seconds=55, freefall=(5.0, 25.0), creation_time="2026-12-01T09:01:00Z"
    )
    qr_clip(g / "GH010003.MP4", NOBODY, seconds=3, creation_time="2026-12-01T09:30:00Z")
    make_jump_clip(
        g / "GH010004.MP4", seconds=55, freefall=(5.0, 25.0), creation_time="2026-12-01T09:31:00Z"
    )
    return root


@attrs.frozen
class Served:
    http: httpx.AsyncClient
    after: float
    #: (in, out) per file name as the analysis stored them, before the filler ran.
    stored: dict[str, tuple[float | None, float | None]]


def spying_supervisor(
    app: StinercutApp, stored: dict[str, tuple[float | None, float | None]]
) -> Supervisor:
    real = app_hooks(app)

    async def apply_resolved(batch_uuid: str) -> object:
        def read(session: Session) -> dict[str, tuple[float | None, float | None]]:
            rows = session.scalars(
                select(VideoFile).where(VideoFile.import_folder_uuid == batch_uuid)
            )
            return {f.original_filename: (f.in_point, f.out_point) for f in rows}

        stored.update(await app.db.run(read))
        return await real.apply_resolved(batch_uuid)

    hooks = attrs.evolve(real, apply_resolved=apply_resolved)
    return Supervisor(app, kinds=kinds(lambda services: ImportHandler(services, hooks)))


@pytest.fixture(params=[5.0, 12.0])
async def served(
    request: pytest.FixtureRequest, settings: Settings, card: Path
) -> AsyncIterator[Served]:
    after = float(request.param)
    configured = attrs.evolve(
        settings, import_roots=(card.parent,), ingest_ground_after_landing_s=after
    )
    app = create_app(configured)
    stored: dict[str, tuple[float | None, float | None]] = {}
    app.supervisor = spying_supervisor(app, stored)

    def add(session: Session) -> None:
        session.add(Project(uuid=CUSTOMER, name="Customer"))

    async with running_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        await app.db.run(add)
        yield Served(http, after, stored)


async def test_ground_after_landing_setting_drives_the_jump_and_the_project(
    served: Served, card: Path
) -> None:
    http, after = served.http, served.after
    answer = await http.post("/api/imports", json={"path": str(card)})
    assert answer.status_code == 202, answer.text
    detail = await finished(http, answer.json()["uuid"])
    assert detail["status"] == "needs_manual", detail["jumps"]
    known, stranger = detail["jumps"]
    assert (known["state"], stranger["reasons"]) == ("resolved", ["unknown_customer"])
    for jump in (known, stranger):
        assert abs(jump["freefall"]["end"] - LANDING_S) <= TOLERANCE, jump

    async def filled() -> list[dict[str, Any]]:
        return (await http.get(f"/api/projects/{CUSTOMER}")).json()["videos"]

    videos = await wait_for(filled, "the customer's project to be filled")
    assert [v["filename"] for v in videos] == ["GH010002.MP4"]
    project_cut = videos[0]["out_point"]  # the filler's cut, on the customer's timeline
    assert abs(project_cut - (LANDING_S + after)) <= TOLERANCE, (project_cut, after)

    # The resolver's clips as stored by the analysis, for both jumps.
    for name in ("GH010002.MP4", "GH010004.MP4"):
        _, jump_cut = served.stored[name]
        assert jump_cut is not None and abs(jump_cut - (LANDING_S + after)) <= TOLERANCE, (
            name,
            jump_cut,
            after,
        )
    resolved_cut = served.stored["GH010002.MP4"][1]
    assert project_cut == pytest.approx(resolved_cut, abs=0.01)  # one edit, not two
