"""Redis bridge: one hub across several service instances.

How it works
------------
Every instance appends each message it routes to one Redis *stream*
(``<REDIS_HUB_CHANNEL>:stream``) and reads that stream, delivering the messages of
the *other* instances to its own clients. Each instance delivers locally itself,
so a message reaches each eligible client exactly once and never comes back to its
sender; an instance whose Redis is gone keeps serving its local clients.

Messages with target ``backend`` (commands for the service itself) are *not*
bridged: the instance whose client sent one handles it, exactly once.

Cost (the reason for the design, issue #12): the hub calls :meth:`Backplane.offer`
synchronously for every routed message; it only appends to a deque. One writer task
drains that deque at each wake-up, packs the messages into few binary *envelopes*
(up to ``ENVELOPE_BYTES`` each) and sends all their ``XADD`` commands in one socket
write; one reader task runs ``XREAD BLOCK`` on a second connection and gets many
envelopes per reply. Replies are parsed by hiredis (C) in :mod:`stinercut_svc.resp`.

Why a stream and not pub/sub (issue #11, Redis outages): with pub/sub, whatever is
published while an instance is not subscribed is gone, so after a Redis restart the
first instance back would publish its buffered messages before the others had
resubscribed, and they would miss them. A stream keeps the recent past (trimmed to
about ``STREAM_MAXLEN`` envelopes): an instance that reconnects reads on from the
last entry it saw; when Redis itself restarted (its ``run_id`` changed) it reads the
new stream from the start. A new instance starts at the stream's end.

Outages: while Redis is unreachable, outgoing messages wait in a buffer bounded by
count *and* bytes (``BUFFER_MESSAGES`` / ``BUFFER_BYTES``, messages written but not
yet acknowledged by Redis included); beyond it the newest are dropped and counted
(``dropped``). Reconnects are retried every ``backoff`` (0.1 s doubling to a 1 s cap,
with jitter), so the bridge is back within about a second of Redis; the buffer is
then sent in order.

No duplicates: an ``XADD`` whose reply was lost (the connection broke after
writing it) may or may not have been stored. It is sent again after reconnecting,
byte for byte, and every envelope carries its origin's sequence number: readers
keep the last sequence seen per origin and skip anything not newer. So a message
is neither lost nor delivered twice. (Not re-sending would lose up to a window of
messages on every connection loss; re-sending without sequence numbers would
duplicate them.) Sequence gaps (entries trimmed before a slow reader got them) are
counted as ``missed``.

Client counts for ``GET /api/ws/clients``: each instance keeps a key
``<channel>:presence:<instance>`` (its counts, expiring after ``PRESENCE_TTL_S``)
and its id in the set ``<channel>:instances``; readers add up the live keys. After
a Redis restart the next presence refresh (at once on reconnect) restores them.
"""

from __future__ import annotations

import json
import logging
import random
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import hiredis
import trio

from .hub import Routed
from .resp import (
    CommandError,
    ConnectionLost,
    RedisAddress,
    RedisConnection,
    RedisError,
    Reply,
    connect,
    pack,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
PRESENCE_TTL_S = 15
PRESENCE_REFRESH_S = 5.0
PRESENCE_MIN_GAP_S = 0.05
#: reconnect delay: first retry after ~0.1 s, doubling to the 1 s cap (jittered)
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 1.0
#: outgoing messages held while Redis is unreachable (or not yet acknowledged)
BUFFER_MESSAGES = 10_000
BUFFER_BYTES = 16 * 1024 * 1024
#: an envelope is closed once it holds this many bytes (one larger frame travels alone);
#: small enough that delivering one envelope never floods the clients' outboxes
ENVELOPE_BYTES = 16 * 1024
#: bytes written to Redis and not yet acknowledged before the writer waits
WINDOW_BYTES = 1024 * 1024
#: entries the stream keeps (approximately: ``XADD ... MAXLEN ~``)
STREAM_MAXLEN = 10_000
#: how long one XREAD waits for new entries; also the read connection's health check
READ_BLOCK_MS = 1000
READ_COUNT = 64
#: origins whose last sequence number is remembered (older ones are forgotten first)
REMEMBERED_ORIGINS = 1024

# -- the envelope: b"SH1" origin_len origin seq(8) then records ------------------------
# record: sender(1) target(1) length(4, big-endian) frame (UTF-8)
MAGIC = b"SH1"
SENDER_CODES = {"frontend": b"f", "detector": b"d", "backend": b"b"}
TARGET_CODES = {"all": b"a", "frontend": b"f", "detector": b"d"}
_SENDERS = {code[0]: name for name, code in SENDER_CODES.items()}
_TARGETS = {code[0]: name for name, code in TARGET_CODES.items()}
_RECORD_HEADS = {
    (sender, target): s + t for sender, s in SENDER_CODES.items() for target, t in TARGET_CODES.items()
}
_FIELD = b"e"
#: what "Redis is unavailable" looks like; anything else is logged as a bug (and retried too)
REDIS_DOWN = (
    RedisError,
    OSError,
    TimeoutError,
    trio.TooSlowError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
)


class EnvelopeError(ValueError):
    """Bytes on the stream that are not an envelope this version understands."""


@attrs.define
class Envelope:
    """One ``XADD`` on its way: kept, byte for byte, until Redis acknowledges it."""

    seq: int
    command: bytes  # the packed XADD, sent again as it is after a reconnect
    messages: int
    size: int  # the frames' bytes, as counted against BUFFER_BYTES


def encode_envelope(origin: bytes, seq: int, records: list[Routed]) -> bytes:
    """``records`` (routable: sender and target known) as one envelope."""
    parts = [MAGIC, len(origin).to_bytes(1, "big"), origin, seq.to_bytes(8, "big")]
    for routed in records:
        frame = routed.frame.encode("utf-8", "surrogatepass")
        parts.append(_RECORD_HEADS[routed.sender, routed.target])
        parts.append(len(frame).to_bytes(4, "big"))
        parts.append(frame)
    return b"".join(parts)


def decode_envelope(data: bytes) -> tuple[bytes, int, list[Routed]]:
    """``(origin, seq, messages)``; raises :class:`EnvelopeError` for anything else."""
    if not isinstance(data, bytes) or data[:3] != MAGIC or len(data) < 4:
        raise EnvelopeError("not an envelope of this version")
    end = 4 + data[3]
    origin = data[4:end]
    if len(data) < end + 8:
        raise EnvelopeError("truncated header")
    seq = int.from_bytes(data[end : end + 8], "big")
    pos = end + 8
    messages = []
    total = len(data)
    try:
        while pos < total:
            sender = _SENDERS[data[pos]]
            target = _TARGETS[data[pos + 1]]
            size = int.from_bytes(data[pos + 2 : pos + 6], "big")
            pos += 6
            if pos + size > total:
                raise EnvelopeError("truncated record")
            messages.append(Routed(data[pos : pos + size].decode("utf-8", "surrogatepass"), sender, target))
            pos += size
    except (KeyError, IndexError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"malformed record: {exc!r}") from None
    return origin, seq, messages


class Backplane:
    """Bridges one :class:`~stinercut_svc.hub.Hub` to a Redis stream."""

    def __init__(
        self,
        url: str,
        *,
        channel: str,
        instance_id: str,
        deliver: Callable[[Routed], None],
        local_counts: Callable[[], dict[str, int]],
        backoff: tuple[float, float] = (BACKOFF_MIN_S, BACKOFF_MAX_S),
        deliver_batch: Callable[[list[Routed]], None] | None = None,
        buffer_messages: int = BUFFER_MESSAGES,
        buffer_bytes: int = BUFFER_BYTES,
        stream_maxlen: int = STREAM_MAXLEN,
    ) -> None:
        self.url = url
        self.address = RedisAddress.from_url(url)
        self.channel = channel
        self.instance_id = instance_id
        self.stream_key = f"{channel}:stream".encode()
        self.buffer_messages = buffer_messages
        self.buffer_bytes = buffer_bytes
        self.stream_maxlen = stream_maxlen
        #: both connections are up and the stream is being read
        self.connected = False
        #: messages not bridged: the buffer was full, or Redis refused the XADD
        self.dropped = 0
        #: messages acknowledged by Redis
        self.sent = 0
        #: messages from other instances delivered here
        self.received = 0
        #: envelopes skipped because they were seen already (re-sent after a lost reply)
        self.duplicates = 0
        #: envelopes of other instances never seen (trimmed before this one read them)
        self.missed = 0
        #: connection attempts that failed or sessions that ended with an error
        self.failures = 0
        #: sessions established (the first connect included)
        self.sessions = 0
        self._deliver = deliver
        #: if given, gets each envelope's messages in one call (instead of ``deliver``
        #: per message), so the hub can write each client's share with one syscall
        self._deliver_batch = deliver_batch
        self._local_counts = local_counts
        self._backoff = backoff
        self._origin = instance_id.encode("ascii")
        if not 0 < len(self._origin) < 256:
            raise ValueError("instance_id must be 1 to 255 ASCII characters")
        self._outbox: deque[Routed] = deque()
        self._unconfirmed: deque[Envelope] = deque()
        self._unconfirmed_bytes = 0
        self._buffered = 0
        self._buffered_bytes = 0
        self._seq = 0
        self._wake = trio.Event()
        self._seen: OrderedDict[bytes, int] = OrderedDict()
        self._last_id: bytes | None = None
        self._run_id: bytes | None = None
        self._commands: RedisConnection | None = None
        self._presence_changed = trio.Event()
        self._connected_event = trio.Event()

    @property
    def presence_key(self) -> str:
        return f"{self.channel}:presence:{self.instance_id}"

    @property
    def instances_key(self) -> str:
        return f"{self.channel}:instances"

    @property
    def buffered(self) -> int:
        """Messages waiting to be sent to Redis or for its acknowledgement."""
        return self._buffered

    @property
    def buffered_bytes(self) -> int:
        return self._buffered_bytes

    # -- called from the hub (never block, never raise) -----------------------------

    def offer(self, routed: Routed) -> None:
        """Queue a locally routed message for the other instances (O(1), no I/O).

        Target ``backend`` is not bridged: the receiving instance handles it.
        """
        if routed.target not in TARGET_CODES or routed.sender not in SENDER_CODES:
            return
        size = len(routed.frame)
        if self._buffered >= self.buffer_messages or self._buffered_bytes + size > self.buffer_bytes:
            self._drop(1)
            return
        self._outbox.append(routed)
        self._buffered += 1
        self._buffered_bytes += size
        self._wake.set()

    def counts_changed(self) -> None:
        self._presence_changed.set()

    async def wait_connected(self) -> None:
        """Wait until the current (or next) session reads the stream; for tests and tools."""
        await self._connected_event.wait()

    async def other_instances(self, timeout: float) -> list[dict[str, int]] | None:
        """Client counts of the other live instances; ``None`` if Redis does not answer."""
        redis = self._commands
        if redis is None or not self.connected:
            return None
        try:
            with trio.fail_after(timeout):
                members = await redis.call("SMEMBERS", self.instances_key)
                mine = self._origin
                others = sorted(m for m in members if m != mine)
                if not others:
                    return []
                keys = [f"{self.channel}:presence:".encode() + m for m in others]
                values = await redis.call("MGET", *keys)
                gone = [m for m, v in zip(others, values, strict=True) if v is None]
                if gone:  # instances that died without cleaning up after themselves
                    redis.send("SREM", self.instances_key, *gone)
        except (*REDIS_DOWN, TypeError, ValueError) as exc:  # a count never turns into a 500
            log.warning("hub backplane: counting other instances failed: %r", exc)
            return None
        return [_parse_counts(v) for v in values if v is not None]

    # -- the bridge task -----------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, bridge, and reconnect with capped, jittered backoff, until cancelled.

        Reports started at once: the service does not wait for Redis to serve.
        """
        task_status.started()
        low, cap = self._backoff
        delay = low
        outage_logged = False
        while True:
            try:
                await self._session()
            except Exception as exc:  # noqa: BLE001 - an app-nursery task must not die
                self.failures += 1
                # One warning per outage, not one per retry (they come every second).
                _log_failure(exc, delay, quiet=outage_logged)
                outage_logged = True
            if self._connected_event.is_set():
                outage_logged = False
                delay = low  # it worked for a while: start over
                self._connected_event = trio.Event()
            # Jitter keeps a fleet of instances from reconnecting in lockstep.
            await trio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, cap)

    async def _session(self) -> None:
        name = f"stinercut-hub-{self.instance_id}"
        async with (
            connect(self.address, timeout=CONNECT_TIMEOUT_S, name=name) as commands,
            connect(self.address, timeout=CONNECT_TIMEOUT_S, name=name) as reads,
        ):
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(self._reader, reads)
                    self._commands = commands
                    self.connected = True
                    self.sessions += 1
                    self._connected_event.set()
                    log.info(
                        "hub backplane: reading %r at %s (%d message(s) buffered)",
                        self.stream_key.decode(),
                        _safe_url(self.url),
                        self._buffered,
                    )
                    nursery.start_soon(self._writer, commands)
                    nursery.start_soon(self._presence, commands)
            finally:
                self.connected = False
                self._commands = None

    # -- outgoing ------------------------------------------------------------------

    async def _writer(self, redis: RedisConnection) -> None:
        # What was written on the last connection but never acknowledged goes first,
        # unchanged: readers skip it if the first copy did arrive (sequence numbers).
        if self._unconfirmed:
            log.info("hub backplane: sending %d unacknowledged envelope(s) again", len(self._unconfirmed))
            redis.enqueue(
                b"".join(e.command for e in self._unconfirmed),
                *[self._on_ack] * len(self._unconfirmed),
            )
        while True:
            while not self._outbox or self._unconfirmed_bytes >= WINDOW_BYTES:
                self._wake = trio.Event()
                await self._wake.wait()
            envelopes = list(self._pack())
            redis.enqueue(b"".join(e.command for e in envelopes), *[self._on_ack] * len(envelopes))
            # Let the routing tasks queue more before the next write (batching).
            await trio.lowlevel.checkpoint()

    def _pack(self) -> Iterator[Envelope]:
        """Move messages from the outbox into envelopes until the window is full."""
        outbox = self._outbox
        while outbox and self._unconfirmed_bytes < WINDOW_BYTES:
            records: list[Routed] = []
            size = 0
            while outbox and size < ENVELOPE_BYTES:
                routed = outbox.popleft()
                records.append(routed)
                size += len(routed.frame)
            self._seq += 1
            data = encode_envelope(self._origin, self._seq, records)
            command = pack(
                (b"XADD", self.stream_key, b"MAXLEN", b"~", self.stream_maxlen, b"*", _FIELD, data)
            )
            envelope = Envelope(self._seq, command, len(records), size)
            self._unconfirmed.append(envelope)
            self._unconfirmed_bytes += len(command)
            yield envelope

    def _on_ack(self, reply: Reply) -> None:
        if isinstance(reply, ConnectionLost):
            return  # fate unknown: stays unconfirmed, sent again on the next connection
        envelope = self._unconfirmed.popleft()
        self._unconfirmed_bytes -= len(envelope.command)
        self._buffered -= envelope.messages
        self._buffered_bytes -= envelope.size
        if isinstance(reply, hiredis.ReplyError):
            log.warning("hub backplane: Redis refused %d message(s): %s", envelope.messages, reply)
            self._drop(envelope.messages)
        else:
            self.sent += envelope.messages
        if self._unconfirmed_bytes < WINDOW_BYTES:
            self._wake.set()

    def _drop(self, count: int) -> None:
        before = self.dropped
        self.dropped += count
        if before == 0 or before // 1000 != self.dropped // 1000:
            log.warning("hub backplane: %d message(s) not sent to other instances", self.dropped)

    # -- incoming ------------------------------------------------------------------

    async def _reader(
        self, redis: RedisConnection, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.fail_after(COMMAND_TIMEOUT_S):
            run_id = _run_id(await redis.call("INFO", "server"))
            if self._last_id is None:
                # A new instance: from the stream's end (the past is not for it).
                tail = await redis.call("XREVRANGE", self.stream_key, "+", "-", "COUNT", 1)
                self._last_id = tail[0][0] if tail else b"0-0"
            elif run_id != self._run_id:
                # Redis restarted (its data is gone): the new stream is all new to us.
                log.info("hub backplane: Redis restarted; reading its stream from the start")
                self._last_id = b"0-0"
        self._run_id = run_id
        task_status.started()
        while True:
            with trio.fail_after(READ_BLOCK_MS / 1000 + COMMAND_TIMEOUT_S):
                reply = await redis.call(
                    "XREAD", "COUNT", READ_COUNT, "BLOCK", READ_BLOCK_MS,
                    "STREAMS", self.stream_key, self._last_id,
                )
            if reply is None:
                continue  # nothing new within READ_BLOCK_MS
            for _key, entries in reply:
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    self._on_entry(fields)
                    # Let the clients' writers drain what this envelope queued.
                    await trio.lowlevel.checkpoint()

    def _on_entry(self, fields: list[bytes]) -> None:
        try:
            if len(fields) != 2 or fields[0] != _FIELD:
                raise EnvelopeError("unexpected fields")
            origin, seq, messages = decode_envelope(fields[1])
        except EnvelopeError as exc:
            log.warning("hub backplane: ignoring a stream entry it cannot read: %s", exc)
            return
        if origin == self._origin:
            return  # our own message, already delivered locally
        last = self._seen.get(origin)
        if last is not None:
            if seq <= last:
                self.duplicates += 1
                return
            if seq > last + 1:
                self.missed += seq - last - 1
            self._seen.move_to_end(origin)
        self._seen[origin] = seq
        if len(self._seen) > REMEMBERED_ORIGINS:
            self._seen.popitem(last=False)
        self.received += len(messages)
        if self._deliver_batch is not None:
            try:
                self._deliver_batch(messages)
            except Exception:  # noqa: BLE001 - one bad delivery must not stop the bridge
                log.exception("hub backplane: delivering messages from %r failed", origin)
            return
        deliver = self._deliver
        for routed in messages:
            try:
                deliver(routed)
            except Exception:  # noqa: BLE001 - one bad delivery must not stop the bridge
                log.exception("hub backplane: delivering a message from %r failed", origin)

    # -- presence ------------------------------------------------------------------

    async def _presence(self, redis: RedisConnection) -> None:
        # Doubles as the health check of the command connection: a Redis that stops
        # answering fails this within COMMAND_TIMEOUT_S and the session restarts.
        try:
            while True:
                self._presence_changed = trio.Event()
                with trio.fail_after(COMMAND_TIMEOUT_S):
                    counts = json.dumps(self._local_counts(), separators=(",", ":"))
                    redis.send("SET", self.presence_key, counts, "EX", PRESENCE_TTL_S)
                    await redis.call("SADD", self.instances_key, self.instance_id)
                with trio.move_on_after(PRESENCE_REFRESH_S):
                    await self._presence_changed.wait()
                await trio.sleep(PRESENCE_MIN_GAP_S)  # coalesce bursts of connects
        finally:
            # On shutdown, leave the count at once instead of after the TTL.
            with trio.move_on_after(0.5, shield=True):
                await redis.send_last_words(
                    ("DEL", self.presence_key), ("SREM", self.instances_key, self.instance_id)
                )


def _run_id(info: Reply) -> bytes | None:
    if not isinstance(info, bytes):
        return None
    for line in info.splitlines():
        if line.startswith(b"run_id:"):
            return line[7:].strip()
    return None


def _parse_counts(raw: bytes) -> dict[str, int]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {
        t: n
        for t in ("frontend", "detector")
        if isinstance(n := value.get(t), int) and not isinstance(n, bool) and n >= 0
    }


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user + ':***' if user else '***'}@{host}"


def _log_failure(exc: Exception, delay: float, *, quiet: bool = False) -> None:
    expected: BaseException | None = exc
    if isinstance(exc, BaseExceptionGroup):
        expected, unexpected = exc.split(REDIS_DOWN)
        if unexpected is not None:
            log.error("hub backplane failed (retrying in %.1f s)", delay, exc_info=unexpected)
            return
    if isinstance(expected, BaseExceptionGroup):
        detail = "; ".join(repr(e) for e in list(_leaves(expected))[:3])
    elif isinstance(expected, REDIS_DOWN):
        detail = repr(expected)
    else:
        log.error("hub backplane failed (retrying in %.1f s)", delay, exc_info=exc)
        return
    log.log(
        logging.DEBUG if quiet else logging.WARNING,
        "hub backplane: Redis unavailable (retrying every %.1f s at most; outgoing messages "
        "are buffered): %s",
        delay,
        detail,
    )


def _leaves(group: BaseExceptionGroup[Any]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


__all__ = ["Backplane", "CommandError", "Envelope", "decode_envelope", "encode_envelope"]
