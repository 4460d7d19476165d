"""The hub: client registry, routing, bounded outboxes, keepalive, ``publish``.

Concurrency: every connection is one reader task and one writer task joined by
the client's outbox (``connection.py``). Routing never awaits: a message is
encoded and framed **once** (:class:`Outgoing`) and the same object is appended
to each recipient's outbox, so one stuck socket can never delay the others. A
writer wakes, takes its whole backlog and sends it with one ``send_all``.

Bounds and liveness:

* A client that stopped reading is closed with 1013 and leaves the registry at
  once when either a socket write has waited ``ping_timeout``, or its outbox is
  full (the hard memory bound; a burst to a slower but healthy reader fits).
* Keepalive is a WebSocket *protocol* ping, which browsers and the detector's
  ``websocket-client`` answer without application code: after ``ping_interval``
  seconds with no inbound bytes the hub sends one; any inbound bytes (the pong,
  or data) count as an answer; none within ``ping_timeout`` → close 1011 and the
  TCP connection is aborted. The application ``hub:ping`` is answered with
  ``hub:pong`` but never sent unasked.
* Any close (1008, 1009, 1011, 1013, 1001, ...) removes the client from the
  registry at once; its writer then gets ``CLOSE_GRACE_S`` to send what it
  must and the close frame, and the peer ``CLOSE_GRACE_S`` to answer it,
  before the socket is aborted: the file descriptor is released within about
  two seconds whatever the peer does.

``target: "backend"`` messages go to handlers registered with :meth:`Hub.handle`
(and so do ``target: "all"`` messages whose command has a handler, besides being
delivered to every client type);
they run in the hub's nursery, at most ``MAX_BACKEND_TASKS`` at a time.

With a :class:`~stinercut_svc.backplane.Backplane` attached (``REDIS_URL``), every
routed message also goes to Redis, and messages from other instances are
delivered to local clients only; see ``backplane.py``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ..config import Settings
from .protocol import (
    BACKEND,
    CLIENT_TYPES,
    CLOSE_GOING_AWAY,
    CLOSE_KEEPALIVE,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    DETECTOR,
    FRONTEND,
    PING,
    PONG,
    TARGETS,
    MessageError,
    encode,
    error_frame,
    frame_bytes,
    hub_frame,
    parse_client_message,
    truncate_reason,
    utc_timestamp,
)
from .wire import PING_FRAME, text_frame

if TYPE_CHECKING:
    from ..backplane import Backplane

log = logging.getLogger("stinercut_svc.hub")

_MIB = 1024**2
#: After a close is requested: time to finish the write in progress and send the
#: close frame, then again for the peer's close answer, before the socket is aborted.
CLOSE_GRACE_S = 1.0
#: At shutdown: time to flush every client's outbox before the 1001 close.
SHUTDOWN_FLUSH_S = 1.0
#: Backend handlers running at once; more are dropped with a warning.
MAX_BACKEND_TASKS = 64


@attrs.frozen
class HubLimits:
    """The hub's bounds. ``outbox_bytes`` must exceed the largest frame routed."""

    max_message_bytes: int = _MIB
    outbox_messages: int = 4096
    outbox_bytes: int = 16 * _MIB
    ping_interval: float = 30.0  # 0 turns keepalive pings off
    #: how long a client may stay unresponsive: no answer to a protocol ping,
    #: or one write that could not be completed on its socket (it stopped reading)
    ping_timeout: float = 20.0
    #: WebSocket clients on this instance; 0 = no cap of its own (the fd ceiling stays)
    max_clients: int = 4096
    #: WebSocket clients from one IP address; 0 = no cap
    max_clients_per_address: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> HubLimits:
        return cls(
            max_message_bytes=settings.ws_max_message_bytes,
            outbox_messages=settings.ws_outbox_messages,
            # The hard memory bound per client, not the stuck-client detector (that
            # is the send timeout): a burst to a slower, healthy reader must fit.
            # Frames are shared between recipients, so the real cost is far lower.
            outbox_bytes=max(2 * settings.ws_max_message_bytes, 16 * _MIB),
            ping_interval=settings.ws_ping_interval,
            ping_timeout=settings.ws_ping_timeout,
            max_clients=settings.ws_max_clients,
            max_clients_per_address=settings.ws_max_clients_per_address,
        )


@attrs.frozen
class Routed:
    """A message on its way (also what crosses the Redis backplane).

    ``exclude`` is the id of the sending connection on this instance (``None`` for
    the backend and for messages from other instances).
    """

    frame: str
    sender: str
    target: str
    exclude: int | None = None


@attrs.define(slots=True)
class Outgoing:
    """One message as queued: built once, shared by every recipient's outbox.

    ``text`` is the JSON (for connections served through Quart); ``wire`` is the
    complete WebSocket frame (for the hub's own connections). Control frames
    (protocol ping/pong) have no ``text``.
    """

    text: str | None
    wire: bytes

    @classmethod
    def message(cls, text: str) -> Outgoing:
        return cls(text, text_frame(text.encode("ascii")))

    @classmethod
    def control(cls, wire: bytes) -> Outgoing:
        return cls(None, wire)


PING_OUT = Outgoing.control(PING_FRAME)


@attrs.frozen
class CloseRequest:
    code: int | None  # None: the peer is gone, no close frame is sent
    reason: str
    flush: bool = False  # send what is queued first (shutdown)


@attrs.frozen
class ClientCounts:
    """What ``GET /api/ws/clients`` answers."""

    frontend: int
    detector: int
    local: dict[str, int]
    instances: int
    backplane: str  # "off" | "connected" | "disconnected"

    @property
    def total(self) -> int:
        return self.frontend + self.detector


@attrs.frozen
class BackendMessage:
    """A client's message with ``target: "backend"``, as a handler gets it."""

    command: str
    data: dict[str, Any]
    sender: str  # the client's type
    client_id: int
    message: dict[str, Any]  # the whole validated message (extra fields kept)


BackendHandler = Callable[[BackendMessage], Awaitable[None]]


class Refused(Exception):
    """A connection the hub will not take now (a cap is reached)."""

    def __init__(self, code: str, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


class Client:
    """One connection: its type, its bounded outbox and its liveness bookkeeping."""

    def __init__(
        self,
        client_id: int,
        client_type: str,
        peer: str,
        address: str,
        limits: HubLimits,
        *,
        protocol_pings: bool,
    ) -> None:
        self.id = client_id
        self.type = client_type
        self.peer = peer
        self.address = address
        #: the hub's own connections answer protocol pings visibly; Quart's do not
        self.protocol_pings = protocol_pings
        now = trio.current_time()
        self.connected_at = now
        #: trio clock time of the last bytes received from the client
        self.last_seen = now
        #: set when a protocol ping went out and nothing has come back since
        self.ping_sent_at: float | None = None
        #: protocol pings sent (keepalive probes)
        self.pings_sent = 0
        #: set while the writer is inside a socket send
        self.sending_since: float | None = None
        #: the scope around the writer's current send: a close gives it a deadline
        self.send_scope: trio.CancelScope | None = None
        self.close_request: CloseRequest | None = None
        #: set once the connection's tasks are gone and its socket is closed
        self.done = trio.Event()
        self._max_messages = limits.outbox_messages
        self._max_bytes = limits.outbox_bytes
        self._queue: collections.deque[Outgoing] = collections.deque()
        self._queued_bytes = 0
        self._wakeup: trio.Event | None = None
        #: the socket's descriptor while the hub's own path serves the client: an idle
        #: writer's backlog is written straight from the routing task (see ``flush``)
        self.direct_fd: int | None = None
        #: the hub's list of clients with a backlog to flush (``None``: no direct writes)
        self._dirty: list[Client] | None = None
        self._is_dirty = False

    def __repr__(self) -> str:
        return f"<{self.type} #{self.id} {self.peer}>"

    @property
    def queued(self) -> int:
        return len(self._queue)

    def offer(self, item: Outgoing) -> bool:
        """Queue ``item`` without waiting; ``False`` means the outbox is full."""
        if self.close_request is not None:
            return True  # on its way out: nothing more is queued, and that is not an overflow
        size = len(item.wire)
        if len(self._queue) >= self._max_messages or self._queued_bytes + size > self._max_bytes:
            return False
        self._queue.append(item)
        self._queued_bytes += size
        if self._wakeup is not None:
            if self.direct_fd is not None and self._dirty is not None:
                if not self._is_dirty:  # the routing task writes it at its next flush
                    self._is_dirty = True
                    self._dirty.append(self)
            else:
                self._wakeup.set()
                self._wakeup = None
        return True

    def flush(self) -> None:
        """Write the backlog of an idle writer now, from the calling task.

        Saves the writer's wake-up (a task switch per message per client at low
        rates). Only while the writer is parked with nothing in flight, so the
        order of frames is kept; what the socket does not take at once goes back
        to the writer, which waits for the socket as usual.
        """
        self._is_dirty = False
        fd = self.direct_fd
        if fd is None or self._wakeup is None or not self._queue or self.close_request is not None:
            return
        data = b"".join(item.wire for item in self._queue)
        try:
            sent = os.write(fd, data)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = 0  # the writer meets the same error and ends the connection
        self._queue.clear()
        self._queued_bytes = 0
        if sent < len(data):
            rest = data[sent:]
            self._queue.append(Outgoing.control(rest))
            self._queued_bytes = len(rest)
            self._wakeup.set()
            self._wakeup = None

    def request_close(self, code: int | None, reason: str, *, flush: bool = False) -> bool:
        """Ask the writer to stop and close; ``True`` only for the first request."""
        if self.close_request is not None:
            return False
        self.close_request = CloseRequest(code, truncate_reason(reason), flush)
        if not flush:
            self._queue.clear()
            self._queued_bytes = 0
        deadline = trio.current_time() + (SHUTDOWN_FLUSH_S if flush else CLOSE_GRACE_S)
        if self.send_scope is not None:
            self.send_scope.deadline = min(self.send_scope.deadline, deadline)
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None
        return True

    async def take(self) -> list[Outgoing] | None:
        """Everything queued (waiting for at least one item), or ``None`` once the
        connection is to be closed and nothing more is to be sent."""
        while not self._queue:
            if self.close_request is not None:
                return None
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        if self.close_request is not None and not self.close_request.flush:
            return None
        batch = list(self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        return batch


class Hub:
    """Registry of the connected clients of this instance, and the routing between them."""

    def __init__(self, limits: HubLimits | None = None, *, instance_id: str | None = None) -> None:
        self.limits = limits or HubLimits()
        self.instance_id = instance_id or uuid.uuid4().hex
        self.backplane: Backplane | None = None
        #: clients that may receive messages, per type
        self._by_type: dict[str, dict[int, Client]] = {t: {} for t in CLIENT_TYPES}
        #: every connection whose tasks still run (closing ones included)
        self._connections: dict[int, Client] = {}
        self._per_address: collections.Counter[str] = collections.Counter()
        self._ids = itertools.count(1)
        self._on_counts_changed: Callable[[], None] = lambda: None
        self._handlers: dict[str, BackendHandler] = {}
        #: clients whose idle writer has a backlog, written by :meth:`flush`
        self._dirty: list[Client] = []
        self._nursery: trio.Nursery | None = None
        self._backend_tasks = 0
        #: cap derived from the file-descriptor limit (set by the one-port server)
        self.fd_ceiling: int | None = None
        #: messages routed by this instance, per target; plain ints read by /metrics
        self.routed: dict[str, int] = dict.fromkeys(TARGETS, 0)
        #: clients closed with 1013 (they did not read), per reason; read by /metrics
        self.slow_disconnects: dict[str, int] = {"outbox_full": 0, "send_timeout": 0}

    @classmethod
    def from_settings(cls, settings: Settings) -> Hub:
        hub = cls(HubLimits.from_settings(settings))
        if settings.redis_url:
            from ..backplane import Backplane

            hub.attach(
                Backplane(
                    settings.redis_url,
                    channel=settings.redis_hub_channel,
                    instance_id=hub.instance_id,
                    deliver=hub.deliver_remote,
                    deliver_batch=hub.deliver_remote_batch,
                    local_counts=hub.local_counts,
                )
            )
        return hub

    def attach(self, backplane: Backplane) -> None:
        self.backplane = backplane
        self._on_counts_changed = backplane.counts_changed

    # -- lifetime ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The hub's background work (keepalive, backplane, backend handlers) until cancelled.

        Start it in the app nursery. Connections are not children of this task
        (the server owns them), so cancelling it stops keepalive, backend handlers
        and the Redis bridge while local routing goes on working.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._watch)
                if self.backplane is not None:
                    await nursery.start(self.backplane.run)
                task_status.started()
        finally:
            self._nursery = None

    @property
    def max_clients(self) -> int:
        """The effective cap: ``WS_MAX_CLIENTS`` bounded by the fd ceiling."""
        caps = [c for c in (self.limits.max_clients, self.fd_ceiling) if c]
        return min(caps) if caps else 0

    def admit(self, address: str) -> None:
        """Raise :class:`Refused` when a new connection from ``address`` would pass a cap."""
        cap = self.max_clients
        if cap and len(self._connections) >= cap:
            raise Refused(
                "too_many_clients",
                f"the hub serves at most {cap} WebSocket clients; try again later",
                retry_after=5,
            )
        per = self.limits.max_clients_per_address
        if per and self._per_address[address] >= per:
            raise Refused(
                "too_many_clients_from_address",
                f"at most {per} WebSocket clients per address; close one first",
                retry_after=5,
            )

    def register(
        self, client_type: str, peer: str, *, address: str | None = None, protocol_pings: bool = False
    ) -> Client:
        if client_type not in CLIENT_TYPES:
            raise ValueError(f"unknown client type {client_type!r}")
        address = address if address is not None else peer
        client = Client(
            next(self._ids), client_type, peer, address, self.limits, protocol_pings=protocol_pings
        )
        client._dirty = self._dirty
        self._by_type[client_type][client.id] = client
        self._connections[client.id] = client
        self._per_address[address] += 1
        log.info("ws %s #%d connected from %s; %s", client.type, client.id, peer, self._describe())
        self._on_counts_changed()
        return client

    def flush(self) -> None:
        """Write what routing queued for idle writers (see :meth:`Client.flush`).

        Called after each batch of routing: a connection's reader after the frames
        of one receive, and every public entry point that queues messages.
        """
        dirty = self._dirty
        while dirty:
            batch = list(dirty)
            dirty.clear()
            for client in batch:
                client.flush()

    def release(self, client: Client) -> None:
        """The connection's tasks are gone and its socket closed: forget it entirely."""
        self._unregister(client, "connection closed")
        if self._connections.pop(client.id, None) is not None:
            self._per_address[client.address] -= 1
            if self._per_address[client.address] <= 0:
                del self._per_address[client.address]
        client.done.set()

    async def close_all(
        self,
        code: int = CLOSE_GOING_AWAY,
        reason: str = "server shutting down",
        *,
        flush_timeout: float = SHUTDOWN_FLUSH_S,
    ) -> None:
        """Close every connection with ``code`` after flushing its outbox, and wait.

        Each writer gets ``flush_timeout`` to send what is queued and the close
        frame, then the peer ``CLOSE_GRACE_S`` to answer; so this returns within
        about ``flush_timeout + CLOSE_GRACE_S`` whatever the clients do.
        """
        clients = list(self._connections.values())
        for client in clients:
            if client.request_close(code, reason, flush=True):
                self._unregister(client, f"closed with {code}")
        with trio.move_on_after(flush_timeout + CLOSE_GRACE_S + 1.0):
            for client in clients:
                await client.done.wait()

    # -- the public API ------------------------------------------------------------

    async def publish(self, command: str, data: dict[str, Any], target: str = FRONTEND) -> None:
        """Send a message from the service itself (``sender: "backend"``).

        Never waits for clients (each gets it queued or, if its outbox is full,
        is disconnected) and never raises because of a client's or Redis' state.
        It raises ``ValueError``/``TypeError`` only for a caller's mistake: an
        unknown ``target``, an empty ``command``, ``data`` that is not a
        JSON-serialisable dict, or a message larger than an outbox.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
        if not isinstance(command, str) or not command:
            raise ValueError("command must be a non-empty string")
        if not isinstance(data, dict):
            raise TypeError(f"data must be a dict, not {type(data).__name__}")
        frame = encode(
            {
                "command": command,
                "sender": BACKEND,
                "target": target,
                "data": data,
                "timestamp": utc_timestamp(),
            }
        )
        if len(frame) > self.limits.outbox_bytes:
            raise ValueError(
                f"message of {len(frame)} bytes is larger than a client outbox "
                f"({self.limits.outbox_bytes} bytes)"
            )
        self._route(Routed(frame, BACKEND, target))
        self.flush()
        await trio.lowlevel.cancel_shielded_checkpoint()

    def send_to(self, client_id: int, command: str, data: dict[str, Any]) -> bool:
        """Send a message from the service to one client (e.g. a backend handler's
        answer); ``False`` when that client is no longer connected."""
        for clients in self._by_type.values():
            client = clients.get(client_id)
            if client is not None:
                self._offer(client, Outgoing.message(hub_frame(command, client.type, data)))
                self.flush()
                return True
        return False

    def handle(self, command: str, handler: BackendHandler) -> None:
        """Register ``handler`` for client messages ``{"target": "backend", "command": command}``.

        It runs in the hub's nursery (never in the routing path), at most
        ``MAX_BACKEND_TASKS`` at once; an exception is logged, never propagated.
        """
        if command in self._handlers:
            raise ValueError(f"a backend handler for {command!r} is already registered")
        self._handlers[command] = handler

    def client(self, client_id: int) -> Client | None:
        """A registered client by id (``None`` once it left)."""
        for clients in self._by_type.values():
            if client_id in clients:
                return clients[client_id]
        return None

    def clients(self) -> list[Client]:
        """Registered clients (not those on their way out)."""
        return [c for clients in self._by_type.values() for c in clients.values()]

    def local_counts(self) -> dict[str, int]:
        """Clients connected to this instance, per type (no I/O)."""
        return {t: len(clients) for t, clients in self._by_type.items()}

    @property
    def quart_connections(self) -> int:
        """Connections served through the Quart route (they live in Hypercorn's tasks)."""
        return sum(1 for c in self._connections.values() if not c.protocol_pings)

    @property
    def open_connections(self) -> int:
        """Connections whose tasks still run (closing ones included)."""
        return len(self._connections)

    async def counts(self, timeout: float = 1.0) -> ClientCounts:
        """Clients per type on every instance sharing the backplane.

        Falls back to this instance's own clients when Redis does not answer
        within ``timeout``.
        """
        local = self.local_counts()
        totals = dict(local)
        instances = 1
        state = "off"
        if self.backplane is not None:
            others = await self.backplane.other_instances(timeout)
            if others is None:
                state = "disconnected"
            else:
                state = "connected"
                instances += len(others)
                for counts in others:
                    for t in CLIENT_TYPES:
                        totals[t] += counts.get(t, 0)
        return ClientCounts(totals[FRONTEND], totals[DETECTOR], local, instances, state)

    def deliver_remote(self, routed: Routed) -> None:
        """A message another instance routed: deliver it to the clients here."""
        self._deliver_local(Outgoing.message(routed.frame), routed.sender, routed.target, None)
        self.flush()

    def deliver_remote_batch(self, batch: list[Routed]) -> None:
        """Messages of one backplane envelope: queued, then one write per client."""
        for routed in batch:
            self._deliver_local(Outgoing.message(routed.frame), routed.sender, routed.target, None)
        self.flush()

    # -- called by the connections ---------------------------------------------------

    def on_message(self, client: Client, raw: str | bytes) -> None:
        """One complete message from ``client``."""
        size = frame_bytes(raw)
        if size > self.limits.max_message_bytes:
            self.too_big(client, f"{size}")
            return
        try:
            message = parse_client_message(raw)
        except MessageError as exc:
            log.debug("ws %r: %s", client, exc.message)
            self._offer(client, Outgoing.message(error_frame(client.type, exc)))
            return
        command = message["command"]
        if command == PONG:
            return  # the answer to a client's own bookkeeping: nothing to route
        if command == PING:
            self._offer(client, Outgoing.message(hub_frame(PONG, client.type, {})))
            return
        message["sender"] = client.type
        if message["target"] == BACKEND:
            self._dispatch_backend(client, message)
            return
        if message["target"] == "all" and command in self._handlers:
            # The service is one of "all": the detector announces cards that way
            # (device.mounted, gopro.copy_completed), and the frontends see them too.
            # Only the instance the sender is connected to handles it (the backplane
            # copy is delivered, not dispatched), so it is handled exactly once.
            self._dispatch_backend(client, message)
        self._route(Routed(encode(message), client.type, message["target"], exclude=client.id))

    def too_big(self, client: Client, size: str) -> None:
        self.kick(
            client,
            CLOSE_TOO_BIG,
            f"message of {size} bytes exceeds the limit of {self.limits.max_message_bytes}",
        )

    def send_control(self, client: Client, wire: bytes) -> None:
        """Queue a protocol control frame (a pong) for the client's writer."""
        self._offer(client, Outgoing.control(wire))

    def kick(self, client: Client, code: int | None, reason: str, *, peer: bool = False) -> None:
        """Close ``client`` now (queued messages dropped); it leaves the registry at once.

        ``peer``: the client closed or went away itself (logged as a plain disconnect).
        """
        if client.request_close(code, reason):
            if not peer:
                log.warning("ws %r: closing with %s: %s", client, code, reason)
            why = f"closed with {code}" if code is not None else reason
            self._unregister(client, f"{why} by the client" if peer and code is not None else why)

    # -- routing -------------------------------------------------------------------

    def _route(self, routed: Routed) -> None:
        self.routed[routed.target] += 1
        self._deliver_local(Outgoing.message(routed.frame), routed.sender, routed.target, routed.exclude)
        if self.backplane is not None:
            self.backplane.offer(routed)

    def _deliver_local(self, item: Outgoing, sender: str, target: str, exclude: int | None) -> None:
        if target == "all":
            types = [t for t in CLIENT_TYPES if t != sender]
        else:
            types = [target]
        for client_type in types:
            overflowed: list[Client] = []
            for client in self._by_type[client_type].values():
                if client.id != exclude and not client.offer(item):
                    overflowed.append(client)
            for client in overflowed:  # leaves the dict: not while iterating it
                self._overflow(client)

    def _offer(self, client: Client, item: Outgoing) -> None:
        if not client.offer(item):
            self._overflow(client)

    def _overflow(self, client: Client) -> None:
        if client.close_request is None:
            self.slow_disconnects["outbox_full"] += 1
        self.kick(
            client,
            CLOSE_TRY_AGAIN,
            f"outbox overflow ({client.queued} messages waiting): read faster, then reconnect",
        )

    def _dispatch_backend(self, client: Client, message: dict[str, Any]) -> None:
        command = message["command"]
        handler = self._handlers.get(command)
        if handler is None:
            log.info("ws %r: no backend handler for %r; dropped", client, command)
            return
        if self._nursery is None:
            log.warning("ws %r: backend command %r dropped: the hub is not running", client, command)
            return
        if self._backend_tasks >= MAX_BACKEND_TASKS:
            log.warning("ws %r: backend command %r dropped: %d handlers busy", client, command,
                        self._backend_tasks)
            return
        request = BackendMessage(command, message["data"], client.type, client.id, message)
        self._backend_tasks += 1
        self._nursery.start_soon(self._run_handler, handler, request)

    async def _run_handler(self, handler: BackendHandler, request: BackendMessage) -> None:
        try:
            await handler(request)
        except Exception:
            log.exception("backend handler for %r failed", request.command)
        finally:
            self._backend_tasks -= 1

    def _unregister(self, client: Client, why: str) -> None:
        if self._by_type[client.type].pop(client.id, None) is None:
            return
        lived = trio.current_time() - client.connected_at
        log.info(
            "ws %s #%d disconnected after %.1f s (%s); %s",
            client.type,
            client.id,
            lived,
            why,
            self._describe(),
        )
        self._on_counts_changed()

    def _describe(self) -> str:
        return " ".join(f"{t}={n}" for t, n in self.local_counts().items())

    async def _watch(self) -> None:
        """Keepalive pings, and dropping clients that stopped answering or reading.

        A blocked send is the reliable sign of a client that stopped reading: a
        slow but healthy one keeps taking frames off the wire, so its writer never
        waits long on one, however long its outbox gets during a burst.
        """
        interval, timeout = self.limits.ping_interval, self.limits.ping_timeout
        shortest = min(interval, timeout) if interval > 0 else timeout
        tick = min(max(shortest / 4, 0.05), 5.0)
        while True:
            await trio.sleep(tick)
            now = trio.current_time()
            for clients in self._by_type.values():
                for client in list(clients.values()):
                    self._check(client, now, interval, timeout)
            self.flush()

    def _check(self, client: Client, now: float, interval: float, timeout: float) -> None:
        if client.sending_since is not None and now - client.sending_since >= timeout:
            if client.close_request is None:
                self.slow_disconnects["send_timeout"] += 1
            self.kick(
                client,
                CLOSE_TRY_AGAIN,
                f"not reading: a message waited {timeout:g} s to be sent; reconnect",
            )
        elif not client.protocol_pings:
            return  # served through Quart: Hypercorn pings, TCP keepalive detects dead peers
        elif client.ping_sent_at is not None:
            if now - client.ping_sent_at >= timeout:
                self.kick(
                    client,
                    CLOSE_KEEPALIVE,
                    f"keepalive timeout: no answer {timeout:g} s after a ping",
                )
        elif interval > 0 and now - client.last_seen >= interval:
            client.ping_sent_at = now
            client.pings_sent += 1
            self._offer(client, PING_OUT)
