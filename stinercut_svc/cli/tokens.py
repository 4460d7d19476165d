"""``stinercut tokens create|list|revoke``: API tokens, on the database directly.

Like ``migrate``, these read the service's own configuration (``DATABASE_URL``,
``DATA_DIR``) and work without a running service: the first admin token has to
come from somewhere that needs no token. Whoever can run them can read the
database anyway. A database without the ``api_token`` table is migrated first,
so ``tokens create`` works on a fresh deployment before the service ever started.

The token is printed once (the database keeps only its hash): as the last line
of the output, or as ``{"token": ...}`` with ``--json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ..auth.roles import Role
from .serve import load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..auth.tokens import ApiToken

T = TypeVar("T")

app = typer.Typer(
    help="API tokens (on the database directly, with the service's configuration).",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def _with_database(fn: Callable[[Session], T]) -> T:
    """Run ``fn`` in one transaction on the configured database (schema upgraded first)."""
    # Imported here, so the client commands start without SQLAlchemy.
    from sqlalchemy import inspect
    from sqlalchemy.orm import Session

    from ..auth.errors import TokenError
    from ..database import Database

    settings = load_settings(log_level="WARNING")
    db = Database(settings.database_url)
    try:
        if not inspect(db.engine).has_table("api_token"):
            # A database the service has not migrated yet (Alembic loaded only then).
            from .. import schema

            schema.upgrade(db.engine)
        with Session(db.engine, expire_on_commit=False) as session, session.begin():
            return fn(session)
    except TokenError as exc:
        print(f"stinercut: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    finally:
        db.dispose()


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the token (unique among active tokens).")],
    role: Annotated[Role, typer.Option("--role", help="viewer: read; operator: + create/render/cancel/upload; admin: + delete, settings.")] = Role.VIEWER,
    as_json: JsonOption = False,
) -> None:
    """Create a token and print it once (last line; it is never shown again)."""
    from ..auth.tokens import create_token

    row, token = _with_database(lambda session: create_token(session, name, role))
    if as_json:
        print(json.dumps({"id": row.id, "name": row.name, "role": row.role, "token": token}))
        return
    print(f"created token {row.id} {row.name!r} with role {row.role}; store it now, it is not shown again:")
    print(token)


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List tokens (never the tokens themselves)."""
    from ..auth.tokens import list_tokens

    rows: list[ApiToken] = _with_database(list_tokens)
    if as_json:
        print(json.dumps([row.to_dict() for row in rows]))
        return
    table = Table("id", "name", "role", "created", "last used", "revoked", box=None)
    for row in rows:
        view = row.to_dict()
        table.add_row(
            str(row.id), row.name, row.role, str(view["created_at"]),
            str(view["last_used_at"] or "-"), str(view["revoked_at"] or "-"),
        )
    Console(width=160).print(table)


@app.command("revoke")
def revoke(
    token: Annotated[str, typer.Argument(metavar="NAME|ID", help="The active token's name, or its id.")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a token: requests with it get 401 from now on."""
    from ..auth.tokens import revoke_token

    row = _with_database(lambda session: revoke_token(session, token))
    if as_json:
        print(json.dumps(row.to_dict()))
        return
    print(f"revoked token {row.id} {row.name!r} ({row.role})")
