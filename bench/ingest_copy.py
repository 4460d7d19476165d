"""Ingest copy benchmark: card copy against ``cp``, and the re-insert decision time.

1. **Copy vs cp** - a folder of GoPro-named files (default 8 x 128 MiB) is copied by
   ``stinercut_svc.ingest.copy.copy_files`` (temp name, fsync, rename, dir fsync) and
   by ``cp -r`` in the same run, alternating order, medians of ``--repeats``. Ours is
   durable on return; ``cp`` is not, so ``cp`` is also timed followed by ``sync -f``
   on its destination (the fair baseline). The destination is on the same disk.
   ``--cache warm``: the source is in the page cache (it was just written), so the
   copy is a memory-to-disk write and ours waits for the disk while ``cp`` does not:
   this measures the price of durability. ``--cache cold`` (root: the page cache is
   dropped before every run): the source is read from the disk, as a card is read
   from its reader, which is the case the import lives in. Default ``both``.
2. **Re-insert decision** - a card of ``--decide-files`` (200) files already imported:
   scan + grouping + plan (the whole decision "nothing to copy"), and the same after
   every mtime moved by an hour (another reader/time zone: the quick hash decides).

    .venv/bin/python bench/ingest_copy.py [--files 8] [--size-mib 128] [--repeats 3]
                                          [--cache warm|cold|both]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stinercut_svc.ingest.card import group_recordings, scan_card  # noqa: E402
from stinercut_svc.ingest.copy import KnownFile, copy_files, plan_copy  # noqa: E402
from tests.support.cards import write_bytes_file  # noqa: E402

MIB = 1 << 20


def timed_cp(src: Path, dst: Path, *, sync: bool) -> float:
    start = time.perf_counter()
    subprocess.run(["cp", "-r", "--", str(src), str(dst)], check=True)
    if sync:
        subprocess.run(["sync", "-f", str(dst)], check=True)
    return time.perf_counter() - start


def timed_ours(src: Path, dst: Path) -> float:
    scan = scan_card(src)
    start = time.perf_counter()
    trio.run(copy_files, [*scan.videos, *scan.proxies], dst)
    return time.perf_counter() - start


def drop_caches() -> None:
    """Write back, then drop the page cache (root only): the next read comes from disk."""
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def make_card(work: Path, files: int, size_mib: int) -> Path:
    card = work / "card"
    for n in range(files):
        write_bytes_file(
            card / "DCIM" / "100GOPRO" / f"GX01{n + 1:04d}.MP4", size_mib * MIB, seed=n
        )
    return card / "DCIM"


def bench_copy(work: Path, src: Path, files: int, size_mib: int, repeats: int, cold: bool) -> None:
    total = files * size_mib * MIB
    subprocess.run(["sync"], check=True)
    ours: list[float] = []
    cp: list[float] = []
    cp_sync: list[float] = []
    for i in range(repeats):
        runs = [
            ("ours", lambda d: timed_ours(src, d), ours),
            ("cp", lambda d: timed_cp(src, d, sync=False), cp),
            ("cp+sync", lambda d: timed_cp(src, d, sync=True), cp_sync),
        ]
        if i % 2:
            runs.reverse()
        for name, fn, into in runs:
            dest = work / f"dest-{name}-{i}"
            subprocess.run(["sync"], check=True)
            if cold:
                drop_caches()
            into.append(fn(dest))
            shutil.rmtree(dest)
    mo, mc, ms = (statistics.median(x) for x in (ours, cp, cp_sync))
    mb = total / 1e6
    where = "cold: source read from disk" if cold else "warm: source in the page cache"
    print(f"copy {files} x {size_mib} MiB ({mb:.0f} MB), {where}, medians of {repeats}:")
    print(f"  ingest copy_files : {mo:6.2f} s  {mb / mo:7.1f} MB/s  (durable: fsync + rename)")
    print(f"  cp -r             : {mc:6.2f} s  {mb / mc:7.1f} MB/s  (not durable)")
    print(f"  cp -r + sync -f   : {ms:6.2f} s  {mb / ms:7.1f} MB/s")
    print(f"  ratio speed ours/cp = {mc / mo:.2f}, ours/(cp+sync) = {ms / mo:.2f}")
    print(
        f"  runs ours={[round(x, 2) for x in ours]} cp={[round(x, 2) for x in cp]} "
        f"cp+sync={[round(x, 2) for x in cp_sync]}"
    )


def bench_decide(work: Path, count: int) -> None:
    card = work / "card200"
    for n in range(count):
        write_bytes_file(card / "DCIM" / "100GOPRO" / f"GX01{n + 1:04d}.MP4", 3 * MIB, seed=n)
    scan = scan_card(card)
    copied = trio.run(copy_files, list(scan.videos), work / "imported")
    known = [KnownFile(c.relative, c.size, c.mtime_ns, c.quick_hash) for c in copied]

    def decide() -> tuple[float, int]:
        start = time.perf_counter()
        again = scan_card(card)
        group_recordings(again.videos, again.proxies)
        plan = plan_copy([*again.videos, *again.proxies], known)
        return time.perf_counter() - start, len(plan.new)

    exact, new_exact = decide()
    for p in (card / "DCIM" / "100GOPRO").iterdir():
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 3600 * 10**9))
    hashed, new_hashed = decide()
    print(f"re-insert decision, {count} known files (limit 2 s):")
    print(f"  same mtimes      : {exact * 1000:7.1f} ms, new files {new_exact}")
    print(f"  mtimes shifted 1h: {hashed * 1000:7.1f} ms, new files {new_hashed} (quick hash)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--size-mib", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--decide-files", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--cache", choices=("warm", "cold", "both"), default="both")
    args = parser.parse_args()
    modes = ["warm", "cold"] if args.cache == "both" else [args.cache]
    if "cold" in modes and os.geteuid() != 0:
        print("cold runs need root (they drop the page cache): skipped")
        modes.remove("cold")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        src = make_card(work, args.files, args.size_mib)
        for mode in modes:
            bench_copy(work, src, args.files, args.size_mib, args.repeats, mode == "cold")
        bench_decide(work, args.decide_files)


if __name__ == "__main__":
    main()
