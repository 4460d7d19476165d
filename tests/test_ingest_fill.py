"""Filling a customer's timeline from a jump's rows (ingest/fill.py), on SQLite and MariaDB.

Rows are inserted as the import pipeline stores them (tests/support/jump_rows.py);
the expected in/out points and freefall windows are worked out from the segment
times in each test, not read back from the code.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from stinercut_svc import schema
from stinercut_svc.ingest.fill import (
    FillConfig,
    apply_verdict,
    fill_jump,
    judge,
    jump_files,
    recordings_of,
    storage_path,
)
from stinercut_svc.ingest.freefall import Phase
from stinercut_svc.ingest.resolve import JumpState, ManualReason
from stinercut_svc.models import Project, Video
from stinercut_svc.models.ingest import ImportBatch, Jump, VideoFile, VideoFileStatus
from tests.support import backends
from tests.support.jump_rows import Chapter, JumpSpec, Rec, add_batch

QR = "6f1c1a7e-3c44-4b55-9d2a-0d4c6f1b2a10"
CFG = FillConfig(ground_after_landing_s=20.0, qr_margin_s=0.5, min_clip_s=1.0)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = backends.admin_engine(database_url)
    schema.upgrade(eng)
    yield eng
    eng.dispose()


def _project(session: Session, name: str) -> Project:
    project = Project(name=name)
    session.add(project)
    session.flush()
    return project


def _jump_of(session: Session, batch: ImportBatch, sequence: int = 1) -> Jump:
    return session.scalars(
        select(Jump).where(Jump.import_batch_id == batch.id, Jump.sequence == sequence)
    ).one()


def _timeline(session: Session, project: Project) -> list[Video]:
    return list(
        session.scalars(
            select(Video).where(Video.project_id == project.id).order_by(Video.order, Video.id)
        )
    )


def _tandem(project_id: int | None, *, landing_in_ch2: float = 30.0) -> JumpSpec:
    """QR recording (10 s, code read until 3 s), then a recording of two chapters
    (60 s + 80 s) whose freefall runs from 45 s in chapter 1 to 12 s in chapter 2,
    canopy until ``landing_in_ch2`` s in chapter 2, then ground."""
    return JumpSpec(
        recordings=[
            Rec("100GOPRO/GH:0001", [Chapter(10.0, [(Phase.QR_CODE, 0.0, 3.0)])], qr=QR),
            Rec(
                "100GOPRO/GH:0002",
                [
                    Chapter(60.0, [(Phase.FLIGHT, 0.0, 45.0), (Phase.FREEFALL, 45.0, 60.0)]),
                    Chapter(
                        80.0,
                        [
                            (Phase.FREEFALL, 0.0, 12.0),
                            (Phase.CANOPY, 12.0, landing_in_ch2),
                            (Phase.GROUND_AFTER, landing_in_ch2, 80.0),
                        ],
                    ),
                ],
            ),
        ],
        state=JumpState.RESOLVED,
        qr_code=QR,
        project_id=project_id,
        freefall=("100GOPRO/GH:0002", 45.0, 72.0),
    )


def test_recordings_rebuilt_from_rows(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        batch = add_batch(session, [_tandem(None)])
        jump = _jump_of(session, batch)
        recs = recordings_of(session, jump_files(session, jump))
        assert [r.key for r in recs] == ["100GOPRO/GH:0001", "100GOPRO/GH:0002"]
        qr_rec, jump_rec = recs
        assert qr_rec.qr_end == 3.0 and qr_rec.freefalls == ()
        assert jump_rec.offsets == (0.0, 60.0) and jump_rec.duration == 140.0
        # the two chapter pieces are one freefall: 45 s .. 60 + 12 s
        assert [(w.start, w.end) for w in jump_rec.freefalls] == [(45.0, 72.0)]
        assert jump_rec.landing == 90.0  # ground_after at 30 s of chapter 2


def test_fill_trims_dead_time_and_spreads_freefall_over_chapters(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        customer = _project(session, "Anna")
        batch = add_batch(session, [_tandem(customer.id)])
        jump = _jump_of(session, batch)
        outcome = fill_jump(session, jump, CFG)
        assert (outcome.created, outcome.project_uuid) == (3, customer.uuid)
        rows = _timeline(session, customer)
        files = jump_files(session, jump)
        assert [r.path for r in rows] == [storage_path(f) for f in files]
        assert rows[0].path.startswith(f"input/{batch.uuid}/100GOPRO/")
        # QR clip from the end of the code (3 s) + 0.5 s margin to its end
        assert (rows[0].in_point, rows[0].out_point) == (3.5, 10.0)
        assert (rows[0].freefall_start_s, rows[0].freefall_end_s) == (None, None)
        # chapter 1 whole, freefall from 45 s to its end
        assert (rows[1].in_point, rows[1].out_point) == (0.0, 60.0)
        assert (rows[1].freefall_start_s, rows[1].freefall_end_s) == (45.0, 60.0)
        # chapter 2: landing at 30 s + 20 s of ground; freefall its first 12 s
        assert (rows[2].in_point, rows[2].out_point) == (0.0, 50.0)
        assert (rows[2].freefall_start_s, rows[2].freefall_end_s) == (0.0, 12.0)
        assert [r.order for r in rows] == [0, 1, 2]
        assert (rows[2].duration, rows[2].width, rows[2].codec) == (80.0, 320, "h264")
        assert all(f.project_id == customer.id for f in files)
        assert all(f.status == VideoFileStatus.MATCHED for f in files)


def test_ground_after_landing_is_configurable(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        customer = _project(session, "Ben")
        jump = _jump_of(session, add_batch(session, [_tandem(customer.id)]))
        fill_jump(session, jump, FillConfig(ground_after_landing_s=5.0))
        assert _timeline(session, customer)[2].out_point == 35.0
        # long enough that nothing is cut: the chapter keeps its end
        fill_jump(session, jump, FillConfig(ground_after_landing_s=500.0))
        assert _timeline(session, customer)[2].out_point == 80.0


def test_refill_updates_never_duplicates(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        customer = _project(session, "Cleo")
        jump = _jump_of(session, add_batch(session, [_tandem(customer.id)]))
        fill_jump(session, jump, CFG)
        first = [(r.id, r.uuid) for r in _timeline(session, customer)]
        again = fill_jump(session, jump, CFG)
        assert not again.changed
        assert [(r.id, r.uuid) for r in _timeline(session, customer)] == first
        changed = fill_jump(session, jump, FillConfig(ground_after_landing_s=10.0))
        assert (changed.created, changed.updated, changed.removed) == (0, 1, 0)
        assert [(r.id, r.uuid) for r in _timeline(session, customer)] == first


def test_reassignment_moves_rows_and_keeps_other_clips_in_order(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        old, new = _project(session, "Old"), _project(session, "New")
        # the new project already has an uploaded clip; the jump goes after it
        session.add(
            Video(project_id=new.id, filename="intro.mp4", path="uploads/x/intro.mp4", order=0)
        )
        session.add(
            Video(project_id=old.id, filename="keep.mp4", path="uploads/x/keep.mp4", order=0)
        )
        jump = _jump_of(session, add_batch(session, [_tandem(old.id)]))
        fill_jump(session, jump, CFG)
        ids = [r.id for r in _timeline(session, old)][1:]
        assert len(ids) == 3
        jump.project_id = new.id
        moved = fill_jump(session, jump, CFG)
        assert (moved.moved, moved.created, moved.project_uuid) == (3, 0, new.uuid)
        assert [r.filename for r in _timeline(session, old)] == ["keep.mp4"]
        assert _timeline(session, old)[0].order == 0
        rows = _timeline(session, new)
        assert rows[0].filename == "intro.mp4"
        assert [r.id for r in rows[1:]] == ids  # the same rows, moved
        assert [r.order for r in rows] == [0, 1, 2, 3]
        # a clip added after the fill stays after the jump's block on a re-fill
        session.add(Video(project_id=new.id, filename="outro.mp4", path="uploads/x/o.mp4", order=4))
        session.flush()
        fill_jump(session, jump, FillConfig(ground_after_landing_s=1.0))
        assert [r.filename for r in _timeline(session, new)][0::4] == ["intro.mp4", "outro.mp4"]


def test_unresolved_jump_takes_its_rows_off(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        customer = _project(session, "Dora")
        jump = _jump_of(session, add_batch(session, [_tandem(customer.id)]))
        fill_jump(session, jump, CFG)
        jump.state = JumpState.NEEDS_MANUAL
        gone = fill_jump(session, jump, CFG)
        assert (gone.removed, gone.project_uuid) == (3, None)
        assert _timeline(session, customer) == []
        files = jump_files(session, jump)
        assert all(f.project_id is None and f.status == VideoFileStatus.ANALYZED for f in files)


def test_pure_qr_shot_stays_off_the_timeline(engine: Engine) -> None:
    spec = _tandem(None)
    qr_only = Rec("100GOPRO/GH:0001", [Chapter(3.2, [(Phase.QR_CODE, 0.0, 3.0)])], qr=QR)
    with Session(engine) as session, session.begin():
        customer = _project(session, "Emil")
        spec = attrs_evolve(spec, recordings=[qr_only, spec.recordings[1]], project_id=customer.id)
        jump = _jump_of(session, add_batch(session, [spec]))
        fill_jump(session, jump, CFG)
        rows = _timeline(session, customer)
        assert len(rows) == 2 and all("GH:0002" in r.filename for r in rows)
        qr_file = session.scalars(
            select(VideoFile).where(VideoFile.recording_key == "100GOPRO/GH:0001")
        ).one()
        # still the customer's file (assignment), just not in the edit
        assert qr_file.project_id == customer.id and qr_file.in_point is None


def test_judge_names_every_reason(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        customer = _project(session, "Fritz")
        two = JumpSpec(
            recordings=[
                Rec(
                    "a",
                    [Chapter(100.0, [(Phase.FREEFALL, 10.0, 40.0), (Phase.CANOPY, 40.0, 50.0)])],
                ),
                Rec("b", [Chapter(100.0, [(Phase.FREEFALL, 20.0, 60.0)])]),
            ]
        )
        none = JumpSpec(
            recordings=[Rec("c", [Chapter(30.0, [(Phase.UNKNOWN, 0.0, 30.0)])])], qr_code=QR
        )
        batch = add_batch(session, [two, none])
        first, second = _jump_of(session, batch, 1), _jump_of(session, batch, 2)
        verdict = judge(first, recordings_of(session, jump_files(session, first)))
        assert verdict.reasons == (ManualReason.MISSING_QR, ManualReason.TWO_FREEFALLS)
        assert verdict.state == JumpState.NEEDS_MANUAL and verdict.freefall_count == 2
        verdict = judge(second, recordings_of(session, jump_files(session, second)))
        assert verdict.reasons == (ManualReason.UNKNOWN_CUSTOMER, ManualReason.NO_FREEFALL)
        # a customer alone does not resolve a jump without freefall; confirmation does
        second.project_id = customer.id
        verdict = judge(second, recordings_of(session, jump_files(session, second)))
        assert verdict.reasons == (ManualReason.NO_FREEFALL,)
        second.confirmed_at = first.created_at
        verdict = judge(second, recordings_of(session, jump_files(session, second)))
        assert (verdict.state, verdict.reasons) == (JumpState.RESOLVED, ())
        apply_verdict(second, verdict)
        assert (second.reason, second.reasons, second.freefall_start) == (None, None, None)


def attrs_evolve(spec: JumpSpec, **changes: object) -> JumpSpec:
    import attrs

    return attrs.evolve(spec, **changes)  # type: ignore[misc]


def test_migration_0010_adds_and_removes_its_columns(engine: Engine) -> None:
    def columns(table: str) -> set[str]:
        return {c["name"] for c in sa_inspect(engine).get_columns(table)}

    added = {
        "video": {"freefall_start_s", "freefall_end_s", "video_file_id"},
        "jump": {"confirmed_at", "edited_at"},
    }
    for table, names in added.items():
        assert names <= columns(table)
    schema.downgrade(engine, "0009")
    for table, names in added.items():
        assert not names & columns(table)
    schema.upgrade(engine)
    for table, names in added.items():
        assert names <= columns(table)


def test_rows_are_found_by_their_file_whatever_the_file_row_says(engine: Engine) -> None:
    """A re-run of the import re-points ``video_file.project_id`` itself; the rows
    already on a timeline are still found (by ``video.video_file_id``) and moved, and a
    stray duplicate row of a file is removed."""
    with Session(engine) as session, session.begin():
        old, new = _project(session, "Old"), _project(session, "New")
        jump = _jump_of(session, add_batch(session, [_tandem(old.id)]))
        fill_jump(session, jump, CFG)
        ids = [r.id for r in _timeline(session, old)]
        files = jump_files(session, jump)
        for file in files:
            file.project_id = new.id  # what the store writes on a re-run
        jump.project_id = new.id
        stray = Video(
            project_id=new.id,
            filename="dup",
            path=storage_path(files[1]),
            video_file_id=files[1].id,
            order=9,
        )
        session.add(stray)
        session.flush()
        outcome = fill_jump(session, jump, CFG)
        assert (outcome.moved, outcome.created, outcome.removed) == (3, 0, 1)
        assert stray.uuid in outcome.dropped
        assert _timeline(session, old) == []
        assert [r.id for r in _timeline(session, new)] == ids


def test_settings_for_filling_and_auto_render() -> None:
    from stinercut_svc.config import ConfigError, Settings
    from stinercut_svc.services.jumps import fill_config

    base = {"DATABASE_URL": "sqlite:///x.sqlite3"}
    default = Settings.from_env(base)
    assert (default.ingest_ground_after_landing_s, default.ingest_auto_render) == (20.0, False)
    assert fill_config(default).ground_after_landing_s == 20.0
    tuned = Settings.from_env(
        {**base, "INGEST_GROUND_AFTER_LANDING_S": "7.5", "INGEST_AUTO_RENDER": "yes"}
    )
    assert (tuned.ingest_ground_after_landing_s, tuned.ingest_auto_render) == (7.5, True)
    assert fill_config(tuned).ground_after_landing_s == 7.5
    for name, value in [
        ("INGEST_GROUND_AFTER_LANDING_S", "-1"),
        ("INGEST_GROUND_AFTER_LANDING_S", "soon"),
        ("INGEST_AUTO_RENDER", "maybe"),
    ]:
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({**base, name: value})
