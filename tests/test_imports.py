"""Imports end to end: a real card (ffmpeg clips, a real QR, an LRV proxy), a real server,
the hub over a real WebSocket (websocket-client, like the detector), real ffmpeg analysis.

One card, three jumps: recordings before the first QR (a freefall, no QR), a QR of a
known customer followed by a two-chapter recording whose freefall crosses the
chapter boundary, and a QR naming nobody followed by a freefall. Inserted twice,
the second import copies nothing; re-announced by ``gopro.copy_completed`` the
batch is analysed again and its rows are updated, not duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
import websocket  # websocket-client, the detector daemon's library
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Project, Video
from stinercut_svc.models.ingest import ImportBatch, ImportedFile, Jump, VideoFile, VideoFileSegment
from tests.support.cards import gopro_folder, make_jump_clip, make_plain_clip
from tests.support.media import ffmpeg
from tests.support.qr import make_qr_clip
from tests.support.server import running_server

CUSTOMER = "5a1d7c3e-0b6f-4e8a-9d21-3f4c5b6a7d80"
UNKNOWN = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
FINISHED = {"resolved", "needs_manual", "error", "cancelled"}
WAIT_S = 90.0


def qr_clip(path: Path, code: str, *, seconds: float, creation_time: str) -> Path:
    """A QR shot with quiet camera audio (a real clip has sound), tagged like a GoPro file."""
    silent = path.with_name(f"{path.stem}.noaudio.mp4")
    make_qr_clip(
        silent, f"Stinercut: {code}", seconds=seconds, size="320x240", rate="10", gop=10,
        module_px=4, position=(10, 10),
    )  # fmt: skip
    ffmpeg(
        "-i", str(silent),
        "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a=0.01:r=48000",
        "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "64k",
        "-shortest", "-metadata", f"creation_time={creation_time}", "-f", "mp4", str(path),
    )  # fmt: skip
    silent.unlink()
    return path


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cards") / "card1"
    g = gopro_folder(root)
    # Jump 1: no QR before it (the unassigned group), freefall 5..30 s.
    make_jump_clip(
        g / "GH010001.MP4", seconds=35, freefall=(5.0, 25.0), creation_time="2026-12-01T10:00:00Z"
    )
    # Jump 2: the customer's QR (and its LRV proxy), then two chapters, freefall 8..33 s.
    qr_clip(g / "GH010002.MP4", CUSTOMER, seconds=3, creation_time="2026-12-01T10:10:00Z")
    shutil.copyfile(g / "GH010002.MP4", g / "GL010002.LRV")
    (g / "GH010002.THM").write_bytes(b"thumbnail")
    make_jump_clip(
        g / "unused.mp4",
        seconds=40,
        freefall=(8.0, 25.0),
        creation_time="2026-12-01T10:11:00Z",
        chapters=[(g / "GH010003.MP4", 20.0), (g / "GH020003.MP4", 20.0)],
    )
    # Jump 3: a QR naming nobody, then a freefall.
    qr_clip(g / "GH010004.MP4", UNKNOWN, seconds=3, creation_time="2026-12-01T10:30:00Z")
    make_jump_clip(
        g / "GH010005.MP4", seconds=35, freefall=(5.0, 25.0), creation_time="2026-12-01T10:31:00Z"
    )
    return root


@pytest.fixture
def roots(tmp_path: Path, card: Path) -> Path:
    """The import root: holds a copy of the card (tests may change it)."""
    root = tmp_path / "media"
    shutil.copytree(card, root / "card1", copy_function=shutil.copy2)
    return root


@attrs.frozen
class Server:
    app: StinercutApp
    url: str
    http: httpx.AsyncClient


@pytest.fixture
async def server(settings: Settings, roots: Path) -> AsyncIterator[Server]:
    configured = attrs.evolve(settings, import_roots=(roots,), ingest_auto=True)
    app = create_app(configured)
    async with running_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield Server(app, url, http)


def ws_url(base: str, client_type: str) -> str:
    return base.replace("http://", "ws://") + f"/ws?client_type={client_type}"


class Listener:
    """A frontend-like client (websocket-client in a thread) keeping every message."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(ws_url(url, "frontend"), timeout=1)
        self.messages: list[dict[str, Any]] = []
        self.closed = False

    def pump(self) -> None:
        while not self.closed:
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError):
                return
            if raw:
                self.messages.append(json.loads(raw))

    def named(self, command: str) -> list[dict[str, Any]]:
        return [m["data"] for m in self.messages if m.get("command") == command]


async def detector_says(url: str, command: str, data: dict[str, Any]) -> None:
    """Send one message the way the detector does (websocket-client, target all)."""

    def send() -> None:
        ws = websocket.create_connection(ws_url(url, "detector"), timeout=5)
        try:
            ws.send(json.dumps({"command": command, "target": "all", "data": data}))
        finally:
            ws.close()

    await trio.to_thread.run_sync(send)


async def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    with trio.move_on_after(timeout):
        while True:
            found = await check()
            if found:
                return found
            await trio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def finished(http: httpx.AsyncClient, uuid: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        body = (await http.get(f"/api/imports/{uuid}")).json()
        return body if body["status"] in FINISHED else None

    return await wait_for(check, f"import {uuid} to finish")


async def add_customer(app: StinercutApp) -> int:
    def add(session: Session) -> int:
        project = Project(uuid=CUSTOMER, name="Customer A")
        session.add(project)
        session.flush()
        return project.id

    return await app.db.run(add)


def count(session: Session, model: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_card_import_from_device_mounted_then_reinsert_then_rerun(
    server: Server, roots: Path
) -> None:
    app = server.app
    customer_id = await add_customer(app)
    # Blocking websocket-client calls run in threads: the server shares this trio loop.
    listener = await trio.to_thread.run_sync(Listener, server.url)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, listener.pump)
        try:
            await _scenario(server, roots, customer_id, listener)
        finally:
            listener.closed = True
        await trio.to_thread.run_sync(listener.ws.close)


async def _scenario(server: Server, roots: Path, customer_id: int, listener: Listener) -> None:
    app, http = server.app, server.http
    card_path = str(roots / "card1")

    # (a) the old detector's device.mounted, over a real WebSocket.
    await detector_says(
        server.url, "device.mounted", {"device_node": "/dev/sdz1", "mount_path": card_path}
    )

    async def first_batch() -> dict[str, Any] | None:
        page = (await http.get("/api/imports")).json()
        return page["imports"][0] if page["imports"] else None

    batch = await wait_for(first_batch, "the batch device.mounted starts")
    assert batch["source_kind"] == "card" and batch["mount_path"] == card_path
    detail = await finished(http, batch["uuid"])
    uuid = detail["uuid"]

    assert detail["status"] == "needs_manual"
    assert detail["resolution_type"] == "missing_qr"
    assert detail["copied_files"] == 7  # 6 videos + 1 LRV; the THM stays on the card
    assert sorted(c["source_path"] for c in detail["copied"]) == [
        "100GOPRO/GH010001.MP4", "100GOPRO/GH010002.MP4", "100GOPRO/GH010003.MP4",
        "100GOPRO/GH010004.MP4", "100GOPRO/GH010005.MP4", "100GOPRO/GH020003.MP4",
        "100GOPRO/GL010002.LRV",
    ]  # fmt: skip
    folder = app.storage.input / uuid / "100GOPRO"
    assert (folder / "GH020003.MP4").stat().st_size == (
        roots / "card1/DCIM/100GOPRO/GH020003.MP4"
    ).stat().st_size
    assert not (folder / "GH010002.THM").exists()
    assert detail["total_files"] == detail["analyzed_files"] == 6
    assert detail["detected_qr_count"] == 2
    assert detail["detected_freefall_count"] == 3

    jumps = detail["jumps"]
    assert [(j["sequence"], j["state"], j["reasons"]) for j in jumps] == [
        (1, "needs_manual", ["missing_qr"]),
        (2, "resolved", []),
        (3, "needs_manual", ["unknown_customer"]),
    ]
    assert jumps[1]["qr_code"] == CUSTOMER and jumps[1]["project_id"] == customer_id
    assert jumps[2]["qr_code"] == UNKNOWN and jumps[2]["project_id"] is None
    # The freefall crosses the chapter boundary (20 s) and is one freefall.
    freefall = jumps[1]["freefall"]
    assert freefall["recording"] == "100GOPRO/GH:0003"
    assert freefall["start"] == pytest.approx(8.0, abs=0.5)
    assert freefall["end"] == pytest.approx(33.0, abs=0.5)

    files = {f["filepath"].split("/", 1)[1]: f for f in detail["files"]}
    assert list(files) == [
        "100GOPRO/GH010001.MP4",
        "100GOPRO/GH010002.MP4",
        "100GOPRO/GH010003.MP4",
        "100GOPRO/GH020003.MP4",
        "100GOPRO/GH010004.MP4",
        "100GOPRO/GH010005.MP4",
    ]  # fmt: skip  (camera order: rows inserted recording by recording)
    qr_file = files["100GOPRO/GH010002.MP4"]
    assert qr_file["qr_content"] == CUSTOMER and qr_file["detected_project_uuid"] == CUSTOMER
    assert qr_file["proxy_path"] == f"input/{uuid}/100GOPRO/GL010002.LRV"
    assert qr_file["jump_number"] == 2 and qr_file["status"] == "matched"
    assert files["100GOPRO/GH010001.MP4"]["jump_number"] == 1
    assert files["100GOPRO/GH010001.MP4"]["status"] == "analyzed"
    assert files["100GOPRO/GH020003.MP4"]["recorded_at"].startswith("2026-12-01T10:11:20")
    assert files["100GOPRO/GH010003.MP4"]["duration"] == pytest.approx(20.0, abs=0.3)
    assert files["100GOPRO/GH010003.MP4"]["width"] == 64
    assert files["100GOPRO/GH010003.MP4"]["has_thumbnail"] is True
    assert files["100GOPRO/GH020003.MP4"]["has_thumbnail"] is False  # one per recording

    def rows(session: Session) -> dict[str, Any]:
        batch_id = session.scalar(select(ImportBatch.id).where(ImportBatch.uuid == uuid))
        segs = session.execute(
            select(VideoFile.original_filename, VideoFileSegment.classification,
                   VideoFileSegment.start_time, VideoFileSegment.end_time)
            .join(VideoFileSegment, VideoFileSegment.video_file_id == VideoFile.id)
            .where(VideoFile.import_batch_id == batch_id)
            .order_by(VideoFile.id, VideoFileSegment.sequence_order)
        ).all()  # fmt: skip
        return {
            "files": count(session, VideoFile, VideoFile.import_batch_id == batch_id),
            "file_ids": sorted(session.scalars(select(VideoFile.id).where(VideoFile.import_batch_id == batch_id))),
            "jump_ids": sorted(session.scalars(select(Jump.id).where(Jump.import_batch_id == batch_id))),
            "segments": [(n, c.value, s, e) for n, c, s, e in segs],
            "imported": count(session, ImportedFile),
            "batches": count(session, ImportBatch),
            "customer_videos": count(session, Video, Video.project_id == customer_id),
        }  # fmt: skip

    async def completed() -> list[dict[str, Any]]:
        return [d for d in listener.named("videofile:batch_completed") if d["batch_id"] == uuid]

    # batch_completed comes once the resolved jumps have filled their projects.
    (done,) = await wait_for(completed, "videofile:batch_completed")
    assert done["status"] == "needs_manual" and done["total"] == 6
    first = await app.db.run(rows)
    assert first["files"] == 6 and len(first["jump_ids"]) == 3 and first["imported"] == 7
    by_file: dict[str, list[tuple[str, float, float]]] = {}
    for name, phase, start, end in first["segments"]:
        by_file.setdefault(name, []).append((phase, start, end))
    qr_span = [s for s in by_file["GH010002.MP4"] if s[0] == "qr_code"]
    assert qr_span and qr_span[0][1] == 0.0 and qr_span[0][2] >= 2.0  # seen until ~2.5 s
    # The freefall is cut at the chapter boundary: one segment per file, local times.
    (ff1,) = [s for s in by_file["GH010003.MP4"] if s[0] == "freefall"]
    (ff2,) = [s for s in by_file["GH020003.MP4"] if s[0] == "freefall"]
    assert ff1[1] == pytest.approx(8.0, abs=0.5) and ff1[2] == pytest.approx(20.0, abs=0.3)
    assert ff2[1] == pytest.approx(0.0, abs=0.3) and ff2[2] == pytest.approx(13.0, abs=0.5)
    # The resolved jump filled the customer's project (services.jumps.apply_resolved).
    assert first["customer_videos"] >= 2

    # Events, the original's vocabulary plus analysis_progress.
    started = [d for d in listener.named("videofile:analysis_started") if d["batch_id"] == uuid]
    assert started == [{"batch_id": uuid, "total_files": 6, "recordings": 5}]
    analysed = [d for d in listener.named("videofile:file_analyzed") if d["batch_id"] == uuid]
    assert len(analysed) == 6
    progress = [
        d["percent"] for d in listener.named("videofile:analysis_progress") if d["batch_id"] == uuid
    ]
    assert progress and progress[-1] == 100 and progress == sorted(progress)
    copy_progress = [d for d in listener.named("videofile:copy_progress") if d["batch_id"] == uuid]
    assert copy_progress[-1]["percent"] == 100

    # (c) the same card again, through the API: nothing is copied, and it says so.
    answer = await http.post("/api/imports", json={"path": card_path})
    assert answer.status_code == 202, answer.text
    again = answer.json()
    assert again["status"] == "pending" and again["uuid"] != uuid
    second = await finished(http, again["uuid"])
    assert second["status"] == "resolved" and second["total_files"] == 0
    assert second["copied_files"] == 0 and second["skipped_files"] == 7
    assert not (app.storage.input / again["uuid"]).exists()
    skipped = [d for d in listener.messages if d.get("command") == "videofile:copy_skipped"]
    assert any(m["data"]["batch_id"] == again["uuid"] for m in skipped)

    # (b) gopro.copy_completed for the first batch's folder: analysed again, rows updated.
    await detector_says(server.url, "gopro.copy_completed", {"uuid": uuid, "video_count": 6})

    async def rerun_done() -> dict[str, Any] | None:
        body = (await http.get(f"/api/imports/{uuid}")).json()
        return (
            body
            if body["status"] in FINISHED
            and body["source_kind"] == "input"
            and len(
                [d for d in listener.named("videofile:batch_completed") if d["batch_id"] == uuid]
            )
            == 2
            else None
        )

    rerun = await wait_for(rerun_done, "the re-run of the first batch")
    assert rerun["status"] == "needs_manual"
    after = await app.db.run(rows)
    assert after["file_ids"] == first["file_ids"]
    assert after["jump_ids"] == first["jump_ids"]
    assert after["segments"] == first["segments"]
    assert after["imported"] == 7 and after["batches"] == 2
    assert after["customer_videos"] == first["customer_videos"]


async def test_gopro_copy_completed_analyses_the_input_folder(server: Server, roots: Path) -> None:
    app, http = server.app, server.http
    uuid = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
    folder = app.storage.input / uuid / "100GOPRO"
    folder.mkdir(parents=True)
    shutil.copy2(roots / "card1/DCIM/100GOPRO/GH010005.MP4", folder / "GH010005.MP4")
    await detector_says(
        server.url, "gopro.copy_completed", {"uuid": uuid, "mount_path": "/media/x"}
    )
    detail = await wait_for(
        lambda: _detail_if_finished(http, uuid), "the detector's batch", timeout=WAIT_S
    )
    assert detail["source_kind"] == "input" and detail["copied"] == []
    assert detail["status"] == "needs_manual" and detail["total_files"] == 1
    (jump,) = detail["jumps"]
    assert jump["reasons"] == ["missing_qr"] and jump["freefall"]["start"] == pytest.approx(
        5.0, abs=0.5
    )

    # An empty input folder: the batch ends in error with the reason, no crash.
    empty = "1c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
    await detector_says(server.url, "gopro.copy_completed", {"uuid": empty})
    failed = await wait_for(lambda: _detail_if_finished(http, empty), "the empty batch")
    assert failed["status"] == "error" and "no video files" in failed["error_message"]


async def _detail_if_finished(http: httpx.AsyncClient, uuid: str) -> dict[str, Any] | None:
    answer = await http.get(f"/api/imports/{uuid}")
    if answer.status_code != 200:
        return None
    body = answer.json()
    return body if body["status"] in FINISHED else None


async def test_bad_paths_are_refused_with_json_errors(
    server: Server, roots: Path, tmp_path: Path
) -> None:
    http = server.http
    outside = tmp_path / "outside"
    outside.mkdir()
    (roots / "escape").symlink_to(outside)
    (roots / "file.txt").write_text("not a folder")
    cases = [
        (str(outside), 403, "path_not_allowed"),
        (str(roots / "escape"), 403, "path_not_allowed"),
        (str(roots / "card1" / ".." / ".." / "outside"), 403, "path_not_allowed"),
        (str(roots / "file.txt"), 422, "invalid_path"),
        (str(roots / "missing"), 422, "invalid_path"),
        ("relative/card", 422, "invalid_path"),
        ("", 422, None),
        ("/" + "x" * 300, 422, None),
    ]
    for path, status, code in cases:
        answer = await http.post("/api/imports", json={"path": path})
        assert answer.status_code == status, (path, answer.text)
        body = answer.json()
        assert body["error"]["message"] and body["detail"] == body["error"]["message"]
        if code is not None:
            assert body["error"]["code"] == code, (path, body)
        assert str(tmp_path) not in answer.text  # no server paths in answers
    bad = [
        await http.post("/api/imports", content=b"{not json", headers={"content-type": "application/json"}),
        await http.post("/api/imports", json={"path": 5}),
        await http.post("/api/imports", json={"path": "/x", "extra": 1}),
        await http.get("/api/imports/not-a-uuid"),
        await http.get("/api/imports?limit=0"),
    ]  # fmt: skip
    assert [a.status_code for a in bad] == [400, 422, 422, 400, 400]
    missing = "00000000-0000-4000-8000-000000000000"
    assert (await http.get(f"/api/imports/{missing}")).status_code == 404
    assert (await http.post(f"/api/imports/{missing}/cancel")).json()["error"][
        "code"
    ] == "not_found"
    assert (await http.get("/api/imports")).json()["imports"] == []  # nothing was created


async def test_imports_refused_without_import_roots(live_url: str) -> None:
    async with httpx.AsyncClient(base_url=live_url) as http:
        answer = await http.post("/api/imports", json={"path": "/media/card"})
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "imports_disabled" and "IMPORT_ROOTS" in error["message"]


async def test_cancel_pending_and_running_batches_and_a_failing_copy(
    server: Server, roots: Path
) -> None:
    app, http = server.app, server.http
    slow = roots / "slow"
    g = gopro_folder(slow)
    for n in range(1, 9):  # analysis of a few seconds: time to cancel it while it runs
        make_plain_clip(g / f"GH01000{n}.MP4", seconds=6, size="320x240")
    running = (await http.post("/api/imports", json={"path": str(slow)})).json()
    # One batch runs per instance (the oldest first): these two wait. Each has its own
    # card: a second import of a card a live batch reads answers that batch.
    shutil.copytree(roots / "card1", roots / "card1b", copy_function=shutil.copy2)
    queued = (await http.post("/api/imports", json={"path": str(roots / "card1")})).json()
    failing = (await http.post("/api/imports", json={"path": str(roots / "card1b")})).json()
    assert queued["reused"] is None and failing["reused"] is None
    same = (await http.post("/api/imports", json={"path": str(roots / "card1")})).json()
    assert same["uuid"] == queued["uuid"] and same["reused"] == "running"
    # The second file of `failing` cannot be written (its temporary name is taken by a
    # folder): the copy breaks off after one complete file, as when a card is pulled.
    trap = app.storage.input / failing["uuid"] / "100GOPRO" / ".GH010002.MP4.partial"
    trap.mkdir(parents=True)

    async def active() -> bool:
        body = (await http.get(f"/api/imports/{running['uuid']}")).json()
        return body["status"] == "analyzing"  # copied: its folder holds the card's files

    await wait_for(active, "the first batch to analyse")
    answer = await http.post(f"/api/imports/{queued['uuid']}/cancel")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    answer = await http.post(f"/api/imports/{running['uuid']}/cancel")
    assert answer.status_code == 202, answer.text
    done = await finished(http, running["uuid"])
    assert done["status"] == "cancelled" and done["finished_at"] is not None
    again = await http.post(f"/api/imports/{running['uuid']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "import_finished"

    broken = await finished(http, failing["uuid"])
    assert broken["status"] == "error", broken
    assert "GH010002.MP4" in broken["error_message"]
    assert "after 1 complete files" in broken["error_message"]
    assert "re-insert the card" in broken["error_message"]
    assert f"/api/imports/{failing['uuid']}/retry" in broken["error_message"]
    assert broken["copied_files"] == 1 and broken["copy_completed_at"] is None
    assert [c["source_path"] for c in broken["copied"]] == ["100GOPRO/GH010001.MP4"]
    kept = sorted(p.name for p in trap.parent.iterdir())
    assert kept == [".GH010002.MP4.partial", "GH010001.MP4"]  # no partial file under a final name

    # The cancelled card inserted again: its batch (which owns the copied files) is
    # retried, copying nothing it already has, instead of a new batch finding nothing.
    retry = (await http.post("/api/imports", json={"path": str(slow)})).json()
    assert retry["uuid"] == running["uuid"] and retry["reused"] == "retried"
    final = await finished(http, retry["uuid"])
    assert final["status"] in {"resolved", "needs_manual"}
    assert final["copied_files"] == 8 and final["skipped_files"] == 0
    assert final["total_files"] == final["analyzed_files"] == 8


def test_settings_parse_import_roots() -> None:
    env = {"IMPORT_ROOTS": f"/media/a{os.pathsep}/media/b,/mnt/share", "INGEST_AUTO": "yes"}
    parsed = Settings.from_env(env)
    assert parsed.import_roots == (Path("/media/a"), Path("/media/b"), Path("/mnt/share"))
    assert parsed.ingest_auto is True
    assert Settings.from_env({}).import_roots == () and Settings.from_env({}).ingest_auto is False
    with pytest.raises(ValueError, match="IMPORT_ROOTS"):
        Settings.from_env({"IMPORT_ROOTS": "relative/path"})
