"""The Redis bridge on its own: envelopes, outages of a real Redis, buffer bounds, dedupe.

Two :class:`Backplane` objects stand for two service instances (their ``deliver``
collects what the hub would get). Outage tests start their own ``redis-server`` on a
free port and kill/restart it; the others use the shared Redis with a unique channel.
The whole service across a Redis outage is in ``test_hub_backplane.py``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.lowlevel
import trio.testing

from stinercut_svc.backplane import (
    Backplane,
    EnvelopeError,
    decode_envelope,
    encode_envelope,
)
from stinercut_svc.config import ConfigError, Settings
from stinercut_svc.hub import Routed
from stinercut_svc.resp import RedisAddress, RedisConnection, connect
from tests.support.redis_server import RedisServer, redis_server

SHARED_REDIS = os.environ.get("STINERCUT_TEST_REDIS_URL")
STEP_S = 10.0  # "does not hang" bound


def message(n: int, target: str = "frontend") -> Routed:
    return Routed(f'{{"command":"test:n","data":{{"n":{n}}},"pad":"\u00e9"}}', "detector", target)


def numbers(received: list[Routed]) -> list[int]:
    return [int(r.frame.split('"n":')[1].split("}")[0]) for r in received]


class Instance:
    """A backplane plus what it delivered: one 'service instance' for these tests."""

    def __init__(self, url: str, channel: str, **kwargs: object) -> None:
        self.received: list[Routed] = []
        self.backplane = Backplane(
            url,
            channel=channel,
            instance_id=uuid.uuid4().hex,
            deliver=self.received.append,
            local_counts=lambda: {"frontend": 1, "detector": 0},
            **kwargs,  # type: ignore[arg-type]
        )


@asynccontextmanager
async def instances(url: str, count: int = 2, **kwargs: object) -> AsyncIterator[list[Instance]]:
    channel = f"stinercut-test:{uuid.uuid4().hex}"
    made = [Instance(url, channel, **kwargs) for _ in range(count)]
    async with trio.open_nursery() as nursery:
        for instance in made:
            await nursery.start(instance.backplane.run)
        with trio.fail_after(STEP_S):
            for instance in made:
                await instance.backplane.wait_connected()
        yield made
        nursery.cancel_scope.cancel()


async def wait_for(predicate: object, what: str, seconds: float = STEP_S) -> None:
    with trio.fail_after(seconds):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 - polls counters
            await trio.sleep(0.01)


# -- the envelope (pure) -------------------------------------------------------------


def test_envelope_round_trip_keeps_order_targets_and_non_ascii() -> None:
    records = [
        Routed('{"a":1}', "detector", "frontend"),
        Routed("{}", "backend", "all"),
        Routed('{"x":"\u00fc\U0001f600"}', "frontend", "detector"),
        Routed("", "frontend", "all"),
    ]
    origin, seq, decoded = decode_envelope(encode_envelope(b"inst-1", 2**40 + 7, records))
    assert (origin, seq) == (b"inst-1", 2**40 + 7)
    assert decoded == records


@pytest.mark.parametrize(
    "data",
    [b"", b"XX1", b"SH1", b"SH1\x05ab", b"SH1\x01a" + bytes(8) + b"fa\x00\x00\x00\x09{}", b"SH1\x01a"
     + bytes(8) + b"za\x00\x00\x00\x00", b"SH1\x01a" + bytes(8) + b"f"],
)
def test_malformed_envelopes_are_refused(data: bytes) -> None:
    with pytest.raises(EnvelopeError):
        decode_envelope(data)


def test_backend_targeted_messages_are_not_bridged() -> None:
    backplane = Backplane(
        "redis://127.0.0.1:1/0", channel="c", instance_id="i", deliver=lambda r: None,
        local_counts=dict,
    )
    backplane.offer(Routed('{"command":"svc:do"}', "frontend", "backend"))
    assert (backplane.buffered, backplane.dropped) == (0, 0)
    backplane.offer(message(1))
    assert backplane.buffered == 1


async def test_backoff_stays_at_most_one_second_however_long_the_outage(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Nothing listens on port 1: every connect is refused at once. Over 60 virtual
    # seconds of outage a 1 s cap (jittered down to 0.5 s) means >= 60 attempts;
    # an uncapped exponential backoff would make ~8.
    backplane = Backplane(
        "redis://127.0.0.1:1/0", channel="c", instance_id="i", deliver=lambda r: None,
        local_counts=dict,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(backplane.run)
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    assert backplane.failures >= 60


# -- against a real Redis ------------------------------------------------------------

needs_shared_redis = pytest.mark.skipif(
    not SHARED_REDIS, reason="STINERCUT_TEST_REDIS_URL is not set (scripts/test sets it)"
)


@needs_shared_redis
async def test_messages_cross_in_order_and_never_come_back() -> None:
    assert SHARED_REDIS
    async with instances(SHARED_REDIS) as (a, b):
        for n in range(3000):
            a.backplane.offer(message(n))
            if n % 500 == 0:
                await trio.lowlevel.checkpoint()
        b.backplane.offer(message(-1, "all"))
        await wait_for(lambda: len(b.received) == 3000 and len(a.received) == 1, "delivery")
        assert numbers(b.received) == list(range(3000))
        assert numbers(a.received) == [-1] and a.received[0].target == "all"
        assert a.backplane.sent == 3000 and a.backplane.buffered == 0
        assert (b.backplane.duplicates, b.backplane.missed) == (0, 0)
        # counts of the other instance, through presence
        assert await a.backplane.other_instances(STEP_S) == [{"frontend": 1, "detector": 0}]


@needs_shared_redis
async def test_an_envelope_stored_twice_is_delivered_once() -> None:
    # What a re-sent XADD whose first reply was lost looks like on the stream.
    assert SHARED_REDIS
    async with instances(SHARED_REDIS, count=1) as (b,):
        origin = b"another-instance"
        first = encode_envelope(origin, 1, [message(1)])
        second = encode_envelope(origin, 2, [message(2), message(3)])
        async with connect(RedisAddress.from_url(SHARED_REDIS), timeout=STEP_S) as redis:
            for data in (first, second, second, first):
                await redis.call("XADD", b.backplane.stream_key, "*", "e", data)
            await redis.call("XADD", b.backplane.stream_key, "*", "e", b"garbage")
            await redis.call(
                "XADD", b.backplane.stream_key, "*", "e", encode_envelope(origin, 5, [message(4)])
            )
        await wait_for(lambda: len(b.received) == 4, "delivery")
        assert numbers(b.received) == [1, 2, 3, 4]
        assert (b.backplane.duplicates, b.backplane.missed) == (2, 2)


async def test_redis_outage_loses_nothing_duplicates_nothing_and_reconnects_fast() -> None:
    async with redis_server() as redis, instances(redis.url) as (a, b):
        sent = 0

        async def send(count: int) -> None:
            nonlocal sent
            for _ in range(count):
                a.backplane.offer(message(sent))
                sent += 1
                await trio.sleep(0.01)

        await send(20)
        await wait_for(lambda: len(b.received) == 20, "delivery before the outage")
        await redis.stop()
        await wait_for(lambda: not a.backplane.connected and not b.backplane.connected, "loss")
        await send(150)  # ~2 s of traffic while Redis is down
        assert a.backplane.buffered > 0
        await redis.start()  # same port, empty: all data lost
        # Back within about a second (1 s cap); the bound here only says "not stuck
        # in a long backoff", it does not measure.
        await wait_for(lambda: a.backplane.connected and b.backplane.connected, "reconnect", 3.0)
        await send(30)
        await wait_for(lambda: len(b.received) >= sent, "delivery after the outage")
        await trio.sleep(0.2)  # anything extra (a duplicate) would arrive by now
        assert numbers(b.received) == list(range(sent))
        assert a.backplane.dropped == 0 and a.backplane.buffered == 0
        assert a.backplane.sessions == 2 and b.backplane.sessions == 2
        # presence is back on the restarted Redis too
        await wait_for(lambda: a.backplane.connected, "connected")
        assert await a.backplane.other_instances(STEP_S) == [{"frontend": 1, "detector": 0}]


async def test_buffer_bounds_drop_the_newest_and_count_them() -> None:
    async with redis_server() as redis, instances(
        redis.url, buffer_messages=50, buffer_bytes=1_000_000
    ) as (a, b):
        await redis.stop()
        await wait_for(lambda: not a.backplane.connected, "loss")
        for n in range(80):
            a.backplane.offer(message(n))
        assert (a.backplane.buffered, a.backplane.dropped) == (50, 30)
        await redis.start()
        await wait_for(lambda: len(b.received) == 50, "delivery of the buffered messages")
        assert numbers(b.received) == list(range(50))
        a.backplane.offer(message(80))
        await wait_for(lambda: len(b.received) == 51, "delivery after the outage")
        assert a.backplane.dropped == 30


async def test_buffer_is_bounded_in_bytes_too() -> None:
    backplane = Backplane(
        "redis://127.0.0.1:1/0", channel="c", instance_id="i", deliver=lambda r: None,
        local_counts=dict, buffer_messages=1000, buffer_bytes=10 * len(message(0).frame),
    )
    for n in range(15):
        backplane.offer(message(n))
    assert (backplane.buffered, backplane.dropped) == (10, 5)
    assert backplane.buffered_bytes <= 10 * len(message(0).frame)


async def test_connection_cut_mid_stream_resends_without_duplicates() -> None:
    # Kill only A's connections (Redis stays up) while it streams: whatever was
    # written but not acknowledged is sent again, and B skips what it already had.
    async with redis_server() as redis, instances(redis.url) as (a, b):
        total = 4000
        async with connect(RedisAddress.from_url(redis.url), timeout=STEP_S) as admin:
            for n in range(total):
                a.backplane.offer(message(n))
                if n == total // 2:
                    await admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                if n % 200 == 0:
                    await trio.lowlevel.checkpoint()
        await wait_for(lambda: len(b.received) >= total, "delivery")
        await trio.sleep(0.2)
        assert numbers(b.received) == list(range(total))
        assert a.backplane.failures >= 1 and a.backplane.dropped == 0


async def test_counts_before_any_connection_are_unknown() -> None:
    backplane = Backplane(
        RedisServer(port=1).url, channel="c", instance_id="i", deliver=lambda r: None, local_counts=dict
    )
    assert await backplane.other_instances(1.0) is None
    assert backplane.connected is False


async def kill_connections_of(admin: RedisConnection, instance_id: str) -> int:
    """CLIENT KILL every connection named after ``instance_id``; how many there were."""
    listing = (await admin.call("CLIENT", "LIST")).decode()
    victims = [
        fields["id"]
        for line in listing.splitlines()
        if (fields := dict(f.split("=", 1) for f in line.split(" ") if "=" in f)).get("name")
        == f"stinercut-hub-{instance_id}"
    ]
    for victim in victims:
        await admin.call("CLIENT", "KILL", "ID", victim)
    return len(victims)


async def test_writes_whose_reply_never_came_are_sent_again() -> None:
    # CLIENT PAUSE WRITE holds A's XADDs unanswered; killing A's connections then
    # discards them inside Redis. Their fate is unknown to A, so it must send them
    # again on its next connection (and B must get each exactly once).
    async with redis_server() as redis, instances(redis.url) as (a, b):
        async with connect(RedisAddress.from_url(redis.url), timeout=STEP_S) as admin:
            a.backplane.offer(message(0))
            await wait_for(lambda: len(b.received) == 1, "delivery before the pause")
            await admin.call("CLIENT", "PAUSE", 5000, "WRITE")
            for n in range(1, 11):
                a.backplane.offer(message(n))
            await wait_for(lambda: a.backplane.buffered == 10, "written, not acknowledged")
            await trio.sleep(0.1)  # the XADDs reach Redis and wait there
            assert await kill_connections_of(admin, a.backplane.instance_id) == 2
            await admin.call("CLIENT", "UNPAUSE")
        await wait_for(lambda: len(b.received) >= 11, "delivery after the reconnect")
        await trio.sleep(0.2)
        assert numbers(b.received) == list(range(11))
        assert a.backplane.failures >= 1 and a.backplane.dropped == 0


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:notaport/0", "redis://127.0.0.1:6379/db", "http://127.0.0.1:6379"]
)
def test_bad_redis_url_stops_the_service_at_start(url: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings.from_env({"REDIS_URL": url})


def test_redis_url_parts() -> None:
    address = RedisAddress.from_url("rediss://user:p%40ss@redis.example:6380/2")
    assert address == RedisAddress("redis.example", 6380, 2, "user", "p@ss", tls=True)
    assert RedisAddress.from_url("redis://:secret@h") == RedisAddress("h", password="secret")


@needs_shared_redis
async def test_an_instance_that_shuts_down_leaves_the_counts_at_once() -> None:
    # Not after the presence TTL (15 s): its last words on shutdown remove it.
    assert SHARED_REDIS
    channel = f"stinercut-test:{uuid.uuid4().hex}"
    a, b = Instance(SHARED_REDIS, channel), Instance(SHARED_REDIS, channel)
    async with trio.open_nursery() as outer:
        await outer.start(b.backplane.run)
        async with trio.open_nursery() as inner:
            await inner.start(a.backplane.run)
            with trio.fail_after(STEP_S):
                await a.backplane.wait_connected()
                await b.backplane.wait_connected()
            await wait_for(lambda: a.backplane.connected, "connected")
            with trio.fail_after(STEP_S):
                expected = [{"frontend": 1, "detector": 0}]
                while await b.backplane.other_instances(STEP_S) != expected:  # noqa: ASYNC110
                    await trio.sleep(0.02)
            inner.cancel_scope.cancel()
        assert await b.backplane.other_instances(STEP_S) == []
        outer.cancel_scope.cancel()


@needs_shared_redis
async def test_deliver_batch_gets_whole_envelopes_in_order() -> None:
    # The hook that lets the hub write each client's share of an envelope at once.
    assert SHARED_REDIS
    batches: list[list[Routed]] = []
    async with instances(SHARED_REDIS, deliver_batch=batches.append) as (a, b):
        for n in range(500):
            a.backplane.offer(message(n))
        await wait_for(lambda: sum(map(len, batches)) == 500, "delivery")
        assert numbers([r for batch in batches for r in batch]) == list(range(500))
        assert len(batches) < 500 and b.received == []  # batched, and deliver not used
