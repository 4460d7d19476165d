"""``GET /`` and ``GET /api/health``: real checks, healthy and unhealthy."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import trio

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings


async def test_root_names_the_service(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "ok"
    assert body["service"] == "stinercut-svc"
    assert body["version"]


async def test_healthy_when_everything_works(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/api/health")
    body = await response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "healthy"
    for check in ("database", "ffmpeg", "ffprobe", "storage"):
        assert body[check] is True, (check, body["details"])
    assert body["details"]["ffmpeg"].startswith("ffmpeg version")
    assert body["details"]["ffprobe"].startswith("ffprobe version")


async def test_missing_ffmpeg_is_unhealthy(settings: Settings) -> None:
    app = create_app(attrs.evolve(settings, ffmpeg="/nonexistent/ffmpeg"))
    async with app.test_app():
        response = await app.test_client().get("/api/health")
        body = await response.get_json()
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["ffmpeg"] is False and body["ffprobe"] is True
    assert "not installed" in body["details"]["ffmpeg"]


async def test_unwritable_storage_is_unhealthy(settings: Settings) -> None:
    app = create_app(settings)
    async with app.test_app():
        # Replace the temp folder by a file: the write probe must fail.
        app.storage.temp.rmdir()
        app.storage.temp.write_text("not a folder")
        response = await app.test_client().get("/api/health")
        body = await response.get_json()
    assert response.status_code == 503
    assert body["storage"] is False and body["database"] is True


async def test_closed_database_port_is_unhealthy_quickly(tmp_path: Path) -> None:
    port = _closed_port()
    status, body = await _health_for(tmp_path, f"mysql://u:p@127.0.0.1:{port}/db")
    assert status == 503
    assert body["database"] is False
    assert body["ffmpeg"] is True
    assert "Can't connect" in body["details"]["database"] or "refused" in body["details"]["database"]


async def test_silent_database_host_does_not_hang_health(
    tmp_path: Path, silent_listener: int
) -> None:
    # A server that accepts TCP but never speaks: the driver would wait for its
    # connect timeout; the health check must answer at its own deadline instead.
    status, body = await _health_for(tmp_path, f"mysql://u:p@127.0.0.1:{silent_listener}/db")
    assert status == 503
    assert body["database"] is False
    assert "no answer" in body["details"]["database"] or "timed out" in body["details"]["database"]


async def _health_for(tmp_path: Path, url: str) -> tuple[int, dict]:
    app = create_app(Settings.from_env({"DATABASE_URL": url, "SHARED_VIDEO_PATH": str(tmp_path)}))
    # The bound is generous on purpose: it is a "does not hang" guard, not a timing.
    with trio.fail_after(20):
        async with app.test_app():
            response = await app.test_client().get("/api/health")
            return response.status_code, await response.get_json()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]
