""":class:`~stinercut_svc.coalesce.Coalescer`: shared fetches that are never stale.

In-memory fetch functions (beside the real HTTP test in ``test_projects.py``) make
the interleavings exact.
"""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel

from stinercut_svc.coalesce import Coalescer
from stinercut_svc.errors import ApiError


class Source:
    """A value that writers change; each fetch records when it started and what it read."""

    def __init__(self) -> None:
        self.version = 0
        self.fetches = 0
        self.gate = trio.Event()
        self.started = trio.Event()

    async def fetch(self, key: str) -> tuple[str, int]:
        self.fetches += 1
        seen = self.version  # the "read" happens as the fetch starts
        self.started.set()
        await self.gate.wait()
        return key, seen


async def test_waiters_share_the_next_fetch_never_a_running_one() -> None:
    source = Source()
    reads: Coalescer[str, tuple[str, int]] = Coalescer(source.fetch)
    results: list[tuple[str, int]] = []

    async def get() -> None:
        results.append(await reads.get(nursery, "p"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(get)
        await source.started.wait()  # fetch 1 running, it read version 0
        source.version = 1  # a write acknowledged after fetch 1 read
        for _ in range(5):
            nursery.start_soon(get)  # arrive after the write: must not get version 0
        await trio.testing.wait_all_tasks_blocked()
        source.gate.set()
    assert source.fetches == 2
    assert results == [("p", 0)] + [("p", 1)] * 5


async def test_keys_do_not_share() -> None:
    source = Source()
    source.gate.set()
    reads: Coalescer[str, tuple[str, int]] = Coalescer(source.fetch)
    async with trio.open_nursery() as nursery:
        a = await reads.get(nursery, "a")
        b = await reads.get(nursery, "b")
    assert (a, b) == (("a", 0), ("b", 0))
    assert source.fetches == 2


async def test_an_error_reaches_every_waiter_and_the_next_fetch_is_fresh() -> None:
    calls = 0

    async def fetch(key: str) -> int:
        nonlocal calls
        calls += 1
        await trio.lowlevel.checkpoint()
        if calls == 1:
            raise ApiError.not_found("project", key)
        return calls

    reads: Coalescer[str, int] = Coalescer(fetch)
    errors: list[int] = []

    async def get() -> None:
        with pytest.raises(ApiError) as caught:
            await reads.get(nursery, "p")
        errors.append(caught.value.status)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(get)
    assert errors == [404, 404, 404]
    async with trio.open_nursery() as nursery:
        assert await reads.get(nursery, "p") == 2


async def test_a_waiter_that_leaves_does_not_cancel_the_fetch() -> None:
    source = Source()
    reads: Coalescer[str, tuple[str, int]] = Coalescer(source.fetch)
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as first:
            async with trio.open_nursery() as inner:

                async def leave_soon() -> None:
                    await source.started.wait()
                    first.cancel()

                inner.start_soon(leave_soon)
                await reads.get(nursery, "p")  # cancelled while the fetch runs
        assert first.cancelled_caught
        source.gate.set()
        assert await reads.get(nursery, "p") == ("p", 0)
    assert source.fetches == 2  # the first fetch finished for nobody; the second is new


async def test_shutdown_answers_the_waiters() -> None:
    source = Source()
    reads: Coalescer[str, tuple[str, int]] = Coalescer(source.fetch)
    statuses: list[int] = []
    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as fetchers:

            async def get() -> None:
                try:
                    await reads.get(fetchers, "p")
                except ApiError as exc:
                    statuses.append(exc.status)

            outer.start_soon(get)
            outer.start_soon(get)
            await source.started.wait()
            await trio.testing.wait_all_tasks_blocked()
            fetchers.cancel_scope.cancel()  # the app nursery going away
    assert statuses == [503, 503]
