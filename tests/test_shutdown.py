"""The real CLI process: serves, stops cleanly on SIGTERM and SIGINT, also mid-render."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import trio
import trio_websocket
from sqlalchemy import create_engine, text

from stinercut_svc.config import normalise_database_url
from tests.support.child_server import serve_in_child
from tests.support.processes import media_children
from tests.test_render_helpers import LONG_RENDER, long_clip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_then_stop_on_signal(tmp_path: Path, database_url: str, signum: int) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SHARED_VIDEO_PATH": str(tmp_path / "shared"),
        "PORT": str(port),
        "LOG_LEVEL": "INFO",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "stinercut_svc", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = _wait_healthy(f"http://127.0.0.1:{port}/api/health", proc)
        assert health["status"] == "healthy", health
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert "shutting down" in output and "stopped" in output
    for folder in ("uploads", "temp", "output", "thumbnails"):
        assert (tmp_path / "shared" / folder).is_dir()


def _wait_healthy(url: str, proc: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"service exited early: {proc.stdout.read()}")  # type: ignore[union-attr]
        try:
            return httpx.get(url, timeout=5).json()
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("service did not answer within 30 s")


async def test_sigterm_mid_render_requeues_tells_clients_and_leaves_no_processing_project(
    tmp_path: Path, media_dir: Path, database_url: str
) -> None:
    """SIGTERM of the real CLI mid-render: the job goes back to pending (no
    interruption counted), the project is not left ``processing``, no ffmpeg is
    left, and a connected WebSocket client gets the final ``job:status`` before
    its socket closes."""
    env = {
        "DATABASE_URL": database_url,
        "SHARED_VIDEO_PATH": str(tmp_path / "shared"),
        "LOG_LEVEL": "INFO",
    }
    clip = long_clip(media_dir)
    messages: list[dict] = []
    async with httpx.AsyncClient(timeout=30) as http:
        async with serve_in_child(**env) as (url, pid):
            project = (await http.post(f"{url}/api/projects", json={"name": "t"})).json()["uuid"]
            response = await http.post(
                f"{url}/api/projects/{project}/videos",
                files={"file": (clip.name, await trio.Path(clip).read_bytes(), "video/mp4")},
            )
            assert response.status_code == 201, response.text
            ws_url = url.replace("http://", "ws://") + "/ws?client_type=frontend"
            async with trio_websocket.open_websocket_url(ws_url) as ws:
                job = (
                    await http.post(f"{url}/api/projects/{project}/render", json=LONG_RENDER)
                ).json()
                with trio.fail_after(60):
                    while True:
                        row = (await http.get(f"{url}/api/jobs/{job['uuid']}")).json()
                        if row["progress"] >= 1:
                            break
                        await trio.sleep(0.05)
                ffmpegs = [
                    p for p in media_children("ffmpeg", root=pid) if job["uuid"] in _cmdline(p)
                ]
                assert ffmpegs
                os.kill(pid, signal.SIGTERM)
                with trio.fail_after(30):
                    try:
                        while True:
                            messages.append(json.loads(await ws.get_message()))
                    except trio_websocket.ConnectionClosed:
                        pass
    statuses = [
        m["data"]["status"]
        for m in messages
        if m.get("command") == "job:status" and m["data"]["job"] == job["uuid"]
    ]
    assert statuses and statuses[-1] == "pending", statuses
    assert not any(_alive(p) for p in ffmpegs)
    engine = create_engine(normalise_database_url(database_url))
    try:
        with engine.connect() as conn:
            job_row = conn.execute(
                text("SELECT status, interruptions, claimed_by FROM job WHERE uuid = :u"),
                {"u": job["uuid"]},
            ).one()
            project_row = conn.execute(
                text("SELECT status FROM project WHERE uuid = :u"), {"u": project}
            ).one()
    finally:
        engine.dispose()
    assert tuple(job_row) == ("pending", 0, None)
    assert project_row[0] == "draft"


def _alive(pid: int) -> bool:
    """Running, not a zombie (killed children of a killed guard wait for init to reap them)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
