"""Caps, file descriptors and closes that release their socket (issue #11, items 6, 7, 11).

* ``WS_MAX_CLIENTS`` / ``WS_MAX_CLIENTS_PER_ADDRESS``: refused with HTTP 503 and a JSON
  body in the service's error format, plus ``Retry-After``, before the upgrade;
* the real CLI under ``RLIMIT_NOFILE`` 256: WebSocket clients are refused before the
  descriptors run out, and ``/api/health`` still answers;
* every close releases the registry entry and the socket even when the peer never
  answers the close frame;
* churn leaves no client, connection or task behind.
"""

from __future__ import annotations

import base64
import os
import resource
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from trio_websocket import HandshakeError, WebSocketConnection

from stinercut_svc.config import Settings
from tests.test_hub import STEP_S, connect, receive, serving, sync, wait_for
from tests.test_hub_dropin import close_code, masked_frame, raw_handshake, read_until_closed


def upgrade_headers() -> dict[str, str]:
    return {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }


async def test_total_cap_refuses_with_503_json(settings: Settings) -> None:
    capped = attrs.evolve(settings, ws_max_clients=3)
    async with serving(capped) as (app, url), AsyncExitStack() as stack:
        for _ in range(3):
            await sync(await stack.enter_async_context(connect(url, "frontend")))
        async with httpx.AsyncClient(base_url=url) as http:
            refused = await http.get("/ws?client_type=frontend", headers=upgrade_headers())
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            body = refused.json()
            assert body["error"]["code"] == "too_many_clients" and "3" in body["detail"]
            # HTTP itself is not capped.
            assert (await http.get("/")).status_code == 200
        assert app.hub.local_counts()["frontend"] == 3


async def test_per_address_cap(settings: Settings) -> None:
    capped = attrs.evolve(settings, ws_max_clients_per_address=2)
    async with serving(capped) as (app, url), AsyncExitStack() as stack:
        first = await stack.enter_async_context(connect(url, "frontend"))
        await stack.enter_async_context(connect(url, "detector"))
        with pytest.raises(HandshakeError) as refused:
            async with connect(url, "frontend"):
                pass
        assert getattr(refused.value, "status_code", None) == 503
        await first.aclose()
        # A slot is free again once a client left.
        await wait_for(lambda: app.hub.open_connections == 1, "first client released")
        async with connect(url, "frontend") as again:
            await sync(again)


@asynccontextmanager
async def child_with_fd_limit(limit: int, env: dict[str, str]) -> AsyncIterator[str]:
    """The real CLI in a child process whose RLIMIT_NOFILE (soft and hard) is ``limit``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def lower_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    environ = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "WARNING", **env}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "stinercut_svc", "serve"],
        env=environ, stdout=subprocess.DEVNULL, preexec_fn=lower_limit,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            with trio.fail_after(60):
                while True:
                    assert process.returncode is None, "the service exited during start-up"
                    try:
                        if (await http.get(f"{url}/")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await trio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        with trio.move_on_after(10):
            await process.wait()
        process.kill()
        await process.wait()


async def test_fd_limit_caps_websockets_and_http_stays_reachable(
    tmp_path: Path, database_url: str
) -> None:
    env = {"DATABASE_URL": database_url, "SHARED_VIDEO_PATH": str(tmp_path / "shared")}
    async with child_with_fd_limit(256, env) as url, trio.open_nursery() as nursery:
        clients: list[WebSocketConnection] = []
        refusals: list[int | None] = []
        stop = trio.Event()

        async def hold(ready: trio.Event) -> None:
            try:
                async with connect(url, "frontend") as ws:
                    clients.append(ws)
                    ready.set()
                    await stop.wait()
            except HandshakeError as refused:
                refusals.append(getattr(refused, "status_code", None))
                ready.set()

        with trio.fail_after(60):
            while not refusals:
                assert len(clients) < 256, "never refused: the fd ceiling does not work"
                ready = trio.Event()
                nursery.start_soon(hold, ready)
                await ready.wait()
        assert refusals == [503]
        assert 10 < len(clients) < 256 - 64  # the reserve stays for HTTP
        async with httpx.AsyncClient(base_url=url, timeout=STEP_S) as http:
            for _ in range(5):
                health = await http.get("/api/health")
                assert health.status_code == 200, health.text
            counts = (await http.get("/api/ws/clients")).json()
            assert counts["frontend"] == len(clients)
        # Everyone still works at the cap.
        await sync(clients[0])
        await sync(clients[-1])
        stop.set()


# -- closes release the socket whatever the peer does --------------------------------


@pytest.mark.parametrize("case", ["too_big", "bad_client_type", "outbox_overflow"])
async def test_close_releases_socket_when_peer_never_answers(settings: Settings, case: str) -> None:
    # Keepalive off: nothing else would ever remove these clients.
    quiet = attrs.evolve(settings, ws_ping_interval=0, ws_max_message_bytes=1024,
                         ws_outbox_messages=4)
    async with serving(quiet) as (app, url):
        query = "client_type=bogus" if case == "bad_client_type" else "client_type=frontend"
        sock = await trio.to_thread.run_sync(raw_handshake, url, query)
        try:
            if case == "too_big":
                await wait_for(lambda: app.hub.local_counts()["frontend"] == 1, "registered")
                sock.sendall(masked_frame(0x1, b"x" * 2000))
                expected = 1009
            elif case == "outbox_overflow":
                await wait_for(lambda: app.hub.local_counts()["frontend"] == 1, "registered")
                pad = "p" * 200_000  # the socket buffers fill, then the 4-message outbox
                with trio.fail_after(STEP_S):
                    while app.hub.local_counts()["frontend"]:
                        await app.hub.publish("x", {"pad": pad})
                        await trio.lowlevel.checkpoint()
                # A peer that does not read cannot get a close frame: the write in
                # flight is abandoned after the grace period and the socket reset.
                expected = None
            else:
                expected = 1008
            await wait_for(lambda: app.hub.local_counts()["frontend"] == 0, "unregistered")
            # The peer never answers the close: the server aborts the connection itself.
            await wait_for(lambda: app.hub.open_connections == 0, "socket released")
            data = await trio.to_thread.run_sync(read_until_closed, sock)
            if expected is not None:
                assert close_code(data) == expected
        finally:
            sock.close()


# -- churn -----------------------------------------------------------------------------


def task_names() -> list[str]:
    names: list[str] = []

    def walk(task: Any) -> None:
        names.append(task.name)
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child)

    walk(trio.lowlevel.current_root_task())
    # Connection tasks only: the app's own background tasks come and go on their own.
    prefixes = ("stinercut_svc.hub", "stinercut_svc.server", "hypercorn", "trio_websocket")
    return sorted(n for n in names if n.startswith(prefixes))


def task_count() -> int:
    return len(task_names())


async def test_churn_leaves_nothing_behind(settings: Settings) -> None:
    async with serving(attrs.evolve(settings, ws_ping_interval=0)) as (app, url):
        async with connect(url, "frontend") as warm:  # first-use allocations
            await sync(warm)
        await wait_for(lambda: app.hub.open_connections == 0, "warm-up client released")
        baseline = task_count()
        before = task_names()
        for _ in range(3):
            async with AsyncExitStack() as stack:
                clients = [await stack.enter_async_context(connect(url, kind))
                           for kind in ("frontend", "detector") * 20]
                raws = [await trio.to_thread.run_sync(raw_handshake, url) for _ in range(10)]
                await app.hub.publish("job:progress", {"p": 1})
                await receive(clients[0])
                for sock in raws[:5]:
                    sock.close()  # gone without a close frame
                for sock in raws[5:]:  # a close frame, then gone without waiting for ours
                    sock.sendall(masked_frame(0x8, b"\x03\xe8"))
                    sock.close()
            await wait_for(lambda: app.hub.open_connections == 0, "all released")
        assert app.hub.local_counts() == {"frontend": 0, "detector": 0}
        assert app.hub.clients() == []
        try:
            await wait_for(lambda: task_count() <= baseline, f"tasks back to {baseline}")
        except trio.TooSlowError:
            after = task_names()
            extra = [n for n in after if n not in before or after.count(n) > before.count(n)]
            raise AssertionError(f"tasks left behind: {sorted(set(extra))}") from None
