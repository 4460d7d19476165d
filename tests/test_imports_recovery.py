"""A service killed (SIGKILL) in the middle of an import: the next start resumes the batch
without copying a file twice. Real service processes (``python -m stinercut_svc serve``).

The card is pulled while the service is down (the usual case: the filmer takes it back
once the copy is done). The batch's copy had finished (``copy_completed_at``), so the
restarted service goes straight to the analysis and never looks for the card."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

import httpx
import trio
from sqlalchemy import create_engine, func, select

from stinercut_svc.config import normalise_database_url
from stinercut_svc.models.ingest import ImportBatch, ImportedFile, VideoFile
from tests.support.cards import gopro_folder, make_jump_clip, make_plain_clip
from tests.support.child_server import serve_in_child

WAIT_S = 120.0


def build_card(root: Path) -> Path:
    g = gopro_folder(root / "card")
    for n in range(1, 6):  # enough recordings that the analysis is still running when killed
        make_plain_clip(g / f"GH01000{n}.MP4", seconds=4, creation_time=f"2026-12-01T10:0{n}:00Z")
    make_jump_clip(
        g / "GH010006.MP4", seconds=30, freefall=(4.0, 22.0), creation_time="2026-12-01T10:09:00Z"
    )
    return root / "card"


async def poll(url: str, uuid: str, want: set[str], timeout: float = WAIT_S) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        with trio.fail_after(timeout):
            while True:
                body = (await http.get(f"/api/imports/{uuid}")).json()
                if body["status"] in want:
                    return body
                await trio.sleep(0.05)


def identities(folder: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) per copied file: a second copy would give a new inode (rename)."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


async def test_sigkill_mid_import_resumes_without_the_card_and_without_copying_again(
    tmp_path: Path, database_url: str
) -> None:
    roots = tmp_path / "media"
    card = build_card(roots)
    shared = tmp_path / "shared"
    env = {
        "DATABASE_URL": database_url,
        "SHARED_VIDEO_PATH": str(shared),
        "IMPORT_ROOTS": str(roots),
        "DATA_DIR": str(tmp_path / "data"),
    }
    async with serve_in_child(log_path=tmp_path / "first.log", **env) as (url, pid):
        async with httpx.AsyncClient(base_url=url) as http:
            answer = await http.post("/api/imports", json={"path": str(card)})
        assert answer.status_code == 202, answer.text
        uuid = answer.json()["uuid"]
        running = await poll(url, uuid, {"analyzing", "resolved", "needs_manual", "error"})
        assert running["status"] == "analyzing", running  # copied, not yet analysed
        os.kill(pid, signal.SIGKILL)
    folder = shared / "input" / uuid
    before = identities(folder)
    assert len(before) == 6
    shutil.rmtree(card)  # the card is gone before the service is back

    engine = create_engine(normalise_database_url(database_url))
    with engine.connect() as conn:
        row = conn.execute(
            select(ImportBatch.status, ImportBatch.claimed_by, ImportBatch.copy_completed_at).where(
                ImportBatch.uuid == uuid
            )
        ).one()
        assert row.status.value == "analyzing" and row.claimed_by  # left behind by the dead one
        assert row.copy_completed_at is not None

    async with serve_in_child(log_path=tmp_path / "second.log", **env) as (url, _):
        done = await poll(url, uuid, {"resolved", "needs_manual", "error", "cancelled"})
    assert done["status"] == "needs_manual", done  # no QR on this card
    assert done["error_message"] is None
    assert done["interruptions"] == 1
    assert done["copied_files"] == 6 and done["total_files"] == done["analyzed_files"] == 6
    assert identities(folder) == before  # nothing copied twice
    with engine.connect() as conn:
        batch_id = conn.scalar(select(ImportBatch.id).where(ImportBatch.uuid == uuid))
        imported = conn.scalar(
            select(func.count())
            .select_from(ImportedFile)
            .where(ImportedFile.import_batch_id == batch_id)
        )
        files = conn.scalar(
            select(func.count()).select_from(VideoFile).where(VideoFile.import_batch_id == batch_id)
        )
    engine.dispose()
    assert imported == 6 and files == 6
    log = (tmp_path / "second.log").read_text()
    assert "Traceback" not in log, log[-4000:]
