"""``GET /api/health`` answered at the connection layer, before Hypercorn and Quart.

Load balancers, orchestrators and monitoring call the health endpoint many times a
second, on connections of their own, and they call it hardest when the service is
busy. Through the framework a call costs what any request costs: Hypercorn's h11
state machine, the ASGI hops, Quart's request context, the middleware. On a busy
two-core host that put its 99th percentile far above what a health probe may take
(its time-outs are often a second or less, and a slow answer reads as a sick
instance). The answer itself is a few cached values (``health_checks.py``).

So the one-port server (``server.py``), which already reads each connection's first
request head to send ``/ws`` upgrades to the hub, answers plain health requests
itself with :func:`~.routers.health.health_report` — the function the Quart route
uses, so both say the same thing — and keeps doing so while the connection's
requests are health requests. The first other request on the connection, with any
bytes already read, goes to Hypercorn exactly as if it had come first.

Only the simplest requests take this path: ``GET`` or ``HEAD`` of exactly
``/api/health`` (a query string is ignored, as the route ignores it), HTTP/1.0 or
1.1, no body, no ``Origin`` (a browser's cross-origin call gets the route and its
CORS headers), no upgrade. Each answer carries ``X-Request-ID`` (the client's, if
usable), writes the access line and counts in ``/metrics`` under the route's
template, like every other request.
"""

from __future__ import annotations

import logging
import time
from email.utils import formatdate
from typing import Any

import trio

from . import jsonio
from .access_log import ACCESS_LOGGER, write_access_line
from .context import StinercutApp
from .hub.wire import MAX_HEAD_BYTES
from .metrics import metrics_of
from .request_id import new_request_id, usable_request_id
from .routers.health import EXTENSION, health_report

HEALTH_PATH = "/api/health"
_REASONS = {200: "OK", 503: "Service Unavailable"}


class Request:
    """The parts of a request head this path looks at (``None`` from :func:`parse`: not ours)."""

    __slots__ = ("head_only", "keep_alive", "request_id", "version")

    def __init__(self, head_only: bool, version: str, keep_alive: bool, request_id: str) -> None:
        self.head_only = head_only
        self.version = version
        self.keep_alive = keep_alive
        self.request_id = request_id


def parse(head: bytes) -> Request | None:
    """A health request this path may answer, or ``None`` (Hypercorn answers it)."""
    line_end = head.find(b"\r\n")
    try:
        method, target, version = head[:line_end].split(b" ")
    except ValueError:
        return None
    if method not in (b"GET", b"HEAD") or version not in (b"HTTP/1.1", b"HTTP/1.0"):
        return None
    if target.split(b"?", 1)[0] != HEALTH_PATH.encode():
        return None
    keep_alive = version == b"HTTP/1.1"
    request_id: str | None = None
    for raw in head[line_end + 2 :].split(b"\r\n"):
        if not raw:
            continue
        name, sep, value = raw.partition(b":")
        if not sep:
            return None
        name = name.strip().lower()
        value = value.strip()
        if name in (b"origin", b"upgrade", b"transfer-encoding", b"expect"):
            return None
        if name == b"content-length" and value != b"0":
            return None
        if name == b"connection":
            tokens = {t.strip() for t in value.lower().split(b",")}
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens and version == b"HTTP/1.0":
                keep_alive = False  # answered, then closed: keeps HTTP/1.0 framing simple
        elif name == b"x-request-id":
            request_id = usable_request_id(value)
    return Request(method == b"HEAD", version.decode("ascii"), keep_alive, request_id or new_request_id())


def ready(app: StinercutApp) -> bool:
    """Whether the health checks run (before start-up completes, the route answers)."""
    return EXTENSION in app.extensions


async def serve(
    app: StinercutApp,
    stream: trio.SocketStream,
    request: Request,
    rest: bytes,
    *,
    peer: Any,
    keep_alive_timeout: float,
) -> tuple[bytes, bytes] | None:
    """Answer ``request`` and the health requests after it on this connection.

    Returns ``(head, rest)`` of the first request that is not a health request
    (for Hypercorn), or ``None`` when the connection ended here.
    """
    access = logging.getLogger(ACCESS_LOGGER)
    buffer = bytearray(rest)
    while True:
        started = time.perf_counter()
        body, status = await health_report(app)
        payload = jsonio.encode(body)
        head_lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}",
            "content-type: application/json",
            f"content-length: {len(payload)}",
            f"date: {formatdate(usegmt=True)}",
            f"x-request-id: {request.request_id}",
        ]
        if not request.keep_alive:
            head_lines.append("connection: close")
        wire = ("\r\n".join(head_lines) + "\r\n\r\n").encode("latin-1")
        if not request.head_only:
            wire += payload
        try:
            await stream.send_all(wire)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        seconds = time.perf_counter() - started
        _account(app, access, request, status, len(payload), seconds, peer)
        if not request.keep_alive:
            await stream.aclose()
            return None
        found = await _next_head(stream, buffer, keep_alive_timeout)
        if found is None:
            await stream.aclose()
            return None
        head, buffer_rest = found
        following = parse(head)
        if following is None:
            return head, buffer_rest
        request = following
        buffer = bytearray(buffer_rest)


async def _next_head(
    stream: trio.SocketStream, buffer: bytearray, timeout: float
) -> tuple[bytes, bytes] | None:
    """The next request head on the connection (``None``: closed, idle or oversized)."""
    with trio.move_on_after(timeout):
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                return bytes(buffer[: end + 4]), bytes(buffer[end + 4 :])
            if len(buffer) >= MAX_HEAD_BYTES:
                return bytes(buffer), b""  # Hypercorn answers the oversized head
            try:
                chunk = await stream.receive_some(MAX_HEAD_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return None
            if not chunk:
                return None
            buffer += chunk
    return None


def _account(
    app: StinercutApp,
    access: logging.Logger,
    request: Request,
    status: int,
    size: int,
    seconds: float,
    peer: Any,
) -> None:
    method = "HEAD" if request.head_only else "GET"
    if access.isEnabledFor(logging.INFO):
        scope = {
            "type": "http",
            "method": method,
            "path": HEALTH_PATH,
            "http_version": request.version.removeprefix("HTTP/"),
            "client": peer,
        }
        write_access_line(access, scope, status, size, seconds, request.request_id)
    metrics = metrics_of(app)
    if metrics is not None:
        metrics.http.observe(method, HEALTH_PATH, status, seconds)
