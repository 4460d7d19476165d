"""A render that finishes during a database outage is recorded once, never rendered again.

A private MariaDB (its own datadir and port) is SIGKILLed while ffmpeg runs, so
the render completes and its file moves to ``output/`` with the database down.
The outage lasts longer than ``stale_after_s`` and the recovery sweep runs
every half second, so an instance that treated its own stale claim as a dead
instance's would requeue the job and render it again. The database comes back;
the job must end ``completed`` exactly once, with one ffmpeg run in total, the
same output file (inode and mtime), and no interruption counted.
"""

from __future__ import annotations

from pathlib import Path

import trio

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings, normalise_database_url
from stinercut_svc.jobs.supervisor import Timing
from tests.support.private_mariadb import PrivateMariaDB
from tests.support.processes import media_children
from tests.test_render_helpers import (
    LONG_RENDER,
    add_project,
    job_row,
    long_clip,
    project_status,
    start_render,
    wait_job,
    wait_rendering,
)

#: Short clocks so the outage outlasts "stale", and the sweep runs during it.
OUTAGE_TIMING = Timing(
    claim_poll_s=0.5,
    watch_s=0.2,
    heartbeat_s=0.5,
    stale_after_s=3.0,
    sweep_s=0.5,
    commit_retry_first_s=1.0,
    commit_retry_max_s=3.0,  # the sweep gets several chances before the record lands
)


async def test_completion_during_an_outage_is_recorded_once(
    tmp_path: Path, media_dir: Path
) -> None:
    db = PrivateMariaDB()
    await trio.to_thread.run_sync(db.start)
    try:
        settings = Settings(
            database_url=normalise_database_url(db.url),
            shared_video_path=tmp_path / "shared",
            detector_url="http://127.0.0.1:9",
        )
        app = create_app(settings)
        app.supervisor.timing = OUTAGE_TIMING
        ffmpeg_runs: dict[int, str] = {}  # pid → command line

        async def watch_ffmpeg() -> None:
            while True:
                for pid in media_children("ffmpeg"):
                    if pid not in ffmpeg_runs:
                        ffmpeg_runs[pid] = _cmdline(pid)
                await trio.sleep(0.02)

        async with app.test_app(), trio.open_nursery() as nursery:
            nursery.start_soon(watch_ffmpeg)
            project = await add_project(app, [long_clip(media_dir)])
            job = await start_render(app.test_client(), project, LONG_RENDER)
            await wait_rendering(app, job["uuid"])
            # ffmpeg is encoding *this* job (it reported progress): the outage hits mid-render.
            with trio.fail_after(60):
                while True:
                    if (await job_row(app, job["uuid"]))["progress"] >= 1:
                        break
                    await trio.sleep(0.05)
            await trio.to_thread.run_sync(db.stop)  # SIGKILL: the outage starts mid-render

            final = app.storage.output / project / f"{job['uuid']}.mp4"
            with trio.fail_after(180):
                while True:
                    if final.is_file():
                        break
                    await trio.sleep(0.05)
            first = final.stat()
            assert not media_children("ffmpeg"), "ffmpeg still running with its file in output/"
            # Longer than stale_after_s: the claim's heartbeat is now stale.
            await trio.sleep(OUTAGE_TIMING.stale_after_s + 2)
            assert (await trio.to_thread.run_sync(_still_down, db)), "the outage ended early"

            await trio.to_thread.run_sync(db.start)
            row = await wait_job(app, job["uuid"], timeout=60)
            # Give a wrong recovery every chance to strike after the record lands.
            await trio.sleep(OUTAGE_TIMING.sweep_s * 4)
            row = await job_row(app, job["uuid"])
            nursery.cancel_scope.cancel()

        assert row["status"] == "completed", row
        assert row["interruptions"] == 0
        assert row["output_path"] == app.storage.relative(final)
        renders = [line for line in ffmpeg_runs.values() if job["uuid"] in line]
        assert len(renders) == 1, f"ffmpeg rendered the job {len(renders)} times: {renders}"
        now = final.stat()
        assert (now.st_ino, now.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
        async with app.test_app():
            assert await project_status(app, project) == "completed"
    finally:
        await trio.to_thread.run_sync(db.close)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _still_down(db: PrivateMariaDB) -> bool:
    return not db.running
