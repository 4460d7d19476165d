"""Freefall analysis speed on a 1080p clip: realtime factor per core.

Makes a 1920x1080 H.264 clip (``--seconds`` long, default 60, at ~40 Mbit/s like a
GoPro, with a 30 s wind-band freefall in quiet audio), then times
``stinercut_svc.ingest.freefall.analyse_recording`` on it. CPU time is the ffmpeg
children's plus this process's (user + sys), so ``duration / cpu`` is the realtime
factor per core whatever else the machine runs; wall time is printed beside it. The
baseline in the same run is a full decode of the same file's video
(``ffmpeg -i clip -map 0:v -f null -``), what a frame-looking analysis would pay.

Then a GoPro telemetry track (``gpmd``, GPS5 at 18 Hz, a jump's altitude with the exit
at the wind's start; ``tests/support/gpmf.py``) is added to the same clip and
``stinercut_svc.ingest.service.analyse_signals`` (sound + telemetry, fused) is timed the
same way, with the telemetry read on its own (``read_altitude_track``: moov, sample
table and payloads, no decoding).

    .venv/bin/python bench/ingest_analysis.py [--seconds 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stinercut_svc.ingest.freefall import analyse_recording  # noqa: E402
from stinercut_svc.ingest.service import analyse_signals  # noqa: E402
from stinercut_svc.ingest.telemetry import analyse_altitude, read_altitude_track  # noqa: E402
from tests.support.cards import make_jump_clip  # noqa: E402
from tests.support.gpmf import inject_gpmd, jump_profile, payloads_from_profile  # noqa: E402


def cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fn: Callable[[], object]) -> tuple[float, float, object]:
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    result = fn()
    return time.perf_counter() - wall0, cpu_seconds() - cpu0, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "GX010001.MP4"
        start = time.perf_counter()
        ff_start = args.seconds / 4
        make_jump_clip(
            clip,
            seconds=args.seconds,
            freefall=(ff_start, 30.0),
            size="1920x1080",
            rate=30,
            video_bitrate="40M",
        )
        size_mb = clip.stat().st_size / 1e6
        print(
            f"clip: {args.seconds:.0f} s 1920x1080 30 fps, {size_mb:.0f} MB "
            f"({size_mb * 8 / args.seconds:.0f} Mbit/s), made in {time.perf_counter() - start:.0f} s"
        )
        ours: list[tuple[float, float]] = []
        full: list[tuple[float, float]] = []
        found = None
        argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1"]
        argv += ["-i", str(clip), "-map", "0:v", "-f", "null", "-"]
        for _ in range(args.repeats):
            wall, cpu, found = measure(lambda: trio.run(analyse_recording, [clip]))
            ours.append((wall, cpu))
            wall, cpu, _ = measure(lambda: subprocess.run(argv, check=True))
            full.append((wall, cpu))
        ow, oc = (statistics.median(x) for x in zip(*ours, strict=True))
        fw, fc = (statistics.median(x) for x in zip(*full, strict=True))
        print(f"freefall found: {found.freefalls}  (true: {ff_start:.1f}..{ff_start + 30:.1f})")  # type: ignore[attr-defined]
        print(f"medians of {args.repeats}:")
        print(
            f"  audio analysis   : wall {ow:6.2f} s  cpu {oc:6.2f} s  "
            f"realtime x{args.seconds / ow:7.1f} wall, x{args.seconds / oc:7.1f} per core"
        )
        print(
            f"  full video decode: wall {fw:6.2f} s  cpu {fc:6.2f} s  "
            f"realtime x{args.seconds / fw:7.1f} wall, x{args.seconds / fc:7.1f} per core"
        )
        print(f"  analysis is {fc / oc:.1f}x cheaper in CPU than decoding the frames")
        with_telemetry(clip, args.seconds, ff_start, args.repeats)


def with_telemetry(clip: Path, seconds: float, ff_start: float, repeats: int) -> None:
    """The same clip with a gpmd track: fused analysis and the telemetry read alone."""
    jump = jump_profile(
        seconds=seconds, exit_at=ff_start, exit_altitude=2400.0, freefall_s=30.0, ground=400.0
    )
    payloads = payloads_from_profile(jump.altitude, start=0.0, seconds=int(seconds), noise_m=1.0)
    inject_gpmd(clip, payloads)
    fused: list[tuple[float, float]] = []
    reads: list[float] = []
    found = None
    for _ in range(repeats):
        wall, cpu, found = measure(lambda: trio.run(analyse_signals, [clip]))
        fused.append((wall, cpu))
        wall, _, _ = measure(lambda: read_altitude_track([clip]))
        reads.append(wall)
    fw, fc = (statistics.median(x) for x in zip(*fused, strict=True))
    track = read_altitude_track([clip])
    assert track is not None
    start = time.perf_counter()
    analyse_altitude(track)
    detect_wall = time.perf_counter() - start
    print(
        f"with a gpmd track ({len(payloads)} payloads, {track.size} GPS samples, "
        f"{sum(map(len, payloads)) / 1e3:.0f} KB):"
    )
    print(f"freefall found: {found.freefalls}  (true: {jump.exit:.1f}..{jump.deploy:.1f})")  # type: ignore[attr-defined]
    print(
        f"  sound+telemetry  : wall {fw:6.2f} s  cpu {fc:6.2f} s  "
        f"realtime x{seconds / fw:7.1f} wall, x{seconds / fc:7.1f} per core"
    )
    print(
        f"  telemetry read   : {statistics.median(reads) * 1e3:6.1f} ms (median of {repeats}), "
        f"altitude detection {detect_wall * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
