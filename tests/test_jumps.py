"""Manual resolution over real HTTP: list, assign, split, merge, confirm; the pipeline's
``apply_resolved``; QR uuids naming a project or a frontend booking (``workload``).

Jump rows are inserted as the import pipeline stores them (tests/support/jump_rows.py);
the served app is the production one-port server on a real socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import trio
from sqlalchemy import select
from sqlalchemy.orm import Session

from stinercut_svc.context import StinercutApp
from stinercut_svc.ingest.freefall import Phase
from stinercut_svc.ingest.resolve import JumpState, ManualReason
from stinercut_svc.models import Project, Video
from stinercut_svc.models.ingest import ImportBatch, Jump, VideoFile
from stinercut_svc.services import jumps as service
from tests.support.jump_rows import Chapter, JumpSpec, Rec, add_batch

KNOWN = "0b9c3f52-8d1e-4c1a-a3f4-5e6d7c8b9a01"
STRANGER = "7e1d2c3b-4a59-4867-8f9e-0a1b2c3d4e5f"


def _qr_rec(key: str, code: str) -> Rec:
    return Rec(key, [Chapter(12.0, [(Phase.QR_CODE, 0.0, 4.0)])], qr=code)


def _jump_rec(key: str) -> Rec:
    phases = [
        (Phase.FLIGHT, 0.0, 60.0),
        (Phase.FREEFALL, 60.0, 100.0),
        (Phase.CANOPY, 100.0, 150.0),
        (Phase.GROUND_AFTER, 150.0, 200.0),
    ]
    return Rec(key, [Chapter(200.0, phases)], thumbnail=f"JPEG of {key}".encode())


def _card(known_id: int) -> list[JumpSpec]:
    """A card of three: recordings before the first QR, a known customer's jump,
    and a jump whose QR names nobody."""
    return [
        JumpSpec(
            recordings=[Rec("GH:0001", [Chapter(30.0, [(Phase.UNKNOWN, 0.0, 30.0)])])],
            reasons=[ManualReason.MISSING_QR, ManualReason.NO_FREEFALL],
        ),
        JumpSpec(
            recordings=[_qr_rec("GH:0002", KNOWN), _jump_rec("GH:0003")],
            state=JumpState.RESOLVED,
            qr_code=KNOWN,
            project_id=known_id,
            freefall=("GH:0003", 60.0, 100.0),
        ),
        JumpSpec(
            recordings=[_qr_rec("GH:0004", STRANGER), _jump_rec("GH:0005")],
            reasons=[ManualReason.UNKNOWN_CUSTOMER],
            qr_code=STRANGER,
            freefall=("GH:0005", 60.0, 100.0),
        ),
    ]


@pytest.fixture
async def http(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        yield client


async def _seed(app: StinercutApp) -> dict[str, Any]:
    def seed(session: Session) -> dict[str, Any]:
        known = Project(uuid=KNOWN, name="Known Customer")
        other = Project(name="Walk-in")
        session.add_all([known, other])
        session.flush()
        batch = add_batch(session, _card(known.id))
        jumps = session.scalars(
            select(Jump.uuid).where(Jump.import_batch_id == batch.id).order_by(Jump.sequence)
        ).all()
        return {"batch": batch.uuid, "jumps": list(jumps), "known": known.uuid, "other": other.uuid}

    return await app.db.run(seed)


async def _timeline(app: StinercutApp, project_uuid: str) -> list[tuple[str, float, float]]:
    def load(session: Session) -> list[tuple[str, float, float]]:
        rows = session.execute(
            select(Video.filename, Video.in_point, Video.out_point)
            .join(Project, Project.id == Video.project_id)
            .where(Project.uuid == project_uuid)
            .order_by(Video.order)
        ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    return await app.db.run(load)


async def _jump_numbers(app: StinercutApp, batch_uuid: str) -> dict[str, int | None]:
    """``video_file.jump_number`` (the original's column) per recording."""

    def load(session: Session) -> dict[str, int | None]:
        rows = session.execute(
            select(VideoFile.recording_key, VideoFile.jump_number)
            .join(ImportBatch, ImportBatch.id == VideoFile.import_batch_id)
            .where(ImportBatch.uuid == batch_uuid)
        ).all()
        return {str(r[0]): r[1] for r in rows}

    return await app.db.run(load)


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert body["detail"] == body["error"]["message"]
    return body["error"]


async def test_list_explains_each_jump_and_apply_fills_once(
    app: StinercutApp, http: httpx.AsyncClient
) -> None:
    seeded = await _seed(app)
    body = _ok(await http.get(f"/api/imports/{seeded['batch']}/jumps"))
    assert (body["resolved"], body["needs_manual"]) == (1, 2)
    assert body["unplaced_files"] == []
    first, second, third = body["jumps"]
    assert [j["sequence"] for j in body["jumps"]] == [1, 2, 3]
    assert (first["group"], first["state"], first["reasons"]) == (
        "unassigned",
        "needs_manual",
        ["missing_qr", "no_freefall"],
    )
    assert (second["group"], second["state"], second["project_uuid"]) == ("jump", "resolved", KNOWN)
    assert second["freefall_count"] == 1 and second["freefall"]["start"] == 60.0
    assert [r["key"] for r in second["recordings"]] == ["GH:0002", "GH:0003"]
    assert second["recordings"][0]["qr_end"] == 4.0
    assert (third["state"], third["reason"], third["qr_code"]) == (
        "needs_manual",
        "unknown_customer",
        STRANGER,
    )

    outcomes = await service.apply_resolved(app, seeded["batch"])
    assert [o.project_uuid for o in outcomes] == [None, KNOWN, None]
    # QR clip from 4 s + 0.5 s; the jump recording up to 20 s after the landing at 150 s
    timeline = await _timeline(app, KNOWN)
    assert [(t[1], t[2]) for t in timeline] == [(4.5, 12.0), (0.0, 170.0)]
    again = await service.apply_resolved(app, seeded["batch"])
    assert not any(o.changed for o in again)
    assert await _timeline(app, KNOWN) == timeline

    detail = _ok(await http.get(f"/api/jumps/{second['uuid']}"))
    assert detail["recordings"][1]["files"][0]["in_point"] == 0.0
    assert detail["recordings"][1]["files"][0]["out_point"] == 170.0
    assert detail["recordings"][1]["files"][0]["status"] == "matched"
    project = _ok(await http.get(f"/api/projects/{KNOWN}"))
    assert [(v["freefall_start_s"], v["freefall_end_s"]) for v in project["videos"]] == [
        (None, None),
        (60.0, 100.0),
    ]


async def test_assign_reassign_and_unassign(app: StinercutApp, http: httpx.AsyncClient) -> None:
    seeded = await _seed(app)
    stranger_jump = seeded["jumps"][2]
    body = _ok(
        await http.post(
            f"/api/jumps/{stranger_jump}/assign", json={"project_uuid": seeded["other"]}
        )
    )
    (view,) = body["jumps"]
    assert (view["state"], view["reasons"], view["project_name"]) == ("resolved", [], "Walk-in")
    assert view["edited_at"] is not None and body["renders"] == []  # auto render is off
    assert len(await _timeline(app, seeded["other"])) == 2

    # to another customer: the same rows move
    ids_before = await app.db.run(
        lambda s: sorted(
            s.scalars(select(Video.id).join(Project).where(Project.uuid == seeded["other"])).all()
        )
    )
    _ok(await http.post(f"/api/jumps/{stranger_jump}/assign", json={"project_uuid": KNOWN}))
    assert await _timeline(app, seeded["other"]) == []
    ids_after = await app.db.run(
        lambda s: sorted(
            s.scalars(select(Video.id).join(Project).where(Project.uuid == KNOWN)).all()
        )
    )
    assert ids_after == ids_before

    # no customer: back to needs_manual, nothing on any timeline
    body = _ok(await http.post(f"/api/jumps/{stranger_jump}/assign", json={"project_uuid": None}))
    assert (body["jumps"][0]["state"], body["jumps"][0]["reasons"]) == (
        "needs_manual",
        ["unknown_customer"],
    )
    assert await _timeline(app, KNOWN) == []


async def test_split_then_merge_back(app: StinercutApp, http: httpx.AsyncClient) -> None:
    seeded = await _seed(app)
    await service.apply_resolved(app, seeded["batch"])
    known_jump = seeded["jumps"][1]
    body = _ok(await http.post(f"/api/jumps/{known_jump}/split", json={"at_recording": 1}))
    head, tail = body["jumps"]
    assert (head["sequence"], head["state"], head["reasons"]) == (
        2,
        "needs_manual",
        ["no_freefall"],
    )
    assert [r["key"] for r in head["recordings"]] == ["GH:0002"]
    assert (tail["sequence"], tail["group"], tail["reasons"]) == (3, "unassigned", ["missing_qr"])
    assert tail["freefall_count"] == 1
    assert await _timeline(app, KNOWN) == []  # no longer resolved: off the timeline
    listing = _ok(await http.get(f"/api/imports/{seeded['batch']}/jumps"))
    assert [j["sequence"] for j in listing["jumps"]] == [1, 2, 3, 4]
    assert listing["jumps"][3]["uuid"] == seeded["jumps"][2]
    assert await _jump_numbers(app, seeded["batch"]) == {
        "GH:0001": 1,
        "GH:0002": 2,
        "GH:0003": 3,
        "GH:0004": 4,
        "GH:0005": 4,
    }

    body = _ok(await http.post("/api/jumps/merge", json={"jumps": [tail["uuid"], known_jump]}))
    (merged,) = body["jumps"]
    assert (merged["uuid"], merged["state"], merged["project_uuid"]) == (
        known_jump,
        "resolved",
        KNOWN,
    )
    assert len(await _timeline(app, KNOWN)) == 2
    listing = _ok(await http.get(f"/api/imports/{seeded['batch']}/jumps"))
    assert [j["uuid"] for j in listing["jumps"]] == seeded["jumps"]
    assert [j["sequence"] for j in listing["jumps"]] == [1, 2, 3]
    assert (await _jump_numbers(app, seeded["batch"]))["GH:0005"] == 3

    # split by a file's uuid: the recording that file belongs to starts the new jump
    file_uuid = merged["recordings"][1]["files"][0]["uuid"]
    body = _ok(await http.post(f"/api/jumps/{known_jump}/split", json={"at_recording": file_uuid}))
    assert [r["files"][0]["uuid"] for r in body["jumps"][1]["recordings"]] == [file_uuid]


async def test_split_takes_the_qr_of_its_first_recording(
    app: StinercutApp, http: httpx.AsyncClient
) -> None:
    def seed(session: Session) -> tuple[str, str]:
        project = Project(uuid=KNOWN, name="Known Customer")
        session.add(project)
        session.flush()
        # the same customer's QR twice around a freefall: analysed as one jump
        spec = JumpSpec(
            recordings=[_qr_rec("GH:0010", KNOWN), _jump_rec("GH:0011"), _qr_rec("GH:0012", KNOWN)],
            state=JumpState.RESOLVED,
            qr_code=KNOWN,
            project_id=project.id,
        )
        batch = add_batch(session, [spec])
        jump = session.scalars(select(Jump.uuid).where(Jump.import_batch_id == batch.id)).one()
        return batch.uuid, jump

    _batch, jump = await app.db.run(seed)
    body = _ok(await http.post(f"/api/jumps/{jump}/split", json={"at_recording": 2}))
    tail = body["jumps"][1]
    assert (tail["qr_code"], tail["project_uuid"], tail["group"]) == (KNOWN, KNOWN, "jump")
    assert tail["reasons"] == ["no_freefall"]


async def test_confirm_accepts_a_jump_without_freefall(
    app: StinercutApp, http: httpx.AsyncClient
) -> None:
    seeded = await _seed(app)
    before_qr = seeded["jumps"][0]
    _error(await http.post(f"/api/jumps/{before_qr}/confirm"), 409, "no_customer")
    body = _ok(
        await http.post(f"/api/jumps/{before_qr}/assign", json={"project_uuid": seeded["other"]})
    )
    assert (body["jumps"][0]["state"], body["jumps"][0]["reasons"]) == (
        "needs_manual",
        ["no_freefall"],
    )
    assert await _timeline(app, seeded["other"]) == []
    body = _ok(await http.post(f"/api/jumps/{before_qr}/confirm"))
    view = body["jumps"][0]
    assert (view["state"], view["reasons"]) == ("resolved", [])
    # the import is resolved once its last jump is (the card's third needs a customer)
    listing = _ok(await http.get(f"/api/imports/{seeded['batch']}/jumps"))
    assert (listing["status"], listing["needs_manual"]) == ("needs_manual", 1)
    _ok(await http.post(f"/api/jumps/{seeded['jumps'][2]}/assign", json={"project_uuid": KNOWN}))
    listing = _ok(await http.get(f"/api/imports/{seeded['batch']}/jumps"))
    assert (listing["status"], listing["needs_manual"]) == ("resolved", 0)
    assert view["confirmed_at"] is not None
    assert [(t[1], t[2]) for t in await _timeline(app, seeded["other"])] == [(0.0, 30.0)]
    # a new customer needs a new confirmation
    body = _ok(await http.post(f"/api/jumps/{before_qr}/assign", json={"project_uuid": KNOWN}))
    assert (body["jumps"][0]["state"], body["jumps"][0]["confirmed_at"]) == ("needs_manual", None)
    listing = _ok(await http.get(f"/api/imports/{seeded['batch']}/jumps"))
    assert listing["status"] == "needs_manual"


async def test_bad_input_is_answered_4xx(app: StinercutApp, http: httpx.AsyncClient) -> None:
    seeded = await _seed(app)
    first, known_jump, stranger_jump = seeded["jumps"]
    missing = "11111111-2222-4333-8444-555555555555"
    _error(await http.get("/api/jumps/not-a-uuid"), 400, "invalid_uuid")
    _error(await http.get("/api/imports/xyz/jumps"), 400, "invalid_uuid")
    _error(await http.get(f"/api/jumps/{missing}"), 404, "not_found")
    _error(await http.get(f"/api/imports/{missing}/jumps"), 404, "not_found")
    _error(await http.post(f"/api/jumps/{missing}/confirm"), 404, "not_found")
    _error(
        await http.post(f"/api/jumps/{missing}/assign", json={"project_uuid": KNOWN}),
        404,
        "not_found",
    )

    error = _error(
        await http.post(f"/api/jumps/{known_jump}/assign", json={"project_uuid": missing}),
        422,
        "project_not_found",
    )
    assert error["details"]["field"] == "project_uuid"
    for body, field in [
        ({}, "project_uuid"),
        ({"project_uuid": "nope"}, "project_uuid"),
        ({"project_uuid": KNOWN, "extra": 1}, "extra"),
    ]:
        error = _error(
            await http.post(f"/api/jumps/{known_jump}/assign", json=body), 422, "validation_error"
        )
        assert any(f["field"].startswith(field) for f in error["details"]["fields"]), error
    _error(
        await http.post(
            f"/api/jumps/{known_jump}/assign",
            content=b'{"project_uuid": ',
            headers={"Content-Type": "application/json"},
        ),
        400,
        "invalid_json",
    )

    for at in (0, 2, -1):
        error = _error(
            await http.post(f"/api/jumps/{known_jump}/split", json={"at_recording": at}),
            422,
            "invalid_split",
        )
        assert error["details"]["field"] == "at_recording"
    _error(
        await http.post(f"/api/jumps/{first}/split", json={"at_recording": 1}), 422, "invalid_split"
    )
    _error(
        await http.post(f"/api/jumps/{known_jump}/split", json={"at_recording": missing}),
        422,
        "invalid_split",
    )
    for bad in (True, "x", 1.5, None):
        _error(
            await http.post(f"/api/jumps/{known_jump}/split", json={"at_recording": bad}),
            422,
            "validation_error",
        )

    _error(await http.post("/api/jumps/merge", json={"jumps": [first]}), 422, "validation_error")
    _error(
        await http.post("/api/jumps/merge", json={"jumps": [first, first]}), 422, "invalid_merge"
    )
    error = _error(
        await http.post("/api/jumps/merge", json={"jumps": [first, stranger_jump]}),
        422,
        "not_adjacent",
    )
    assert "neighbours" in error["message"]
    _ok(
        await http.post(
            f"/api/jumps/{stranger_jump}/assign", json={"project_uuid": seeded["other"]}
        )
    )
    error = _error(
        await http.post("/api/jumps/merge", json={"jumps": [known_jump, stranger_jump]}),
        409,
        "conflicting_customers",
    )
    assert sorted(error["details"]["projects"]) == sorted([KNOWN, seeded["other"]])
    _error(
        await http.post("/api/jumps/merge", json={"jumps": [known_jump, missing]}), 404, "not_found"
    )
    # nothing of the above changed the import
    listing = _ok(await http.get(f"/api/imports/{seeded['batch']}/jumps"))
    assert [j["uuid"] for j in listing["jumps"]] == seeded["jumps"]


# --- QR uuids: project or frontend booking -----------------------------------------------------


def _frontend_tables(with_client: bool) -> tuple[sa.MetaData, sa.Table, sa.Table | None]:
    """The frontend's ``workload`` (and ``client``) in its newer or older shape."""
    meta = sa.MetaData()
    client = None
    if with_client:
        client = sa.Table(
            "client",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(255), nullable=False),
        )
        extra = [sa.Column("client_id", sa.Integer, nullable=True)]
    else:
        extra = [sa.Column("name", sa.String(255), nullable=True)]
    workload = sa.Table(
        "workload",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("status", sa.String(50), nullable=False, server_default="created"),
        *extra,
    )
    return meta, workload, client


@pytest.mark.parametrize("with_client", [True, False], ids=["client-table", "name-column"])
async def test_workload_uuid_finds_or_creates_its_project(
    app: StinercutApp, http: httpx.AsyncClient, with_client: bool
) -> None:
    meta, workload, client = _frontend_tables(with_client)
    booking = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
    nameless = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"

    def setup(session: Session) -> None:
        meta.create_all(session.connection())
        if client is not None:
            session.execute(client.insert().values(id=7, name="Hanna Sky"))
            session.execute(workload.insert().values(uuid=booking, client_id=7))
            session.execute(workload.insert().values(uuid=nameless, client_id=None))
        else:
            session.execute(workload.insert().values(uuid=booking, name="Hanna Sky"))
            session.execute(workload.insert().values(uuid=nameless, name=None))

    await app.db.run(setup)
    try:
        assert await service.find_customer(app, STRANGER) is None
        assert await service.find_customer(app, "Stinercut: not a uuid") is None
        assert await service.find_customer(app, booking.upper()) == booking
        assert await service.find_customer(app, booking) == booking  # found, not made twice
        assert await service.find_customer(app, nameless) == nameless
        names = await app.db.run(
            lambda s: s.execute(
                select(Project.uuid, Project.name).where(Project.uuid.in_([booking, nameless]))
            ).all()
        )
        assert sorted(names) == sorted([(booking, "Hanna Sky"), (nameless, "Customer 9f8e7d6c")])

        # the pipeline's call finds the booking's project for a jump stored without one
        def card(session: Session) -> str:
            spec = JumpSpec(
                recordings=[_qr_rec("GH:0020", booking), _jump_rec("GH:0021")],
                state=JumpState.RESOLVED,
                qr_code=booking,
                freefall=("GH:0021", 60.0, 100.0),
            )
            return add_batch(session, [spec]).uuid

        batch = await app.db.run(card)
        await service.apply_resolved(app, batch)
        assert len(await _timeline(app, booking)) == 2
    finally:
        await app.db.run(lambda s: meta.drop_all(s.connection()))


async def test_openapi_documents_the_jump_routes(http: httpx.AsyncClient) -> None:
    paths = _ok(await http.get("/openapi.json"))["paths"]
    for path, method in [
        ("/api/imports/{uuid}/jumps", "get"),
        ("/api/jumps/{uuid}", "get"),
        ("/api/jumps/{uuid}/assign", "post"),
        ("/api/jumps/{uuid}/split", "post"),
        ("/api/jumps/merge", "post"),
        ("/api/jumps/{uuid}/confirm", "post"),
    ]:
        operation = paths[path][method]
        assert "200" in operation["responses"]
        assert any(code.startswith("4") for code in operation["responses"]), (path, method)


async def test_customer_deleted_by_the_frontend(app: StinercutApp, http: httpx.AsyncClient) -> None:
    """``jump.project_id`` is no foreign key (projects are the frontend's): a deleted
    customer reads as none, and the jump can be confirmed only after a new assignment."""
    seeded = await _seed(app)
    known_jump = seeded["jumps"][1]
    await service.apply_resolved(app, seeded["batch"])
    _ok(await http.delete(f"/api/projects/{KNOWN}"))
    body = _ok(await http.get(f"/api/jumps/{known_jump}"))
    assert body["project_uuid"] is None
    _error(await http.post(f"/api/jumps/{known_jump}/confirm"), 409, "no_customer")
    outcomes = await service.apply_resolved(app, seeded["batch"])
    assert all(o.project_uuid is None for o in outcomes)
    files = await app.db.run(
        lambda s: s.scalars(
            select(VideoFile).join(ImportBatch).where(ImportBatch.uuid == seeded["batch"])
        ).all()
    )
    assert len(files) == 5 and all(f.project_id is None for f in files)
    body = _ok(
        await http.post(f"/api/jumps/{known_jump}/assign", json={"project_uuid": seeded["other"]})
    )
    assert body["jumps"][0]["state"] == "resolved"
    assert len(await _timeline(app, seeded["other"])) == 2


async def test_timeline_rows_get_their_recording_thumbnail(
    app: StinercutApp, http: httpx.AsyncClient
) -> None:
    seeded = await _seed(app)
    await service.apply_resolved(app, seeded["batch"])
    qr_row, jump_row = _ok(await http.get(f"/api/projects/{KNOWN}"))["videos"]
    picture = await http.get(f"/api/videos/{jump_row['uuid']}/thumbnail")
    assert (picture.status_code, picture.content) == (200, b"JPEG of GH:0003")
    # the QR recording has none: the clip answers like any clip without a thumbnail
    _error(await http.get(f"/api/videos/{qr_row['uuid']}/thumbnail"), 404, "file_missing")
    # taken off the timeline: row and picture go
    _ok(await http.post(f"/api/jumps/{seeded['jumps'][1]}/assign", json={"project_uuid": None}))
    assert not (app.storage.thumbnails / f"{jump_row['uuid']}.jpg").exists()
    _error(await http.get(f"/api/videos/{jump_row['uuid']}"), 404, "not_found")


async def test_files_in_no_jump_are_listed(app: StinercutApp, http: httpx.AsyncClient) -> None:
    """A re-run of a batch staff already edited stores new files without a jump."""
    seeded = await _seed(app)

    def add_loose(session: Session) -> str:
        batch = session.scalars(
            select(ImportBatch).where(ImportBatch.uuid == seeded["batch"])
        ).one()
        row = VideoFile(
            import_folder_uuid=batch.uuid,
            current_folder_uuid=batch.uuid,
            filepath=f"{batch.uuid}/100GOPRO/GH010099.MP4",
            original_filename="GH010099.MP4",
            import_batch_id=batch.id,
            recording_key="100GOPRO/GH:0099",
        )
        session.add(row)
        session.flush()
        return row.uuid

    loose = await app.db.run(add_loose)
    body = _ok(await http.get(f"/api/imports/{seeded['batch']}/jumps"))
    assert [f["uuid"] for f in body["unplaced_files"]] == [loose]
    assert sum(len(r["files"]) for j in body["jumps"] for r in j["recordings"]) == 5


async def test_concurrent_changes_into_one_project_serialise(
    app: StinercutApp, http: httpx.AsyncClient
) -> None:
    """Two jumps assigned to one project at the same moment, while the pipeline fills
    the import again: every clip once, positions 0..n-1 without gaps or ties."""
    seeded = await _seed(app)
    answers: list[httpx.Response] = []

    async def assign(jump: str) -> None:
        answers.append(
            await http.post(f"/api/jumps/{jump}/assign", json={"project_uuid": seeded["other"]})
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(assign, seeded["jumps"][0])
        nursery.start_soon(assign, seeded["jumps"][2])
        nursery.start_soon(service.apply_resolved, app, seeded["batch"])
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]

    def orders(session: Session) -> list[tuple[int, int | None]]:
        rows = session.execute(
            select(Video.order, Video.video_file_id)
            .join(Project, Project.id == Video.project_id)
            .where(Project.uuid == seeded["other"])
            .order_by(Video.order)
        ).all()
        return [(r[0], r[1]) for r in rows]

    rows = await app.db.run(orders)
    # jump 3 (2 clips) resolves; jump 1 has no freefall and stays off the timeline
    assert [order for order, _ in rows] == [0, 1]
    assert len({file_id for _, file_id in rows}) == 2
