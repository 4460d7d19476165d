"""A transaction InnoDB picks as a deadlock victim is run again, not answered 503."""

from __future__ import annotations

import threading

import pytest
import trio
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Project

pytestmark = pytest.mark.mysql_only


async def test_deadlock_victim_is_retried(app: StinercutApp) -> None:
    def make(session: Session) -> list[int]:
        rows = [Project(name="first"), Project(name="second")]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]

    first, second = await app.db.run(make)
    both_locked = threading.Barrier(2, timeout=20)
    runs = {"a": 0, "b": 0}

    def crosswise(name: str, mine: int, other: int):  # type: ignore[no-untyped-def]
        def fn(session: Session) -> str:
            runs[name] += 1
            session.execute(update(Project).where(Project.id == mine).values(name=f"{name}-1"))
            if runs[name] == 1:
                both_locked.wait()  # each holds one row; now each wants the other's
            session.execute(update(Project).where(Project.id == other).values(name=f"{name}-2"))
            return name

        return fn

    results: list[str] = []

    async def run(fn) -> None:  # type: ignore[no-untyped-def]
        results.append(await app.db.run(fn))

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, crosswise("a", first, second))
            nursery.start_soon(run, crosswise("b", second, first))

    assert sorted(results) == ["a", "b"]
    assert sorted(runs.values()) == [1, 2]  # exactly one victim, run once more

    def names(session: Session) -> set[str]:
        return set(session.scalars(select(Project.name).where(Project.id.in_([first, second]))))

    victim = "a" if runs["a"] == 2 else "b"
    # The retried transaction ran last and wrote both rows, whole.
    assert await app.db.run(names) == {f"{victim}-1", f"{victim}-2"}
