"""``job``: one render of a project, with its progress and outcome."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, created_column, enum_column, isoformat, updated_column, uuid_column

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


class Job(Base):
    __tablename__ = "job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = uuid_column()
    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), nullable=False, index=True
    )
    status: Mapped[JobStatus] = mapped_column(
        enum_column(JobStatus, "jobstatus"), nullable=False, default=JobStatus.PENDING
    )
    progress: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    output_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()

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
        }
