"""``asset``: branding material (intro, outro, watermark, music, name template)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import (
    MYSQL_TABLE_ARGS,
    Base,
    created_now_column,
    enum_column,
    id_column,
    isoformat,
    uuid_column,
)


class AssetType(enum.StrEnum):
    INTRO = "intro"
    OUTRO = "outro"
    WATERMARK = "watermark"
    AUDIO = "audio"
    AUDIO_FREEFALL = "audio_freefall"
    PAX_TEMPLATE = "pax_template"


class Asset(Base):
    __tablename__ = "asset"
    # Index names are the frontend's.
    __table_args__ = (
        Index("asset_type_index", "type"),
        Index("asset_type_name_index", "type", "name"),
        Index("asset_uuid_unique", "uuid", unique=True),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = id_column()
    uuid: Mapped[str] = uuid_column()
    type: Mapped[AssetType] = mapped_column(enum_column(AssetType, "assettype"), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    path: Mapped[str] = mapped_column(String(512), nullable=False)
    created_at: Mapped[datetime] = created_now_column()

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uuid": self.uuid,
            "type": self.type.value,
            "name": self.name,
            "path": self.path,
            "created_at": isoformat(self.created_at),
        }
