"""``project``: a customer's edit: clips on a timeline plus render settings."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Index, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import (
    MYSQL_DIALECTS,
    MYSQL_TABLE_ARGS,
    Base,
    created_column,
    enum_column,
    id_column,
    isoformat,
    updated_column,
    uuid_column,
)

if TYPE_CHECKING:
    from .job import Job
    from .video import Video


class ProjectStatus(enum.StrEnum):
    DRAFT = "draft"
    PROCESSING = "processing"
    COMPLETED = "completed"
    ERROR = "error"


#: MariaDB's ``JSON`` is ``longtext`` in ``utf8mb4_bin`` with ``CHECK (json_valid(...))``
#: (added by the migrations). The ORM reads and writes the text as it is.
SETTINGS_TYPE = Text().with_variant(
    mysql.LONGTEXT(charset="utf8mb4", collation="utf8mb4_bin"), *MYSQL_DIALECTS
)


class Project(Base):
    __tablename__ = "project"
    # Index names are the frontend's (its migrations create the same table).
    __table_args__ = (
        Index("project_created_at_index", "created_at"),
        Index("project_status_index", "status"),
        Index("project_uuid_unique", "uuid", unique=True),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = id_column()
    uuid: Mapped[str] = uuid_column()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[ProjectStatus] = mapped_column(
        enum_column(ProjectStatus, "projectstatus"),
        nullable=False,
        default=ProjectStatus.DRAFT,
        server_default=ProjectStatus.DRAFT.value,
    )
    # JSON object stored as text: the frontend reads and writes it as a string.
    settings: Mapped[str | None] = mapped_column(SETTINGS_TYPE, nullable=True)
    #: Where job-state webhooks of this project go (revision 0009; the frontend ignores it).
    callback_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()

    videos: Mapped[list[Video]] = relationship(
        back_populates="project",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Video.order",
    )
    jobs: Mapped[list[Job]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )

    def settings_dict(self) -> dict[str, Any]:
        """The stored settings text as an object; junk written by others reads as ``{}``."""
        try:
            value = json.loads(self.settings or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uuid": self.uuid,
            "name": self.name,
            "status": self.status.value,
            "settings": self.settings_dict(),
            "callback_url": self.callback_url,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }
