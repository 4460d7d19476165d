"""``stinercut serve`` (the default command) and ``stinercut migrate``.

``serve`` runs the one-port server (``server.py``) in this process: the WebSocket
hub and Hypercorn's HTTP on one listener. SIGINT and SIGTERM shut down in order:
stop accepting, open requests get a short grace period, the app's lifespan ends
(its nursery is cancelled, which stops every background task and subprocess it
owns; the supervisor publishes final job states), WebSocket clients get what was
queued for them and a 1001 close.
"""

from __future__ import annotations

import logging
import signal
import sys

import typer

from .. import SERVICE_NAME, __version__
from ..config import ConfigError, Settings
from ..logs import configure_logging

log = logging.getLogger("stinercut_svc")

#: Exit code of a configuration error (the same as a usage error).
EXIT_CONFIG = 2


def load_settings(*, log_level: str | None = None) -> Settings:
    """The service's settings from the environment, logging configured; a bad
    variable ends the command with exit code 2 and one line naming it."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"stinercut: configuration error: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_CONFIG) from None
    configure_logging(log_level or settings.log_level, settings.log_format)
    return settings


def serve_command() -> None:
    """Run the HTTP/WebSocket service (the default command)."""
    import trio

    settings = load_settings()
    trio.run(serve, settings)


def migrate_command() -> None:
    """Bring the database schema to the latest revision and exit."""
    from .. import schema
    from ..database import Database

    settings = load_settings()
    db = Database(settings.database_url)
    try:
        revision = schema.upgrade(db.engine)
    finally:
        db.dispose()
    print(f"database schema at revision {revision}")


async def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully."""
    import trio

    # Imported here: the client and token commands never load the service itself.
    from ..app import create_app
    from ..server import hypercorn_config
    from ..server import serve as serve_app

    app = create_app(settings)
    log.info("%s %s on http://%s:%d", SERVICE_NAME, __version__, settings.host, settings.port)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def shutdown_trigger() -> None:
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                return

        await serve_app(
            app, hypercorn_config(settings), shutdown_trigger=shutdown_trigger, freeze_heap=True
        )
    log.info("stopped")
