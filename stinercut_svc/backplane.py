"""Redis pub/sub bridge: one hub across several service instances.

Every instance publishes each message it routes to one Redis channel, wrapped in
an envelope naming the instance (``origin``), and delivers the envelopes of the
*other* instances to its own clients. Each instance delivers locally itself, so
a message reaches each eligible client exactly once and never comes back to its
sender; an instance whose Redis is gone keeps serving its local clients.

Delivery across instances is at most once: publishes are not retried (a retried
PUBLISH whose first reply was lost would arrive twice) and messages routed while
Redis is unreachable are counted as dropped, not replayed late.

Client counts for ``GET /api/ws/clients``: each instance keeps a key
``<channel>:presence:<instance>`` (its counts, expiring after ``PRESENCE_TTL_S``)
and its id in the set ``<channel>:instances``; readers add up the live keys.

The client is coredis, which runs on anyio and so works under trio (checked:
commands, pub/sub, cancellation, connection loss surfacing as
``coredis.exceptions.ConnectionError`` inside exception groups). redis-py's asyncio
client does not run under trio.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from typing import Any

import coredis
import coredis.exceptions
import trio
from coredis.retry import NoRetryPolicy

from .hub import CLIENT_TYPES, TARGETS, Routed

log = logging.getLogger(__name__)

ENVELOPE_VERSION = 1
SENDERS = (*CLIENT_TYPES, "backend")
CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 5.0
PRESENCE_TTL_S = 15
PRESENCE_REFRESH_S = 5.0
PRESENCE_MIN_GAP_S = 0.05
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0
OUTBOUND_QUEUE = 4096
#: What "Redis is unavailable" looks like; anything else is logged as a bug (and retried too).
REDIS_DOWN = (coredis.exceptions.RedisError, OSError, TimeoutError, trio.TooSlowError)


class BackplaneLost(coredis.exceptions.ConnectionError):
    """The subscription ended without an error from the client library."""


class Backplane:
    """Bridges one :class:`~stinercut_svc.hub.Hub` to a Redis pub/sub channel."""

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        instance_id: str,
        deliver: Callable[[Routed], None],
        local_counts: Callable[[], dict[str, int]],
        backoff: tuple[float, float] = (BACKOFF_MIN_S, BACKOFF_MAX_S),
    ) -> None:
        self.url = url
        self.channel = channel
        self.instance_id = instance_id
        self.connected = False
        #: messages not sent to Redis (it was unreachable, or the queue was full)
        self.dropped = 0
        #: connection attempts that failed or sessions that ended with an error
        self.failures = 0
        self._deliver = deliver
        self._local_counts = local_counts
        self._backoff = backoff
        self._redis: coredis.Redis[str] | None = None
        self._send, self._receive = trio.open_memory_channel[Routed](OUTBOUND_QUEUE)
        self._presence_changed = trio.Event()
        self._connected_event = trio.Event()

    @property
    def presence_key(self) -> str:
        return f"{self.channel}:presence:{self.instance_id}"

    @property
    def instances_key(self) -> str:
        return f"{self.channel}:instances"

    # -- called from the hub (never block, never raise) -----------------------------

    def offer(self, routed: Routed) -> None:
        if not self.connected:
            self._drop()
            return
        try:
            self._send.send_nowait(routed)
        except trio.WouldBlock:
            self._drop()

    def counts_changed(self) -> None:
        self._presence_changed.set()

    async def wait_connected(self) -> None:
        """Wait until the current (or next) session is subscribed; for tests and tools."""
        await self._connected_event.wait()

    async def other_instances(self, timeout: float) -> list[dict[str, int]] | None:
        """Client counts of the other live instances; ``None`` if Redis does not answer."""
        redis = self._redis
        if redis is None or not self.connected:
            return None
        try:
            with trio.fail_after(timeout):
                members = await redis.smembers(self.instances_key)
                others = sorted(m for m in members if m != self.instance_id)
                if not others:
                    return []
                keys = [f"{self.channel}:presence:{m}" for m in others]
                values = await redis.mget(keys)
                gone = [m for m, v in zip(others, values, strict=True) if v is None]
                if gone:  # instances that died without cleaning up after themselves
                    await redis.srem(self.instances_key, gone)
        except Exception as exc:  # a count must never turn into a 500
            log.warning("hub backplane: counting other instances failed: %r", exc)
            return None
        return [_parse_counts(v) for v in values if v is not None]

    # -- the bridge task -----------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, bridge, and reconnect with capped exponential backoff, until cancelled.

        Reports started at once: the service does not wait for Redis to serve.
        """
        task_status.started()
        delay = self._backoff[0]
        while True:
            try:
                await self._session()
            except Exception as exc:  # noqa: BLE001 - an app-nursery task must not die
                self.failures += 1
                _log_failure(exc, delay)
            if self._connected_event.is_set():
                delay = self._backoff[0]  # it worked for a while: start over
                self._connected_event = trio.Event()
            # Jitter keeps a fleet of instances from reconnecting in lockstep.
            await trio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self._backoff[1])

    async def _session(self) -> None:
        async with coredis.Redis.from_url(
            self.url,
            decode_responses=True,
            client_name=f"stinercut-hub-{self.instance_id}",
            connect_timeout=CONNECT_TIMEOUT_S,
            retry_policy=NoRetryPolicy(),
        ) as redis:
            async with redis.pubsub(
                channels=[self.channel], ignore_subscribe_messages=True, retry_policy=None
            ) as pubsub:
                self._redis = redis
                self.connected = True
                self._connected_event.set()
                log.info("hub backplane: subscribed to %r at %s", self.channel, _safe_url(self.url))
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._publisher, redis)
                        nursery.start_soon(self._presence, redis)
                        async for message in pubsub:
                            self._on_envelope(message["data"])
                        raise BackplaneLost("the Redis subscription ended")
                finally:
                    self.connected = False
                    self._redis = None
                    self._discard_queued()

    async def _publisher(self, redis: coredis.Redis[str]) -> None:
        async for routed in self._receive:
            envelope = json.dumps(
                {
                    "v": ENVELOPE_VERSION,
                    "origin": self.instance_id,
                    "sender": routed.sender,
                    "target": routed.target,
                    "frame": routed.frame,
                },
                separators=(",", ":"),
            )
            with trio.fail_after(COMMAND_TIMEOUT_S):
                await redis.publish(self.channel, envelope)

    async def _presence(self, redis: coredis.Redis[str]) -> None:
        # Doubles as the health check of an idle connection: a Redis that stops
        # answering fails this within COMMAND_TIMEOUT_S and the session restarts.
        try:
            while True:
                self._presence_changed = trio.Event()
                with trio.fail_after(COMMAND_TIMEOUT_S):
                    await redis.set(
                        self.presence_key, json.dumps(self._local_counts()), ex=PRESENCE_TTL_S
                    )
                    await redis.sadd(self.instances_key, [self.instance_id])
                with trio.move_on_after(PRESENCE_REFRESH_S):
                    await self._presence_changed.wait()
                await trio.sleep(PRESENCE_MIN_GAP_S)  # coalesce bursts of connects
        finally:
            # On shutdown, leave the count at once instead of after the TTL.
            with trio.move_on_after(1.0, shield=True) as cleanup:
                try:
                    await redis.delete([self.presence_key])
                    await redis.srem(self.instances_key, [self.instance_id])
                except REDIS_DOWN:
                    pass
            if cleanup.cancelled_caught:
                log.debug("hub backplane: presence cleanup timed out")

    def _on_envelope(self, data: Any) -> None:
        try:
            envelope = json.loads(data)
            origin = envelope["origin"]
            routed = Routed(envelope["frame"], envelope["sender"], envelope["target"])
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("hub backplane: ignoring a malformed envelope: %r", exc)
            return
        if origin == self.instance_id:
            return  # our own message, already delivered locally
        if (
            envelope.get("v") != ENVELOPE_VERSION
            or not isinstance(routed.frame, str)
            or routed.sender not in SENDERS
            or routed.target not in TARGETS
        ):
            log.warning("hub backplane: ignoring an envelope from %r it cannot route", origin)
            return
        self._deliver(routed)

    def _discard_queued(self) -> None:
        while True:
            try:
                self._receive.receive_nowait()
            except trio.WouldBlock:
                return
            self._drop()

    def _drop(self) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning("hub backplane: %d message(s) not sent to other instances", self.dropped)


def _parse_counts(raw: str) -> dict[str, int]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {t: n for t in CLIENT_TYPES if isinstance(n := value.get(t), int) and n >= 0}


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user + ':***' if user else '***'}@{host}"


def _log_failure(exc: Exception, delay: float) -> None:
    expected = exc
    if isinstance(exc, BaseExceptionGroup):
        expected, unexpected = exc.split(REDIS_DOWN)
        if unexpected is not None:
            log.error("hub backplane failed (retrying in %.1f s)", delay, exc_info=unexpected)
            return
    if isinstance(expected, BaseExceptionGroup):
        leaves = list(_leaves(expected))
        detail = "; ".join(repr(e) for e in leaves[:3])
    elif isinstance(expected, REDIS_DOWN):
        detail = repr(expected)
    else:
        log.error("hub backplane failed (retrying in %.1f s)", delay, exc_info=exc)
        return
    log.warning("hub backplane: Redis unavailable (retrying in %.1f s): %s", delay, detail)


def _leaves(group: BaseExceptionGroup[Any]) -> Any:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
