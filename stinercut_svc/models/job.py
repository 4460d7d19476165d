"""``job``: one render of a project, with its progress and outcome."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import (
    ID_TYPE,
    MYSQL_TABLE_ARGS,
    TIMESTAMP_TYPE,
    Base,
    created_column,
    enum_column,
    id_column,
    isoformat,
    updated_column,
    uuid_column,
)

if TYPE_CHECKING:
    from .project import Project


class JobStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class RenderPath(enum.StrEnum):
    """How a job produced its output."""

    FASTPATH = "fastpath"  # concat demuxer, stream copy: nothing re-encoded
    REENCODE = "reencode"  # one ffmpeg filter graph, H.264/AAC encode


class Job(Base):
    __tablename__ = "job"
    # Index and foreign-key names are the frontend's, except the service's own
    # queue index (revision 0002).
    __table_args__ = (
        Index("job_project_id_index", "project_id"),
        Index("job_project_id_status_index", "project_id", "status"),
        Index("job_status_index", "status"),
        Index("job_uuid_unique", "uuid", unique=True),
        Index("ix_job_status_created", "status", "created_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = id_column()
    uuid: Mapped[str] = uuid_column()
    project_id: Mapped[int] = mapped_column(
        ID_TYPE,
        ForeignKey("project.id", ondelete="CASCADE", name="job_project_id_foreign"),
        nullable=False,
    )
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus, "jobstatus"),
        nullable=False,
        default=JobStatus.PENDING,
        server_default=JobStatus.PENDING.value,
    )
    progress: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    started_at: Mapped[datetime | None] = mapped_column(TIMESTAMP_TYPE, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(TIMESTAMP_TYPE, nullable=True)
    output_path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()
    # Supervision columns (revision 0002); the frontend ignores them.
    options: Mapped[str | None] = mapped_column(Text, nullable=True)
    render_path: Mapped[str | None] = mapped_column(String(16), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    interruptions: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    cancel_requested: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    #: This job's webhook URL, overriding the project's (revision 0009).
    callback_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)

    project: Mapped[Project] = relationship(back_populates="jobs")

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uuid": self.uuid,
            "project_id": self.project_id,
            "status": self.status.value,
            "progress": self.progress,
            "started_at": isoformat(self.started_at),
            "completed_at": isoformat(self.completed_at),
            "output_path": self.output_path,
            "error_message": self.error_message,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
            "render_path": self.render_path,
            "interruptions": self.interruptions,
        }

    def to_view(self, project_uuid: str) -> dict[str, Any]:
        """The API's job answer: :meth:`to_api` plus its project's uuid and its options."""
        try:
            options = json.loads(self.options or "{}")
        except ValueError:
            options = {}
        return {
            **self.to_api(),
            "project_uuid": project_uuid,
            "options": options if isinstance(options, dict) else {},
        }
