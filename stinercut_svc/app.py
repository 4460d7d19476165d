"""The app factory: build a :class:`StinercutApp` from :class:`Settings`.

Start-up (``before_serving``) creates the storage layout and brings the schema
up to date. If the database is unreachable at that moment the service still
starts (health says *unhealthy*) and keeps retrying the migration in the app
nursery with backoff, so a database that comes up a little later - the usual
case in a compose stack - is picked up without a restart.
"""

from __future__ import annotations

import logging

import trio
from sqlalchemy.exc import OperationalError

from . import schema, setting_defaults
from .config import Settings
from .context import StinercutApp
from .cors import install_cors
from .database import Database, describe_error
from .errors import install_error_handlers
from .openapi import install_openapi
from .routers import health
from .storage import Storage

log = logging.getLogger(__name__)

SCHEMA_RETRY_MAX_S = 30.0
STARTUP_PING_TIMEOUT_S = 5.0
DATABASE_DOWN = (OperationalError, trio.TooSlowError)


def create_app(settings: Settings) -> StinercutApp:
    app = StinercutApp(__name__)
    app.settings = settings
    app.db = Database(settings.database_url)
    app.storage = Storage(settings.shared_video_path)
    app.schema_ready = trio.Event()
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        # Cancel background tasks at once on shutdown; they clean up in shielded
        # scopes of their own instead of relying on a grace deadline.
        BACKGROUND_TASK_SHUTDOWN_TIMEOUT=None,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]

    install_error_handlers(app)
    install_openapi(app)
    install_cors(app, settings.cors_origins)
    app.register_blueprint(health.blueprint)

    @app.before_serving
    async def _start() -> None:
        await trio.to_thread.run_sync(app.storage.ensure_layout)
        try:
            await _upgrade_schema(app)
        except DATABASE_DOWN as exc:
            log.warning("database unavailable at start-up, will retry: %s", describe_error(exc))
            app.nursery.start_soon(_retry_schema, app)

    @app.after_serving
    async def _stop() -> None:
        app.db.dispose()

    return app


async def _upgrade_schema(app: StinercutApp) -> None:
    # Ping first, with a deadline that abandons the thread: a host that accepts
    # TCP but never answers must not hold start-up hostage. Only a database that
    # answered gets the (never abandoned) migration transaction.
    await app.db.ping(STARTUP_PING_TIMEOUT_S)
    revision = await trio.to_thread.run_sync(
        schema.upgrade, app.db.engine, limiter=app.db.limiter
    )
    log.info("database schema at revision %s (%s)", revision, app.db.backend)
    added = await app.db.run(setting_defaults.insert_missing)
    if added:
        log.info("inserted default settings: %s", ", ".join(added))
    app.schema_ready.set()


async def _retry_schema(app: StinercutApp) -> None:
    delay = 1.0
    while True:
        await trio.sleep(delay)
        try:
            await _upgrade_schema(app)
            return
        except DATABASE_DOWN as exc:
            delay = min(delay * 2, SCHEMA_RETRY_MAX_S)
            log.warning("database still unavailable (next try in %.0f s): %s", delay, describe_error(exc))
