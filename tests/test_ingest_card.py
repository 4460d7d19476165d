"""Card scanning and recording grouping on real folders with real ffmpeg clips."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from stinercut_svc.ingest.card import (
    CardError,
    NameStyle,
    SkipReason,
    group_recordings,
    parse_creation_time,
    parse_gopro_name,
    read_creation_time,
    scan_card,
)
from tests.support.cards import gopro_folder, make_plain_clip, write_bytes_file


def _tree_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def test_gopro_names() -> None:
    assert parse_gopro_name("GH010527.MP4") == parse_gopro_name("gh010527.mp4")
    hero6 = parse_gopro_name("GX020527.MP4")
    assert hero6 is not None and (hero6.style, hero6.family, hero6.chapter, hero6.number) == (
        NameStyle.HERO6,
        "GX",
        2,
        527,
    )
    first = parse_gopro_name("GOPR0042.MP4")
    second = parse_gopro_name("GP010042.MP4")
    assert first is not None and second is not None
    assert (first.chapter, second.chapter, first.number, second.number) == (0, 1, 42, 42)
    assert parse_gopro_name("IMG_0001.MOV") is None
    assert parse_gopro_name("GH01052.MP4") is None


def test_scan_and_group_a_card(tmp_path: Path) -> None:
    card = tmp_path / "card"
    g = gopro_folder(card, "100GOPRO")
    # Two HERO6 recordings whose chapters interleave in a name sort, HERO5 style in
    # another folder (lower-case name), a phone clip in a plain folder inside DCIM.
    for name in ("GH010528.MP4", "GH020527.MP4", "GH010527.MP4"):
        write_bytes_file(g / name, 1000)
    write_bytes_file(g / "GL010527.LRV", 100)
    write_bytes_file(g / "GL020527.LRV", 100)
    write_bytes_file(g / "GL019999.LRV", 100)  # proxy of nothing
    write_bytes_file(g / "GH010527.THM", 10)
    write_bytes_file(g / "._GH010527.MP4", 10)  # macOS resource fork
    h5 = gopro_folder(card, "101gopro")
    for name in ("GP010042.MP4", "GOPR0042.MP4", "GOPR0043.MP4"):
        write_bytes_file(h5 / name, 500)
    write_bytes_file(card / "DCIM" / "100APPLE" / "IMG_0001.MOV", 700)
    write_bytes_file(card / "DCIM" / "100GOPRO" / "notes.txt", 5)
    before = _tree_snapshot(card)

    scan = scan_card(card)
    assert scan.media_root == (card / "DCIM").resolve()
    assert [f.relative for f in scan.videos] == [
        "100APPLE/IMG_0001.MOV",
        "100GOPRO/GH010527.MP4",
        "100GOPRO/GH010528.MP4",
        "100GOPRO/GH020527.MP4",
        "101gopro/GOPR0042.MP4",
        "101gopro/GOPR0043.MP4",
        "101gopro/GP010042.MP4",
    ]
    assert {(s.relative, s.reason) for s in scan.skipped} == {
        ("100GOPRO/GH010527.THM", SkipReason.THUMBNAIL),
        ("100GOPRO/notes.txt", SkipReason.NOT_VIDEO),
    }
    times = {"100APPLE/IMG_0001.MOV": datetime(2026, 12, 1, 10, 30)}
    for rel, hour in (("100GOPRO/GH010527.MP4", 10), ("100GOPRO/GH010528.MP4", 11)):
        times[rel] = datetime(2026, 12, 1, hour)
    grouping = group_recordings(scan.videos, scan.proxies, times)
    recs = grouping.recordings
    assert [r.key for r in recs] == [
        "101gopro/GP:0042",
        "101gopro/GP:0043",
        "100GOPRO/GH:0527",
        "100APPLE/IMG_0001.MOV",  # 10:30, between 0527 (10:00) and 0528 (11:00)
        "100GOPRO/GH:0528",
    ]
    rec527 = recs[2]
    assert [c.file.name for c in rec527.chapters] == ["GH010527.MP4", "GH020527.MP4"]
    assert [c.proxy.name if c.proxy else None for c in rec527.chapters] == [
        "GL010527.LRV",
        "GL020527.LRV",
    ]
    assert [c.file.name for c in recs[0].chapters] == ["GOPR0042.MP4", "GP010042.MP4"]
    assert recs[3].style is NameStyle.OTHER and recs[3].number is None
    assert [p.name for p in grouping.orphan_proxies] == ["GL019999.LRV"]
    assert rec527.size == 2000 + 200
    # The scan wrote nothing to the card.
    assert _tree_snapshot(card) == before


def test_gopro_order_is_by_number_even_when_the_clock_was_reset() -> None:
    from stinercut_svc.ingest.card import CardFile

    def f(rel: str) -> CardFile:
        return CardFile(relative=rel, path=Path("/x") / rel, size=1, mtime_ns=0)

    files = [f("100GOPRO/GX010003.MP4"), f("100GOPRO/GX010002.MP4"), f("100GOPRO/GX010001.MP4")]
    times = {  # battery pulled before recording 3: its clock says 1980-something
        "100GOPRO/GX010001.MP4": datetime(2026, 12, 1, 10),
        "100GOPRO/GX010002.MP4": datetime(2026, 12, 1, 11),
        "100GOPRO/GX010003.MP4": datetime(2016, 1, 1, 0),
    }
    keys = [r.key for r in group_recordings(files, (), times).recordings]
    assert keys == ["100GOPRO/GX:0001", "100GOPRO/GX:0002", "100GOPRO/GX:0003"]
    # Non-GoPro files: time, then name; unknown times last.
    phone = [f("b.mp4"), f("a.mp4"), f("c.mp4")]
    ptimes = {"b.mp4": datetime(2026, 1, 1), "a.mp4": datetime(2026, 1, 1)}
    assert [r.key for r in group_recordings(phone, (), ptimes).recordings] == [
        "a.mp4",
        "b.mp4",
        "c.mp4",
    ]


def test_plain_folder_and_symlinks_out_of_the_root(tmp_path: Path) -> None:
    outside = write_bytes_file(tmp_path / "secret" / "passwd.mp4", 10)
    folder = tmp_path / "share"
    write_bytes_file(folder / "clip.MP4", 10)
    write_bytes_file(folder / "sub" / "other.mov", 10)
    (folder / "escape.mp4").symlink_to(outside)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "inside.mp4").symlink_to(folder / "clip.MP4")
    scan = scan_card(folder)
    assert [f.relative for f in scan.videos] == ["clip.MP4", "inside.mp4", "sub/other.mov"]
    assert {(s.relative, s.reason) for s in scan.skipped} == {
        ("escape.mp4", SkipReason.SYMLINK_OUTSIDE_ROOT),
        ("loop", SkipReason.SYMLINK_DIRECTORY),
    }


def test_unusable_roots_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CardError, match="does not exist"):
        scan_card(tmp_path / "missing")
    file = write_bytes_file(tmp_path / "file.mp4", 1)
    with pytest.raises(CardError, match="not a directory"):
        scan_card(file)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(CardError):
        scan_card(dangling)


async def test_creation_time_from_real_clips(tmp_path: Path) -> None:
    tagged = make_plain_clip(tmp_path / "GH010001.MP4", creation_time="2026-12-01T09:15:30Z")
    untagged = make_plain_clip(tmp_path / "phone.mp4")
    assert await read_creation_time(tagged) == datetime(2026, 12, 1, 9, 15, 30)
    assert await read_creation_time(untagged) is None
    junk = write_bytes_file(tmp_path / "junk.mp4", 100)
    assert await read_creation_time(junk) is None


def test_parse_creation_time() -> None:
    assert parse_creation_time("2026-12-01T10:00:00.000000Z") == datetime(2026, 12, 1, 10)
    assert parse_creation_time("2026-12-01T12:00:00+02:00") == datetime(2026, 12, 1, 10)
    assert parse_creation_time("1970-01-01T00:00:00Z") is None  # camera without a clock
    assert parse_creation_time("garbage") is None
    assert parse_creation_time(None) is None
