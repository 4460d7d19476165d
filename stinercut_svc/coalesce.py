"""Concurrent reads of the same thing share one database round, never a stale one.

A project page is polled by every browser showing it (all the more during a
render), and each detail read costs a worker thread, four database round trips and
the parsing of a few dozen rows in pure Python (PyMySQL), several times the
framework's own cost per request. :class:`Coalescer` lets requests for the same key
share one fetch and one encoded answer, with a freshness rule that keeps every
answer as current as an unshared read:

* a request never joins a fetch that is already running (it may have read the
  rows before the request arrived, i.e. before a write the client just saw
  acknowledged);
* it joins the *next* fetch of its key, which starts when the running one ends
  (or at once when none runs; requests arriving before that task has started
  join it too), so the data it gets was read after it arrived.

With one client per key this is exactly one fetch per request. Fetches run as
tasks of the app nursery, not of a request: a client that disconnects leaves the
fetch to the others waiting on it. Errors (404, database down) reach every
request of that fetch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import attrs
import trio

from .errors import ApiError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@attrs.define(eq=False)
class _Batch(Generic[V]):
    """One fetch and everyone waiting for it (its result is read by each of them)."""

    done: trio.Event = attrs.field(factory=trio.Event)
    #: Set just before the fetch starts reading; until then newcomers may still join.
    started: bool = False
    value: V | None = None
    error: Exception | None = None

    def finish(self, value: V | None = None, error: Exception | None = None) -> None:
        self.value, self.error = value, error
        self.done.set()


@attrs.define(eq=False)
class _Key(Generic[V]):
    running: _Batch[V] | None = None
    queued: _Batch[V] | None = None


class Coalescer(Generic[K, V]):
    """``await get(key)``: the result of a ``fetch(key)`` that started after the call."""

    def __init__(self, fetch: Callable[[K], Awaitable[V]]) -> None:
        self._fetch = fetch
        self._keys: dict[K, _Key[V]] = {}

    async def get(self, nursery: trio.Nursery, key: K) -> V:
        """Wait for the next fetch of ``key`` (run in ``nursery``) and return its result."""
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _Key()
        if state.running is None:
            batch = state.running = _Batch()
            nursery.start_soon(self._run, key, state)
        elif not state.running.started:
            batch = state.running
        elif state.queued is None:
            batch = state.queued = _Batch()
        else:
            batch = state.queued
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.value  # type: ignore[return-value]  # set with error None

    async def _run(self, key: K, state: _Key[V]) -> None:
        try:
            while state.running is not None:
                batch = state.running
                batch.started = True
                try:
                    value = await self._fetch(key)
                except Exception as exc:  # the waiters' answer (404, 503, ...)
                    batch.finish(error=exc)
                else:
                    batch.finish(value)
                state.running, state.queued = state.queued, None
        finally:
            # Cancelled (shutdown): whoever still waits gets an answer, not a hang.
            for left in (state.running, state.queued):
                if left is not None and not left.done.is_set():
                    left.finish(
                        error=ApiError(503, "the service is shutting down", code="shutting_down")
                    )
            del self._keys[key]
