"""The WebSocket hub: client registry, routing rules, bounded outboxes, ``publish``.

Protocol (kept from the seed design; the frontend and the detector speak it)::

    {"command": "namespace:action", "sender": ..., "target": "all|frontend|detector", "data": {}}

* ``target`` missing means ``all``. ``all`` reaches every client whose type differs
  from the sender's; ``frontend``/``detector`` reach every client of that type except
  the sending connection itself.
* The hub overwrites ``sender`` with the connection's real type (``backend`` for the
  service's own messages) and adds an ISO-8601 UTC ``timestamp`` ending in ``Z``
  when the message has none.
* ``hub:ping``/``hub:pong`` belong to the hub (keepalive, never routed); problems with
  a client's input come back to that client only, as ``hub:error``.

Concurrency: every connection is one reader task and one writer task (``serve``),
joined by a bounded outbox. Routing never awaits: it puts the message, encoded
once, into each recipient's outbox with ``send_nowait``, so one stuck socket can
never delay the others. A client that stopped reading is closed with 1013 and
leaves the registry at once when either its writer has waited ``ping_timeout``
on one socket write, or its outbox is full (the hard memory bound: a burst to a
slower but healthy reader fits in it). The writer is the only task that sends on
a socket, so a close frame never races a data frame.

With a :class:`~stinercut_svc.backplane.Backplane` attached (``REDIS_URL``), every
routed message also goes to Redis, and messages from other instances are
delivered to local clients only; see ``backplane.py``.
"""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from .config import Settings

if TYPE_CHECKING:
    from .backplane import Backplane

log = logging.getLogger(__name__)

FRONTEND = "frontend"
DETECTOR = "detector"
BACKEND = "backend"
CLIENT_TYPES = (FRONTEND, DETECTOR)
TARGETS = ("all", FRONTEND, DETECTOR)

PING = "hub:ping"
PONG = "hub:pong"
ERROR = "hub:error"

# RFC 6455 close codes the hub uses.
CLOSE_POLICY = 1008  # unknown client type, bad detector token
CLOSE_TOO_BIG = 1009  # frame above WS_MAX_MESSAGE_BYTES
CLOSE_KEEPALIVE = 1011  # no answer to hub:ping (the usual code for a ping timeout)
CLOSE_TRY_AGAIN = 1013  # outbox overflow: the client did not read fast enough
MAX_CLOSE_REASON_BYTES = 123  # control frames carry 125 bytes, two of them the code

_MIB = 1024**2


@attrs.frozen
class HubLimits:
    """The hub's bounds. ``outbox_bytes`` must exceed the largest frame routed."""

    max_message_bytes: int = _MIB
    outbox_messages: int = 4096
    outbox_bytes: int = 16 * _MIB
    ping_interval: float = 30.0  # 0 turns keepalive pings off
    #: how long a client may stay unresponsive: no answer to hub:ping, or one
    #: frame that could not be written to its socket (it stopped reading)
    ping_timeout: float = 20.0

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
        )


@attrs.frozen
class Routed:
    """A message on its way: encoded once, the same string queued for every recipient.

    ``exclude`` is the id of the sending connection on this instance (``None`` for
    the backend and for messages from other instances).
    """

    frame: str
    sender: str
    target: str
    exclude: int | None = None


@attrs.frozen
class CloseRequest:
    code: int
    reason: str


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


class Transport(Protocol):
    """The part of a WebSocket the hub uses (Quart's ``websocket`` object fits)."""

    async def receive(self) -> str | bytes: ...

    async def send(self, data: str) -> None: ...

    async def close(self, code: int, reason: str = "") -> None: ...


class MessageError(Exception):
    """A client's frame the hub cannot route; answered with ``hub:error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Client:
    """One connection: its type, its bounded outbox and its liveness bookkeeping."""

    def __init__(self, client_id: int, client_type: str, peer: str, limits: HubLimits) -> None:
        self.id = client_id
        self.type = client_type
        self.peer = peer
        now = trio.current_time()
        self.connected_at = now
        #: trio clock time of the last frame received from the client
        self.last_seen = now
        #: set when a hub:ping went out and nothing has come back since
        self.ping_sent_at: float | None = None
        #: set while the writer is inside a socket send (Hypercorn blocks it when
        #: the client stops reading and the TCP buffers are full)
        self.sending_since: float | None = None
        self.close_request: CloseRequest | None = None
        self._max_bytes = limits.outbox_bytes
        self._queued_bytes = 0
        self._send, self._receive = trio.open_memory_channel[str](limits.outbox_messages)

    def __repr__(self) -> str:
        return f"<{self.type} #{self.id} {self.peer}>"

    @property
    def queued(self) -> int:
        return self._send.statistics().current_buffer_used

    def offer(self, frame: str) -> bool:
        """Queue ``frame`` without waiting; ``False`` means the outbox is full."""
        if self.close_request is not None:
            return True  # on its way out: nothing more is queued, and that is not an overflow
        size = len(frame)  # frames are ASCII-only JSON, so characters == bytes
        if self._queued_bytes + size > self._max_bytes:
            return False
        try:
            self._send.send_nowait(frame)
        except trio.WouldBlock:
            return False
        self._queued_bytes += size
        return True

    def request_close(self, code: int, reason: str) -> bool:
        """Ask the writer to stop and close; ``True`` only for the first request."""
        if self.close_request is not None:
            return False
        self.close_request = CloseRequest(code, _truncate_reason(reason))
        # Wakes a writer waiting for a frame; anything still queued is dropped by it.
        self._send.close()
        return True

    async def next_frame(self) -> str | None:
        """The next frame to send, or ``None`` once the connection is to be closed."""
        try:
            frame = await self._receive.receive()
        except trio.EndOfChannel:
            return None
        self._queued_bytes -= len(frame)
        return None if self.close_request is not None else frame


class Hub:
    """Registry of the connected clients of this instance, and the routing between them."""

    def __init__(self, limits: HubLimits | None = None, *, instance_id: str | None = None) -> None:
        self.limits = limits or HubLimits()
        self.instance_id = instance_id or uuid.uuid4().hex
        self.backplane: Backplane | None = None
        self._by_type: dict[str, dict[int, Client]] = {t: {} for t in CLIENT_TYPES}
        self._ids = itertools.count(1)
        self._on_counts_changed: Callable[[], None] = lambda: None

    @classmethod
    def from_settings(cls, settings: Settings) -> Hub:
        hub = cls(HubLimits.from_settings(settings))
        if settings.redis_url:
            from .backplane import Backplane

            hub.attach(
                Backplane(
                    settings.redis_url,
                    channel=settings.redis_hub_channel,
                    instance_id=hub.instance_id,
                    deliver=hub.deliver_remote,
                    local_counts=hub.local_counts,
                )
            )
        return hub

    def attach(self, backplane: Backplane) -> None:
        self.backplane = backplane
        self._on_counts_changed = backplane.counts_changed

    # -- lifetime ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The hub's background work (keepalive, backplane) until cancelled.

        Start it in the app nursery. Connections are not children of this task
        (Hypercorn owns them), so cancelling it stops keepalive and the Redis
        bridge while local routing goes on working.
        """
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch)
            if self.backplane is not None:
                await nursery.start(self.backplane.run)
            task_status.started()

    def register(self, client_type: str, peer: str) -> Client:
        if client_type not in CLIENT_TYPES:
            raise ValueError(f"unknown client type {client_type!r}")
        client = Client(next(self._ids), client_type, peer, self.limits)
        self._by_type[client_type][client.id] = client
        log.info("ws %s #%d connected from %s; %s", client.type, client.id, peer, self._describe())
        self._on_counts_changed()
        return client

    async def serve(self, client: Client, transport: Transport) -> None:
        """Run one registered connection until it closes: the reader/writer pair.

        Returns when the writer has sent a requested close. If the peer goes away,
        Quart cancels this call; either way the client leaves the registry.
        """
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_loop, client, transport)
                await self._write_loop(client, transport)
                nursery.cancel_scope.cancel()
        finally:
            self._unregister(client, "connection closed")

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
        await trio.lowlevel.cancel_shielded_checkpoint()

    def local_counts(self) -> dict[str, int]:
        """Clients connected to this instance, per type (no I/O)."""
        return {t: len(clients) for t, clients in self._by_type.items()}

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
        self._deliver_local(attrs.evolve(routed, exclude=None))

    # -- connection tasks ----------------------------------------------------------

    async def _read_loop(self, client: Client, transport: Transport) -> None:
        while client.close_request is None:
            raw = await transport.receive()
            client.last_seen = trio.current_time()
            client.ping_sent_at = None
            self._on_frame(client, raw)

    async def _write_loop(self, client: Client, transport: Transport) -> None:
        while (frame := await client.next_frame()) is not None:
            # Hypercorn shields the socket write: a client that stopped reading
            # parks this task here, which is fine - nobody else waits on it.
            client.sending_since = trio.current_time()
            await transport.send(frame)
            client.sending_since = None
        request = client.close_request
        assert request is not None
        try:
            await transport.close(request.code, request.reason)
        except Exception as exc:  # the peer may already be gone; nothing left to do
            log.debug("ws %r: close failed: %r", client, exc)

    # -- routing -------------------------------------------------------------------

    def _on_frame(self, client: Client, raw: str | bytes | None) -> None:
        size = frame_bytes(raw)
        if size > self.limits.max_message_bytes:
            self._kick(
                client,
                CLOSE_TOO_BIG,
                f"message of {size} bytes exceeds the limit of {self.limits.max_message_bytes}",
            )
            return
        try:
            message = parse_client_message(raw)
        except MessageError as exc:
            log.debug("ws %r: %s", client, exc.message)
            self._offer(client, error_frame(client.type, exc))
            return
        command = message["command"]
        if command == PONG:
            return  # its only job was to show the client is alive (done above)
        if command == PING:
            self._offer(client, hub_frame(PONG, client.type, {}))
            return
        message["sender"] = client.type
        routed = Routed(encode(message), client.type, message["target"], exclude=client.id)
        self._route(routed)

    def _route(self, routed: Routed) -> None:
        self._deliver_local(routed)
        if self.backplane is not None:
            self.backplane.offer(routed)

    def _deliver_local(self, routed: Routed) -> None:
        if routed.target == "all":
            types = [t for t in CLIENT_TYPES if t != routed.sender]
        else:
            types = [routed.target]
        for client_type in types:
            # A copy: an overflowing client leaves the dict while we iterate.
            for client in list(self._by_type[client_type].values()):
                if client.id != routed.exclude:
                    self._offer(client, routed.frame)

    def _offer(self, client: Client, frame: str) -> None:
        if not client.offer(frame):
            self._kick(
                client,
                CLOSE_TRY_AGAIN,
                f"outbox overflow ({client.queued} messages waiting): read faster, then reconnect",
            )

    def _kick(self, client: Client, code: int, reason: str) -> None:
        if client.request_close(code, reason):
            log.warning("ws %r: closing with %d: %s", client, code, reason)
            self._unregister(client, f"closed with {code}")

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

    def _check(self, client: Client, now: float, interval: float, timeout: float) -> None:
        if client.sending_since is not None and now - client.sending_since >= timeout:
            self._kick(
                client,
                CLOSE_TRY_AGAIN,
                f"not reading: a message waited {timeout:g} s to be sent; reconnect",
            )
        elif client.ping_sent_at is not None:
            if now - client.ping_sent_at >= timeout:
                self._kick(
                    client,
                    CLOSE_KEEPALIVE,
                    f"keepalive timeout: nothing received {timeout:g} s after hub:ping",
                )
        elif interval > 0 and now - client.last_seen >= interval:
            client.ping_sent_at = now
            self._offer(client, hub_frame(PING, client.type, {}))


# -- the wire format ---------------------------------------------------------------


def utc_timestamp() -> str:
    """Now, as ISO-8601 UTC with milliseconds and a ``Z`` (what browsers parse)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(message: dict[str, Any]) -> str:
    # ASCII-only output makes len(frame) its size in bytes (outbox accounting);
    # allow_nan=False because browsers' JSON.parse refuses NaN.
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def frame_bytes(raw: str | bytes | None) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bytes):
        return len(raw)
    if raw.isascii():
        return len(raw)
    return len(raw.encode("utf-8", "surrogatepass"))


def hub_frame(command: str, target: str, data: dict[str, Any]) -> str:
    return encode(
        {
            "command": command,
            "sender": BACKEND,
            "target": target,
            "data": data,
            "timestamp": utc_timestamp(),
        }
    )


def error_frame(target: str, error: MessageError) -> str:
    return hub_frame(ERROR, target, {"error": error.message, "code": error.code})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_client_message(raw: str | bytes | None) -> dict[str, Any]:
    """Validate a client's frame; return the message to route (``sender`` unset).

    Raises :class:`MessageError` naming the problem. Unknown fields are kept:
    clients may correlate requests and answers with fields of their own.
    """
    if not isinstance(raw, str):
        raise MessageError("binary_frame", "binary frames are not supported: send JSON as text")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise MessageError("invalid_json", f"message is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MessageError(
            "not_an_object", f"message must be a JSON object, not {_json_type(value)}"
        )
    command = value.get("command")
    if not isinstance(command, str) or not command.strip():
        raise MessageError("missing_command", "message needs a non-empty string 'command'")
    target = value.get("target", "all")
    if target is None:
        target = "all"
    if target not in TARGETS:
        raise MessageError(
            "bad_target", f"target must be one of {', '.join(TARGETS)}, not {json.dumps(target)}"
        )
    data = value.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MessageError("bad_data", f"data must be a JSON object, not {_json_type(data)}")
    timestamp = value.get("timestamp")
    message: dict[str, Any] = {
        "command": command,
        "sender": None,
        "target": target,
        "data": data,
        "timestamp": timestamp if timestamp is not None else utc_timestamp(),
    }
    for key, extra in value.items():
        message.setdefault(key, extra)
    return message


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__


def _truncate_reason(reason: str) -> str:
    encoded = reason.encode("utf-8")
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return reason
    return encoded[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."
