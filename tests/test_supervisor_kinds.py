"""The supervisor's generic machinery with an in-memory job kind, on trio's virtual clock.

The real kinds (renders, imports) are tested with real databases and ffmpeg in
their own files; here the supervisor itself is under test: slots per kind, one
kind never waiting for another, a user cancel vs. shutdown, a lost row, a crashing
handler, and heartbeats only for running work. The kind keeps its "table" in a
dict; the app is a plain holder of what the supervisor reads (no database, no hub).
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio
import trio.testing

from stinercut_svc.jobs.supervisor import RowState, RunningJob, Services, Supervisor, Timing

TIMING = Timing(claim_poll_s=0.5, watch_s=0.1, heartbeat_s=1.0, sweep_s=100.0, cleanup_timeout_s=2.0)


@attrs.frozen
class Ref:
    id: int
    uuid: str


@attrs.define
class Row:
    id: int
    uuid: str
    work_s: float
    state: str = "pending"  # pending, running, done, cancelled, failed
    owner: str | None = None
    cancel_requested: bool = False
    beats: int = 0
    crash: bool = False


class MemoryKind:
    """A job kind whose queue is a dict and whose work is sleeping ``work_s``."""

    def __init__(self, services: Services, kind: str, slots: int) -> None:
        self.services = services
        self.kind = kind
        self.slots = slots
        self.rows: dict[int, Row] = {}
        self.started: list[tuple[str, float]] = []
        self.cancel_records: list[tuple[str, bool]] = []

    def add(self, uuid: str, work_s: float, *, crash: bool = False) -> Row:
        row = Row(len(self.rows) + 1, uuid, work_s, crash=crash)
        self.rows[row.id] = row
        return row

    async def claim(self, running: int) -> list[Ref]:
        free = self.slots - running
        claimed = []
        for row in self.rows.values():
            if free <= 0:
                break
            if row.state == "pending":
                row.state, row.owner = "running", self.services.owner
                claimed.append(Ref(row.id, row.uuid))
                free -= 1
        return claimed

    async def poll(self, ids: list[int]) -> dict[int, RowState]:
        polled: dict[int, RowState] = {}
        for job_id in ids:
            row = self.rows.get(job_id)
            if row is None:
                continue
            if row.owner != self.services.owner or row.state != "running":
                polled[job_id] = "lost"
            else:
                polled[job_id] = "cancel_requested" if row.cancel_requested else "running"
        return polled

    async def heartbeat(self, ids: list[int]) -> None:
        for job_id in ids:
            self.rows[job_id].beats += 1

    async def recover(self, *, startup: bool) -> None:
        return None

    async def run(self, job: RunningJob) -> None:
        row = self.rows[job.ref.id]
        self.started.append((row.uuid, trio.current_time()))
        await trio.sleep(row.work_s)
        if row.crash:
            raise RuntimeError("the handler crashed")
        row.state = "done"
        job.finished = True

    async def record_cancel(self, job: RunningJob, *, shutdown: bool) -> None:
        row = self.rows[job.ref.id]
        self.cancel_records.append((row.uuid, shutdown))
        row.state = "pending" if shutdown else "cancelled"
        row.owner = None


@attrs.define
class FakeApp:
    """What the supervisor reads of the app (no database or hub is touched here)."""

    schema_ready: trio.Event = attrs.Factory(trio.Event)
    db: Any = None
    storage: Any = None
    settings: Any = None
    extensions: dict[str, Any] = attrs.Factory(dict)


def supervisor_with(kinds: dict[str, int]) -> tuple[Supervisor, dict[str, MemoryKind]]:
    made: dict[str, MemoryKind] = {}

    def factory(name: str, slots: int) -> Any:
        def build(services: Services) -> MemoryKind:
            made[name] = MemoryKind(services, name, slots)
            return made[name]

        return build

    app = FakeApp()
    app.schema_ready.set()
    supervisor = Supervisor(
        app,  # type: ignore[arg-type]
        TIMING,
        kinds=[factory(name, slots) for name, slots in kinds.items()],
    )
    return supervisor, made


async def until(condition: Any, timeout: float = 60.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.05)


async def test_kinds_have_their_own_slots(autojump_clock: trio.testing.MockClock) -> None:
    supervisor, kinds = supervisor_with({"render": 1, "import": 1})
    render, imports = kinds["render"], kinds["import"]
    for n in range(2):
        render.add(f"r{n}", 10.0)
    imports.add("i0", 1.0)
    imports.add("i1", 1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await until(lambda: all(r.state == "done" for k in kinds.values() for r in k.rows.values()))
        nursery.cancel_scope.cancel()
    # Both imports ran while the first render was still running (its own slot).
    (r0_at,) = [t for u, t in render.started if u == "r0"]
    i_times = [t for _, t in imports.started]
    assert all(t < r0_at + 10.0 for t in i_times)
    # One slot per kind: the second render started only after the first ended.
    (r1_at,) = [t for u, t in render.started if u == "r1"]
    assert r1_at >= r0_at + 10.0
    assert render.rows[1].beats >= 5  # heartbeats while it ran (every 1 s over 10 s)
    assert sorted(supervisor.claimed) == ["i0", "i1", "r0", "r1"]


async def test_user_cancel_lost_row_and_crash(autojump_clock: trio.testing.MockClock) -> None:
    supervisor, kinds = supervisor_with({"import": 3})
    work = kinds["import"]
    cancelled_local = work.add("a", 100.0)
    cancelled_remote = work.add("b", 100.0)
    crashing = work.add("c", 1.0, crash=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await until(lambda: len(supervisor.running) == 3)
        handle = supervisor.cancel_local("a")  # this instance's API
        assert handle is not None
        await handle.done.wait()
        cancelled_remote.cancel_requested = True  # another instance's API: seen by the watch
        await until(lambda: cancelled_remote.state == "cancelled")
        await until(lambda: not supervisor.running)
        # The crash was contained: the supervisor still claims new work.
        work.add("d", 1.0)
        await until(lambda: work.rows[4].state == "done")
        # A row taken away (another instance recovered it): stopped, nothing recorded.
        taken = work.add("e", 100.0)
        await until(lambda: "e" in supervisor.running)
        taken.owner = "someone else"
        await until(lambda: "e" not in supervisor.running)
        nursery.cancel_scope.cancel()
    assert cancelled_local.state == "cancelled"
    assert ("a", False) in work.cancel_records and ("b", False) in work.cancel_records
    assert crashing.state == "running"  # the handler records its own failures; this one did not
    assert all(uuid != "e" for uuid, _ in work.cancel_records)


async def test_shutdown_requeues_through_the_handler(autojump_clock: trio.testing.MockClock) -> None:
    supervisor, kinds = supervisor_with({"render": 1, "import": 1})
    render_row = kinds["render"].add("r", 100.0)
    import_row = kinds["import"].add("i", 100.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await until(lambda: len(supervisor.running) == 2)
        nursery.cancel_scope.cancel()
    assert supervisor.stopped.is_set()
    assert kinds["render"].cancel_records == [("r", True)]
    assert kinds["import"].cancel_records == [("i", True)]
    assert render_row.state == import_row.state == "pending"
    assert supervisor.running == []


def test_kind_names_must_be_unique() -> None:
    supervisor, _ = supervisor_with({"render": 1, "import": 1})
    assert set(supervisor.handlers) == {"render", "import"}
    with pytest.raises(KeyError):
        supervisor.handler("nope")
    app = FakeApp()

    def twice(services: Services) -> MemoryKind:
        return MemoryKind(services, "render", 1)

    with pytest.raises(ValueError, match="render"):
        Supervisor(app, TIMING, kinds=[twice, twice])  # type: ignore[arg-type]
