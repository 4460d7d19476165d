"""``setting``: typed key/value configuration that staff edit in the frontend."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column

from .base import (
    MYSQL_TABLE_ARGS,
    Base,
    created_column,
    enum_column,
    id_column,
    isoformat,
    updated_column,
)

TRUE_WORDS = frozenset({"true", "1", "yes"})


class SettingType(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    JSON = "json"


def _key_category(context: DefaultExecutionContext) -> str:
    return category_of(str(context.get_current_parameters().get("key") or ""))


def _key_label(context: DefaultExecutionContext) -> str:
    return str(context.get_current_parameters().get("key") or "")


def category_of(key: str) -> str:
    """A key's category when none is given: ``render.output_fps`` → ``render``."""
    prefix, dot, _ = key.partition(".")
    return prefix if dot and prefix else "general"


class Setting(Base):
    __tablename__ = "setting"
    # Index names and column order are the frontend's.
    __table_args__ = (
        Index("setting_category_index", "category"),
        Index("setting_key_unique", "key", unique=True),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = id_column()
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    type: Mapped[SettingType] = mapped_column(
        enum_column(SettingType, "settingtype"),
        nullable=False,
        default=SettingType.STRING,
        server_default=SettingType.STRING.value,
    )
    # JSON list of allowed values (text), when the setting is a choice.
    options: Mapped[str | None] = mapped_column(Text, nullable=True)
    # NOT NULL as in the frontend; a row inserted without them gets the key's
    # prefix and the key itself.
    category: Mapped[str] = mapped_column(String(100), nullable=False, default=_key_category)
    label: Mapped[str] = mapped_column(String(255), nullable=False, default=_key_label)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
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
