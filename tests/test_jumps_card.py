"""A real card through the real pipeline, then the customer's timeline and staff's fix.

ffmpeg-made GoPro files (QR shots with a real QR code, wind-band noise as freefall, one
recording in two chapters), imported with ``POST /api/imports``, analysed by the real
pipeline, which calls ``apply_resolved``. Expected times come from how the clips were
made (freefall 8 s .. 33 s across a 30 s chapter boundary, quiet after it), within the
detector's ±0.5 s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from sqlalchemy.orm import Session

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.models import Project
from tests.support.cards import gopro_folder, make_jump_clip
from tests.support.server import running_server
from tests.test_imports import finished, qr_clip

CUSTOMER = "2d3c4b5a-6978-4a1b-8c2d-3e4f5a6b7c8d"
NOBODY = "8c7b6a59-4837-4261-9f0e-d1c2b3a4f5e6"
TOLERANCE = 0.6  # the detector's ±0.5 s plus the stored rounding


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resolution-card") / "card"
    g = gopro_folder(root)
    qr_clip(g / "GH010001.MP4", CUSTOMER, seconds=3, creation_time="2026-12-01T09:00:00Z")
    make_jump_clip(
        g / "unused.mp4",
        seconds=60,
        freefall=(8.0, 25.0),
        creation_time="2026-12-01T09:01:00Z",
        chapters=[(g / "GH010002.MP4", 30.0), (g / "GH020002.MP4", 30.0)],
    )
    qr_clip(g / "GH010003.MP4", NOBODY, seconds=3, creation_time="2026-12-01T09:30:00Z")
    make_jump_clip(
        g / "GH010004.MP4", seconds=35, freefall=(5.0, 25.0), creation_time="2026-12-01T09:31:00Z"
    )
    return root


@attrs.frozen
class Served:
    app: Any
    http: httpx.AsyncClient


@pytest.fixture
async def served_import(settings: Settings, card: Path) -> AsyncIterator[Served]:
    configured = attrs.evolve(settings, import_roots=(card.parent,))
    app = create_app(configured)
    async with running_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield Served(app, http)


def near(value: float | None, expected: float) -> bool:
    return value is not None and abs(value - expected) <= TOLERANCE


async def test_card_fills_the_customer_and_staff_fix_the_unknown_one(
    served_import: Served, card: Path
) -> None:
    app, http = served_import.app, served_import.http

    def add(session: Session) -> None:
        session.add(Project(uuid=CUSTOMER, name="Customer"))

    await app.db.run(add)
    answer = await http.post("/api/imports", json={"path": str(card)})
    assert answer.status_code == 202, answer.text
    detail = await finished(http, answer.json()["uuid"])
    listing = (await http.get(f"/api/imports/{detail['uuid']}/jumps")).json()
    known, stranger = listing["jumps"]
    assert (known["state"], known["project_uuid"]) == ("resolved", CUSTOMER)
    assert (stranger["state"], stranger["reasons"]) == ("needs_manual", ["unknown_customer"])

    # The QR shot (3 s, code seen to its end) is too short to keep; the jump's two
    # chapters are on the timeline, the freefall split across them, the ground after
    # the landing (33 s) cut 20 s later: 53 s = 23 s into chapter 2.
    videos = (await http.get(f"/api/projects/{CUSTOMER}")).json()["videos"]
    assert [v["filename"] for v in videos] == ["GH010002.MP4", "GH020002.MP4"]
    first, second = videos
    assert first["path"] == f"input/{detail['uuid']}/100GOPRO/GH010002.MP4"
    assert (first["in_point"], first["out_point"]) == (0.0, pytest.approx(30.0, abs=0.1))
    assert near(first["freefall_start_s"], 8.0), first
    assert first["freefall_end_s"] == pytest.approx(30.0, abs=0.1)
    assert second["freefall_start_s"] == 0.0 and near(second["freefall_end_s"], 3.0), second
    assert second["in_point"] == 0.0 and near(second["out_point"], 23.0), second

    # Staff give the unknown QR's jump to a walk-in customer.
    walk_in = (await http.post("/api/projects", json={"name": "Walk-in"})).json()["uuid"]
    answer = await http.post(
        f"/api/jumps/{stranger['uuid']}/assign", json={"project_uuid": walk_in}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["jumps"][0]["state"] == "resolved"
    videos = (await http.get(f"/api/projects/{walk_in}")).json()["videos"]
    assert [v["filename"] for v in videos] == ["GH010004.MP4"]
    assert near(videos[0]["freefall_start_s"], 5.0) and near(videos[0]["freefall_end_s"], 30.0)
    listing = (await http.get(f"/api/imports/{detail['uuid']}/jumps")).json()
    assert (listing["status"], listing["needs_manual"]) == ("resolved", 0)
