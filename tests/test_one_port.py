"""HTTP through the one-port server (``server.py``) on the real port.

``/ws`` upgrades are taken by the hub before Hypercorn sees them; everything else
is handed to Hypercorn with the bytes already read replayed. These tests check
that nothing HTTP does got lost in that hand-over: keep-alive, pipelining, a
large body, a chunked body, HTTP/2 over cleartext, odd first bytes, and an
upgrade arriving later on a kept-alive connection (served by the Quart route,
joined to the same hub).
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import AsyncIterator

import httpx
import trio

from tests.test_hub import STEP_S, Served, connect, receive, wait_for
from tests.test_hub_dropin import masked_frame


def open_socket(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=STEP_S)


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body; ``buffer`` keeps what follows."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, bytes(buffer)
        buffer += chunk
    end = buffer.index(b"\r\n\r\n")
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    del buffer[: end + 4]
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        chunk = sock.recv(65536)
        assert chunk
        buffer += chunk
    body = bytes(buffer[:length])
    del buffer[:length]
    return int(head[0].split(" ")[1]), headers, body


def get(path: str, *, close: bool = False) -> bytes:
    extra = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()


def keep_alive_and_pipelining(base: str) -> list[int]:
    statuses = []
    with open_socket(base) as sock:
        buffer = bytearray()
        for _ in range(3):  # keep-alive: one request after the other on one connection
            sock.sendall(get("/"))
            statuses.append(read_response(sock, buffer)[0])
        # pipelining: three requests in one write, three answers in order
        sock.sendall(get("/") + get("/api/ws/clients") + get("/nope"))
        for _ in range(3):
            status, _, body = read_response(sock, buffer)
            statuses.append(status)
            assert body.startswith(b"{"), body
    return statuses


async def test_keep_alive_and_pipelining(served: Served) -> None:
    _, url = served
    assert await trio.to_thread.run_sync(keep_alive_and_pipelining, url) == [
        200, 200, 200, 200, 200, 404
    ]


async def test_large_and_chunked_bodies(served: Served) -> None:
    _, url = served
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        # 9 MB streamed through the hand-over to the font endpoint (not a font: 400).
        junk = os.urandom(9 * 1024 * 1024)
        answer = await http.post("/api/fonts/convert", files={"file": ("x.ttf", junk)})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"]

        async def chunks() -> AsyncIterator[bytes]:
            body = json.dumps({"name": "chunked"}).encode()
            for i in range(0, len(body), 4):
                yield body[i : i + 4]

        created = await http.post("/api/projects", content=chunks(),
                                  headers={"Content-Type": "application/json"})
        assert created.status_code == 201, created.text
        assert created.json()["name"] == "chunked"


async def test_http2_cleartext_prior_knowledge(served: Served) -> None:
    _, url = served
    async with httpx.AsyncClient(base_url=url, http1=False, http2=True) as http:
        answer = await http.get("/")
        assert answer.status_code == 200 and answer.http_version == "HTTP/2"
        assert (await http.get("/api/ws/clients")).json()["total"] == 0


def odd_first_bytes(base: str, payload: bytes) -> bytes:
    with open_socket(base) as sock:
        sock.sendall(payload)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk


async def test_garbage_and_huge_heads_get_an_http_error(served: Served) -> None:
    _, url = served
    for payload in (b"\x16\x03\x01 hello?\r\n\r\n",
                    b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 40_000 + b"\r\n\r\n"):
        answer = await trio.to_thread.run_sync(odd_first_bytes, url, payload)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:80]
    async with httpx.AsyncClient(base_url=url) as http:  # the server is unharmed
        assert (await http.get("/")).status_code == 200


def read_text_frame(sock: socket.socket, buffer: bytearray) -> bytes:
    """The payload of the next unmasked text frame (control frames skipped)."""
    while True:
        while len(buffer) < 4:
            buffer += sock.recv(65536)
        opcode, size, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
        if size == 126:
            size, start = int.from_bytes(buffer[2:4], "big"), 4
        elif size == 127:
            while len(buffer) < 10:
                buffer += sock.recv(65536)
            size, start = int.from_bytes(buffer[2:10], "big"), 10
        while len(buffer) < start + size:
            buffer += sock.recv(65536)
        payload = bytes(buffer[start : start + size])
        del buffer[: start + size]
        if opcode == 0x1:
            return payload


def late_upgrade(base: str) -> tuple[int, bytes]:
    """GET / then a WebSocket upgrade on the same connection; a hub:ping through it."""
    with open_socket(base) as sock:
        buffer = bytearray()
        sock.sendall(get("/"))
        first = read_response(sock, buffer)[0]
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /ws?client_type=frontend HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            .encode()
        )
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        assert bytes(buffer).startswith(b"HTTP/1.1 101"), bytes(buffer)
        del buffer[: buffer.index(b"\r\n\r\n") + 4]
        sock.sendall(masked_frame(0x1, b'{"command":"hub:ping"}'))
        payload = read_text_frame(sock, buffer)
        sock.sendall(masked_frame(0x8, b"\x03\xe8"))
        return first, payload


async def test_upgrade_later_on_a_kept_alive_connection_joins_the_same_hub(served: Served) -> None:
    app, url = served
    async with connect(url, "detector") as det:  # through the hub's own path
        first, pong = await trio.to_thread.run_sync(late_upgrade, url)
        assert first == 200
        assert json.loads(pong)["command"] == "hub:pong"
        await wait_for(lambda: app.hub.local_counts()["frontend"] == 0, "late client gone")
        await app.hub.publish("x:y", {}, target="detector")
        assert (await receive(det))["command"] == "x:y"
