"""The hub under the clients that exist today (issue #10): they never send
``hub:ping`` and stay silent for hours, but answer WebSocket protocol pings.

* a detector-like client built on ``websocket-client`` (``WebSocketApp.run_forever``
  without ``ping_interval``, as the real detector daemon runs it);
* a browser-like trio-websocket client that never sends anything;
* a raw TCP peer that completes the handshake and then never reads or answers
  (a machine switched off, a cable pulled): removed within interval + timeout;
* ``target: "backend"`` messages go to registered handlers; unknown ones are dropped;
* SIGTERM to the real CLI closes clients with 1001 instead of dropping them.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import signal
import socket
import struct
import threading
from typing import Any

import attrs
import pytest
import trio
import websocket  # websocket-client, the detector daemon's library

from stinercut_svc.config import Settings
from stinercut_svc.hub import BackendMessage
from tests.support.child_server import serve_in_child
from tests.test_hub import (
    BARRIER,
    STEP_S,
    Served,
    closed_with,
    connect,
    receive,
    send,
    serving,
    sync,
    until_barrier,
    wait_for,
    ws_url,
)

INTERVAL_S = 0.3
TIMEOUT_S = 0.3
IDLE_S = 3.0  # ten times interval + timeout: the old hub:ping keepalive dropped them


@pytest.fixture
def fast_keepalive(settings: Settings) -> Settings:
    return attrs.evolve(settings, ws_ping_interval=INTERVAL_S, ws_ping_timeout=TIMEOUT_S)


# -- clients that only answer protocol pings stay connected -------------------------


class DetectorLike:
    """``websocket.WebSocketApp.run_forever()`` in a thread, the way the detector runs it."""

    def __init__(self, url: str) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.opened = threading.Event()
        self.pings = 0
        self.closed: tuple[Any, Any] | None = None
        self.app = websocket.WebSocketApp(
            url,
            on_open=lambda ws: self.opened.set(),
            on_message=lambda ws, text: self.messages.put(json.loads(text)),
            on_ping=self._on_ping,
            on_close=self._on_close,
        )
        self.thread = threading.Thread(target=self.app.run_forever, daemon=True)

    def _on_ping(self, ws: Any, payload: Any) -> None:
        self.pings += 1

    def _on_close(self, ws: Any, code: Any, reason: Any) -> None:
        self.closed = (code, reason)

    async def next_message(self) -> dict[str, Any]:
        with trio.fail_after(STEP_S):
            while True:
                try:
                    return self.messages.get_nowait()
                except queue.Empty:
                    await trio.sleep(0.01)


async def test_websocket_client_detector_idle_stays_connected(fast_keepalive: Settings) -> None:
    async with serving(fast_keepalive) as (app, url):
        detector = DetectorLike(ws_url(url, "client_type=detector"))
        detector.thread.start()
        try:
            assert await trio.to_thread.run_sync(detector.opened.wait, STEP_S)
            [client] = app.hub.clients()
            await trio.sleep(IDLE_S)  # sends nothing, as the daemon does between events
            assert detector.closed is None
            assert app.hub.clients() == [client]  # the same connection, never replaced
            assert client.pings_sent >= 3 and detector.pings >= 3  # probed, and it answered
            await app.hub.publish("detector:enable", {"by": "test"}, target="detector")
            message = await detector.next_message()
            assert message["command"] == "detector:enable" and message["data"] == {"by": "test"}
        finally:
            detector.app.close()
            await trio.to_thread.run_sync(detector.thread.join, 5.0)


async def test_browser_like_client_idle_stays_connected(fast_keepalive: Settings) -> None:
    async with serving(fast_keepalive) as (app, url):
        async with connect(url, "frontend") as browser:  # never sends anything
            await wait_for(lambda: len(app.hub.clients()) == 1, "registered")
            [client] = app.hub.clients()
            await trio.sleep(IDLE_S)
            assert app.hub.clients() == [client]
            assert client.pings_sent >= 3
            await app.hub.publish("job:status", {"job": 1})
            assert (await receive(browser))["data"] == {"job": 1}


async def test_hub_ping_is_answered_and_never_sent_unasked(fast_keepalive: Settings) -> None:
    async with serving(fast_keepalive) as (app, url):
        async with connect(url, "frontend") as front:
            await sync(front)  # hub:ping -> hub:pong, on request
            await trio.sleep(IDLE_S)
            await app.hub.publish(BARRIER, {}, target="all")
            assert await until_barrier(front) == []  # no application hub:ping arrived


# -- a peer that stops answering is removed ----------------------------------------


def raw_handshake(base: str, query: str = "client_type=frontend") -> socket.socket:
    """A TCP socket that completed the WebSocket handshake (and does nothing else)."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=STEP_S)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws?{query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def masked_frame(opcode: int, payload: bytes, *, length: int | None = None) -> bytes:
    """A client frame (masked); ``length`` lies about the payload length if given."""
    size = len(payload) if length is None else length
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it ends the connection (FIN or reset)."""
    data = b""
    sock.settimeout(STEP_S)
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def close_code(data: bytes) -> int | None:
    """The code of the first close frame in unmasked server ``data``."""
    i = 0
    while i + 2 <= len(data):
        opcode, size = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if size == 126:
            size, i = struct.unpack("!H", data[i : i + 2])[0], i + 2
        elif size == 127:
            size, i = struct.unpack("!Q", data[i : i + 8])[0], i + 8
        if opcode == 0x8:
            return int(struct.unpack("!H", data[i : i + 2])[0])
        i += size
    return None


async def test_peer_that_stops_answering_is_removed(fast_keepalive: Settings) -> None:
    async with serving(fast_keepalive) as (app, url):
        sock = await trio.to_thread.run_sync(raw_handshake, url)
        try:
            await wait_for(lambda: app.hub.local_counts()["frontend"] == 1, "registered")
            # Never reads, never answers: gone after interval + timeout (+ scheduling slack).
            await wait_for(
                lambda: app.hub.local_counts()["frontend"] == 0,
                "removed by keepalive",
                seconds=INTERVAL_S + TIMEOUT_S + 5.0,
            )
            # ... and its socket is released without waiting for a close answer.
            await wait_for(lambda: app.hub.open_connections == 0, "socket released")
            data = await trio.to_thread.run_sync(read_until_closed, sock)
            assert data.startswith(b"\x89\x00"), data[:8]  # the protocol ping it ignored
            assert close_code(data) == 1011
        finally:
            sock.close()


# -- target: backend ---------------------------------------------------------------


async def test_backend_target_reaches_handlers_and_unknown_is_dropped(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    app, url = served
    caplog.set_level(logging.INFO, logger="stinercut_svc.hub")
    seen: list[BackendMessage] = []

    async def echo(message: BackendMessage) -> None:
        seen.append(message)
        app.hub.send_to(message.client_id, "test:echoed", {"got": message.data})

    async def broken(message: BackendMessage) -> None:
        raise RuntimeError("handler bug")

    app.hub.handle("test:echo", echo)
    app.hub.handle("test:broken", broken)
    with pytest.raises(ValueError):
        app.hub.handle("test:echo", echo)
    async with connect(url, "frontend") as front, connect(url, "detector") as det:
        await send(det, {"command": "test:echo", "target": "backend", "data": {"n": 1}, "id": "c1"})
        answer = await receive(det)
        assert answer["command"] == "test:echoed" and answer["data"] == {"got": {"n": 1}}
        assert seen[0].sender == "detector" and seen[0].message["id"] == "c1"
        for command in ("test:unknown", "test:broken"):
            await send(det, {"command": command, "target": "backend", "data": {}})
        await sync(det)
        await send(det, {"command": "test:echo", "target": "backend", "data": {"n": 2}})
        assert (await receive(det))["data"] == {"got": {"n": 2}}  # no hub:error came first
        # Never routed to other clients either.
        await app.hub.publish(BARRIER, {}, target="all")
        assert await until_barrier(front) == []
    assert any("handler bug" in (r.exc_text or "") or r.exc_info for r in caplog.records
               if "test:broken" in r.getMessage())
    assert any("test:unknown" in r.getMessage() for r in caplog.records)


async def test_target_all_reaches_the_handler_once_and_every_client(served: Served) -> None:
    """The detector announces cards with ``target: "all"`` (FRONTEND_CONTRACT.md): the
    service's handler sees it once and the frontends get it too; commands without a
    handler are only routed."""
    app, url = served
    seen: list[BackendMessage] = []

    async def mounted(message: BackendMessage) -> None:
        seen.append(message)

    app.hub.handle("test:mounted", mounted)
    async with connect(url, "frontend") as front, connect(url, "detector") as det:
        data = {"device_node": "/dev/sdz1", "mount_path": "/media/card"}
        await send(det, {"command": "test:mounted", "target": "all", "data": data})
        got = await receive(front)
        assert got["command"] == "test:mounted" and got["data"] == data
        assert got["sender"] == "detector"
        await send(det, {"command": "test:other", "target": "all", "data": {}})
        assert (await receive(front))["command"] == "test:other"
        with trio.fail_after(5):
            while not seen:
                await trio.sleep(0.01)
        await sync(det)
    assert [(m.command, m.data, m.sender) for m in seen] == [("test:mounted", data, "detector")]


# -- shutdown ----------------------------------------------------------------------


async def test_sigterm_closes_clients_with_1001(tmp_path: Any, database_url: str) -> None:
    async with serve_in_child(
        DATABASE_URL=database_url, SHARED_VIDEO_PATH=str(tmp_path / "shared")
    ) as (url, pid):
        async with connect(url, "frontend") as front, connect(url, "detector") as det:
            await sync(front)
            await sync(det)
            os.kill(pid, signal.SIGTERM)
            for ws in (front, det):
                code, reason = await closed_with(ws)
                assert code == 1001 and "shutting down" in reason
