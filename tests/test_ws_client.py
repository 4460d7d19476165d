"""``scripts/ws_client.py`` against a real server: detector answers, frontend prints."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import attrs
import trio

from stinercut_svc.config import Settings
from tests.test_hub import Served, connect, receive, send, serving, wait_for  # noqa: F401

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ws_client.py"


def ws_endpoint(base: str) -> str:
    return base.replace("http://", "ws://", 1) + "/ws"


async def test_help_runs() -> None:
    result = await trio.run_process([sys.executable, str(SCRIPT), "--help"], capture_stdout=True)
    assert b"--as" in result.stdout and b"detector" in result.stdout


async def test_detector_mode_obeys_the_frontend(served: Served) -> None:
    app, url = served
    async with trio.open_nursery() as nursery:
        async with connect(url, "frontend") as front:
            nursery.start_soon(
                partial(
                    trio.run_process,
                    [sys.executable, str(SCRIPT), "--url", ws_endpoint(url), "--as", "detector",
                     "--timeout", "30"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                )
            )
            hello = await receive(front)  # the detector announces itself on connect
            assert (hello["command"], hello["sender"]) == ("detector.status", "detector")
            assert hello["data"]["enabled"] is True
            for command, enabled in [("detector:disable", False), ("detector:status", False),
                                     ("detector:enable", True)]:
                await send(front, {"command": command, "target": "detector", "data": {}})
                answer = await receive(front)
                assert answer["command"] == "detector.status", answer
                assert answer["data"]["enabled"] is enabled
        nursery.cancel_scope.cancel()
    await wait_for(lambda: app.hub.local_counts()["detector"] == 0, "script gone")


async def test_frontend_mode_prints_json_lines(served: Served) -> None:
    app, url = served
    base = [sys.executable, str(SCRIPT), "--url", ws_endpoint(url), "--timeout", "30"]
    result: subprocess.CompletedProcess[bytes] | None = None

    async def frontend() -> None:
        nonlocal result
        result = await trio.run_process(
            [*base, "--as", "frontend", "--count", "1"], capture_stdout=True, capture_stderr=True
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(frontend)
        await wait_for(lambda: app.hub.local_counts()["frontend"] == 1, "script connected")
        await app.hub.publish("job:progress", {"job": 7, "percent": 12.5})
    assert result is not None and result.returncode == 0, result
    printed = json.loads(result.stdout.decode().strip())
    assert printed["command"] == "job:progress" and printed["data"] == {"job": 7, "percent": 12.5}



async def test_refused_detector_reports_the_close_and_exits_2(settings: Settings) -> None:
    async with serving(attrs.evolve(settings, detector_ws_token="t0ken")) as (app, url):
        base = [sys.executable, str(SCRIPT), "--url", ws_endpoint(url), "--as", "detector",
                "--timeout", "30"]
        refused = await trio.run_process(base, capture_stderr=True, check=False)
        assert refused.returncode == 2, refused.stderr
        assert b"closed: 1008" in refused.stderr and b"token" in refused.stderr
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                partial(trio.run_process, [*base, "--token", "t0ken"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            )
            await wait_for(lambda: app.hub.local_counts()["detector"] == 1, "accepted with token")
            nursery.cancel_scope.cancel()
