"""Ingest tables: migration (fresh and over the frontend's own tables), ORM round trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stinercut_svc import schema
from stinercut_svc.ingest.freefall import Phase
from stinercut_svc.ingest.resolve import JumpState, ManualReason
from stinercut_svc.models.ingest import (
    BatchStatus,
    ImportBatch,
    ImportedFile,
    Jump,
    VideoFile,
    VideoFileSegment,
    VideoFileStatus,
)
from tests.support import backends

INGEST_TABLES = {"import_batch", "video_file", "video_file_segment", "jump", "imported_file"}
INGEST_REVISION = "0005"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = backends.admin_engine(database_url)
    backends.drop_everything(eng)
    yield eng
    backends.drop_everything(eng)
    eng.dispose()


def _previous_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(schema.alembic_config())
    rev = script.get_revision(INGEST_REVISION)
    assert rev is not None and isinstance(rev.down_revision, str)
    return rev.down_revision


def test_migration_creates_ingest_tables_and_round_trips(engine: Engine) -> None:
    schema.upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert INGEST_TABLES <= tables
    columns = {c["name"] for c in inspect(engine).get_columns("video_file")}
    assert {
        "import_folder_uuid",
        "current_folder_uuid",
        "filepath",
        "jump_number",
        "thumbnail",
    } <= columns
    assert {"import_batch_id", "jump_id", "recording_key", "chapter", "in_point"} <= columns
    schema.downgrade(engine, _previous_revision())
    assert not INGEST_TABLES & set(inspect(engine).get_table_names())
    assert schema.upgrade(engine) == schema.head_revision()


def test_tables_the_frontend_made_are_adopted_without_loss(engine: Engine) -> None:
    schema.upgrade(engine, _previous_revision())
    # The original's own migrations (the newer frontend release), abridged to the
    # columns that matter here, with a row each.
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE import_batch (id INTEGER PRIMARY KEY AUTO_INCREMENT,"
                " uuid VARCHAR(36) NOT NULL UNIQUE, total_files INTEGER NOT NULL DEFAULT 0,"
                " analyzed_files INTEGER NOT NULL DEFAULT 0,"
                " detected_qr_count INTEGER NOT NULL DEFAULT 0,"
                " detected_freefall_count INTEGER NOT NULL DEFAULT 0,"
                " status VARCHAR(50) NOT NULL DEFAULT 'pending', resolution_type VARCHAR(50),"
                " error_message TEXT, mount_path VARCHAR(255), created_at TIMESTAMP NULL,"
                " updated_at TIMESTAMP NULL)".replace(
                    "INTEGER PRIMARY KEY AUTO_INCREMENT",
                    "INTEGER PRIMARY KEY AUTOINCREMENT"
                    if conn.dialect.name == "sqlite"
                    else "BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT",
                )
            )
        )
        conn.execute(
            text(
                "INSERT INTO import_batch (uuid, total_files, status)"
                " VALUES ('b-old', 7, 'resolved')"
            )
        )
    assert schema.upgrade(engine) == schema.head_revision()
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT uuid, total_files, status, copied_files FROM import_batch")
        ).one()
    assert tuple(row) == ("b-old", 7, "resolved", None)
    assert INGEST_TABLES <= set(inspect(engine).get_table_names())


def _session(database_url: str) -> tuple[Engine, Session]:
    eng = backends.admin_engine(database_url)
    schema.upgrade(eng)
    return eng, Session(eng)


def test_orm_round_trip_enums_and_cascade(database_url: str) -> None:
    eng, session = _session(database_url)
    try:
        batch = ImportBatch(total_files=2, mount_path="/media/card")
        jump = Jump(
            sequence=1,
            state=JumpState.NEEDS_MANUAL,
            reason=ManualReason.NO_FREEFALL,
            reasons="no_freefall",
            qr_code="11111111-1111-1111-1111-111111111111",
        )
        batch.jumps.append(jump)
        vf = VideoFile(
            import_folder_uuid=batch.uuid or "x",
            current_folder_uuid="x",
            filepath="b/100GOPRO/GX010001.MP4",
            original_filename="GX010001.MP4",
            duration=61.234,
            fps=29.97,
            recording_key="100GOPRO/GX:0001",
            chapter=0,
            jump=jump,
        )
        vf.segments = [
            VideoFileSegment(
                start_time=0.0, end_time=12.3, classification=Phase.FLIGHT, sequence_order=0
            ),
            VideoFileSegment(
                start_time=12.3,
                end_time=42.3,
                classification=Phase.FREEFALL,
                confidence=0.9876,
                sequence_order=1,
            ),
        ]
        batch.files.append(vf)
        session.add(batch)
        session.flush()
        session.add(
            ImportedFile(
                import_batch_id=batch.id,
                source_path="100GOPRO/GX010001.MP4",
                size_bytes=5 * 2**30,
                mtime_ns=1_764_000_000_123_456_789,
                quick_hash="0" * 32,
                stored_path=f"input/{batch.uuid}/100GOPRO/GX010001.MP4",
            )
        )
        session.commit()
        session.expire_all()

        loaded = session.scalars(select(ImportBatch)).one()
        assert loaded.status is BatchStatus.PENDING
        assert loaded.to_api()["status"] == "pending"
        (file,) = loaded.files
        assert file.status is VideoFileStatus.PENDING
        assert file.dominant_classification is Phase.UNKNOWN
        assert (file.duration, file.fps) == (61.234, 29.97)
        assert [s.classification for s in file.segments] == [Phase.FLIGHT, Phase.FREEFALL]
        assert file.segments[1].confidence == 0.9876
        assert file.jump is not None and file.jump.reason is ManualReason.NO_FREEFALL
        imported = session.scalars(select(ImportedFile)).one()
        assert (imported.size_bytes, imported.mtime_ns) == (5 * 2**30, 1_764_000_000_123_456_789)
        raw = session.execute(text("SELECT state, reason FROM jump")).one()
        assert tuple(raw) == ("needs_manual", "no_freefall")  # plain strings, as the original

        # One row per file per batch: re-running updates, never duplicates.
        session.add(
            VideoFile(
                import_batch_id=loaded.id,
                import_folder_uuid="x",
                current_folder_uuid="x",
                filepath="b/100GOPRO/GX010001.MP4",
                original_filename="GX010001.MP4",
            )
        )
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()

        # A state this service does not know is refused when read, not passed on.
        session.execute(text("UPDATE import_batch SET status = 'exploded'"))
        session.commit()
        session.expire_all()
        with pytest.raises(ValueError):
            session.scalars(select(ImportBatch)).one()
        session.rollback()
        session.execute(text("UPDATE import_batch SET status = 'resolved'"))
        session.commit()

        if eng.dialect.name == "sqlite":
            session.execute(text("PRAGMA foreign_keys=ON"))
        session.execute(text("DELETE FROM import_batch"))
        session.commit()
        counts = [
            session.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
            for t in ("video_file", "video_file_segment", "jump", "imported_file")
        ]
        assert counts == [0, 0, 0, 0]
    finally:
        session.close()
        eng.dispose()
