"""Declarative base, shared column helpers and the time convention.

Timestamps are stored as naive UTC ``DATETIME`` values, as the frontend (which
shares these tables) writes them; they are serialised with a trailing ``Z``.
"""

from __future__ import annotations

import enum
import uuid as uuid_mod
from datetime import UTC, datetime

from sqlalchemy import DateTime, Enum, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def utcnow() -> datetime:
    """Naive UTC now, the stored form of every timestamp."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_uuid() -> str:
    return str(uuid_mod.uuid4())


def isoformat(value: datetime | None) -> str | None:
    """ISO-8601 UTC with a ``Z``: the API's one timestamp format."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def enum_column(enum_cls: type[enum.Enum], name: str) -> Enum:
    """A column type storing an enum's *values* (lower-case words, as the seed does)."""
    return Enum(
        enum_cls,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        create_constraint=True,
        validate_strings=True,
        length=max(len(m.value) for m in enum_cls),
    )


def uuid_column() -> Mapped[str]:
    return mapped_column(String(36), unique=True, nullable=False, default=new_uuid)


def created_column() -> Mapped[datetime]:
    return mapped_column(DateTime, nullable=False, default=utcnow, server_default=func.now())


def updated_column() -> Mapped[datetime]:
    return mapped_column(
        DateTime, nullable=False, default=utcnow, onupdate=utcnow, server_default=func.now()
    )
