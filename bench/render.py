"""Render benchmark: service overhead, fast path versus re-encode, cancel latency.

Runs the real service (Hypercorn on 127.0.0.1, a throw-away SQLite database and
storage folder unless ``--database-url`` is given) and real ffmpeg:

1. **Service overhead** - a 30 s 1280x720 render (clip + watermark, re-encoded)
   through the API, from the POST to the ``job:status completed`` message on
   the hub, against the identical ffmpeg command (same argv, built by the same
   plan from the same job) run by hand in the same run. Ratio of medians.
2. **Fast path versus re-encode** - three matching 10 s 1280x720 clips: the
   stream-copy command against the re-encode command for the same clips
   (both run the same way), plus the fast path through the API.
3. **Cancel latency** - N renders cancelled mid-way through the API: time from
   the cancel request to its answer (which comes once the job is ``cancelled``
   and ffmpeg is reaped), p50/p99; then orphan ffmpeg processes and leftover
   temp folders are counted (both must be 0).

    .venv/bin/python bench/render.py [--repeats 3] [--cancels 20] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import trio
import trio_websocket
from hypercorn.config import Config
from hypercorn.trio import serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stinercut_svc.app import create_app  # noqa: E402
from stinercut_svc.config import Settings  # noqa: E402
from stinercut_svc.context import StinercutApp  # noqa: E402
from stinercut_svc.jobs import queue  # noqa: E402
from stinercut_svc.jobs.plan import build_plan  # noqa: E402
from stinercut_svc.media.runner import run_ffmpeg  # noqa: E402
from stinercut_svc.models import Asset, AssetType, Project, Video  # noqa: E402
from tests.support.media import ffmpeg  # noqa: E402
from tests.support.processes import media_children  # noqa: E402
from tests.support.render_defaults import clear_frontend_render_defaults  # noqa: E402

HTTP_TIMEOUT = httpx.Timeout(30.0)
RENDER_TIMEOUT_S = 600


def make_media(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {"c30": folder / "c30.mp4", "c10": folder / "c10.mp4", "mark": folder / "mark.png"}
    for name, seconds in (("c30", 30), ("c10", 10)):
        ffmpeg(
            "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "128k", "-shortest", str(out[name]),
        )  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "color=c=white@0.6:size=256x96", "-frames:v", "1",
           "-pix_fmt", "rgba", str(out["mark"]))  # fmt: skip
    return out


async def add_project(app: StinercutApp, name: str, clips: list[Path], settings: dict) -> str:
    def create(session) -> str:  # type: ignore[no-untyped-def]
        project = Project(name=name, settings=json.dumps(settings))
        session.add(project)
        session.flush()
        folder = app.storage.uploads / project.uuid
        folder.mkdir(parents=True, exist_ok=True)
        for order, source in enumerate(clips):
            target = folder / f"{order}-{source.name}"
            shutil.copyfile(source, target)
            session.add(Video(project_id=project.id, filename=source.name, order=order,
                              path=app.storage.relative(target)))  # fmt: skip
        return project.uuid

    return await app.db.run(create)


async def add_asset(app: StinercutApp, kind: AssetType, source: Path) -> str:
    def create(session) -> str:  # type: ignore[no-untyped-def]
        target = app.storage.uploads / "assets" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        asset = Asset(type=kind, name=source.stem, path=app.storage.relative(target))
        session.add(asset)
        session.flush()
        return asset.uuid

    return await app.db.run(create)


def cpu_seconds() -> float:
    """CPU time of this process plus its reaped children (ffmpeg, ffprobe)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


class Service:
    """The app behind Hypercorn, a hub listener and an HTTP client."""

    def __init__(self, app: StinercutApp, base: str, ws: trio_websocket.WebSocketConnection) -> None:
        self.app, self.base, self.ws = app, base, ws
        self.http = httpx.AsyncClient(base_url=base, timeout=HTTP_TIMEOUT)
        self.finished: dict[str, trio.Event] = {}
        self.final: dict[str, dict[str, Any]] = {}

    async def listen(self) -> None:
        while True:
            message = json.loads(await self.ws.get_message())
            if message.get("command") == "hub:ping":  # the hub's keepalive wants an answer
                await self.ws.send_message(json.dumps({"command": "hub:pong", "data": {}}))
                continue
            data = message.get("data") or {}
            if message.get("command") == "job:status" and data.get("status") in (
                "completed", "failed", "cancelled",
            ):  # fmt: skip
                self.final[data["job"]] = data
                self.finished.setdefault(data["job"], trio.Event()).set()

    async def render(self, project: str, body: dict | None = None) -> tuple[float, float, dict]:
        """POST a render; wall seconds until the hub says it completed, and CPU seconds."""
        cpu = cpu_seconds()
        started = time.perf_counter()
        response = await self.http.post(f"/api/projects/{project}/render", json=body or {})
        response.raise_for_status()
        job = response.json()["uuid"]
        event = self.finished.setdefault(job, trio.Event())
        with trio.fail_after(RENDER_TIMEOUT_S):
            await event.wait()
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds() - cpu
        if self.final[job]["status"] != "completed":
            raise RuntimeError(f"render failed: {self.final[job]}")
        return elapsed, cpu, (await self.http.get(f"/api/jobs/{job}")).json()


async def by_hand(app: StinercutApp, job: dict, out: Path) -> tuple[float, float]:
    """The job's own ffmpeg command (same plan), run directly; wall and CPU seconds."""
    context = await app.db.run(partial(queue.load_context, job_id=job["id"]))
    inputs = await app.supervisor.prepare_inputs(context)
    out.mkdir(parents=True, exist_ok=True)
    plan = build_plan(inputs, out / "out.mp4", out / "list.ffconcat")
    if plan.concat_list:
        (out / "list.ffconcat").write_text(plan.concat_list)
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            "-progress", "pipe:1", *plan.args]  # fmt: skip
    cpu = cpu_seconds()
    started = time.perf_counter()
    await trio.to_thread.run_sync(
        partial(subprocess.run, argv, check=True, stdout=subprocess.DEVNULL, timeout=RENDER_TIMEOUT_S)
    )
    return time.perf_counter() - started, cpu_seconds() - cpu


async def run_plan(app: StinercutApp, job: dict, out: Path, *, fastpath: bool) -> float:
    """Either command for the job's clips through the service's runner; seconds."""
    context = await app.db.run(partial(queue.load_context, job_id=job["id"]))
    inputs = await app.supervisor.prepare_inputs(context)
    out.mkdir(parents=True, exist_ok=True)
    plan = build_plan(inputs, out / "out.mp4", out / "list.ffconcat", allow_fastpath=fastpath)
    if plan.concat_list:
        (out / "list.ffconcat").write_text(plan.concat_list)
    started = time.perf_counter()
    await run_ffmpeg(plan.args)
    return time.perf_counter() - started


async def cancel_round(service: Service, project: str) -> tuple[float, bool]:
    response = await service.http.post(f"/api/projects/{project}/render", json={})
    response.raise_for_status()
    job = response.json()["uuid"]
    with trio.fail_after(60):
        while True:  # mid-render: processing, ffmpeg running, some progress made
            row = (await service.http.get(f"/api/jobs/{job}")).json()
            children = media_children("ffmpeg")
            if row["status"] == "processing" and children and row["progress"] >= 1:
                break
            await trio.sleep(0.02)
    started = time.perf_counter()
    answer = await service.http.post(f"/api/jobs/{job}/cancel")
    elapsed = time.perf_counter() - started
    ok = answer.status_code == 200 and answer.json()["status"] == "cancelled"
    gone = all(not Path(f"/proc/{pid}").exists() for pid in children)
    return elapsed, ok and gone


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="stinercut-bench-") as tmp_text:
        tmp = Path(tmp_text)
        print(f"cpus: {os.cpu_count()}; preparing media …", flush=True)
        media = make_media(tmp / "media")
        settings = Settings(
            database_url=args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}",
            shared_video_path=tmp / "shared",
            cors_origins=(),
            detector_url="http://127.0.0.1:9",
            log_level="WARNING",
        )
        app = create_app(settings)
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                lambda task_status: serve(app, config, shutdown_trigger=stop.wait, task_status=task_status)
            )
            base = urls[0]
            with trio.fail_after(30):
                await app.supervisor.started.wait()
            ws_url = base.replace("http://", "ws://") + "/ws?client_type=frontend"
            async with trio_websocket.open_websocket_url(ws_url) as ws:
                service = Service(app, base, ws)
                nursery.start_soon(service.listen)
                try:
                    await scenarios(service, app, media, tmp, args)
                finally:
                    await service.http.aclose()
                    stop.set()
                    nursery.cancel_scope.cancel()


async def scenarios(
    service: Service, app: StinercutApp, media: dict[str, Path], tmp: Path, args: argparse.Namespace
) -> None:
    # Figures stay comparable across releases: the built-in defaults (first clip's
    # size and rate, uncapped), not the frontend's 1920x1080/30 fps/8M seed rows.
    await clear_frontend_render_defaults(app)
    mark = await add_asset(app, AssetType.WATERMARK, media["mark"])

    # 1. service overhead
    overhead = await add_project(app, "overhead", [media["c30"]], {"watermark_asset": mark})
    api_runs: list[tuple[float, float]] = []
    hand_runs: list[tuple[float, float]] = []
    job: dict[str, Any] | None = None
    for i in range(args.repeats):
        # Alternating order, so neither side always runs with warmer caches.
        if i % 2 and job is not None:
            hand_runs.append(await by_hand(app, job, tmp / f"hand{i}"))
        wall, cpu, job = await service.render(overhead)
        assert job["render_path"] == "reencode", job
        api_runs.append((wall, cpu))
        if not i % 2:
            hand_runs.append(await by_hand(app, job, tmp / f"hand{i}"))
        print(f"  run {i + 1}: API {wall:.2f} s wall / {cpu:.2f} s CPU, by hand "
              f"{hand_runs[-1][0]:.2f} s wall / {hand_runs[-1][1]:.2f} s CPU", flush=True)  # fmt: skip
    api = statistics.median(w for w, _ in api_runs)
    hand = statistics.median(w for w, _ in hand_runs)
    api_best, hand_best = min(w for w, _ in api_runs), min(w for w, _ in hand_runs)
    api_cpu = statistics.median(c for _, c in api_runs)
    hand_cpu = statistics.median(c for _, c in hand_runs)
    print(f"1. 30 s 1280x720 re-encode (clip + watermark), API vs the same ffmpeg command by hand:\n"
          f"   wall median {api:.2f} s vs {hand:.2f} s, ratio {api / hand:.3f}; "
          f"best {api_best:.2f} s vs {hand_best:.2f} s, ratio {api_best / hand_best:.3f}; "
          f"CPU (service process + children) {api_cpu:.2f} s vs {hand_cpu:.2f} s, "
          f"ratio {api_cpu / hand_cpu:.3f}")  # fmt: skip

    # 2. fast path versus re-encode for the same matching clips
    matching = await add_project(app, "matching", [media["c10"]] * 3, {})
    api_fast, _, job = await service.render(matching)
    assert job["render_path"] == "fastpath", job
    fast = statistics.median(
        [await run_plan(app, job, tmp / f"fast{i}", fastpath=True) for i in range(args.repeats)]
    )
    slow = statistics.median(
        [await run_plan(app, job, tmp / f"enc{i}", fastpath=False) for i in range(args.repeats)]
    )
    print(f"2. 3 x 10 s matching 1280x720 clips: fast path {fast:.2f} s (through the API "
          f"{api_fast:.2f} s), re-encode {slow:.2f} s, re-encode/fast path ratio {slow / fast:.1f}")  # fmt: skip

    # 3. cancel latency
    cancel_project = await add_project(app, "cancel", [media["c30"]], {"watermark_asset": mark})
    latencies, failures = [], 0
    for _ in range(args.cancels):
        seconds, ok = await cancel_round(service, cancel_project)
        latencies.append(seconds)
        failures += not ok
    await trio.sleep(0.2)
    orphans = media_children("ffmpeg")
    leftovers = [p.name for p in app.storage.temp.iterdir()]
    ms = [s * 1000 for s in latencies]
    print(f"3. {len(ms)} cancels mid-render: p50 {percentile(ms, 50):.0f} ms, "
          f"p99 {percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms; "
          f"not cancelled or process alive: {failures}; orphan ffmpeg processes: {len(orphans)}; "
          f"leftover temp folders: {len(leftovers)}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per timed command (median)")
    parser.add_argument("--cancels", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    trio.run(main, parser.parse_args())
