"""Setting rows the service needs, inserted at start-up only where a key is missing.

Staff change settings through the frontend (same ``setting`` table), so start-up
never overwrites a value: it only fills in keys that do not exist yet. Every
feature lists its defaults in :data:`DEFAULTS`, here, so one place shows them all.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Setting, SettingType


@attrs.frozen
class SettingDefault:
    key: str
    value: Any
    type: SettingType
    category: str
    label: str
    description: str = ""
    options: tuple[Any, ...] | None = None

    def stored_value(self) -> str:
        if self.type is SettingType.JSON:
            return json.dumps(self.value)
        if self.type is SettingType.BOOLEAN:
            return "true" if self.value else "false"
        return str(self.value)


#: Every default the service inserts.
DEFAULTS: tuple[SettingDefault, ...] = ()


def insert_missing(
    session: Session, defaults: tuple[SettingDefault, ...] | None = None
) -> list[str]:
    """Insert the defaults whose key is absent; return the keys inserted."""
    if defaults is None:
        defaults = DEFAULTS
    existing = set(session.scalars(select(Setting.key)))
    added = []
    for item in defaults:
        if item.key in existing:
            continue
        session.add(
            Setting(
                key=item.key,
                value=item.stored_value(),
                type=item.type,
                category=item.category,
                label=item.label,
                description=item.description or None,
                options=None if item.options is None else json.dumps(list(item.options)),
            )
        )
        added.append(item.key)
    return added
