"""Command line: ``stinercut serve`` (default) and ``stinercut migrate``.

``serve`` runs the app under Hypercorn's trio worker in this process. SIGINT and
SIGTERM trigger Hypercorn's graceful shutdown: open requests get a short grace
period, then the app nursery is cancelled, which stops every background task
and subprocess it owns.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

from . import SERVICE_NAME, __version__, schema
from .config import ConfigError, Settings
from .database import Database

log = logging.getLogger("stinercut_svc")

GRACEFUL_TIMEOUT_S = 2.0
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


def hypercorn_config(settings: Settings) -> HypercornConfig:
    config = HypercornConfig()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.graceful_timeout = GRACEFUL_TIMEOUT_S
    # Let frames a little over the hub's limit reach the app, which closes with
    # 1009 and a reason; Hypercorn caps anything beyond that before buffering it.
    config.websocket_max_message_size = 2 * settings.ws_max_message_bytes
    # Protocol-level pings keep idle connections open through proxies and NAT;
    # liveness itself is the hub's application-level keepalive.
    if settings.ws_ping_interval:
        config.websocket_ping_interval = settings.ws_ping_interval
    # Hypercorn builds every access-log line before the logger's level is checked,
    # so the access log is wired only when it will be written (LOG_LEVEL INFO/DEBUG).
    if logging.getLevelName(settings.log_level) <= logging.INFO:
        config.accesslog = logging.getLogger("stinercut_svc.access")
    config.errorlog = logging.getLogger("stinercut_svc.server")
    config.access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss'
    return config


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

        await hypercorn_serve(app, hypercorn_config(settings), shutdown_trigger=shutdown_trigger)
    log.info("stopped")


if __name__ == "__main__":
    sys.exit(main())
