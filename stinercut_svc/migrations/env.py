"""Alembic environment, driven programmatically by :mod:`stinercut_svc.schema`.

The caller passes an open connection in ``config.attributes["connection"]``, so
migrations run on exactly the engine (and pool options) the service uses.
"""

from alembic import context

from stinercut_svc.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable from a stray `alembic` CLI call
    raise RuntimeError("run migrations through `stinercut migrate`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
