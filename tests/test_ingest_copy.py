"""Incremental, crash-safe card copy: identity, partial-file safety, cancellation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from stinercut_svc.ingest.card import group_recordings, scan_card
from stinercut_svc.ingest.copy import (
    CopiedFile,
    CopyInterrupted,
    KnownFile,
    copy_files,
    copy_one,
    destination_for,
    plan_copy,
    quick_hash,
)
from tests.support.cards import gopro_folder, write_bytes_file

MIB = 1 << 20


def _known(copied: list[CopiedFile]) -> list[KnownFile]:
    return [KnownFile(c.relative, c.size, c.mtime_ns, c.quick_hash) for c in copied]


def _final_and_partial(root: Path) -> tuple[list[str], list[str]]:
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return [f for f in files if not f.endswith(".partial")], [
        f for f in files if f.endswith(".partial")
    ]


def _make_card(root: Path, numbers: list[int], *, size: int = 3 * MIB) -> Path:
    folder = gopro_folder(root)
    for n in numbers:
        for chapter in (1, 2):
            write_bytes_file(folder / f"GX{chapter:02d}{n:04d}.MP4", size, seed=n * 10 + chapter)
            write_bytes_file(folder / f"GL{chapter:02d}{n:04d}.LRV", size // 8, seed=n * 10 + 5)
        write_bytes_file(folder / f"GX01{n:04d}.THM", 100)
    return root


async def test_copy_keeps_layout_content_and_mtime(tmp_path: Path) -> None:
    card = _make_card(tmp_path / "card", [1, 2])
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in card.rglob("*") if p.is_file()}
    scan = scan_card(card)
    files = [*scan.videos, *scan.proxies]
    progress: list[tuple[int, int]] = []

    async def record(done: int, total: int) -> None:
        progress.append((done, total))

    dest = tmp_path / "input" / "batch"
    copied = await copy_files(files, dest, on_progress=record, chunk=MIB)
    final, partial = _final_and_partial(dest)
    assert partial == []
    assert final == sorted(f.relative for f in files)
    for f, c in zip(files, copied, strict=True):
        assert c.destination == dest / f.relative
        assert c.destination.read_bytes() == f.path.read_bytes()
        assert c.destination.stat().st_mtime_ns == f.mtime_ns
        assert c.quick_hash == quick_hash(f.path)
    total = sum(f.size for f in files)
    assert progress[-1] == (total, total)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert len(progress) > len(files)  # per chunk, not per file
    # Nothing was written to the card.
    assert {
        p: (p.stat().st_mtime_ns, p.read_bytes()) for p in card.rglob("*") if p.is_file()
    } == before


async def test_same_card_twice_copies_nothing_and_new_recordings_exactly(tmp_path: Path) -> None:
    card = _make_card(tmp_path / "card", [1, 2], size=MIB)
    scan = scan_card(card)
    first = await copy_files([*scan.videos, *scan.proxies], tmp_path / "b1")
    known = _known(first)

    again = scan_card(card)
    plan = plan_copy([*again.videos, *again.proxies], known)
    assert plan.new == () and len(plan.known) == len(first)

    _make_card(card, [3, 4, 5], size=MIB)  # the filmer's next three jumps
    third = scan_card(card)
    grouping = group_recordings(third.videos, third.proxies)
    new_recordings = {r.key for r in grouping.recordings if r.number in (3, 4, 5)}
    expected = sorted(
        f.relative for r in grouping.recordings if r.key in new_recordings for f in r.files
    )
    plan = plan_copy([*third.videos, *third.proxies], known)
    assert sorted(f.relative for f in plan.new) == expected
    assert len(expected) == 3 * 4  # two chapters and two proxies each
    copied = await copy_files(plan.new, tmp_path / "b2")
    assert sorted(c.relative for c in copied) == expected


def test_identity_by_name_size_mtime_then_quick_hash(tmp_path: Path) -> None:
    card = tmp_path / "card"
    a = write_bytes_file(card / "GX010001.MP4", 3 * MIB, seed=1)
    b = write_bytes_file(card / "GX010002.MP4", 3 * MIB, seed=2)
    c = write_bytes_file(card / "GX010003.MP4", 3 * MIB, seed=3)
    scan = scan_card(card)
    known = [KnownFile(f.relative, f.size, f.mtime_ns, quick_hash(f.path)) for f in scan.videos]
    # Another reader/time zone: every mtime moves by an hour, contents unchanged → known.
    for p in (a, b, c):
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 3600 * 10**9))
    # A reset camera reused a name: same size, other content → new.
    write_bytes_file(b, 3 * MIB, seed=99)
    # Same name, another size → new without hashing.
    write_bytes_file(c, 2 * MIB, seed=3)
    plan = plan_copy(scan_card(card).videos, known)
    assert [f.name for f in plan.known] == ["GX010001.MP4"]
    assert sorted(f.name for f in plan.new) == ["GX010002.MP4", "GX010003.MP4"]
    # Without a hash on record an mtime change means new (nothing to compare with).
    plain = [KnownFile(k.relative, k.size, k.mtime_ns) for k in known]
    assert len(plan_copy(scan_card(card).videos, plain).new) == 3


async def test_source_truncated_mid_copy_leaves_no_partial_and_reports(tmp_path: Path) -> None:
    card = tmp_path / "card"
    write_bytes_file(card / "GX010001.MP4", 2 * MIB, seed=1)
    victim = write_bytes_file(card / "GX010002.MP4", 6 * MIB, seed=2)
    write_bytes_file(card / "GX010003.MP4", 2 * MIB, seed=3)
    files = list(scan_card(card).videos)
    dest = tmp_path / "dest"

    async def pull_card(done: int, total: int) -> None:
        # The card is pulled while the second file is half copied: it ends early.
        if done >= 3 * MIB and victim.stat().st_size == 6 * MIB:
            with victim.open("r+b") as f:
                f.truncate(3 * MIB + 17)

    with pytest.raises(CopyInterrupted) as caught:
        await copy_files(files, dest, on_progress=pull_card, chunk=MIB)
    assert caught.value.failed == "GX010002.MP4"
    assert [c.relative for c in caught.value.copied] == ["GX010001.MP4"]
    assert "ended at" in str(caught.value)
    assert _final_and_partial(dest) == (["GX010001.MP4"], [])


async def test_source_gone_or_unreadable_mid_copy(tmp_path: Path) -> None:
    card = tmp_path / "card"
    for n in (1, 2, 3):
        write_bytes_file(card / f"GX01000{n}.MP4", MIB, seed=n)
    files = list(scan_card(card).videos)
    dest = tmp_path / "dest"

    async def remove_next(done: int, total: int) -> None:
        if done == MIB:  # the first file's last byte is written: the next one vanishes
            (card / "GX010002.MP4").unlink()

    with pytest.raises(CopyInterrupted) as caught:
        await copy_files(files, dest, on_progress=remove_next)
    assert caught.value.failed == "GX010002.MP4"
    assert [c.relative for c in caught.value.copied] == ["GX010001.MP4"]
    assert _final_and_partial(dest) == (["GX010001.MP4"], [])

    # A read error: the "file" is now something the kernel refuses to read as one.
    (card / "GX010003.MP4").unlink()
    (card / "GX010003.MP4").mkdir()
    with pytest.raises(CopyInterrupted) as caught:
        await copy_files([files[2]], tmp_path / "dest2")
    assert caught.value.failed == "GX010003.MP4" and caught.value.copied == ()
    assert _final_and_partial(tmp_path / "dest2") == ([], [])


async def test_cancelled_copy_stops_within_a_chunk_and_cleans_up(tmp_path: Path) -> None:
    card = tmp_path / "card"
    write_bytes_file(card / "GX010001.MP4", 8 * MIB, seed=1)
    write_bytes_file(card / "GX010002.MP4", 8 * MIB, seed=2)
    files = list(scan_card(card).videos)
    dest = tmp_path / "dest"
    seen: list[int] = []
    with trio.CancelScope() as scope:

        async def cancel_early(done: int, total: int) -> None:
            seen.append(done)
            if done >= 2 * MIB:
                scope.cancel()

        await copy_files(files, dest, on_progress=cancel_early, chunk=MIB)
    assert scope.cancelled_caught
    assert seen[-1] == 2 * MIB  # the thread stopped at the next chunk boundary
    assert _final_and_partial(dest) == ([], [])


@pytest.mark.parametrize("mode", ["copy_file_range", "sendfile", "readinto"])
def test_every_kernel_path_copies_identically(tmp_path: Path, mode: str) -> None:
    card = tmp_path / "card"
    write_bytes_file(card / "odd.MP4", 5 * MIB + 12345, seed=7)
    (source,) = scan_card(card).videos
    out = copy_one(source, tmp_path / "d" / "odd.MP4", chunk=MIB, mode=mode)
    assert out.destination.read_bytes() == source.path.read_bytes()


def test_destination_paths_stay_inside(tmp_path: Path) -> None:
    assert destination_for(tmp_path, "100GOPRO/a.MP4") == tmp_path / "100GOPRO" / "a.MP4"
    for bad in ("../x.MP4", "/etc/passwd", "a/../../b", "a/\x00", "", "."):
        with pytest.raises(ValueError):
            destination_for(tmp_path, bad)


async def test_cancel_while_previous_file_commits_keeps_it_whole(tmp_path: Path) -> None:
    card = tmp_path / "card"
    write_bytes_file(card / "GX010001.MP4", 4 * MIB, seed=1)
    write_bytes_file(card / "GX010002.MP4", 8 * MIB, seed=2)
    files = list(scan_card(card).videos)
    dest = tmp_path / "dest"
    with trio.CancelScope() as scope:

        async def cancel_in_second(done: int, total: int) -> None:
            if done >= 6 * MIB:
                scope.cancel()

        await copy_files(files, dest, on_progress=cancel_in_second, chunk=MIB)
    assert scope.cancelled_caught
    # The first file was complete and is kept whole; the second left nothing.
    assert _final_and_partial(dest) == (["GX010001.MP4"], [])
    assert (dest / "GX010001.MP4").read_bytes() == (card / "GX010001.MP4").read_bytes()


async def test_failed_commit_reports_and_removes_every_temporary_file(tmp_path: Path) -> None:
    card = tmp_path / "card"
    write_bytes_file(card / "GX010001.MP4", 2 * MIB, seed=1)
    write_bytes_file(card / "GX010002.MP4", 2 * MIB, seed=2)
    files = list(scan_card(card).videos)
    dest = tmp_path / "dest"
    # Something already occupies the first file's final name: the rename must fail.
    write_bytes_file(dest / "GX010001.MP4" / "occupied", 1)
    with pytest.raises(CopyInterrupted) as caught:
        await copy_files(files, dest, chunk=MIB)
    assert caught.value.failed == "GX010001.MP4" and caught.value.copied == ()
    assert _final_and_partial(dest) == (["GX010001.MP4/occupied"], [])
