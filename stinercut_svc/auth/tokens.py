"""API tokens: the ``api_token`` table and the functions that manage and check them.

Why hashes only: a token is a password. The database keeps its SHA-256, so a
leaked dump or backup grants nothing; the token itself is printed once, when it
is created (``stinercut tokens create``), and cannot be shown again. SHA-256
without salt or stretching is enough here because tokens are 256 random bits
from :mod:`secrets` (nothing to guess or to look up in a table), and it lets a
request find its token with one indexed lookup.

Names identify tokens for people (``tokens list``, ``tokens revoke NAME``); one
name has at most one active token. Revoking keeps the row (``revoked_at``) so
``tokens list`` shows what existed. ``last_used_at`` is written at most once a
minute per token, so checking a token is a read on almost every request.

The functions take a :class:`~sqlalchemy.orm.Session`: the service runs them
through ``Database.run`` (a worker thread), the CLI in its own process.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..models.base import MYSQL_TABLE_ARGS, Base, id_column, isoformat, utcnow
from .errors import TokenError, TokenNameTaken, TokenNotFound
from .roles import Role

#: Prefix of every token: makes a leaked one recognisable (secret scanners, logs).
TOKEN_PREFIX = "stc_"
TOKEN_BYTES = 32
MAX_NAME_LENGTH = 100
#: ``last_used_at`` is refreshed when it is older than this (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiToken(Base):
    __tablename__ = "api_token"
    __table_args__ = (
        Index("api_token_token_hash_unique", "token_hash", unique=True),
        Index("api_token_name_index", "name"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = id_column()
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    #: hex SHA-256 of the token
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(), nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, object]:
        """What ``tokens list --json`` shows (never the hash)."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "created_at": isoformat(self.created_at),
            "last_used_at": isoformat(self.last_used_at),
            "revoked_at": isoformat(self.revoked_at),
        }


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def check_name(name: str) -> str:
    """A token name: 1-100 printable characters, not only digits (those mean an id)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise TokenError(f"a token name is 1 to {MAX_NAME_LENGTH} printable characters")
    if name.isdigit():
        raise TokenError("a token name cannot be only digits (those select a token by id)")
    return name


def create_token(session: Session, name: str, role: Role) -> tuple[ApiToken, str]:
    """Create a token; return its row and the token itself (shown once, never stored)."""
    name = check_name(name)
    if _active_by_name(session, name) is not None:
        raise TokenNameTaken(f"an active token named {name!r} exists; revoke it first")
    token = new_token()
    row = ApiToken(name=name, role=Role(role).value, token_hash=hash_token(token))
    session.add(row)
    session.flush()
    return row, token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, name_or_id: str) -> ApiToken:
    """Revoke the active token named ``name_or_id`` (or with that id). Revoking a
    revoked token by id is not an error: the outcome is the same."""
    row: ApiToken | None
    if name_or_id.strip().isdigit():
        row = session.get(ApiToken, int(name_or_id))
    else:
        row = _active_by_name(session, name_or_id.strip())
    if row is None:
        raise TokenNotFound(f"no active token named or numbered {name_or_id!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def authenticate(session: Session, token: str) -> tuple[int, Role] | None:
    """``(id, role)`` of the active token ``token``, or ``None``."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None  # not one of ours: no query
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token))
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    try:
        role = Role(row.role)
    except ValueError:
        return None  # a row edited by hand to an unknown role grants nothing
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row.id, role


def _active_by_name(session: Session, name: str) -> ApiToken | None:
    return session.scalars(
        select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
    ).first()
