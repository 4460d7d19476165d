"""Command line: ``stinercut serve`` (default) and ``stinercut migrate``.

``serve`` runs the one-port server (``server.py``) in this process: the WebSocket
hub and Hypercorn's HTTP on one listener. SIGINT and SIGTERM shut down in order:
stop accepting, open requests get a short grace period, the app's lifespan ends
(its nursery is cancelled, which stops every background task and subprocess it
owns; the supervisor publishes final job states), WebSocket clients get what was
queued for them and a 1001 close.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

import trio

from . import SERVICE_NAME, __version__, schema
from .config import ConfigError, Settings
from .database import Database
from .server import GRACEFUL_TIMEOUT_S, hypercorn_config
from .server import serve as serve_app

log = logging.getLogger("stinercut_svc")

__all__ = ["GRACEFUL_TIMEOUT_S", "hypercorn_config", "main", "serve"]
EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stinercut", description=f"{SERVICE_NAME} {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the HTTP/WebSocket service (default)")
    sub.add_parser("migrate", help="bring the database schema to the latest revision and exit")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"stinercut: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    _configure_logging(settings.log_level)

    if args.command == "migrate":
        return _migrate(settings)
    trio.run(serve, settings)
    return 0


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _migrate(settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        revision = schema.upgrade(db.engine)
    finally:
        db.dispose()
    print(f"database schema at revision {revision}")
    return 0


async def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully."""
    from .app import create_app

    app = create_app(settings)
    log.info("%s %s on http://%s:%d", SERVICE_NAME, __version__, settings.host, settings.port)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def shutdown_trigger() -> None:
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                return

        await serve_app(app, hypercorn_config(settings), shutdown_trigger=shutdown_trigger)
    log.info("stopped")


if __name__ == "__main__":
    sys.exit(main())
