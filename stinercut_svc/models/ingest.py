"""Ingest tables: the original's ``import_batch``, ``video_file``, ``video_file_segment``,
plus this service's ``jump`` and ``imported_file``.

The first three keep the names, columns and string values of the original product's
newer release (``INGEST_NOTES.md``) so its frontend can read them; statuses are
``VARCHAR(50)`` there, not database enums, and stay so (a :class:`StrEnumType` maps
them to Python enums). Every column this service adds is nullable. As in the
original, ``project_id`` columns carry an index but no foreign key: projects belong
to the frontend, and an import must never block deleting one.

* ``jump`` — one jump (or the unassigned group) of a batch: its verdict
  (``resolved``/``needs_manual`` and why), the customer's QR code and project, and
  the freefall window with the signal that found it (sound, GoPro altitude, both).
  Assignment is rows, so staff can redo it.
* ``imported_file`` — one file copied from a card: its identity on the card
  (relative name, size, mtime in ns, quick hash) and where it now lives. Identity
  is kept on the server, never on the card; re-inserting a card is decided from
  these rows.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine

from ..ingest.phases import FreefallSource, Phase
from ..ingest.resolve import JumpState, ManualReason
from .base import Base, isoformat, new_uuid, utcnow

_MYSQL = ("mysql", "mariadb")
TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def _variant(base: TypeEngine[Any], variant: TypeEngine[Any]) -> TypeEngine[Any]:
    return base.with_variant(variant, *_MYSQL)


#: ``INTEGER`` on SQLite (rowid alias, autoincrement), ``bigint unsigned`` on MySQL
#: (Laravel's ``id()``, the original's key type).
ID_TYPE = _variant(Integer(), mysql.BIGINT(unsigned=True))
SECONDS_TYPE = Numeric(10, 3, asdecimal=False)
BLOB_TYPE = _variant(LargeBinary(), mysql.MEDIUMBLOB())


class BatchStatus(enum.StrEnum):
    PENDING = "pending"
    COPYING = "copying"  # added: the service copies cards itself
    ANALYZING = "analyzing"
    RESOLVED = "resolved"
    NEEDS_MANUAL = "needs_manual"
    ERROR = "error"
    CANCELLED = "cancelled"  # added: batches are cancellable


#: Batch states in which an instance is working on the batch (claimed, heartbeating).
ACTIVE_BATCH = (BatchStatus.COPYING, BatchStatus.ANALYZING)


class SourceKind(enum.StrEnum):
    """Where a batch's files come from (``import_batch.source_kind``, migration 0006)."""

    CARD = "card"  # a folder (card, share) the service copies from: ``mount_path``
    INPUT = "input"  # already in ``input/<uuid>/`` of the storage (the detector copied)


class ResolutionType(enum.StrEnum):
    AUTO_SINGLE = "auto_single"
    AUTO_MULTI = "auto_multi"
    MISSING_QR = "missing_qr"
    AMBIGUOUS = "ambiguous"


class VideoFileStatus(enum.StrEnum):
    PENDING = "pending"
    ANALYZING = "analyzing"
    ANALYZED = "analyzed"
    MATCHED = "matched"
    ERROR = "error"


class ImportSource(enum.StrEnum):
    GOPRO = "gopro"
    UPLOAD = "upload"


class StrEnumType(TypeDecorator[enum.StrEnum]):
    """An enum stored as its value in ``VARCHAR(n)``: the original's plain strings.

    Reading a value this service does not know (a newer frontend wrote it) raises,
    rather than passing an unchecked string on as a state.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum_cls: type[enum.StrEnum], length: int = 50) -> None:
        super().__init__(length)
        self.enum_cls = enum_cls

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.enum_cls(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> enum.StrEnum | None:
        return None if value is None else self.enum_cls(value)


class ImportBatch(Base):
    __tablename__ = "import_batch"
    __table_args__ = (Index("import_batch_status_index", "status"), TABLE_ARGS)

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False, default=new_uuid)
    total_files: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    analyzed_files: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    detected_qr_count: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    detected_freefall_count: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    status: Mapped[BatchStatus] = mapped_column(
        StrEnumType(BatchStatus),
        nullable=False,
        default=BatchStatus.PENDING,
        server_default=BatchStatus.PENDING.value,
    )
    resolution_type: Mapped[ResolutionType | None] = mapped_column(
        StrEnumType(ResolutionType), nullable=True
    )
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    mount_path: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(
        DateTime, nullable=True, default=utcnow, onupdate=utcnow
    )
    # Added by this service (nullable):
    copied_files: Mapped[int | None] = mapped_column(Integer, nullable=True)
    copied_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    skipped_files: Mapped[int | None] = mapped_column(Integer, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Added by migration 0006 (import batches as supervised work):
    source_kind: Mapped[SourceKind | None] = mapped_column(
        StrEnumType(SourceKind, 20), nullable=True
    )
    claimed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    interruptions: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    cancel_requested: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    # Added by migration 0012: the copy phase is over (every file of the card copied, or
    # an operator's retry chose to go on with what was copied). A batch put back to
    # ``pending`` with this set resumes straight into analysis without reading the
    # card, which may be gone by then; re-inserting the card clears it.
    copy_completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    files: Mapped[list[VideoFile]] = relationship(
        back_populates="batch", cascade="all, delete-orphan", passive_deletes=True
    )
    jumps: Mapped[list[Jump]] = relationship(
        back_populates="batch",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Jump.sequence",
    )

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uuid": self.uuid,
            "status": self.status.value,
            "resolution_type": None if self.resolution_type is None else self.resolution_type.value,
            "total_files": self.total_files,
            "analyzed_files": self.analyzed_files,
            "copied_files": self.copied_files,
            "skipped_files": self.skipped_files,
            "copied_bytes": self.copied_bytes,
            "total_bytes": self.total_bytes,
            "detected_qr_count": self.detected_qr_count,
            "detected_freefall_count": self.detected_freefall_count,
            "error_message": self.error_message,
            "mount_path": self.mount_path,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
            "finished_at": isoformat(self.finished_at),
            "source_kind": None if self.source_kind is None else self.source_kind.value,
            "started_at": isoformat(self.started_at),
            "interruptions": self.interruptions,
            "cancel_requested": self.cancel_requested,
            "copy_completed_at": isoformat(self.copy_completed_at),
        }


class Jump(Base):
    __tablename__ = "jump"
    __table_args__ = (
        UniqueConstraint("import_batch_id", "sequence", name="jump_batch_sequence_unique"),
        Index("jump_project_id_index", "project_id"),
        TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False, default=new_uuid)
    import_batch_id: Mapped[int] = mapped_column(
        ID_TYPE, ForeignKey("import_batch.id", ondelete="CASCADE"), nullable=False
    )
    sequence: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[JumpState] = mapped_column(StrEnumType(JumpState), nullable=False)
    reason: Mapped[ManualReason | None] = mapped_column(StrEnumType(ManualReason), nullable=True)
    # Every reason, comma-separated, most fundamental first (``reason`` is the first).
    reasons: Mapped[str | None] = mapped_column(String(255), nullable=True)
    qr_code: Mapped[str | None] = mapped_column(String(36), nullable=True)
    project_id: Mapped[int | None] = mapped_column(ID_TYPE, nullable=True)
    freefall_recording: Mapped[str | None] = mapped_column(String(255), nullable=True)
    freefall_start: Mapped[float | None] = mapped_column(SECONDS_TYPE, nullable=True)
    freefall_end: Mapped[float | None] = mapped_column(SECONDS_TYPE, nullable=True)
    freefall_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    # Added by migration 0010 (jump resolution): staff accepted the jump as it stands /
    # last changed it by hand (assign, split, merge).
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    edited_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Added by migration 0013: which signal found the freefall (audio, telemetry, both);
    # null when unknown (jumps stored before 0013, or a window staff's changes moved,
    # like ``freefall_confidence``).
    freefall_source: Mapped[FreefallSource | None] = mapped_column(
        StrEnumType(FreefallSource, 16), nullable=True
    )

    batch: Mapped[ImportBatch] = relationship(back_populates="jumps")
    files: Mapped[list[VideoFile]] = relationship(back_populates="jump")


class VideoFile(Base):
    __tablename__ = "video_file"
    __table_args__ = (
        Index("video_file_import_folder_uuid_index", "import_folder_uuid"),
        Index("video_file_current_folder_uuid_index", "current_folder_uuid"),
        Index("video_file_status_index", "status"),
        Index("video_file_detected_project_uuid_index", "detected_project_uuid"),
        Index("video_file_project_id_index", "project_id"),
        # Re-running a batch updates its rows: one row per file per batch.
        Index("video_file_batch_filepath_unique", "import_batch_id", "filepath", unique=True),
        TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False, default=new_uuid)
    import_folder_uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    current_folder_uuid: Mapped[str] = mapped_column(String(255), nullable=False)
    # Relative to the input root (``<batch uuid>/100GOPRO/GX010001.MP4``).
    filepath: Mapped[str] = mapped_column(String(500), nullable=False)
    original_filename: Mapped[str] = mapped_column(String(255), nullable=False)
    duration: Mapped[float | None] = mapped_column(SECONDS_TYPE, nullable=True)
    file_size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fps: Mapped[float | None] = mapped_column(Numeric(6, 3, asdecimal=False), nullable=True)
    codec: Mapped[str | None] = mapped_column(String(50), nullable=True)
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    dominant_classification: Mapped[Phase] = mapped_column(
        StrEnumType(Phase), nullable=False, default=Phase.UNKNOWN, server_default="unknown"
    )
    classification_confidence: Mapped[float | None] = mapped_column(
        Numeric(5, 4, asdecimal=False), nullable=True
    )
    qr_content: Mapped[str | None] = mapped_column(Text, nullable=True)
    detected_project_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    project_id: Mapped[int | None] = mapped_column(ID_TYPE, nullable=True)
    status: Mapped[VideoFileStatus] = mapped_column(
        StrEnumType(VideoFileStatus),
        nullable=False,
        default=VideoFileStatus.PENDING,
        server_default="pending",
    )
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    jump_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    thumbnail: Mapped[bytes | None] = mapped_column(BLOB_TYPE, nullable=True)
    import_source: Mapped[ImportSource] = mapped_column(
        StrEnumType(ImportSource),
        nullable=False,
        default=ImportSource.GOPRO,
        server_default="gopro",
    )
    created_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(
        DateTime, nullable=True, default=utcnow, onupdate=utcnow
    )
    # Added by this service (nullable):
    import_batch_id: Mapped[int | None] = mapped_column(
        ID_TYPE, ForeignKey("import_batch.id", ondelete="CASCADE"), nullable=True, index=True
    )
    jump_id: Mapped[int | None] = mapped_column(
        ID_TYPE, ForeignKey("jump.id", ondelete="SET NULL"), nullable=True, index=True
    )
    recording_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    chapter: Mapped[int | None] = mapped_column(Integer, nullable=True)
    proxy_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    in_point: Mapped[float | None] = mapped_column(SECONDS_TYPE, nullable=True)
    out_point: Mapped[float | None] = mapped_column(SECONDS_TYPE, nullable=True)

    batch: Mapped[ImportBatch | None] = relationship(back_populates="files")
    jump: Mapped[Jump | None] = relationship(back_populates="files")
    segments: Mapped[list[VideoFileSegment]] = relationship(
        back_populates="video_file",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="VideoFileSegment.sequence_order",
    )


class VideoFileSegment(Base):
    __tablename__ = "video_file_segment"
    __table_args__ = (
        Index("video_file_segment_video_file_id_index", "video_file_id"),
        Index("video_file_segment_classification_index", "classification"),
        TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False, default=new_uuid)
    video_file_id: Mapped[int] = mapped_column(
        ID_TYPE,
        ForeignKey(
            "video_file.id", ondelete="CASCADE", name="video_file_segment_video_file_id_foreign"
        ),
        nullable=False,
    )
    start_time: Mapped[float] = mapped_column(SECONDS_TYPE, nullable=False)
    end_time: Mapped[float] = mapped_column(SECONDS_TYPE, nullable=False)
    classification: Mapped[Phase] = mapped_column(StrEnumType(Phase), nullable=False)
    confidence: Mapped[float | None] = mapped_column(Numeric(5, 4, asdecimal=False), nullable=True)
    sequence_order: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    video_file: Mapped[VideoFile] = relationship(back_populates="segments")


class ImportedFile(Base):
    __tablename__ = "imported_file"
    __table_args__ = (
        UniqueConstraint(
            "import_batch_id", "source_path", name="imported_file_batch_source_unique"
        ),
        # The re-insert decision looks files up by name and size.
        Index("imported_file_identity_index", "source_path", "size_bytes"),
        TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(ID_TYPE, primary_key=True, autoincrement=True)
    import_batch_id: Mapped[int] = mapped_column(
        ID_TYPE, ForeignKey("import_batch.id", ondelete="CASCADE"), nullable=False
    )
    # Relative to the card's media root (``100GOPRO/GX010001.MP4``).
    source_path: Mapped[str] = mapped_column(String(500), nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    mtime_ns: Mapped[int] = mapped_column(BigInteger, nullable=False)
    quick_hash: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Relative to the shared storage root (``input/<batch uuid>/100GOPRO/GX010001.MP4``).
    stored_path: Mapped[str] = mapped_column(String(500), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
