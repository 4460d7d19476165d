"""Two service instances on two ports sharing the real Redis: one hub across both.

Needs ``STINERCUT_TEST_REDIS_URL`` (``scripts/test`` sets it). Each test uses its
own channel name, so parallel runs never see each other's messages.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio

from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.resp import RedisAddress
from stinercut_svc.resp import connect as connect_redis
from tests.support.redis_server import redis_server
from tests.test_backplane import kill_connections_of
from tests.test_hub import (
    BARRIER,
    STEP_S,
    connect,
    receive,
    send,
    serving,
    sync,
    until_barrier,
    wait_for,
)

REDIS_URL = os.environ.get("STINERCUT_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="STINERCUT_TEST_REDIS_URL is not set (scripts/test sets it)"
)


@pytest.fixture
def channel() -> str:
    return f"stinercut-test:{uuid.uuid4().hex}"


@asynccontextmanager
async def two_instances(
    settings: Settings, tmp_path: Any, channel: str, redis_url: str | None = REDIS_URL
) -> AsyncIterator[tuple[tuple[StinercutApp, str], tuple[StinercutApp, str]]]:
    assert redis_url
    shared = attrs.evolve(settings, redis_url=redis_url, redis_hub_channel=channel)
    # Each instance gets its own SQLite file (on MySQL they share the test database).
    second = shared
    if settings.is_sqlite:
        second = attrs.evolve(shared, database_url=f"sqlite:///{tmp_path / 'second.sqlite3'}")
    async with serving(shared) as a, serving(second) as b:
        with trio.fail_after(STEP_S):
            for app, _ in (a, b):
                assert app.hub.backplane is not None
                await app.hub.backplane.wait_connected()
        yield a, b


async def barrier(*apps: StinercutApp) -> None:
    """A barrier from every instance: each client then reads until it has them all."""
    for app in apps:
        await app.hub.publish(BARRIER, {}, target="all")


@needs_redis
async def test_each_eligible_client_everywhere_gets_each_message_once(
    settings: Settings, tmp_path: Any, channel: str
) -> None:
    async with two_instances(settings, tmp_path, channel) as ((app_a, url_a), (app_b, url_b)):
        async with AsyncExitStack() as stack:
            ws = {
                "FA": await stack.enter_async_context(connect(url_a, "frontend")),
                "FB": await stack.enter_async_context(connect(url_b, "frontend")),
                "DA": await stack.enter_async_context(connect(url_a, "detector")),
                "DB": await stack.enter_async_context(connect(url_b, "detector")),
            }
            cases: list[tuple[str, str | None, set[str]]] = [
                ("DA", "frontend", {"FA", "FB"}),
                ("FB", "detector", {"DA", "DB"}),
                ("FA", None, {"DA", "DB"}),  # no target = all = the other type
                ("DB", "detector", {"DA"}),  # own type elsewhere, never back to the sender
                ("FA", "frontend", {"FB"}),
                ("backend-A", "all", {"FA", "FB", "DA", "DB"}),
                ("backend-B", "frontend", {"FA", "FB"}),
            ]
            for n, (sender, target, expected) in enumerate(cases):
                command = f"test:case-{n}"
                if sender.startswith("backend"):
                    app = app_a if sender.endswith("A") else app_b
                    await app.hub.publish(command, {"n": n}, target=target or "all")
                else:
                    message: dict[str, Any] = {"command": command, "data": {"n": n}}
                    if target:
                        message["target"] = target
                    await send(ws[sender], message)
                    await sync(ws[sender])
                await barrier(app_a, app_b)
                for name, client in ws.items():
                    got = [m for m in await until_barrier(client, 2) if m["command"] == command]
                    assert len(got) == (1 if name in expected else 0), (sender, target, name, got)
                    if got:
                        assert got[0]["data"] == {"n": n}
                        real = sender[:1].replace("F", "frontend").replace("D", "detector")
                        assert got[0]["sender"] == ("backend" if sender.startswith("b") else real)


@needs_redis
async def test_client_counts_cover_every_instance(
    settings: Settings, tmp_path: Any, channel: str
) -> None:
    async with two_instances(settings, tmp_path, channel) as ((app_a, url_a), (_, url_b)):
        async with (
            connect(url_a, "frontend"),
            connect(url_b, "detector"),
            connect(url_b, "frontend"),
            httpx.AsyncClient(base_url=url_a) as http,
        ):
            expected = {
                "frontend": 2, "detector": 1, "total": 3,
                "local": {"frontend": 1, "detector": 0}, "instances": 2, "backplane": "connected",
            }
            body: dict[str, Any] = {}

            async def counted() -> bool:
                nonlocal body
                body = (await http.get("/api/ws/clients")).json()
                return body == expected

            # Presence is written right after each connect; poll until it lands.
            with trio.fail_after(STEP_S):
                while not await counted():  # noqa: ASYNC110 - polls an HTTP endpoint
                    await trio.sleep(0.05)
        with trio.fail_after(STEP_S):
            while (await app_a.hub.counts()).total != 0:  # noqa: ASYNC110 - polls Redis
                await trio.sleep(0.05)


@needs_redis
async def test_instance_that_loses_redis_serves_locally_and_reconnects(
    settings: Settings, tmp_path: Any, channel: str
) -> None:
    assert REDIS_URL
    async with two_instances(settings, tmp_path, channel) as ((app_a, url_a), (app_b, url_b)):
        backplane = app_a.hub.backplane
        assert backplane is not None
        async with (
            connect(url_a, "frontend") as fa,
            connect(url_a, "detector") as da,
            connect(url_b, "frontend") as fb,
        ):
            # Cut instance A's Redis connections (and only A's: they carry its name).
            async with connect_redis(RedisAddress.from_url(REDIS_URL), timeout=STEP_S) as admin:
                assert await kill_connections_of(admin, app_a.hub.instance_id) == 2
            await wait_for(lambda: backplane.failures >= 1, "A notices the loss")

            # Local clients of A keep talking while its backplane is down.
            await send(da, {"command": "device.mounted", "target": "frontend", "data": {"n": 1}})
            assert (await receive(fa))["data"] == {"n": 1}
            await app_a.hub.publish("job:progress", {"n": 2})
            assert (await receive(fa))["data"] == {"n": 2}

            # A reconnects (backoff) and cross-instance delivery works again.
            with trio.fail_after(STEP_S):
                await backplane.wait_connected()
            await send(da, {"command": "device.mounted", "target": "frontend", "data": {"n": 3}})
            await sync(da)
            await barrier(app_a, app_b)
            for client in (fa, fb):
                got = [m["data"] for m in await until_barrier(client, 2)]
                assert got.count({"n": 3}) == 1, got


async def test_unreachable_redis_leaves_the_local_hub_working(settings: Settings) -> None:
    # Port 1 on loopback: nothing listens, so every connect is refused at once.
    down = attrs.evolve(settings, redis_url="redis://127.0.0.1:1/0")
    async with serving(down) as (app, url):
        async with connect(url, "frontend") as front, connect(url, "detector") as det:
            await send(det, {"command": "detector.status", "target": "frontend", "data": {}})
            assert (await receive(front))["sender"] == "detector"
            await app.hub.publish("job:status", {"status": "completed"})
            assert (await receive(front))["data"] == {"status": "completed"}
            backplane = app.hub.backplane
            assert backplane is not None
            await wait_for(lambda: backplane.failures >= 1, "a failed connect")
            # Held for the other instances (bounded), in case Redis comes back.
            assert (backplane.buffered, backplane.dropped) == (2, 0)
            async with httpx.AsyncClient(base_url=url) as http:
                body = (await http.get("/api/ws/clients")).json()
            assert body["backplane"] == "disconnected"
            assert (body["frontend"], body["detector"], body["instances"]) == (1, 1, 1)


async def test_redis_outage_loses_no_message_between_instances(
    settings: Settings, tmp_path: Any, channel: str
) -> None:
    """A private Redis is killed for ~3 s while A's detector keeps sending to frontends.

    A's own frontend gets everything as it is sent; B's frontend gets every message
    exactly once and in order once Redis is back (A buffered them), and the bridge
    is back within about a second: messages sent 1 s after the restart arrive too.
    """
    async with redis_server() as redis, two_instances(
        settings, tmp_path, channel, redis.url
    ) as ((app_a, url_a), (app_b, url_b)):
        bp_a, bp_b = app_a.hub.backplane, app_b.hub.backplane
        assert bp_a is not None and bp_b is not None
        async with (
            connect(url_a, "detector") as da,
            connect(url_a, "frontend") as fa,
            connect(url_b, "frontend", message_queue_size=1024) as fb,
        ):
            sent = 0

            async def send_some(count: int) -> None:
                nonlocal sent
                for _ in range(count):
                    await send(da, {"command": "test:n", "target": "frontend", "data": {"n": sent}})
                    assert (await receive(fa))["data"] == {"n": sent}  # local: never waits
                    sent += 1
                    await trio.sleep(0.02)

            await send_some(10)
            await redis.stop()
            await wait_for(lambda: not bp_a.connected and not bp_b.connected, "both notice")
            await send_some(100)  # ~3 s of outage
            await redis.start()
            with trio.fail_after(3.0):  # "not stuck in a long backoff", not a measurement
                await bp_a.wait_connected()
                await bp_b.wait_connected()
            await trio.sleep(1.0)
            await send_some(10)
            await app_a.hub.publish(BARRIER, {}, target="frontend")
            got = [m["data"]["n"] for m in await until_barrier(fb) if m["command"] == "test:n"]
            assert got == list(range(sent))
            assert bp_a.dropped == 0 and bp_a.buffered == 0
