"""``video``: one clip on a project's timeline, with its probed metadata and trim."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import (
    DOUBLE_TYPE,
    ID_TYPE,
    MYSQL_TABLE_ARGS,
    Base,
    created_column,
    id_column,
    isoformat,
    updated_column,
    uuid_column,
)

if TYPE_CHECKING:
    from .project import Project


class Video(Base):
    __tablename__ = "video"
    # Index and foreign-key names are the frontend's.
    __table_args__ = (
        Index("video_project_id_index", "project_id"),
        Index("video_project_id_order_index", "project_id", "order"),
        Index("video_uuid_unique", "uuid", unique=True),
        Index("video_video_file_id_index", "video_file_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = id_column()
    uuid: Mapped[str] = uuid_column()
    project_id: Mapped[int] = mapped_column(
        ID_TYPE,
        ForeignKey("project.id", ondelete="CASCADE", name="video_project_id_foreign"),
        nullable=False,
    )
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    # Relative to the shared storage root, never a host path.
    path: Mapped[str] = mapped_column(String(512), nullable=False)
    duration: Mapped[float | None] = mapped_column(DOUBLE_TYPE, nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    codec: Mapped[str | None] = mapped_column(String(50), nullable=True)
    fps: Mapped[float | None] = mapped_column(DOUBLE_TYPE, nullable=True)
    order: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    in_point: Mapped[float | None] = mapped_column(DOUBLE_TYPE, nullable=True, default=0.0)
    out_point: Mapped[float | None] = mapped_column(DOUBLE_TYPE, nullable=True)
    # The jump's freefall inside this source file, seconds on the file's own timeline
    # (not relative to in_point); filled by ingest (ingest/fill.py), read by the renderer.
    freefall_start_s: Mapped[float | None] = mapped_column(DOUBLE_TYPE, nullable=True)
    freefall_end_s: Mapped[float | None] = mapped_column(DOUBLE_TYPE, nullable=True)
    # The imported file this clip was filled from (ingest/fill.py; no foreign key:
    # ``video`` is the frontend's table), so re-filling finds and moves its rows.
    video_file_id: Mapped[int | None] = mapped_column(ID_TYPE, nullable=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()

    project: Mapped[Project] = relationship(back_populates="videos")

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uuid": self.uuid,
            "project_id": self.project_id,
            "filename": self.filename,
            "path": self.path,
            "duration": self.duration,
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "fps": self.fps,
            "order": self.order,
            "in_point": self.in_point,
            "out_point": self.out_point,
            "freefall_start_s": self.freefall_start_s,
            "freefall_end_s": self.freefall_end_s,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }
