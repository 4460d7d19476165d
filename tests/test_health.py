"""``GET /`` and ``GET /api/health``: real checks, healthy, degraded and unhealthy.

Health answers from checks kept current in the background: a call must start no
process, must not depend on the request pool being free, and must report the Redis
backplane (``off`` / ``connected`` / ``disconnected``).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import trio
from sqlalchemy import text

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.health_checks import DATABASE_FRESH_S
from tests.support import backends


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
    assert body["backplane"] == "off"  # no REDIS_URL
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
    assert "/nonexistent/ffmpeg" in body["details"]["ffmpeg"]


async def test_health_calls_start_no_process(settings: Settings, tmp_path: Path) -> None:
    # FFMPEG_BINARY/FFPROBE_BINARY point to wrappers that log each start, then run
    # the real tools: the log may grow at start-up, never with health calls.
    runs = tmp_path / "runs.log"
    wrappers = {}
    for tool in ("ffmpeg", "ffprobe"):
        wrapper = tmp_path / f"counting-{tool}"
        wrapper.write_text(f'#!/bin/sh\necho {tool} >> "{runs}"\nexec {tool} "$@"\n')
        wrapper.chmod(0o755)
        wrappers[tool] = str(wrapper)
    app = create_app(attrs.evolve(settings, **wrappers))
    async with app.test_app():
        client = app.test_client()
        first = await client.get("/api/health")
        assert first.status_code == 200, await first.get_json()
        started = runs.read_text().split()
        assert sorted(set(started)) == ["ffmpeg", "ffprobe"]  # the wrappers are in use
        for _ in range(50):
            response = await client.get("/api/health")
            assert response.status_code == 200
        assert runs.read_text().split() == started


async def test_missing_tool_found_again_by_a_recheck(settings: Settings, tmp_path: Path) -> None:
    from stinercut_svc.routers.health import checks_of

    link = tmp_path / "ffprobe-link"
    app = create_app(attrs.evolve(settings, ffprobe=str(link)))
    async with app.test_app():
        client = app.test_client()
        assert (await client.get("/api/health")).status_code == 503
        link.symlink_to(_which("ffprobe"))
        checks_of(app).request_recheck()
        with trio.fail_after(20):  # a "does not hang" guard, not a timing
            while True:
                if (await client.get("/api/health")).status_code == 200:
                    break
                await trio.sleep(0.05)


async def test_healthy_while_every_request_connection_is_busy(settings: Settings) -> None:
    # Fill the request limiter and pool with transactions parked in their threads:
    # health must still answer healthy (its ping has a connection of its own).
    app = create_app(settings)
    release = threading.Event()

    def park(session) -> None:  # type: ignore[no-untyped-def]
        session.execute(text("SELECT 1"))
        release.wait(30)

    async with app.test_app():
        client = app.test_client()
        async with trio.open_nursery() as nursery:
            for _ in range(app.db.limiter.total_tokens):  # type: ignore[arg-type]
                nursery.start_soon(app.db.run, park)
            with trio.fail_after(20):
                while True:
                    if app.db.limiter.borrowed_tokens == app.db.limiter.total_tokens:
                        break
                    await trio.sleep(0.01)
                # A fresh answer, not one cached before the pool filled up.
                await trio.sleep(DATABASE_FRESH_S + 0.1)
                answers = []

                async def call() -> None:
                    response = await client.get("/api/health")
                    answers.append((response.status_code, await response.get_json()))

                async with trio.open_nursery() as callers:
                    for _ in range(20):
                        callers.start_soon(call)
            release.set()
    assert all(status == 200 for status, _ in answers), [b for _, b in answers][:1]
    assert all(body["database"] is True for _, body in answers)


async def test_backplane_disconnected_is_degraded_not_503(settings: Settings) -> None:
    port = _closed_port()
    app = create_app(attrs.evolve(settings, redis_url=f"redis://127.0.0.1:{port}/0"))
    async with app.test_app():
        response = await app.test_client().get("/api/health")
        body = await response.get_json()
    assert response.status_code == 200, body
    assert body["backplane"] == "disconnected"
    assert body["status"] == "degraded"
    assert body["database"] and body["ffmpeg"] and body["storage"]


@pytest.mark.skipif(not backends.REDIS_URL, reason="needs STINERCUT_TEST_REDIS_URL (scripts/test sets it)")
async def test_backplane_connected(settings: Settings) -> None:
    app = create_app(attrs.evolve(settings, redis_url=backends.REDIS_URL))
    async with app.test_app():
        client = app.test_client()
        with trio.fail_after(20):  # a "does not hang" guard, not a timing
            while True:
                body = await (await client.get("/api/health")).get_json()
                if body["backplane"] == "connected":
                    break
                await trio.sleep(0.05)
    assert body["status"] == "healthy"


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


def _which(tool: str) -> str:
    import shutil

    found = shutil.which(tool)
    assert found, f"{tool} is not installed"
    return found


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
