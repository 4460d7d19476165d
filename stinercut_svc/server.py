"""One port for HTTP (Hypercorn) and the WebSocket hub, on one trio listener.

Why: a message sent through Quart's websocket under Hypercorn costs ~100 µs of
server CPU per recipient; the hub's own path frames each message once and writes
each client's backlog with one ``send_all`` (~1.5 µs per delivery). Clients keep
one URL: ``/ws`` stays on the REST API's host and port.

How: per accepted connection the request head is read (at most 16 KiB, at most
``HEAD_TIMEOUT_S``). ``GET /ws`` with ``Upgrade: websocket`` goes to the hub
(:func:`~stinercut_svc.hub.serve_websocket`); anything else - other requests,
HTTP/2 prior knowledge, a head that is too big or too slow - goes to Hypercorn's
``TCPServer`` through :class:`ReplayStream`, which hands it the bytes already read
first. Only a connection's first request is looked at: an upgrade later on a
kept-alive connection is served by the Quart ``/ws`` route, joined to the same hub.

This uses Hypercorn internals (``hypercorn.trio.tcp_server.TCPServer``,
``lifespan.Lifespan``, ``worker_context.WorkerContext``) the way
``hypercorn.trio.run.worker_serve`` does; ``pyproject.toml`` pins Hypercorn's minor
version and the tests drive the real port end to end (keep-alive, pipelining,
chunked and large bodies, h2c).

Every accepted socket gets TCP keepalive and ``TCP_USER_TIMEOUT`` so a peer that
vanished without a FIN (power cut, cable pulled) is dropped by the kernel in a
bounded time even when no WebSocket ping is pending (see :func:`tune_socket`).

Shutdown (SIGTERM/SIGINT through ``shutdown_trigger``), in this order:
stop accepting → idle HTTP connections close, open requests get
``graceful_timeout`` → the app's lifespan shutdown (the supervisor stops and
publishes its final ``job:status``) → every WebSocket client's outbox is flushed
(≤ 1 s) and it is closed with 1001 → whatever is left is cancelled.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import resource
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import repr_socket_addr, wrap_app

from . import fast_health
from .access_log import AccessLogger
from .config import Settings
from .context import StinercutApp
from .hub import serve_websocket
from .hub.wire import MAX_HEAD_BYTES, parse_head

log = logging.getLogger("stinercut_svc.server")

GRACEFUL_TIMEOUT_S = 2.0
#: How long a new connection may take to send its request head before it is
#: handed to Hypercorn as it is (which then applies its own timeouts).
HEAD_TIMEOUT_S = 5.0
WS_PATH = "/ws"
#: Accept errors that mean "out of file descriptors/memory": wait, retry.
_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
_CAPACITY_SLEEP_S = 0.1
#: TCP keepalive: probes every this many seconds, this many unanswered → dropped.
TCP_KEEPALIVE_INTERVAL_S = 10
TCP_KEEPALIVE_PROBES = 3


def hypercorn_config(settings: Settings) -> HypercornConfig:
    config = HypercornConfig()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    # Let frames a little over the hub's limit reach the app, which closes with
    # 1009 and a reason; Hypercorn caps anything beyond that before buffering it.
    config.websocket_max_message_size = 2 * settings.ws_max_message_bytes
    # Connections served by the Quart /ws route: Hypercorn's protocol pings keep
    # them open through proxies and NAT (their pongs are invisible to the app).
    if settings.ws_ping_interval:
        config.websocket_ping_interval = settings.ws_ping_interval
    # Hypercorn builds every access-log line before the logger's level is checked,
    # so the access log is wired only when it will be written (LOG_LEVEL INFO/DEBUG).
    if logging.getLevelName(settings.log_level) <= logging.INFO:
        config.accesslog = logging.getLogger("stinercut_svc.access")
    config.errorlog = logging.getLogger("stinercut_svc.server")
    config.access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'
    config.logger_class = AccessLogger  # the same line without AccessLogAtoms (access_log.py)
    return config


# -- process and socket limits -------------------------------------------------------


def raise_fd_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            log.info("file descriptor limit raised from %d to %d", soft, hard)
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("could not raise the file descriptor limit (%d): %s", soft, exc)
    elif soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return soft


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def websocket_fd_ceiling(limit: int, reserve: int) -> int:
    """WebSocket clients this process can hold while keeping ``reserve`` fds for HTTP,
    database connections, subprocesses and the font worker."""
    return max(1, limit - open_fds() - reserve)


def tune_socket(sock: trio.socket.SocketType, settings: Settings) -> None:
    """TCP keepalive and ``TCP_USER_TIMEOUT`` on an accepted connection.

    Keepalive probes start after ``WS_PING_INTERVAL`` (or 30 s) of silence, every
    10 s, 3 unanswered → the kernel resets the connection. ``TCP_USER_TIMEOUT``
    bounds how long written data may stay unacknowledged (``WS_PING_INTERVAL`` +
    ``WS_PING_TIMEOUT``, at least 10 s): a peer that vanished while the hub was
    writing to it is dropped then, even if no ping is due.
    """
    idle = int(settings.ws_ping_interval) or 30
    user_timeout_ms = int(max(10.0, settings.ws_ping_interval + settings.ws_ping_timeout) * 1000)
    options: list[tuple[int, int, int]] = [
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
    ]
    for name, value in (
        ("TCP_KEEPIDLE", max(1, idle)),
        ("TCP_KEEPINTVL", TCP_KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", TCP_KEEPALIVE_PROBES),
        ("TCP_USER_TIMEOUT", user_timeout_ms),
    ):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        try:
            sock.setsockopt(level, option, value)
        except OSError:
            pass  # not a TCP socket (e.g. a Unix socket in a test), or not supported


# -- handing a connection to Hypercorn -----------------------------------------------


class ReplayStream(trio.abc.HalfCloseableStream):
    """A socket stream that first returns bytes already read from it.

    Hypercorn's ``TCPServer`` detects TLS by probing ``do_handshake``; this class
    must not have one. It needs ``socket`` for the peer's address.
    """

    def __init__(self, stream: trio.SocketStream, head: bytes) -> None:
        self._stream = stream
        self._head = head
        self.socket = stream.socket

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._head:
            await trio.lowlevel.checkpoint()
            if max_bytes is None or max_bytes >= len(self._head):
                data, self._head = self._head, b""
            else:
                data, self._head = self._head[:max_bytes], self._head[max_bytes:]
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


# -- the server ----------------------------------------------------------------------


def _peer(stream: trio.SocketStream) -> Any:
    try:
        return stream.socket.getpeername()
    except OSError:
        return None



class OnePortServer:
    """Accepts connections and sends each to the hub or to Hypercorn."""

    def __init__(self, app: StinercutApp, config: HypercornConfig, settings: Settings) -> None:
        self.app = app
        self.config = config
        self.settings = settings
        self.asgi = wrap_app(app, config.wsgi_max_body_size, None)
        self.lifespan_state: dict[str, Any] = {}
        self.context = WorkerContext(None)
        #: one cancel scope per connection Hypercorn serves (for the graceful deadline)
        self._http: set[trio.CancelScope] = set()
        #: one cancel scope per connection still being sniffed
        self._sniffing: set[trio.CancelScope] = set()
        self._http_ended = trio.Event()

    @property
    def http_connections(self) -> int:
        return len(self._http)

    async def http_connection_ended(self) -> None:
        """Wait until one of the connections Hypercorn serves ends."""
        await self._http_ended.wait()

    async def handle(self, stream: trio.SocketStream) -> None:
        with trio.CancelScope() as scope:
            self._sniffing.add(scope)
            try:
                head, rest, parsed = await self._read_head(stream)
            finally:
                self._sniffing.discard(scope)
        if scope.cancelled_caught or head is None:  # shutting down, or nothing was sent
            with trio.CancelScope(shield=True):
                await stream.aclose()
            return
        # A worker (ROLE=worker) takes no hub clients: its /ws goes to Quart, which refuses it.
        if (parsed is not None and parsed.is_websocket_upgrade(WS_PATH)
                and self.settings.role != "worker"):
            await serve_websocket(
                self.app.hub, stream, parsed, rest, detector_token=self.settings.detector_ws_token,
                access=self.app.access,
            )
            return
        if parsed is not None and fast_health.ready(self.app):
            request = fast_health.parse(head)
            if request is not None:
                found = await self._serve_health(stream, request, rest)
                if found is None:
                    return
                head, rest = found  # the connection's first request that is not health
        with trio.CancelScope() as scope:
            self._http.add(scope)
            try:
                await TCPServer(
                    self.asgi,
                    self.config,
                    self.context,
                    ConnectionState(self.lifespan_state.copy()),
                    ReplayStream(stream, head + rest),  # type: ignore[arg-type]
                )
            finally:
                self._http.discard(scope)
                self._http_ended.set()
                self._http_ended = trio.Event()

    async def _serve_health(
        self, stream: trio.SocketStream, request: fast_health.Request, rest: bytes
    ) -> tuple[bytes, bytes] | None:
        """Health requests answered here (``fast_health.py``); shutdown closes them at once."""
        found = None
        with trio.CancelScope() as scope:
            self._sniffing.add(scope)
            try:
                found = await fast_health.serve(
                    self.app,
                    stream,
                    request,
                    rest,
                    peer=_peer(stream),
                    keep_alive_timeout=self.config.keep_alive_timeout,
                )
            finally:
                self._sniffing.discard(scope)
        if scope.cancelled_caught:
            with trio.CancelScope(shield=True):
                await stream.aclose()
            return None
        return found

    async def _read_head(
        self, stream: trio.SocketStream
    ) -> tuple[bytes | None, bytes, Any]:
        """``(head, rest, parsed)``: the request head, bytes after it, its parse.

        ``head`` is ``None`` when the peer closed before sending anything; ``parsed``
        is ``None`` when what arrived is not (yet) an HTTP/1.x head.
        """
        buffer = bytearray()
        with trio.move_on_after(HEAD_TIMEOUT_S):
            while len(buffer) < MAX_HEAD_BYTES:
                try:
                    chunk = await stream.receive_some(MAX_HEAD_BYTES)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    chunk = b""
                if not chunk:
                    if not buffer:
                        return None, b"", None
                    break
                buffer += chunk
                end = buffer.find(b"\r\n\r\n")
                if end >= 0:
                    head = bytes(buffer[: end + 4])
                    return head, bytes(buffer[end + 4 :]), parse_head(head)
                if not buffer.startswith(b"GET "):
                    break  # not a WebSocket upgrade whatever follows
        return bytes(buffer), b"", None

    async def accept_loop(
        self, listeners: list[trio.SocketListener], nursery: trio.Nursery
    ) -> None:
        async with trio.open_nursery() as accepting:
            for listener in listeners:
                accepting.start_soon(self._accept, listener, nursery)

    async def _accept(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno in _CAPACITY_ERRNOS:
                    log.error("accept: %s; retrying in %.1f s", os.strerror(exc.errno or 0),
                              _CAPACITY_SLEEP_S)
                    await trio.sleep(_CAPACITY_SLEEP_S)
                    continue
                raise
            tune_socket(stream.socket, self.settings)
            nursery.start_soon(self.handle, stream)

    def cancel_http(self, deadline: float | None = None) -> None:
        for scope in list(self._http) + list(self._sniffing):
            if deadline is None:
                scope.cancel()
            else:
                scope.deadline = min(scope.deadline, deadline)


async def serve(
    app: StinercutApp,
    config: HypercornConfig,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    freeze_heap: bool = False,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` (HTTP and ``/ws``) on ``config.bind`` until ``shutdown_trigger`` returns.

    ``task_status.started`` gets the bound URLs. The same function serves in
    production (``stinercut serve``) and in the tests (``tests/support/server.py``).
    ``freeze_heap``: :func:`freeze_start_up_heap` once start-up is done - for a
    process that serves one app until it exits (the CLI), not for a test process
    that starts many apps in turn (each would stay in memory).
    """
    settings = app.settings
    fd_limit = raise_fd_limit()
    server = OnePortServer(app, config, settings)
    lifespan = Lifespan(server.asgi, config, server.lifespan_state)
    sockets = config.create_sockets()
    listeners: list[trio.SocketListener] = []
    binds: list[str] = []
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
        listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
        binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
    if sockets.secure_sockets or sockets.quic_sockets:
        raise ValueError("TLS and QUIC belong in a reverse proxy in front of stinercut serve")

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        if freeze_heap:
            freeze_start_up_heap()
        hub = app.hub
        hub.fd_ceiling = websocket_fd_ceiling(fd_limit, settings.ws_fd_reserve)
        log.info(
            "file descriptors: limit %d, WebSocket clients at most %d (WS_MAX_CLIENTS %s, "
            "%d kept for HTTP)", fd_limit, hub.max_clients, settings.ws_max_clients or "off",
            settings.ws_fd_reserve,
        )
        async with trio.open_nursery() as connections:
            accepting = trio.CancelScope()

            async def accept() -> None:
                try:
                    with accepting:
                        await server.accept_loop(listeners, connections)
                finally:
                    for listener in listeners:
                        await listener.aclose()

            connections.start_soon(accept)
            if os.environ.get(TRACEMALLOC_ENV):
                connections.start_soon(_report_allocations)
            for url in binds:
                log.info("listening on %s", url)
            task_status.started(binds)
            await shutdown_trigger()
            accepting.cancel()  # stop accepting
            await _shut_down(server, lifespan, connections)
        lifespan_nursery.cancel_scope.cancel()


def freeze_start_up_heap() -> None:
    """Move everything start-up allocated out of the garbage collector's sight.

    Why: after imports and start-up the process holds ~190 000 objects the cyclic
    collector tracks (modules, classes, SQLAlchemy's and pydantic's structures,
    the OpenAPI document), nearly all of them alive until exit. Each full
    (generation 2) collection walks them all: measured here ~100 ms in which the
    trio loop answers nothing, about once in 20 s of ``/api/health`` load (more
    often under heavier traffic), which made the slowest health answer 106 ms
    against 15 ms after the freeze. ``gc.freeze()`` puts them in the permanent
    generation, so a full collection walks only what was allocated since. Frozen objects are still freed when their
    last reference goes; only a reference cycle among them would never be
    collected, and there are few (``gc.collect()`` runs first).
    """
    collected = gc.collect()
    gc.freeze()
    log.info("heap frozen after start-up: %d objects out of the collector's sight "
             "(%d collected first)", gc.get_freeze_count(), collected)


TRACEMALLOC_ENV = "STINERCUT_TRACEMALLOC"
TRACEMALLOC_EVERY_S = 60.0


async def _report_allocations() -> None:
    """Diagnostics for ``bench/soak.py``: the top allocation growth since start-up,
    logged once a minute (only when ``STINERCUT_TRACEMALLOC`` is set)."""
    import tracemalloc

    tracemalloc.start(8)
    first = tracemalloc.take_snapshot()
    while True:
        await trio.sleep(TRACEMALLOC_EVERY_S)
        snapshot = tracemalloc.take_snapshot()
        top = snapshot.compare_to(first, "lineno")[:8]
        lines = "\n  ".join(str(stat) for stat in top)
        traced, peak = tracemalloc.get_traced_memory()
        log.warning("tracemalloc: traced %.1f MiB (peak %.1f); top growth since start:\n  %s",
                    traced / 2**20, peak / 2**20, lines)


async def _shut_down(server: OnePortServer, lifespan: Lifespan, connections: trio.Nursery) -> None:
    hub = server.app.hub
    # Idle keep-alive connections close at once; open requests get the grace period.
    await server.context.terminated.set()
    server.cancel_http(trio.current_time() + server.config.graceful_timeout)
    with trio.move_on_after(server.config.graceful_timeout):
        # Connections upgraded through the Quart route stay until close_all below.
        while server.http_connections > hub.quart_connections:
            await server.http_connection_ended()
    # The app's shutdown: the supervisor stops its jobs and publishes their status.
    try:
        await lifespan.wait_for_shutdown()
    except Exception:
        log.exception("lifespan shutdown failed")
    # Then the clients get what was published, and a 1001 close.
    with trio.CancelScope(shield=True):
        await hub.close_all()
    server.cancel_http()
    connections.cancel_scope.cancel()
