"""``share_link``: an expiring, revocable link that lets a customer watch and download
one finished output without any other access.

Only a SHA-256 hash of the link's token is stored: the token itself is shown once,
in the answer that creates it, so a copy of the database (a backup, the frontend's
read access) does not hold working links.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import ID_TYPE, MYSQL_TABLE_ARGS, UUID_TYPE, Base, id_column


class ShareLink(Base):
    __tablename__ = "share_link"
    __table_args__ = (
        UniqueConstraint("uuid", name="share_link_uuid_unique"),
        UniqueConstraint("token_hash", name="share_link_token_hash_unique"),
        Index("share_link_job_index", "job_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = id_column()
    uuid: Mapped[str] = mapped_column(UUID_TYPE, nullable=False)
    job_id: Mapped[int] = mapped_column(
        ID_TYPE, ForeignKey("job.id", ondelete="CASCADE", name="share_link_job_id_foreign"),
        nullable=False,
    )
    #: Hex SHA-256 of the token.
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: Page views and file requests (ranges included), for the operator's list.
    views: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_viewed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
