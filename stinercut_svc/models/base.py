"""Declarative base, shared column helpers and the time convention.

The five tables are shared with the web frontend, which creates them itself when
its migrations run first. On MySQL/MariaDB the column types below are therefore
the frontend's exactly (``bigint(20) unsigned`` ids, ``char(36)`` uuids the
database fills in, ``double`` numbers, ``timestamp`` columns); on SQLite (the
embedded default, never shared) the portable base types are used.

Timestamps are naive UTC. MySQL ``TIMESTAMP`` columns convert between the
session time zone and UTC, so the service pins its sessions to ``+00:00``
(:mod:`stinercut_svc.database`): the UTC wall-clock values the frontend writes
and the ones the service writes then mean the same instant.
"""

from __future__ import annotations

import enum
import uuid as uuid_mod
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Double, Enum, Integer, String, func
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

#: Dialect names the MySQL-family variants apply to (``mysql+pymysql://`` reports
#: ``mysql`` even on MariaDB; ``mariadb://`` URLs report ``mariadb``).
MYSQL_DIALECTS = ("mysql", "mariadb")

#: Table options of every shared table on MySQL (the frontend's).
MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}


def _mysql(base: TypeEngine[Any], variant: TypeEngine[Any]) -> TypeEngine[Any]:
    return base.with_variant(variant, *MYSQL_DIALECTS)


#: ``INTEGER`` on SQLite (so the primary key is the rowid alias and autoincrements),
#: ``bigint(20) unsigned`` on MySQL.
ID_TYPE = _mysql(Integer(), mysql.BIGINT(unsigned=True))
UUID_TYPE = _mysql(String(36), mysql.CHAR(36))
#: Double precision everywhere: ``in_point`` 1.2345678 must read back unchanged.
DOUBLE_TYPE = _mysql(Double(), mysql.DOUBLE(asdecimal=False))
TIMESTAMP_TYPE = _mysql(DateTime(), mysql.TIMESTAMP())


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
    """A column type storing an enum's *values* (lower-case words, as the frontend does).

    A native ``ENUM(...)`` on MySQL, a ``VARCHAR`` with a ``CHECK`` on SQLite.
    """
    return Enum(
        enum_cls,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        create_constraint=True,
        validate_strings=True,
        length=max(len(m.value) for m in enum_cls),
    )


def id_column() -> Mapped[int]:
    return mapped_column(ID_TYPE, primary_key=True, autoincrement=True)


def uuid_column() -> Mapped[str]:
    """The public id. The service sets it itself; on MySQL the column also defaults to
    ``(UUID())`` (set by the migrations) for rows the frontend inserts without one.
    The unique index is declared per table, under the frontend's name."""
    return mapped_column(UUID_TYPE, nullable=False, default=new_uuid)


def created_column() -> Mapped[datetime]:
    # Nullable in the database, as the frontend's ``timestamps()``; the service
    # always writes it.
    return mapped_column(TIMESTAMP_TYPE, nullable=True, default=utcnow)


def updated_column() -> Mapped[datetime]:
    return mapped_column(TIMESTAMP_TYPE, nullable=True, default=utcnow, onupdate=utcnow)


def created_now_column() -> Mapped[datetime]:
    """``asset.created_at``: NOT NULL with the database's current time as default."""
    return mapped_column(
        TIMESTAMP_TYPE, nullable=False, default=utcnow, server_default=func.current_timestamp()
    )
