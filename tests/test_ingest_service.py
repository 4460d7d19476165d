"""Batch orchestration on a real card: copy (twice), analyse, resolve, events.

The QR reader is a table (QR decoding is not part of this foundation); everything else
is real: files, ffprobe tags, ffmpeg audio decode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stinercut_svc.ingest.card import CardError
from stinercut_svc.ingest.copy import KnownFile
from stinercut_svc.ingest.resolve import JumpState, ManualReason, QrSighting
from stinercut_svc.ingest.service import analyse_folder, copy_card, qr_reader_from
from tests.support.cards import gopro_folder, make_jump_clip, make_plain_clip

A = "11111111-1111-1111-1111-111111111111"
B = "22222222-2222-2222-2222-222222222222"


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, command: str, data: dict[str, Any]) -> None:
        self.items.append((command, data))

    def named(self, command: str) -> list[dict[str, Any]]:
        return [d for c, d in self.items if c == command]


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("card")
    g = gopro_folder(root)
    make_plain_clip(g / "GH010001.MP4", seconds=3, creation_time="2026-12-01T10:00:00Z")
    make_jump_clip(
        g / "unused.mp4",
        seconds=70,
        freefall=(25.0, 30.0),
        creation_time="2026-12-01T10:05:00Z",
        chapters=[(g / "GX010002.MP4", 40.0), (g / "GX020002.MP4", 30.0)],
    )
    make_plain_clip(g / "GH010003.MP4", seconds=3, creation_time="2026-12-01T10:20:00Z")
    make_jump_clip(
        g / "GH010004.MP4", seconds=45, freefall=(10.0, 25.0), creation_time="2026-12-01T10:25:00Z"
    )
    (g / "GH010004.THM").write_bytes(b"thumb")
    phone = root / "DCIM" / "100APPLE"
    phone.mkdir()
    make_plain_clip(phone / "IMG_0001.MOV", seconds=2, creation_time="2026-12-01T09:00:00Z")
    return root


async def test_copy_then_reinsert_then_analyse(card: Path, tmp_path: Path) -> None:
    events = Events()
    dest = tmp_path / "input" / "b1"
    recorded: list[str] = []

    async def on_file(copied: Any) -> None:
        recorded.append(copied.relative)

    first = await copy_card(card, dest, [], batch_uuid="b1", publish=events, on_file=on_file)
    expected = sorted(
        [
            "100APPLE/IMG_0001.MOV",
            "100GOPRO/GH010001.MP4",
            "100GOPRO/GH010003.MP4",
            "100GOPRO/GH010004.MP4",
            "100GOPRO/GX010002.MP4",
            "100GOPRO/GX020002.MP4",
        ]
    )
    assert sorted(c.relative for c in first.copied) == expected == sorted(recorded)
    assert not (dest / "100GOPRO" / "GH010004.THM").exists()
    progress = events.named("videofile:copy_progress")
    assert progress[-1]["percent"] == 100
    assert events.named("videofile:copy_completed")[0]["files"] == 6

    # Same card again: nothing to copy, and it says so.
    known = [KnownFile(c.relative, c.size, c.mtime_ns, c.quick_hash) for c in first.copied]
    again_events = Events()
    again = await copy_card(
        card, tmp_path / "input" / "b2", known, batch_uuid="b2", publish=again_events
    )
    assert again.copied == () and len(again.plan.known) == 6
    assert [c for c, _ in again_events.items] == ["videofile:copy_skipped"]
    assert not (tmp_path / "input" / "b2").exists()

    analysis_events = Events()
    qr = {
        "100GOPRO/GH:0001": QrSighting(code=A, customer=A, last_seen=2.5),
        "100GOPRO/GH:0003": QrSighting(code=B, customer=None, last_seen=2.5),
    }
    result = await analyse_folder(
        dest, batch_uuid="b1", publish=analysis_events, read_qr=qr_reader_from(qr)
    )
    keys = [r.recording.key for r in result.recordings]
    assert keys == [
        "100APPLE/IMG_0001.MOV",
        "100GOPRO/GH:0001",
        "100GOPRO/GX:0002",
        "100GOPRO/GH:0003",
        "100GOPRO/GH:0004",
    ]
    unassigned, jump_a, jump_b = result.jumps
    assert unassigned.recordings == ("100APPLE/IMG_0001.MOV",)
    assert unassigned.reasons == (ManualReason.MISSING_QR, ManualReason.NO_FREEFALL)
    assert jump_a.state is JumpState.RESOLVED and jump_a.customer == A
    assert jump_a.freefall is not None and jump_a.freefall.key == "100GOPRO/GX:0002"
    assert jump_a.freefall.start == pytest.approx(25.0, abs=0.5)
    assert jump_a.freefall.end == pytest.approx(55.0, abs=0.5)
    assert jump_b.reasons == (ManualReason.UNKNOWN_CUSTOMER,)
    assert jump_b.freefall is not None and jump_b.freefall.start == pytest.approx(10.0, abs=0.5)
    started = analysis_events.named("videofile:analysis_started")
    assert started == [{"batch_id": "b1", "total_files": 6, "recordings": 5}]
    assert len(analysis_events.named("videofile:file_analyzed")) == 6
    assert analysis_events.named("videofile:analysis_progress")[-1]["percent"] == 100


async def test_broken_file_is_kept_with_its_error(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "GH010001.MP4").write_bytes(b"not a video at all" * 100)
    make_plain_clip(folder / "clip.mp4", seconds=1)
    result = await analyse_folder(
        folder, batch_uuid="b", publish=Events(), read_qr=qr_reader_from({})
    )
    by_key = {r.recording.key: r for r in result.recordings}
    assert by_key["GH:0001"].audio is None and by_key["GH:0001"].error
    assert by_key["clip.mp4"].audio is not None
    (group,) = result.jumps
    assert set(group.recordings) == {"GH:0001", "clip.mp4"}


async def test_missing_card_raises_card_error(tmp_path: Path) -> None:
    with pytest.raises(CardError):
        await copy_card(tmp_path / "gone", tmp_path / "d", [], batch_uuid="x", publish=Events())
