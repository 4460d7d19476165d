"""Which signal found a jump's freefall (``jump.freefall_source``), end to end.

Staff judging a jump should see whether the sound, the GoPro's GPS altitude or both
found its freefall. The import test goes through the real pipeline: a card made with
ffmpeg (a wind-noise jump without a ``gpmd`` track, a muted two-chapter jump with one,
a wind-noise jump with one), imported by ``POST /api/imports`` on a served app, read
back from ``GET /api/imports/{uuid}/jumps`` and ``GET /api/jumps/{uuid}``. The staff
tests start from stored rows (tests/support/jump_rows.py) and check that the source
follows the confidence: kept while the jump's window stays, cleared when a split or
merge gives the jump a window the analysis did not judge.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from sqlalchemy import select
from sqlalchemy.orm import Session

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.ingest.phases import FreefallSource, Phase
from stinercut_svc.ingest.resolve import (
    FreefallWindow,
    JumpState,
    ManualReason,
    QrSighting,
    RecordingFacts,
    resolve_jumps,
)
from stinercut_svc.models import Project
from stinercut_svc.models.ingest import Jump
from tests.support.cards import gopro_folder, make_jump_clip
from tests.support.gpmf import add_telemetry, jump_profile, make_chaptered_telemetry_jump
from tests.support.jump_rows import Chapter, JumpSpec, Rec, add_batch
from tests.support.qr import make_gopro_qr_shot
from tests.support.server import running_server

TOLERANCE_S = 0.5
# 150 s: climb and jump run, exit at 30 s from 2400 m, ~40 s of freefall, canopy, ground.
PROFILE = jump_profile(seconds=150, exit_at=30.0, exit_altitude=2400.0, ground=400.0)
HEARD, MUTED, BOTH = (
    "6f0e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a51",
    "6f0e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a52",
    "6f0e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a53",
)


# --- pure: the source is carried from the analysis to the jump --------------------------


def test_resolve_carries_each_freefalls_source() -> None:
    qr = QrSighting(code=HEARD, customer=HEARD, last_seen=2.0)
    jumps = resolve_jumps(
        [
            RecordingFacts("GH:0001", 3.0, qr=qr),
            RecordingFacts(
                "GX:0002",
                150.0,
                freefalls=(FreefallWindow(30.0, 70.0, 0.8, FreefallSource.TELEMETRY),),
            ),
            RecordingFacts("GX:0003", 20.0, freefalls=(FreefallWindow(2.0, 12.0, 0.5),)),
        ]
    )
    (jump,) = jumps
    assert [f.source for f in jump.freefalls] == [FreefallSource.TELEMETRY, FreefallSource.AUDIO]
    assert jump.freefall is None and jump.reasons == (ManualReason.TWO_FREEFALLS,)


# --- the import: POST /api/imports, then the jump answers --------------------------------


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three jumps, each opened by its customer's QR shot:

    * GX010002 — wind noise in the freefall, no telemetry track (an older camera);
    * GX010004/GX020004 — a muted camera, two chapters, a ``gpmd`` track;
    * GX010006 — wind noise and a ``gpmd`` track telling the same story.
    """
    root = tmp_path_factory.mktemp("source_card")
    g = gopro_folder(root)
    make_gopro_qr_shot(g / "GH010001.MP4", HEARD, creation_time="2026-12-01T10:00:00Z")
    make_jump_clip(
        g / "GX010002.MP4", seconds=150, freefall=(30.0, 40.0),
        creation_time="2026-12-01T10:05:00Z",
    )  # fmt: skip
    make_gopro_qr_shot(g / "GH010003.MP4", MUTED, creation_time="2026-12-01T11:00:00Z")
    make_chaptered_telemetry_jump(
        g / "GX010004.MP4", g / "GX020004.MP4", PROFILE, split_s=50.0, seconds=150,
        seeds=(21, 22), creation_time="2026-12-01T11:05:00Z",
    )  # fmt: skip
    make_gopro_qr_shot(g / "GH010005.MP4", BOTH, creation_time="2026-12-01T12:00:00Z")
    both = g / "GX010006.MP4"
    make_jump_clip(both, seconds=150, freefall=(30.0, 40.0), creation_time="2026-12-01T12:05:00Z")
    add_telemetry(both, PROFILE, seconds=150, seed=23)
    return root


async def test_an_imported_jump_says_which_signal_found_its_freefall(
    settings: Settings, card: Path, tmp_path: Path
) -> None:
    roots = tmp_path / "media"
    shutil.copytree(card, roots / "card")
    app = create_app(attrs.evolve(settings, import_roots=(roots,)))
    async with running_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:

        def add(session: Session) -> None:
            session.add_all(
                [
                    Project(uuid=HEARD, name="Heard"),
                    Project(uuid=MUTED, name="Muted"),
                    Project(uuid=BOTH, name="Both"),
                ]
            )

        await app.db.run(add)
        answer = await http.post("/api/imports", json={"path": str(roots / "card")})
        assert answer.status_code == 202, answer.text
        uuid = answer.json()["uuid"]
        status = ""
        with trio.move_on_after(120):
            while status not in {"resolved", "needs_manual", "error", "cancelled"}:
                await trio.sleep(0.2)
                status = (await http.get(f"/api/imports/{uuid}")).json()["status"]
        assert status == "resolved"
        listing = (await http.get(f"/api/imports/{uuid}/jumps")).json()
        assert [j["project_uuid"] for j in listing["jumps"]] == [HEARD, MUTED, BOTH]
        assert all(j["state"] == "resolved" for j in listing["jumps"])
        found = {j["project_uuid"]: j["freefall"] for j in listing["jumps"]}
        # The source is stored, not derived on the way out: the row says the same.
        stored = await app.db.run(
            lambda s: [
                (j.freefall_recording, j.freefall_source)
                for j in s.scalars(select(Jump).order_by(Jump.sequence))
            ]
        )
        one = (await http.get(f"/api/jumps/{listing['jumps'][1]['uuid']}")).json()
        detail = (await http.get(f"/api/imports/{uuid}")).json()
    assert {k: f["source"] for k, f in found.items()} == {
        HEARD: "audio",
        MUTED: "telemetry",
        BOTH: "both",
    }
    assert stored == [
        ("100GOPRO/GX:0002", FreefallSource.AUDIO),
        ("100GOPRO/GX:0004", FreefallSource.TELEMETRY),
        ("100GOPRO/GX:0006", FreefallSource.BOTH),
    ]
    assert one["freefall"] == found[MUTED]
    # The batch detail shows the same source per jump.
    assert [j["freefall"]["source"] for j in detail["jumps"]] == ["audio", "telemetry", "both"]
    for freefall in found.values():
        # Every key staff had before is still there, and the confidence survived the
        # pipeline's own re-judging of the rows (as the source did).
        assert set(freefall) == {"recording", "start", "end", "confidence", "source"}
        assert freefall["confidence"] is not None
    for key in (MUTED, BOTH):
        assert found[key]["start"] == pytest.approx(PROFILE.exit, abs=TOLERANCE_S)
        assert found[key]["end"] == pytest.approx(PROFILE.deploy, abs=TOLERANCE_S)


# --- staff changes: the source follows the confidence ------------------------------------

KNOWN = "0b9c3f52-8d1e-4c1a-a3f4-5e6d7c8b9a02"
STRANGER = "7e1d2c3b-4a59-4867-8f9e-0a1b2c3d4e5a"


@pytest.fixture
async def http(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        yield client


async def _seed(app: StinercutApp) -> dict[str, Any]:
    """One batch: a known customer's jump of three recordings (QR shot, the jump with a
    telemetry freefall, a statement after landing), then a jump whose QR names nobody,
    found by the sound."""

    def seed(session: Session) -> dict[str, Any]:
        known = Project(uuid=KNOWN, name="Known Customer")
        session.add(known)
        session.flush()
        jump = [
            (Phase.FLIGHT, 0.0, 60.0),
            (Phase.FREEFALL, 60.0, 100.0),
            (Phase.CANOPY, 100.0, 150.0),
            (Phase.GROUND_AFTER, 150.0, 200.0),
        ]
        qr = [(Phase.QR_CODE, 0.0, 4.0)]
        batch = add_batch(
            session,
            [
                JumpSpec(
                    recordings=[
                        Rec("GH:0001", [Chapter(12.0, qr)], qr=KNOWN),
                        Rec("GX:0002", [Chapter(200.0, jump)]),
                        Rec("GH:0003", [Chapter(20.0, [(Phase.GROUND_AFTER, 0.0, 20.0)])]),
                    ],
                    state=JumpState.RESOLVED,
                    qr_code=KNOWN,
                    project_id=known.id,
                    freefall=("GX:0002", 60.0, 100.0),
                ),
                JumpSpec(
                    recordings=[
                        Rec("GH:0004", [Chapter(12.0, qr)], qr=STRANGER),
                        Rec("GX:0005", [Chapter(200.0, jump)]),
                    ],
                    reasons=[ManualReason.UNKNOWN_CUSTOMER],
                    qr_code=STRANGER,
                    freefall=("GX:0005", 60.0, 100.0),
                ),
            ],
        )
        rows = session.scalars(
            select(Jump).where(Jump.import_batch_id == batch.id).order_by(Jump.sequence)
        ).all()
        rows[0].freefall_source = FreefallSource.TELEMETRY
        rows[1].freefall_source = FreefallSource.AUDIO
        return {"batch": batch.uuid, "jumps": [j.uuid for j in rows]}

    return await app.db.run(seed)


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _judged(freefall: dict[str, Any] | None) -> tuple[Any, Any, Any] | None:
    """The analysis's judgement of the window: (recording, confidence, source)."""
    if freefall is None:
        return None
    return freefall["recording"], freefall["confidence"], freefall["source"]


async def test_source_is_kept_while_the_window_stays_and_cleared_with_the_confidence(
    app: StinercutApp, http: httpx.AsyncClient
) -> None:
    seeded = await _seed(app)
    known, stranger = seeded["jumps"]

    def columns(session: Session) -> list[tuple[Any, ...]]:
        return [
            (j.uuid, j.freefall_confidence, j.freefall_source)
            for j in session.scalars(select(Jump).order_by(Jump.sequence))
        ]

    listing = _ok(await http.get(f"/api/imports/{seeded['batch']}/jumps"))
    assert [_judged(j["freefall"]) for j in listing["jumps"]] == [
        ("GX:0002", 0.9, "telemetry"),
        ("GX:0005", 0.9, "audio"),
    ]

    # Assigning a customer does not move the window: source and confidence stay.
    (view,) = _ok(await http.post(f"/api/jumps/{stranger}/assign", json={"project_uuid": KNOWN}))[
        "jumps"
    ]
    assert view["state"] == "resolved" and _judged(view["freefall"]) == ("GX:0005", 0.9, "audio")

    # Split off the statement after landing: the freefall stays where it was judged.
    head, tail = _ok(await http.post(f"/api/jumps/{known}/split", json={"at_recording": 2}))[
        "jumps"
    ]
    assert _judged(head["freefall"]) == ("GX:0002", 0.9, "telemetry")
    assert tail["freefall"] is None
    # Merge it back: the same window, still the analysis's.
    (merged,) = _ok(await http.post("/api/jumps/merge", json={"jumps": [known, tail["uuid"]]}))[
        "jumps"
    ]
    assert _judged(merged["freefall"]) == ("GX:0002", 0.9, "telemetry")

    # Split before the jump recording: the QR shot has no freefall, and the new jump's
    # freefall comes from the segments, a window no analysis judged for it.
    head, tail = _ok(await http.post(f"/api/jumps/{known}/split", json={"at_recording": 1}))[
        "jumps"
    ]
    assert head["freefall"] is None
    assert _judged(tail["freefall"]) == ("GX:0002", None, None)
    # The row without a window keeps no source of a window it no longer has.
    assert (await app.db.run(columns))[0] == (known, None, None)
    assert (tail["freefall"]["start"], tail["freefall"]["end"]) == (60.0, 100.0)
    # Merged back, the jump's row had no window: confidence and source stay unknown
    # together rather than one claiming what only the other knew.
    (merged,) = _ok(await http.post("/api/jumps/merge", json={"jumps": [known, tail["uuid"]]}))[
        "jumps"
    ]
    assert merged["state"] == "resolved"
    assert _judged(merged["freefall"]) == ("GX:0002", None, None)

    assert await app.db.run(columns) == [
        (known, None, None),
        (stranger, pytest.approx(0.9), FreefallSource.AUDIO),
    ]


async def test_openapi_lists_the_freefall_source(http: httpx.AsyncClient) -> None:
    spec = _ok(await http.get("/openapi.json"))
    schemas = spec["components"]["schemas"]
    source = schemas["FreefallOut"]["properties"]["source"]
    values = {v for option in source["anyOf"] for v in option.get("enum", [])}
    assert values == {"audio", "telemetry", "both"}
    assert {"type": "null"} in source["anyOf"]
    assert "source" in schemas["FreefallOut"]["required"]
