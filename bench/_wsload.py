"""Minimal WebSocket load clients for the hub benchmarks (separate processes).

Blocking sockets and a hand-written frame parser: the clients must cost far
less than the server they measure. Used by ``hub_fanout.py`` and ``soak.py``;
nothing here imports the service.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import socket
import struct
import time
from typing import Any

QUIET_S = 3.0


def handshake(host: str, port: int, query: str, *, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws?{query} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed during the handshake: {head!r}")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode("latin-1"))
    rest = head[head.index(b"\r\n\r\n") + 4 :]
    assert not rest, "frames before the first read are not expected here"
    return sock


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame with an all-zero mask (valid; no per-byte XOR needed)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + b"\x00\x00\x00\x00" + payload


class Reader:
    """Parses unmasked server frames from one socket; answers pings."""

    def __init__(self, sock: socket.socket, expected: int) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.expected = expected
        self.received = 0
        self.next_seq = 0
        self.out_of_order = 0
        self.latencies: list[float] = []
        self.closed: int | None = None

    def feed(self, data: bytes, now: float) -> None:
        buf = self.buf
        buf += data
        while len(buf) >= 2:
            opcode, size, start = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if size == 126:
                if len(buf) < 4:
                    return
                size, start = struct.unpack_from("!H", buf, 2)[0], 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size, start = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < start + size:
                return
            payload = bytes(buf[start : start + size])
            del buf[: start + size]
            if opcode == 0x1:
                data_ = json.loads(payload)["data"]
                self.received += 1
                self.latencies.append(now - data_["t"])
                if data_["seq"] != self.next_seq:
                    self.out_of_order += 1
                self.next_seq = data_["seq"] + 1
            elif opcode == 0x9:
                self.sock.sendall(client_frame(0xA, payload))
            elif opcode == 0x8:
                self.closed = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


def receive_process(host: str, port: int, clients: int, expected: int, ready: Any, go: Any,
                    results: Any) -> None:
    """Connect ``clients`` frontends, then read until each has ``expected`` messages
    or nothing arrived for ``QUIET_S``; put a summary on ``results``."""
    readers = [Reader(handshake(host, port, "client_type=frontend"), expected)
               for _ in range(clients)]
    sel = selectors.DefaultSelector()
    for reader in readers:
        reader.sock.setblocking(False)
        sel.register(reader.sock, selectors.EVENT_READ, reader)
    ready.put(clients)
    go.wait()
    last = time.monotonic()
    pending = clients
    while pending:
        events = sel.select(timeout=0.5)
        now = time.monotonic()
        if not events and now - last > QUIET_S:
            break
        for key, _ in events:
            reader = key.data
            try:
                data = reader.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""
            if not data:
                sel.unregister(reader.sock)
                if reader.received < reader.expected:
                    pending -= 1  # gone early: what it missed counts as lost
                continue
            last = now
            before = reader.received
            reader.feed(data, now)
            if before < reader.expected <= reader.received:
                pending -= 1
    results.put({
        "received": sum(r.received for r in readers),
        "out_of_order": sum(r.out_of_order for r in readers),
        "latencies": [x for r in readers for x in r.latencies],
        "last": last,
    })
    for reader in readers:
        reader.sock.close()
