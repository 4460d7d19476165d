"""Benchmark ``POST /api/fonts/convert`` and what it does to the rest of the app.

Run::

    .venv/bin/python bench/fonts.py [--font /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf]
                                    [--requests 50] [--concurrency 10]

It starts the service in a child process (one Hypercorn trio worker, SQLite in a
temporary folder) and prints, for a real ~700 KB TTF (DejaVuSans by default):

* 50 conversions one after another, and 50 at concurrency 10: requests/s, p50, p99;
* ``GET /`` latency p50/p99 with the server idle (the baseline), and while the
  concurrent conversions run (ratio against the idle baseline);
* for comparison, the same concurrent run against two bench-only routes: one
  converting in a worker *thread* (what the service did first) and one converting
  *on the trio thread*; the service's own route uses a worker process.

Only 127.0.0.1 is targeted; every loop is bounded in count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import trio

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
PROBE_INTERVAL_S = 0.01
PROBE_MAX_S = 300.0
IDLE_PROBES = 300

# The child process: the real app, plus a bench-only route converting inline.
SERVER = """
import sys
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import jsonify
from stinercut_svc import fonts
from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.routers.fonts import receive_font

async def main():
    app = create_app(Settings.from_env())
    if len(sys.argv) > 1:  # --workers: try another limiter size
        app.font_limiter = trio.CapacityLimiter(int(sys.argv[1]))
    thread_limiter = trio.CapacityLimiter(1)

    @app.post("/bench/convert-thread")
    async def convert_thread():
        upload = await receive_font()
        result = await trio.to_thread.run_sync(
            fonts.convert_font, upload.data, upload.font_name, limiter=thread_limiter
        )
        return jsonify(result.to_api())

    @app.post("/bench/convert-inline")
    async def convert_inline():
        upload = await receive_font()
        return jsonify(fonts.convert_font(upload.data, upload.font_name).to_api())

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(lambda task_status: serve(app, config, task_status=task_status))
        print(urls[0], flush=True)

trio.run(main)
"""


# The prober process: GET / every interval until told to stop; prints latencies (s).
PROBE = """
import sys, threading, time
import httpx

base, interval, limit = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
latencies = []
with httpx.Client(base_url=base, timeout=60) as client:
    client.get("/").raise_for_status()
    print("ready", flush=True)
    deadline = time.monotonic() + limit
    while not stop.is_set() and time.monotonic() < deadline:
        start = time.perf_counter()
        client.get("/").raise_for_status()
        latencies.append(time.perf_counter() - start)
        time.sleep(interval)
print(" ".join(f"{value:.6f}" for value in latencies), flush=True)
"""


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


async def timed(fn: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def convert_once(client: httpx.AsyncClient, path: str, font: bytes, name: str) -> None:
    response = await client.post(path, files={"file": (name, font, "font/ttf")})
    response.raise_for_status()
    assert response.json()["glyph_count"] > 0


async def run_conversions(
    client: httpx.AsyncClient, path: str, font: bytes, name: str, total: int, concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = iter(range(total))

    async def worker() -> None:
        for _ in remaining:
            latencies.append(await timed(lambda: convert_once(client, path, font, name)))

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    return time.perf_counter() - start, latencies


async def probe_root(client: httpx.AsyncClient, out: list[float], count: int) -> None:
    for _ in range(count):
        out.append(await timed(lambda: _get_root(client)))
        await trio.sleep(PROBE_INTERVAL_S)


async def _get_root(client: httpx.AsyncClient) -> None:
    (await client.get("/")).raise_for_status()


class Prober:
    """``GET /`` from a separate process, so the load generator's own CPU use
    (encoding uploads, parsing answers) does not show up as server latency."""

    def __init__(self, base: str) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", PROBE, base, str(PROBE_INTERVAL_S), str(PROBE_MAX_S)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self._process.stdout.readline()  # "ready": its connection is open

    def stop(self) -> list[float]:
        out, _ = self._process.communicate("stop\n", timeout=PROBE_MAX_S + 30)
        return [float(value) for value in out.split()]


async def under_load(
    base: str, path: str, font: bytes, name: str, total: int, concurrency: int
) -> tuple[float, list[float], list[float]]:
    prober = Prober(base)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            elapsed, latencies = await run_conversions(client, path, font, name, total, concurrency)
    finally:
        probes = prober.stop()
    return elapsed, latencies, probes


def report(label: str, total: int, elapsed: float, latencies: list[float]) -> None:
    print(
        f"{label:<38} {total / elapsed:7.1f} req/s   p50 {ms(statistics.median(latencies))}"
        f"   p99 {ms(percentile(latencies, 99))}"
    )


async def bench(base: str, font: bytes, name: str, total: int, concurrency: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        await convert_once(client, "/api/fonts/convert", font, name)  # warm-up
        idle: list[float] = []
        await probe_root(client, idle, IDLE_PROBES)
        elapsed, latencies = await run_conversions(client, "/api/fonts/convert", font, name, total, 1)
    report(f"sequential ({total})", total, elapsed, latencies)

    elapsed, latencies, probes = await under_load(
        base, "/api/fonts/convert", font, name, total, concurrency
    )
    report(f"concurrency {concurrency} ({total})", total, elapsed, latencies)
    thread_elapsed, thread_latencies, thread_probes = await under_load(
        base, "/bench/convert-thread", font, name, total, concurrency
    )
    inline_elapsed, inline_latencies, inline_probes = await under_load(
        base, "/bench/convert-inline", font, name, total, concurrency
    )

    idle_p99 = percentile(idle, 99)
    print()
    print(f"GET / idle (baseline, {len(idle)} probes)      p50 {ms(statistics.median(idle))}   p99 {ms(idle_p99)}")
    p99 = percentile(probes, 99)
    print(
        f"GET / during conversions ({len(probes)} probes)  p50 {ms(statistics.median(probes))}"
        f"   p99 {ms(p99)}   ({p99 / idle_p99:.1f}x idle p99)"
    )
    print()
    print("for comparison (bench-only routes, same load):")
    for label, (c_elapsed, c_latencies, c_probes) in (
        ("worker thread", (thread_elapsed, thread_latencies, thread_probes)),
        ("on the trio thread", (inline_elapsed, inline_latencies, inline_probes)),
    ):
        c_p99 = percentile(c_probes, 99)
        report(f"concurrency {concurrency} ({total}), {label}", total, c_elapsed, c_latencies)
        print(
            f"GET / during {label} conversions ({len(c_probes)} probes) p50 "
            f"{ms(statistics.median(c_probes))}   p99 {ms(c_p99)}   "
            f"({c_p99 / idle_p99:.1f}x idle p99; the worker process is {c_p99 / p99:.1f}x better)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--font", type=Path, default=DEFAULT_FONT)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--workers", type=int, help="conversion workers (default: the app's)")
    args = parser.parse_args()
    if not args.font.is_file():
        print(f"{args.font} not found: install fonts-dejavu-core or pass --font", file=sys.stderr)
        return 2
    font = args.font.read_bytes()
    print(f"font: {args.font} ({len(font) / 1024:.0f} KiB)")

    with tempfile.TemporaryDirectory(prefix="stinercut-bench-fonts-") as tmp:
        env = dict(
            os.environ,
            DATABASE_URL=f"sqlite:///{tmp}/bench.sqlite3",
            SHARED_VIDEO_PATH=f"{tmp}/shared",
            LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, *([str(args.workers)] if args.workers else [])],
            env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            base = server.stdout.readline().strip()
            if not base.startswith("http://127.0.0.1:"):
                print("the server did not start", file=sys.stderr)
                return 1
            trio.run(bench, base, font, args.font.name, args.requests, args.concurrency)
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
