"""No stranded files: a failed or cancelled import is finished by retrying it, never replaced.

A batch that ended ``error``/``cancelled`` owns the files it copied (their
``imported_file`` rows make them known: no other batch copies them again), so the
same batch must analyse them: ``POST /api/imports/{uuid}/retry`` does, and so does
re-inserting the card (``device.mounted`` over a real WebSocket, or ``POST
/api/imports`` of the same folder), which reuses that batch.

Real server, real ffmpeg clips, real copies. "Pulling the card" mid-copy is done as in
tests/test_imports.py: the second file's temporary name is taken by a folder, so the
copy breaks off after one complete file exactly as a read error would; removing the
card folder is the card gone. Batches queue behind a running "blocker" batch (one runs
per instance), which gives the test time to set those traps before the target runs.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.database import Database
from stinercut_svc.models.ingest import (
    BatchStatus,
    ImportBatch,
    ImportedFile,
    SourceKind,
    VideoFile,
)
from stinercut_svc.schema import upgrade
from stinercut_svc.services import imports
from tests.support.cards import gopro_folder, make_jump_clip, make_plain_clip
from tests.support.server import running_server
from tests.test_imports import Listener, detector_says, finished, wait_for

#: The card: two plain clips and a jump (no QR: the batch ends needs_manual).
VIDEOS = ["100GOPRO/GH010001.MP4", "100GOPRO/GH010002.MP4", "100GOPRO/GH010003.MP4"]
LIVE = {"pending", "copying", "analyzing"}


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("retry-cards") / "card"
    g = gopro_folder(root)
    make_plain_clip(g / "GH010001.MP4", seconds=3, creation_time="2026-12-01T10:00:00Z")
    make_plain_clip(g / "GH010002.MP4", seconds=3, creation_time="2026-12-01T10:01:00Z")
    make_jump_clip(
        g / "GH010003.MP4", seconds=30, freefall=(5.0, 15.0), creation_time="2026-12-01T10:02:00Z"
    )
    return root


@pytest.fixture(scope="module")
def blocker_card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A card whose analysis takes a few seconds: batches queued behind it wait."""
    root = tmp_path_factory.mktemp("blocker") / "blocker"
    g = gopro_folder(root)
    for n in range(1, 7):
        make_plain_clip(g / f"GH01000{n}.MP4", seconds=6, size="320x240")
    return root


@attrs.frozen
class Server:
    app: StinercutApp
    url: str
    http: httpx.AsyncClient
    roots: Path


@pytest.fixture
async def server(
    settings: Settings, tmp_path: Path, card: Path, blocker_card: Path
) -> AsyncIterator[Server]:
    roots = tmp_path / "media"
    shutil.copytree(blocker_card, roots / "blocker", copy_function=shutil.copy2)
    for name in ("card", "card2", "card3"):
        shutil.copytree(card, roots / name, copy_function=shutil.copy2)
    configured = attrs.evolve(settings, import_roots=(roots,), ingest_auto=True)
    app = create_app(configured)
    async with running_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield Server(app, url, http, roots)


async def start_blocker(server: Server) -> dict[str, Any]:
    blocker = await server.http.post("/api/imports", json={"path": str(server.roots / "blocker")})
    assert blocker.status_code == 202, blocker.text

    async def running() -> bool:
        body = (await server.http.get(f"/api/imports/{blocker.json()['uuid']}")).json()
        assert body["status"] in LIVE, body  # still running while the targets are queued
        return body["status"] in {"copying", "analyzing"}

    await wait_for(running, "the blocker batch to run")
    return blocker.json()


def trap(app: StinercutApp, uuid: str) -> Path:
    """The second file's temporary name taken by a folder: the copy stops after one file."""
    path = app.storage.input / uuid / "100GOPRO" / ".GH010002.MP4.partial"
    path.mkdir(parents=True)
    return path


async def import_path(server: Server, path: Path) -> dict[str, Any]:
    answer = await server.http.post("/api/imports", json={"path": str(path)})
    assert answer.status_code == 202, answer.text
    return answer.json()


def inodes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_ino
        for p in sorted(folder.rglob("*.MP4"))
        if p.is_file()
    }


async def rows(app: StinercutApp, uuid: str) -> dict[str, int]:
    def read(session: Session) -> dict[str, int]:
        batch_id = session.scalar(select(ImportBatch.id).where(ImportBatch.uuid == uuid))

        def n(model: Any, *where: Any) -> int:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        return {
            "batches": n(ImportBatch),
            "imported": n(ImportedFile, ImportedFile.import_batch_id == batch_id),
            "imported_all": n(ImportedFile),
            "distinct_imported": int(
                session.scalar(select(func.count(func.distinct(ImportedFile.source_path)))) or 0
            ),
            "files": n(VideoFile, VideoFile.import_batch_id == batch_id),
            "files_all": n(VideoFile),
        }

    return await app.db.run(read)


async def test_pulled_card_reinserted_reuses_its_batch_and_analyses_every_file_once(
    server: Server,
) -> None:
    app, http = server.app, server.http
    listener = await trio.to_thread.run_sync(Listener, server.url)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, listener.pump)
        try:
            blocker = await start_blocker(server)
            card = server.roots / "card"
            batch = await import_path(server, card)
            assert batch["reused"] is None
            uuid = batch["uuid"]
            gap = trap(app, uuid)
            await finished(http, blocker["uuid"])

            pulled = await finished(http, uuid)
            assert pulled["status"] == "error", pulled
            message = pulled["error_message"]
            assert "GH010002.MP4" in message and "1 file(s) of the card were copied" in message
            assert "re-insert the card" in message and f"/api/imports/{uuid}/retry" in message
            assert pulled["copied_files"] == 1 and pulled["copy_completed_at"] is None
            folder = app.storage.input / uuid
            first_copy = inodes(folder)
            assert list(first_copy) == ["100GOPRO/GH010001.MP4"]

            # The card is back (the read error is gone): the detector announces it.
            gap.rmdir()
            await detector_says(server.url, "device.mounted", {"mount_path": str(card)})

            async def reused() -> list[dict[str, Any]]:
                return listener.named("videofile:batch_reused")

            (event,) = await wait_for(reused, "videofile:batch_reused")
            assert event == {"batch_id": uuid, "reused": "retried", "mount_path": str(card)}

            async def done() -> dict[str, Any] | None:
                body = (await http.get(f"/api/imports/{uuid}")).json()
                return body if body["status"] in {"resolved", "needs_manual"} else None

            detail = await wait_for(done, "the reused batch to finish")
        finally:
            listener.closed = True
        await trio.to_thread.run_sync(listener.ws.close)

    assert detail["status"] == "needs_manual" and detail["error_message"] is None
    assert detail["copied_files"] == 3 and detail["copy_completed_at"] is not None
    assert detail["total_files"] == detail["analyzed_files"] == 3
    assert sorted(c["source_path"] for c in detail["copied"]) == VIDEOS
    again = inodes(folder)
    assert again["100GOPRO/GH010001.MP4"] == first_copy["100GOPRO/GH010001.MP4"]  # not re-copied
    counts = await rows(app, uuid)
    # The blocker and this batch only: no new, empty batch for the re-inserted card.
    assert counts["batches"] == 2
    assert counts["imported"] == 3 and counts["files"] == 3
    analysed = [d["filename"] for d in listener.named("videofile:file_analyzed")]
    mine = [d for d in listener.named("videofile:file_analyzed") if d["batch_id"] == uuid]
    assert sorted(d["filename"] for d in mine) == VIDEOS, analysed  # each file analysed once
    statuses = [d["status"] for d in listener.named("videofile:batch_status") if d["uuid"] == uuid]
    assert statuses.index("error") < statuses.index("pending", statuses.index("error"))

    # Inserted once more, the finished batch is not reused: a new batch finds nothing new.
    later = await import_path(server, card)
    assert later["reused"] is None and later["uuid"] != uuid
    nothing = await finished(http, later["uuid"])
    assert nothing["status"] == "resolved" and nothing["skipped_files"] == 3


async def test_retry_endpoint(server: Server) -> None:
    app, http = server.app, server.http
    blocker = await start_blocker(server)
    card2, card3 = server.roots / "card2", server.roots / "card3"
    pulled = await import_path(server, card2)
    gap = trap(app, pulled["uuid"])
    never = await import_path(server, card3)
    shutil.rmtree(card3)  # gone before its batch ran: nothing copied
    await finished(http, blocker["uuid"])
    first = await finished(http, pulled["uuid"])
    assert first["status"] == "error" and first["copied_files"] == 1
    empty = await finished(http, never["uuid"])
    assert empty["status"] == "error" and "no file was copied" in empty["error_message"]

    # Refusals: unknown (404), not a uuid (400), bad bodies (422), wrong states (409).
    missing = "00000000-0000-4000-8000-000000000000"
    answer = await http.post(f"/api/imports/{missing}/retry")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert (await http.post("/api/imports/nope/retry")).status_code == 400
    url = f"/api/imports/{pulled['uuid']}/retry"
    for body in ({"skip_copy": [1]}, {"skip_copy": True, "other": 1}, [True]):
        answer = await http.post(url, json=body)
        assert answer.status_code == 422, (body, answer.text)
    finished_ok = await http.post(f"/api/imports/{blocker['uuid']}/retry")
    assert finished_ok.status_code == 409, finished_ok.text
    error = finished_ok.json()["error"]
    assert error["code"] == "import_not_retryable" and "needs_manual" in error["message"]
    nothing = await http.post(f"/api/imports/{never['uuid']}/retry", json={"skip_copy": True})
    assert nothing.status_code == 409 and "copied no file" in nothing.json()["error"]["message"]
    assert (await http.get(f"/api/imports/{pulled['uuid']}")).json()["status"] == "error"

    # A re-inserted card racing a manual retry: one of them reopens the batch, the
    # other sees it live; never a second batch for the card.
    before = await rows(app, pulled["uuid"])
    answers: dict[str, httpx.Response] = {}

    async def retry() -> None:
        answers["retry"] = await http.post(url)

    async def reinsert() -> None:
        answers["insert"] = await http.post("/api/imports", json={"path": str(card2)})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(retry)
        nursery.start_soon(reinsert)
    insert = answers["insert"].json()
    assert answers["insert"].status_code == 202 and insert["uuid"] == pulled["uuid"], insert
    if answers["retry"].status_code == 202:
        assert insert["reused"] == "running"
    else:
        assert answers["retry"].status_code == 409 and insert["reused"] == "retried"
    assert (await rows(app, pulled["uuid"]))["batches"] == before["batches"]
    again = await finished(http, pulled["uuid"])  # the trap is still there: stops again
    assert again["status"] == "error" and again["copied_files"] == 1

    # The card gone and its copy unfinished: error saying what was copied, what to do.
    gap.rmdir()
    shutil.rmtree(card2)
    answer = await http.post(url, content=b"")  # no body: skip_copy false
    assert answer.status_code == 202 and answer.json()["status"] == "pending", answer.text
    gone = await finished(http, pulled["uuid"])
    assert gone["status"] == "error", gone
    assert "1 file(s) of the card were copied" in gone["error_message"]
    assert "retry without the card" in gone["error_message"]

    # skip_copy: the copied file is analysed without the card.
    answer = await http.post(url, json={"skip_copy": True})
    assert answer.status_code == 202, answer.text
    assert answer.json()["copied_files"] == 1  # counters kept
    done = await finished(http, pulled["uuid"])
    assert done["status"] == "needs_manual" and done["error_message"] is None, done
    assert done["total_files"] == done["analyzed_files"] == 1
    assert done["copy_completed_at"] is not None
    assert [f["filepath"].split("/", 1)[1] for f in done["files"]] == ["100GOPRO/GH010001.MP4"]
    counts = await rows(app, pulled["uuid"])
    assert counts["imported"] == 1 and counts["files"] == 1
    # Finished well now: no more retries.
    assert (await http.post(url)).status_code == 409


async def test_racing_reopens_reopen_once(database_url: str) -> None:
    """Many rounds of two concurrent reopenings of one failed batch (a manual retry and a
    re-inserted card) in real transactions: exactly one wins each round."""
    db = Database(database_url)
    await trio.to_thread.run_sync(upgrade, db.engine)
    try:

        def make(session: Session) -> int:
            batch = ImportBatch(
                source_kind=SourceKind.CARD, mount_path="/media/card", status=BatchStatus.ERROR
            )
            session.add(batch)
            session.flush()
            return batch.id

        batch_id = await db.run(make)

        def fail_again(session: Session) -> None:
            session.execute(
                update(ImportBatch)
                .where(ImportBatch.id == batch_id)
                .values(status=BatchStatus.ERROR, error_message="card pulled")
            )

        async def one(won: list[dict[str, Any] | None], **kwargs: Any) -> None:
            won.append(await db.run(partial(imports.reopen, batch_id=batch_id, **kwargs)))

        for _ in range(15):
            await db.run(fail_again)
            won: list[dict[str, Any] | None] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(one, won, skip_copy=False))
                nursery.start_soon(partial(one, won, mount_path="/media/card-again"))
                nursery.start_soon(partial(one, won, skip_copy=True))
            winners = [w for w in won if w is not None]
            assert len(winners) == 1, won
            assert winners[0]["status"] == "pending" and winners[0]["error_message"] is None
    finally:
        db.engine.dispose()
