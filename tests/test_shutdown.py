"""The real CLI process: serves, and stops cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


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
