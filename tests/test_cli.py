"""The real ``stinercut`` CLI, run as a subprocess against a real service.

The service is the one-port server on a real socket (``tests/support/server.py``)
with ``AUTH_REQUIRED`` on and 127.0.0.1 outside ``TRUSTED_NETWORKS``, so every
client command must carry the token that ``stinercut tokens create`` printed.
Renders are 1 s of 160x120 (the cancelled one a longer clip, stopped at once).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from stinercut_svc.auth.roles import Role
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from tests.test_render_helpers import (
    LONG_RENDER,
    add_project,
    clip,
    long_clip,
    wait_job,
    wait_rendering,
)

FAST = {"output": {"preset": "ultrafast"}}
STEP_S = 60.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return attrs.evolve(
        settings, auth_required=True, trusted_networks=(ipaddress.ip_network("10.99.0.0/16"),)
    )


@attrs.define
class Cli:
    """Runs ``python -m stinercut_svc`` with the service's configuration and URL."""

    env: dict[str, str]

    def with_token(self, token: str | None) -> Cli:
        env = {k: v for k, v in self.env.items() if k != "STINERCUT_TOKEN"}
        if token is not None:
            env["STINERCUT_TOKEN"] = token
        return Cli(env)

    def argv(self, args: Sequence[str]) -> list[str]:
        return [sys.executable, "-m", "stinercut_svc", *args]

    async def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
        with trio.fail_after(STEP_S):
            return await trio.run_process(
                self.argv(args), env={**self.env, **(env or {})}, capture_stdout=True,
                capture_stderr=True, check=False,
            )

    async def json(self, *args: str) -> Any:
        done = await self.run(*args, "--json")
        assert done.returncode == 0, (args, done.stderr.decode())
        return json.loads(done.stdout)


@pytest.fixture
def cli(settings: Settings, live_url: str, tmp_path: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STINERCUT_")}
    env.update(
        DATABASE_URL=settings.database_url,
        DATA_DIR=str(tmp_path / "data"),
        SHARED_VIDEO_PATH=str(settings.shared_video_path),
        STINERCUT_URL=live_url,
        LOG_LEVEL="WARNING",
        COLUMNS="120",
    )
    return Cli(env)


async def create_token(cli: Cli, role: Role, name: str) -> str:
    done = await cli.run("tokens", "create", "--role", role.value, "--name", name)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().strip().splitlines()
    assert "not shown again" in lines[0]
    return lines[-1]  # the token is the last line


async def test_tokens_created_listed_revoked_and_used(app: StinercutApp, cli: Cli, live_url: str) -> None:
    viewer = await create_token(cli, Role.VIEWER, "wall screen")
    created = await cli.json("tokens", "create", "--role", "operator", "--name", "ci")
    assert created["role"] == "operator" and created["name"] == "ci"
    operator = created["token"]
    assert viewer.startswith("stc_") and operator.startswith("stc_") and viewer != operator

    listed = await cli.json("tokens", "list")
    assert [(t["name"], t["role"], t["revoked_at"]) for t in listed] == [
        ("wall screen", "viewer", None), ("ci", "operator", None)]
    assert viewer not in json.dumps(listed) and "token_hash" not in listed[0]

    async with httpx.AsyncClient(base_url=live_url) as http:
        auth = {"Authorization": f"Bearer {viewer}"}
        assert (await http.get("/api/projects", headers=auth)).status_code == 200
        assert (await http.post("/api/projects", json={"name": "x"}, headers=auth)).status_code == 403
        auth = {"Authorization": f"Bearer {operator}"}
        assert (await http.post("/api/projects", json={"name": "x"}, headers=auth)).status_code == 201

        revoked = await cli.json("tokens", "revoke", "wall screen")
        assert revoked["name"] == "wall screen" and revoked["revoked_at"] is not None
        answer = await http.get("/api/projects", headers={"Authorization": f"Bearer {viewer}"})
        assert answer.status_code == 401

    # The same name is free again once revoked; an active name is refused.
    await create_token(cli, Role.VIEWER, "wall screen")
    taken = await cli.run("tokens", "create", "--role", "viewer", "--name", "ci")
    assert taken.returncode == 1 and b"active token named 'ci'" in taken.stderr
    unknown = await cli.run("tokens", "revoke", "nobody")
    assert unknown.returncode == 1 and b"no active token" in unknown.stderr
    by_id = await cli.run("tokens", "revoke", str(created["id"]))
    assert by_id.returncode == 0 and b"revoked token" in by_id.stdout
    # Usage and configuration errors: exit code 2.
    assert (await cli.run("tokens", "create", "--role", "root", "--name", "x")).returncode == 2
    bad_config = await cli.run("tokens", "list", env={"PORT": "http"})
    assert bad_config.returncode == 2 and b"configuration error: PORT" in bad_config.stderr
    assert (await cli.run("migrate", env={"PORT": "0"})).returncode == 2


async def test_client_commands_need_a_token_and_say_why(cli: Cli) -> None:
    anonymous = await cli.run("jobs", "list")
    assert anonymous.returncode == 1
    assert b"401 authentication_required" in anonymous.stderr
    viewer = cli.with_token(await create_token(cli, Role.VIEWER, "viewer"))
    refused = await viewer.run("render", "00000000-0000-4000-8000-000000000000")
    assert refused.returncode == 1 and b"403 insufficient_role" in refused.stderr
    nowhere = await viewer.run("health", "--url", "http://127.0.0.1:9")
    assert nowhere.returncode == 4 and b"cannot reach the service" in nowhere.stderr
    health = await cli.run("health", "--json")  # open: no token needed
    body = json.loads(health.stdout)
    assert body["service"] == "stinercut-svc"
    assert health.returncode == (0 if body["status"] in ("healthy", "degraded") else 1)


async def test_render_wait_list_show_retry(
    app: StinercutApp, cli: Cli, media_dir: Path, built_in_defaults: None
) -> None:
    operator = cli.with_token(await create_token(cli, Role.OPERATOR, "operator"))
    project = await add_project(app, [clip(media_dir, "c1s", seconds=1, size="160x120")], name="CLI")

    done = await operator.run("render", project, "--wait", "--options", json.dumps(FAST))
    assert done.returncode == 0, done.stderr.decode()
    last = done.stdout.decode().strip().splitlines()[-1]
    assert last.startswith("job ") and " completed: " in last and last.endswith(".mp4")
    job_uuid = last.split()[1]

    listed = await operator.json("jobs", "list", "--status", "completed")
    assert [j["uuid"] for j in listed["items"]] == [job_uuid] and listed["total"] == 1
    assert (await operator.json("jobs", "list", "--status", "failed"))["items"] == []
    shown = await operator.json("jobs", "show", job_uuid)
    assert shown["status"] == "completed" and shown["project_uuid"] == project
    table = await operator.run("jobs", "list")
    assert job_uuid in table.stdout.decode() and "1 of 1 jobs" in table.stdout.decode()

    retried = await operator.json("jobs", "retry", job_uuid, "--wait")
    assert retried["uuid"] != job_uuid and retried["status"] == "completed"
    assert retried["options"] == shown["options"] and retried["project_uuid"] == project
    assert (await operator.json("jobs", "list"))["total"] == 2
    missing = await operator.run("jobs", "show", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 1 and b"404 not_found" in missing.stderr


async def test_cancelled_render_exits_non_zero(
    app: StinercutApp, cli: Cli, media_dir: Path, live_url: str
) -> None:
    operator = cli.with_token(await create_token(cli, Role.OPERATOR, "operator"))
    project = await add_project(app, [long_clip(media_dir)], name="Long")
    async with trio.open_nursery() as nursery:
        results: list[subprocess.CompletedProcess[bytes]] = []

        async def render() -> None:
            results.append(await operator.run(
                "render", project, "--wait", "--json", "--options", json.dumps(LONG_RENDER)))

        nursery.start_soon(render)
        job_uuid = await _first_job(app, live_url, operator.env["STINERCUT_TOKEN"])
        await wait_rendering(app, job_uuid)
        cancelled = await operator.json("jobs", "cancel", job_uuid)
        assert cancelled["status"] == "cancelled"
    (done,) = results
    assert done.returncode == 3, done.stderr.decode()
    assert json.loads(done.stdout)["status"] == "cancelled"


async def _first_job(app: StinercutApp, url: str, token: str) -> str:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        with trio.fail_after(STEP_S):
            while True:
                items = (await http.get("/api/jobs")).json()["items"]
                if items:
                    return str(items[0]["uuid"])
                await trio.sleep(0.05)


async def test_jobs_watch_streams_the_hub(
    app: StinercutApp, cli: Cli, media_dir: Path, live_url: str, built_in_defaults: None
) -> None:
    viewer = await create_token(cli, Role.VIEWER, "screen")
    project = await add_project(app, [clip(media_dir, "c1s", seconds=1, size="160x120")], name="W")
    process = await trio.lowlevel.open_process(
        cli.argv(["jobs", "watch", "--json"]), env={**cli.env, "STINERCUT_TOKEN": viewer},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        with trio.fail_after(STEP_S):
            assert b"watching jobs" in await process.stderr.receive_some()  # joined the hub
        operator = await create_token(cli, Role.OPERATOR, "operator")
        async with httpx.AsyncClient(base_url=live_url) as http:
            answer = await http.post(f"/api/projects/{project}/render", json=FAST,
                                     headers={"Authorization": f"Bearer {operator}"})
        assert answer.status_code == 202, answer.text
        job = answer.json()["uuid"]
        seen: list[dict[str, Any]] = []
        buffer = b""
        with trio.fail_after(STEP_S):
            while not any(m["command"] == "job:status" and m["data"]["status"] == "completed"
                          for m in seen):
                chunk = await process.stdout.receive_some()
                assert chunk, "watch ended early"
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                seen += [json.loads(line) for line in lines if line.strip()]
        assert {m["data"]["job"] for m in seen} == {job}
        assert [m["data"]["progress"] for m in seen if m["command"] == "job:progress"][-1] == 100
        await wait_job(app, job)
        process.send_signal(signal.SIGINT)  # Ctrl-C: the normal end of watching
        with trio.fail_after(STEP_S):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
