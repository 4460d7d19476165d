"""``ROLE``: an ``api`` process queues but never renders; a ``worker`` renders and
serves only health and metrics. Both are the real CLI in child processes over one
database and one storage folder, the way compose runs ``backend`` and ``worker``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from sqlalchemy import delete
from sqlalchemy.orm import Session

from stinercut_svc.config import ConfigError, Settings, normalise_database_url
from stinercut_svc.database import Database
from stinercut_svc.jobs.options import FRONTEND_SETTING_KEYS
from stinercut_svc.models import Setting
from tests.support.child_server import serve_in_child
from tests.support.media import make_clip

#: How long the api process is watched for a claim it must not make. A process
#: that claims does so at once: the render route wakes its supervisor.
NO_CLAIM_WATCH_S = 3.0
RENDER_DEADLINE_S = 120.0


def child_env(database_url: str, shared: Path, data: Path, role: str) -> dict[str, str]:
    return {
        "ROLE": role,
        "DATABASE_URL": database_url,
        "SHARED_VIDEO_PATH": str(shared),
        "DATA_DIR": str(data),
        "DETECTOR_URL": "http://127.0.0.1:9",
        "REDIS_URL": "",
        "AUTH_REQUIRED": "false",
    }


async def clear_render_defaults(database_url: str) -> None:
    """Render at the clip's own 320x240 instead of the frontend's 1080p seed rows."""
    db = Database(normalise_database_url(database_url))
    try:

        def clear(session: Session) -> None:
            session.execute(delete(Setting).where(Setting.key.in_(list(FRONTEND_SETTING_KEYS))))

        await db.run(clear)
    finally:
        db.dispose()


async def job_status(http: httpx.AsyncClient, url: str, job: str) -> dict[str, Any]:
    response = await http.get(f"{url}/api/jobs/{job}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_api_queues_and_worker_renders(
    tmp_path: Path, database_url: str, media_dir: Path
) -> None:
    clip = media_dir / "roles.mp4"
    if not clip.exists():
        make_clip(clip, seconds=2)
    shared, data = tmp_path / "shared", tmp_path / "data"
    api_env = child_env(database_url, shared, data, "api")
    async with (
        serve_in_child(**api_env) as (api, _),
        httpx.AsyncClient(timeout=30) as http,
    ):
        await clear_render_defaults(database_url)
        project = (await http.post(f"{api}/api/projects", json={"name": "roles"})).json()
        upload = await http.post(
            f"{api}/api/projects/{project['uuid']}/videos",
            files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
        )
        assert upload.status_code == 201, upload.text
        queued = await http.post(f"{api}/api/projects/{project['uuid']}/render", json={})
        assert queued.status_code == 202, queued.text
        job = queued.json()["uuid"]

        # The api process never claims it.
        with trio.move_on_after(NO_CLAIM_WATCH_S):
            while True:
                assert (await job_status(http, api, job))["status"] == "pending"
                await trio.sleep(0.2)

        async with serve_in_child(**child_env(database_url, shared, data, "worker")) as (
            worker,
            _,
        ):
            with trio.fail_after(RENDER_DEADLINE_S):
                while (view := await job_status(http, api, job))["status"] in (
                    "pending",
                    "processing",
                ):
                    await trio.sleep(0.2)
            assert view["status"] == "completed", view

            # The worker serves health, liveness and metrics, nothing of the API.
            health = await http.get(f"{worker}/api/health")
            assert health.status_code == 200 and health.json()["database"] is True
            scrape = await http.get(f"{worker}/metrics")  # Prometheus scrapes each worker
            assert scrape.status_code == 200 and "stinercut_http_requests" in scrape.text
            for method, path in (
                ("GET", "/api/projects"),
                ("POST", f"/api/projects/{project['uuid']}/render"),
                ("GET", f"/api/jobs/{job}/output"),
                ("GET", "/docs"),
            ):
                refused = await http.request(method, f"{worker}{path}", json={})
                assert refused.status_code == 404, (path, refused.text)
                body = refused.json()
                assert body["error"]["code"] == "not_served_by_role"
                assert "ROLE=worker" in body["detail"]
            hub = await http.get(
                f"{worker}/ws",
                headers={
                    "Connection": "Upgrade",
                    "Upgrade": "websocket",
                    "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                },
            )
            assert hub.status_code == 404, hub.text

        # The file the worker wrote is served by the api process from the shared storage.
        output = await http.get(f"{api}/api/jobs/{job}/output")
        assert output.status_code == 200
        assert output.content[4:8] == b"ftyp"


@pytest.mark.parametrize(
    ("raw", "role"), [(None, "all"), ("api", "api"), ("Worker", "worker"), (" all ", "all")]
)
def test_role_setting(raw: str | None, role: str) -> None:
    env = {"ROLE": raw} if raw is not None else {}
    assert Settings.from_env(env).role == role


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ConfigError, match="ROLE: 'render' is not one of all, api, worker"):
        Settings.from_env({"ROLE": "render"})
