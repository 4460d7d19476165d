"""No ffmpeg outlives the service, and recovery kills what a dead instance left.

* A render that outlasts trio's idle worker threads (10 s) completes: the design
  does not tie ffmpeg's life to the thread that spawned it (the pitfall of a
  bare ``PR_SET_PDEATHSIG`` in the child).
* SIGKILL of the real service process (the CLI, in a child process) mid-render
  leaves no ffmpeg within a second, and the next start renders the job exactly
  once more.
* Recovery's leftover killer: only processes tagged with a *dead* owner's
  identity for *that* job die.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import trio

from stinercut_svc.jobs import owner as owners
from stinercut_svc.media import runner
from stinercut_svc.media.runner import run_ffmpeg
from tests.support.child_server import serve_in_child
from tests.support.processes import media_children, processes_named
from tests.test_render_helpers import LONG_RENDER, ffprobe_json, long_clip


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


async def test_render_longer_than_trio_thread_idle_timeout_completes(tmp_path: Path) -> None:
    out = tmp_path / "slow.mp4"
    # -re reads the source at its native rate: 12 s of wall clock, little CPU.
    args = [
        "-re", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=12",
        "-c:v", "libx264", "-preset", "ultrafast", "-y", str(out),
    ]  # fmt: skip
    start = trio.current_time()
    await run_ffmpeg(args)
    elapsed = trio.current_time() - start
    assert elapsed > 11, "the render must outlast trio's 10 s thread idle timeout"
    duration = float(ffprobe_json(out)["format"]["duration"])
    assert duration == pytest.approx(12, abs=0.3)


async def _upload_long_clip(http: httpx.AsyncClient, url: str, clip: Path) -> str:
    project = (await http.post(f"{url}/api/projects", json={"name": "kill"})).json()["uuid"]
    response = await http.post(
        f"{url}/api/projects/{project}/videos",
        files={"file": (clip.name, await trio.Path(clip).read_bytes(), "video/mp4")},
    )
    assert response.status_code == 201, response.text
    return project


async def _wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while True:
            value = await predicate()
            if value:
                return value
            await trio.sleep(0.05)
    raise AssertionError(what)


async def test_sigkill_of_the_service_leaves_no_ffmpeg_and_restart_renders_once(
    tmp_path: Path, media_dir: Path, database_url: str
) -> None:
    env = {"DATABASE_URL": database_url, "SHARED_VIDEO_PATH": str(tmp_path / "shared")}
    clip = long_clip(media_dir)
    async with httpx.AsyncClient(timeout=30) as http:
        async with serve_in_child(**env) as (url, pid):
            project = await _upload_long_clip(http, url, clip)
            job = (await http.post(f"{url}/api/projects/{project}/render", json=LONG_RENDER)).json()

            async def rendering() -> list[int]:
                found = media_children("ffmpeg", root=pid)
                return [p for p in found if job["uuid"] in _cmdline(p)]

            ffmpegs = await _wait_for(rendering, 60, "ffmpeg never started")
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            while time.monotonic() - killed_at < 5:
                if not any(_alive(p) for p in ffmpegs):
                    break
                await trio.sleep(0.01)
            gone_after = time.monotonic() - killed_at
            assert not any(_alive(p) for p in ffmpegs), "ffmpeg outlived the killed service"
            assert gone_after < 1.0, f"ffmpeg took {gone_after:.2f} s to die"

        # The next start recovers the job: one more render, counted as an interruption.
        async with serve_in_child(**env) as (url, pid):

            async def finished() -> dict | None:
                row = (await http.get(f"{url}/api/jobs/{job['uuid']}")).json()
                return row if row["status"] in ("completed", "failed", "cancelled") else None

            seen_at_once = 0

            async def count_renders() -> None:
                # Only this job's ffmpeg (its temp folder is on the command line):
                # the service runs other short ffmpeg calls too (health checks).
                nonlocal seen_at_once
                while True:
                    running = [
                        p for p in media_children("ffmpeg", root=pid) if job["uuid"] in _cmdline(p)
                    ]
                    seen_at_once = max(seen_at_once, len(running))
                    await trio.sleep(0.05)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(count_renders)
                row = await _wait_for(finished, 180, "the recovered job never finished")
                nursery.cancel_scope.cancel()
            assert row["status"] == "completed", row
            assert row["interruptions"] == 1
            assert seen_at_once == 1
            status = (await http.get(f"{url}/api/projects/{project}")).json()["status"]
            assert status == "completed"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _owner(pid: int, start: int | None) -> str:
    return str(owners.OwnerId(owners.this_host(), pid, start, owners.boot_id(), "t0k3n"))


def test_owner_identity_survives_pid_reuse_and_reboots() -> None:
    me = os.getpid()
    start = owners.process_start_ticks(me)
    assert start is not None
    assert not owners.owner_is_dead(_owner(me, start))
    # The pid is alive but it is another process now (other start time): dead owner.
    assert owners.owner_is_dead(_owner(me, start + 1))
    assert owners.owner_is_dead(_owner(_dead_pid(), 1))
    # Another boot (or host): not provable from here, the heartbeat decides.
    other_boot = str(owners.OwnerId(owners.this_host(), me, start + 1, "0" * 12, "x"))
    assert not owners.owner_is_dead(other_boot)
    assert not owners.owner_is_dead("other-host:1:1:abc:x")
    assert len(owners.new_owner_id()) <= 120


def _guarded_sleep(tag: str) -> subprocess.Popen[bytes]:
    fd = runner.lifeline_fd()
    return subprocess.Popen(
        runner.guarded(["/bin/sleep", "60"], tag=tag), pass_fds=(fd,), process_group=0
    )


def test_kill_leftovers_kills_only_the_dead_owners_processes_for_that_job() -> None:
    dead = _owner(_dead_pid(), 12345)
    live = _owner(os.getpid(), owners.process_start_ticks(os.getpid()))
    leftover = _guarded_sleep(owners.job_tag(dead, "job-a"))
    other_job = _guarded_sleep(owners.job_tag(dead, "job-b"))
    live_work = _guarded_sleep(owners.job_tag(live, "job-a"))
    try:
        deadline = time.monotonic() + 10
        while len(processes_named("sleep")) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        sleeps = {p.pid: _sleep_below(p.pid) for p in (leftover, other_job, live_work)}
        assert owners.kill_leftovers(live, "job-a") == 0  # a live owner's work is never touched
        assert owners.kill_leftovers(dead, "job-a") == 1
        leftover.wait(timeout=5)
        deadline = time.monotonic() + 1
        while _alive(sleeps[leftover.pid]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _alive(sleeps[leftover.pid]), "the guard's child survived it"
        assert other_job.poll() is None and live_work.poll() is None
        assert _alive(sleeps[other_job.pid]) and _alive(sleeps[live_work.pid])
    finally:
        for proc in (leftover, other_job, live_work):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _sleep_below(guard_pid: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = media_children("sleep", root=guard_pid)
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError("the guard did not start its child")


def test_guard_passes_exit_codes_and_signals_through(tmp_path: Path) -> None:
    fd = runner.lifeline_fd()
    done = subprocess.run(runner.guarded(["/bin/sh", "-c", "exit 3"]), pass_fds=(fd,))
    assert done.returncode == 3
    proc = subprocess.Popen(runner.guarded(["/bin/sleep", "30"]), pass_fds=(fd,), process_group=0)
    child = _sleep_below(proc.pid)
    proc.send_signal(signal.SIGTERM)  # forwarded: sleep dies of SIGTERM, and so "does" the guard
    assert proc.wait(timeout=5) == -signal.SIGTERM
    assert not _alive(child)


def test_guard_kills_its_tool_when_the_lifeline_closes(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    argv = runner.guarded(["/bin/sleep", "30"])
    argv[argv.index(str(runner.lifeline_fd()))] = str(read_fd)
    proc = subprocess.Popen(argv, pass_fds=(read_fd,), process_group=0)
    os.close(read_fd)
    try:
        child = _sleep_below(proc.pid)
        assert proc.poll() is None
        os.close(write_fd)  # what the kernel does when the service dies
        proc.wait(timeout=2)
        deadline = time.monotonic() + 1
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _alive(child)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
