"""``setting``: typed key/value configuration that staff edit in the frontend."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, created_column, enum_column, isoformat, updated_column

TRUE_WORDS = frozenset({"true", "1", "yes"})


class SettingType(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    JSON = "json"


class Setting(Base):
    __tablename__ = "setting"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    type: Mapped[SettingType] = mapped_column(
        enum_column(SettingType, "settingtype"), nullable=False, default=SettingType.STRING
    )
    category: Mapped[str | None] = mapped_column(String(50), nullable=True)
    label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # JSON list of allowed values (text), when the setting is a choice.
    options: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = updated_column()

    def to_api(self) -> dict[str, Any]:
        try:
            value = self.typed_value
        except ValueError:
            value = self.value  # written badly by someone else: show it as stored
        try:
            options = None if self.options is None else json.loads(self.options)
        except ValueError:
            options = None
        return {
            "id": self.id,
            "key": self.key,
            "value": value,
            "type": self.type.value,
            "category": self.category,
            "label": self.label,
            "description": self.description,
            "options": options,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }

    @property
    def typed_value(self) -> Any:
        """The stored text read as its declared type.

        ``boolean`` is true for ``true``/``1``/``yes`` (any case), as the seed reads it.
        Raises ``ValueError`` when the stored text does not fit the type.
        """
        return parse_setting_value(self.type, self.value)


def parse_setting_value(kind: SettingType, raw: str | None) -> Any:
    if raw is None:
        return None
    if kind is SettingType.INTEGER:
        return int(raw.strip())
    if kind is SettingType.BOOLEAN:
        return raw.strip().lower() in TRUE_WORDS
    if kind is SettingType.JSON:
        return json.loads(raw)
    return raw
