"""``job_output``: the extra editions one render wrote beside the job's main output.

The ``job`` row keeps its one ``output_path`` (the frontend reads it); a render
asking for editions (a vertical 1080x1920, a 640 px preview) records each
further file here, by a name unique within the job, so the API can list and
serve them. A job's editions go with the job (ON DELETE CASCADE).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import ID_TYPE, MYSQL_TABLE_ARGS, Base, id_column, isoformat


class JobOutput(Base):
    __tablename__ = "job_output"
    __table_args__ = (
        UniqueConstraint("job_id", "name", name="job_output_job_name_unique"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = id_column()
    job_id: Mapped[int] = mapped_column(
        ID_TYPE, ForeignKey("job.id", ondelete="CASCADE", name="job_output_job_id_foreign"),
        nullable=False,
    )
    #: The edition's name from the render options (``vertical``, ``preview``).
    name: Mapped[str] = mapped_column(String(32), nullable=False)
    #: Relative to the storage root, like every stored path.
    path: Mapped[str] = mapped_column(String(512), nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    codec: Mapped[str] = mapped_column(String(16), nullable=False)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    def to_api(self, job_uuid: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "size_bytes": self.size_bytes,
            "created_at": isoformat(self.created_at),
            "download_url": f"/api/jobs/{job_uuid}/outputs/{self.name}/download",
        }
