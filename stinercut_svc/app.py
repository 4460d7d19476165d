"""The app factory: build a :class:`StinercutApp` from :class:`Settings`.

Start-up (``before_serving``) creates the storage layout and brings the schema
up to date. If the database is unreachable at that moment the service still
starts (health says *unhealthy*) and keeps retrying the migration in the app
nursery with backoff, so a database that comes up a little later - the usual
case in a compose stack - is picked up without a restart.
"""

from __future__ import annotations

import logging

import httpx
import trio
import trio_parallel
from sqlalchemy.exc import OperationalError

from . import schema, setting_defaults
from .access_log import install_request_tracking
from .auth.access import AccessControl
from .auth.guard import install_guard
from .config import Settings
from .context import StinercutApp
from .cors import install_cors
from .database import Database, describe_error
from .detector import DetectorClient
from .errors import install_error_handlers
from .fonts import worker_count
from .hub import Hub
from .ingest.handler import import_kind
from .jobs.supervisor import Supervisor, kinds
from .metrics import install_metrics
from .openapi import install_openapi
from .process_role import claims_jobs, install_role_gate
from .routers import assets as assets_routes
from .routers import detectqr as detectqr_routes
from .routers import fonts as fonts_routes
from .routers import health
from .routers import imports as imports_routes
from .routers import job_outputs as job_outputs_routes
from .routers import jobs as jobs_routes
from .routers import jumps as jumps_routes
from .routers import metrics as metrics_routes
from .routers import projects as projects_routes
from .routers import services as services_routes
from .routers import settings as settings_routes
from .routers import shares as shares_routes
from .routers import videos as videos_routes
from .routers import webhooks as webhooks_routes
from .routers import websocket as websocket_routes
from .services.imports import install_triggers
from .storage import Storage
from .uploads import PartialUploads, StreamingHTTPConnection, sweep_partials_forever
from .webhooks.dispatcher import Dispatcher

log = logging.getLogger(__name__)

SCHEMA_RETRY_MAX_S = 30.0
STARTUP_PING_TIMEOUT_S = 5.0
DATABASE_DOWN = (OperationalError, trio.TooSlowError)
HTTP_CLOSE_TIMEOUT_S = 2.0
#: A font worker process idle this long exits; the next conversion starts one (~0.2 s).
FONT_WORKER_IDLE_S = 600.0


def create_app(settings: Settings) -> StinercutApp:
    app = StinercutApp(__name__)
    app.settings = settings
    app.db = Database(settings.database_url)
    app.storage = Storage(settings.shared_video_path)
    app.schema_ready = trio.Event()
    # Request bodies with back-pressure and per-kind size limits (see uploads.py).
    app.asgi_http_class = StreamingHTTPConnection  # type: ignore[assignment]
    app.hub = Hub.from_settings(settings)
    app.font_limiter = trio.CapacityLimiter(worker_count(settings.font_workers))
    app.partial_uploads = PartialUploads()
    app.supervisor = Supervisor(app, kinds=kinds(import_kind(app)))
    install_triggers(app)  # device.mounted / gopro.copy_completed start imports
    app.webhooks = Dispatcher.from_settings(app.db, settings, app.schema_ready)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        # Cancel background tasks at once on shutdown; they clean up in shielded
        # scopes of their own instead of relying on a grace deadline.
        BACKGROUND_TASK_SHUTDOWN_TIMEOUT=None,
    )

    install_error_handlers(app)
    install_role_gate(app, settings.role)
    install_openapi(app)
    # After install_openapi: quart-schema installs its own JSON provider.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    install_cors(app, settings.cors_origins)
    # After CORS: a preflight is answered before the guard would ask it for a token.
    app.access = AccessControl(
        app.db, required=settings.auth_required, trusted=settings.trusted_networks
    )
    install_guard(app, app.access)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(services_routes.blueprint)
    app.register_blueprint(fonts_routes.blueprint)
    app.register_blueprint(websocket_routes.blueprint)
    app.register_blueprint(projects_routes.blueprint)
    app.register_blueprint(videos_routes.blueprint)
    app.register_blueprint(detectqr_routes.blueprint)
    app.register_blueprint(assets_routes.blueprint)
    app.register_blueprint(settings_routes.blueprint)
    app.register_blueprint(jobs_routes.blueprint)
    app.register_blueprint(job_outputs_routes.blueprint)
    app.register_blueprint(jumps_routes.blueprint)
    app.register_blueprint(imports_routes.blueprint)
    app.register_blueprint(metrics_routes.blueprint)
    # Request ids (X-Request-ID, in every log line of the request) and HTTP metrics.
    metrics = install_metrics(app)
    install_request_tracking(app, metrics.http if metrics is not None else None)
    app.register_blueprint(webhooks_routes.blueprint)
    app.register_blueprint(shares_routes.blueprint)

    @app.before_serving
    async def _start() -> None:
        # trust_env=False: the client talks to services on the deployment's own
        # network (the detector); a proxy from the environment must not intercept.
        app.http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        app.detector = DetectorClient(
            app.http, settings.detector_url, settings.detector_api_key
        )
        await app.nursery.start(_font_workers, app)
        # The hub needs no database: live state flows even while MariaDB is down.
        await app.nursery.start(app.hub.run)
        await trio.to_thread.run_sync(app.storage.ensure_layout)
        # Partial uploads of crashed requests: swept now and periodically.
        await app.nursery.start(
            sweep_partials_forever, [app.storage.uploads, app.storage.temp], app.partial_uploads
        )
        try:
            await _upgrade_schema(app)
        except DATABASE_DOWN as exc:
            log.warning("database unavailable at start-up, will retry: %s", describe_error(exc))
            app.nursery.start_soon(_retry_schema, app)
        # Webhook deliveries: every role delivers the shared outbox (rows are leased).
        await app.nursery.start(app.webhooks.run)
        # The supervisor waits for schema_ready itself (a retry task may set it later).
        # ROLE=api leaves claiming to the workers (routes still publish and wake).
        if claims_jobs(settings.role):
            await app.nursery.start(app.supervisor.run)

    @app.after_serving
    async def _stop() -> None:
        # Jobs go back to pending and publish their last job:status before the hub
        # closes its clients and the pool is disposed (bounded inside).
        await app.supervisor.wait_stopped()
        # after_serving runs inside the already-cancelled lifespan nursery
        # (BACKGROUND_TASK_SHUTDOWN_TIMEOUT=None), so closing the pooled
        # connections needs a shield; the deadline keeps a stuck close from
        # holding up shutdown.
        with trio.move_on_after(HTTP_CLOSE_TIMEOUT_S, shield=True):
            await app.http.aclose()
        app.db.dispose()

    return app


async def _font_workers(app: StinercutApp, task_status: trio.TaskStatus[None]) -> None:
    """Own the font worker processes for the app's lifetime (they exit with it)."""
    async with trio_parallel.open_worker_context(idle_timeout=FONT_WORKER_IDLE_S) as workers:
        app.font_workers = workers
        task_status.started()
        await trio.sleep_forever()


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
