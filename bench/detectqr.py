"""QR detection benchmark: seconds per clip through the API against bare frame extraction.

Two 60 s 1920x1080 30 fps H.264 clips (one keyframe per second, like camera
footage), made with lavfi + a segno QR image:

* **late** - the code is shown only around 75 % of the clip (44.5–45.5 s), so the
  scan decodes all eight samples and finds it on the last one;
* **none** - no code at all: the worst case, eight samples and no hit.

Each is scanned through ``POST /api/detectqr`` on the real service (the CLI,
``python -m stinercut_svc serve``, in its own process; SQLite and storage in a
temporary folder), and, in the same run, the **baseline**: the identical ffmpeg
frame extraction for the same sample times (the command ``media/qr.py`` builds,
output read and discarded), without any decoding, HTTP or probing. The ratio
API / baseline is the cost of the decoder plus the service (ffprobe, HTTP,
moving frames to the worker process). Also printed: the same extraction as one
ffmpeg per sample time (the design not taken), and ``GET /`` latency while
scans run versus idle, and where the decoder should run: the same scan in the
bench process with zxing-cpp in a worker process, a thread, or on the trio
thread, each with the trio loop's lateness meanwhile (zxing-cpp holds the GIL).

    .venv/bin/python bench/detectqr.py [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio
import trio_parallel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stinercut_svc.media import qr  # noqa: E402
from stinercut_svc.media.probe import probe  # noqa: E402
from tests.support.child_server import serve_in_child  # noqa: E402
from tests.support.qr import make_qr_clip  # noqa: E402

PAYLOAD = "Stinercut: 7d0e5a3c-1b2f-4c8d-9e6a-0f1b2c3d4e5f"
CLIP = {"seconds": 60, "size": "1920x1080", "rate": "30", "gop": 30, "module_px": 10}


def make_clips(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    clips = {"late": folder / "late.mp4", "none": folder / "none.mp4"}
    if not clips["late"].exists():
        make_qr_clip(clips["late"], PAYLOAD, visible=(44.5, 45.5), **CLIP)  # type: ignore[arg-type]
    if not clips["none"].exists():
        make_qr_clip(clips["none"], None, **CLIP)  # type: ignore[arg-type]
    return clips


def extract_one_ffmpeg(path: Path, times: list[float]) -> int:
    """The scan's own frame command, output counted and thrown away."""
    out = subprocess.run(qr.frames_command(path, times), capture_output=True, check=True)
    return len(out.stdout)


def extract_per_time(path: Path, times: list[float]) -> int:
    total = 0
    for at in times:
        argv = [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
            "-ss", f"{at:.3f}", "-i", str(path), "-map", "0:v:0", "-frames:v", "1",
            "-vf", f"scale=w='min({qr.MAX_FRAME_WIDTH},iw)':h=-2:flags=area,format=gray",
            "-f", "image2pipe", "-c:v", "pgm", "pipe:1",
        ]  # fmt: skip
        total += len(subprocess.run(argv, capture_output=True, check=True).stdout)
    return total


async def timed_sync(fn: Any, *args: Any) -> float:
    started = time.perf_counter()
    await trio.to_thread.run_sync(fn, *args)
    return time.perf_counter() - started


async def api_scan(http: httpx.AsyncClient, url: str, relative: str) -> tuple[float, dict]:
    started = time.perf_counter()
    response = await http.post(f"{url}/api/detectqr", json={"video_path": relative})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()


async def ticker(lateness: list[float], stop: trio.Event) -> None:
    """How late a 10 ms sleep wakes up: the trio thread's responsiveness."""
    while not stop.is_set():
        started = time.perf_counter()
        await trio.sleep(0.01)
        lateness.append(time.perf_counter() - started - 0.01)


async def placement(path: Path, repeats: int) -> dict[str, tuple[float, float, float]]:
    """Scan in this process with the decoder in a worker process vs a thread vs inline.

    Returns per placement: median seconds per scan, p99 and max lateness of the ticker.
    """

    async def inline(fn: Any, *args: Any) -> Any:
        return fn(*args)

    runners = {
        "worker process": trio_parallel.run_sync,
        "thread": trio.to_thread.run_sync,
        "trio thread": inline,
    }
    times = qr.detect_times(60.0)
    await qr.scan(path, [0.0])  # start the worker process
    out: dict[str, tuple[float, float, float]] = {}
    for name, run_sync in runners.items():
        seconds: list[float] = []
        lateness: list[float] = []
        for _ in range(repeats):
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker, lateness, stop)
                started = time.perf_counter()
                await qr.scan(path, times, run_sync=run_sync)
                seconds.append(time.perf_counter() - started)
                stop.set()
        out[name] = (statistics.median(seconds), pct(lateness, 0.99), max(lateness))
    return out


async def poll_root(http: httpx.AsyncClient, url: str, out: list[float], stop: trio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        (await http.get(f"{url}/")).raise_for_status()
        out.append(time.perf_counter() - started)
        await trio.sleep(0.02)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(repeats: int, keep: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-qr-") as tmp:
        root = Path(tmp)
        shared = root / "shared"
        (shared / "uploads").mkdir(parents=True)
        print("making two 60 s 1080p clips (once; ~1 min) ...", flush=True)
        clips = make_clips(keep or root / "media")
        for name, path in clips.items():
            target = shared / "uploads" / f"{name}.mp4"
            try:
                target.hardlink_to(path)
            except OSError:
                target.write_bytes(path.read_bytes())
        async with serve_in_child(
            DATABASE_URL=f"sqlite:///{root / 'bench.sqlite3'}",
            DATA_DIR=str(root),
            SHARED_VIDEO_PATH=str(shared),
        ) as (url, _pid):
            async with httpx.AsyncClient(timeout=httpx.Timeout(300.0)) as http:
                # Warm-up: starts the worker process, fills the page cache.
                for name in clips:
                    await api_scan(http, url, f"uploads/{name}.mp4")
                idle: list[float] = []
                stop = trio.Event()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(poll_root, http, url, idle, stop)
                    await trio.sleep(2.0)
                    stop.set()
                busy: list[float] = []
                results: dict[str, dict[str, list[float]]] = {}
                answers: dict[str, dict] = {}
                for _ in range(repeats):
                    for name, path in clips.items():
                        row = results.setdefault(name, {"api": [], "one": [], "per": []})
                        stop = trio.Event()
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(poll_root, http, url, busy, stop)
                            elapsed, answer = await api_scan(http, url, f"uploads/{name}.mp4")
                            stop.set()
                        row["api"].append(elapsed)
                        answers[name] = answer
                        times = answer["sampled_at"]
                        row["one"].append(await timed_sync(extract_one_ffmpeg, path, times))
                        row["per"].append(await timed_sync(extract_per_time, path, times))
        where = await placement(clips["none"], repeats)
        probes = []
        for _ in range(repeats):
            started = time.perf_counter()
            await probe(clips["none"])
            probes.append(time.perf_counter() - started)

    print(f"\n60 s 1920x1080 30 fps H.264 (keyframe every 1 s), medians of {repeats}:")
    for name, row in results.items():
        answer = answers[name]
        api, one, per = (statistics.median(row[k]) for k in ("api", "one", "per"))
        print(
            f"  {name:5s} success={answer['success']} attempts={answer['attempts']} "
            f"at={answer['frame_timestamp']}: API {api:.2f} s/clip | bare extraction "
            f"(one ffmpeg, same times) {one:.2f} s | ratio {api / one:.2f} | "
            f"one ffmpeg per time {per:.2f} s ({per / one:.2f}x the one-ffmpeg extraction)"
        )
    print(
        f"  ffprobe of the clip (the API probes before scanning; guarded like every tool):"
        f" {statistics.median(probes):.2f} s"
    )
    print("  decoder placement, scan of 'none' in the bench process (8 samples):")
    for name, (seconds, p99, worst) in where.items():
        print(
            f"    {name:14s} {seconds:.2f} s/scan; trio loop lateness p99 {p99 * 1000:.1f} ms,"
            f" max {worst * 1000:.1f} ms"
        )
    print(
        f"  GET / during scans: p50 {pct(busy, 0.5) * 1000:.1f} ms, p99 {pct(busy, 0.99) * 1000:.1f} ms"
        f" (n={len(busy)}); idle: p50 {pct(idle, 0.5) * 1000:.1f} ms,"
        f" p99 {pct(idle, 0.99) * 1000:.1f} ms (n={len(idle)})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="folder to keep the generated clips in")
    args = parser.parse_args()
    trio.run(main, args.repeats, args.keep)
