"""The application class: where the service's long-lived parts live.

There is no module-level state in this package. Everything with a lifetime (the
settings, the database, the storage root, and in later layers the hub, the job
supervisor and the shared HTTP client) is an attribute of the one
:class:`StinercutApp`, created by :func:`stinercut_svc.app.create_app`.
Request handlers reach it through :func:`current`.
"""

from __future__ import annotations

from typing import Any, cast

import httpx
import trio
import trio_parallel
from quart import current_app
from quart_trio import QuartTrio
from quart_trio.wrappers import TrioRequest

from .auth.access import AccessControl
from .config import Settings
from .database import Database
from .detector import DetectorClient
from .errors import ApiError
from .hub import Hub
from .jobs.supervisor import Supervisor
from .storage import Storage
from .uploads import PartialUploads
from .webhooks.dispatcher import Dispatcher


class StinercutRequest(TrioRequest):
    def on_json_loading_failed(self, error: Exception) -> Any:
        # Quart's default is a bare 400 with no word on what was wrong.
        raise ApiError(400, f"request body is not valid JSON: {error}", code="invalid_json")

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        # Quart decodes the body as UTF-8 outside on_json_loading_failed, so bytes
        # that are not UTF-8 would otherwise escape as a 500.
        try:
            return await super().get_json(force=force, silent=silent, cache=cache)
        except UnicodeDecodeError as error:
            raise ApiError(
                400, f"request body is not UTF-8 JSON: {error}", code="invalid_json"
            ) from None
        except RecursionError:
            # json's decoder stops at the interpreter's recursion limit (~1000
            # levels): no request body of this API nests anywhere near that deep.
            raise ApiError(
                400, "request body is not valid JSON: nested too deeply", code="invalid_json"
            ) from None


class StinercutApp(QuartTrio):
    request_class = StinercutRequest
    settings: Settings
    db: Database
    storage: Storage
    #: Set once the schema is at the head revision; work that needs tables waits on it.
    schema_ready: trio.Event
    #: The WebSocket hub: ``await app.hub.publish(command, data, target)``; runs in the app nursery.
    hub: Hub
    #: The one outgoing HTTP client (connection reuse); open from before_serving to after_serving.
    http: httpx.AsyncClient
    #: The detector's HTTP control API, over :attr:`http`; set in before_serving.
    detector: DetectorClient
    #: Bounds font conversions running at once.
    font_limiter: trio.CapacityLimiter
    #: Worker processes for font conversion (CPU work must not hold the GIL the
    #: trio thread needs); open for the app's lifetime, closed at shutdown.
    font_workers: trio_parallel.WorkerContext
    #: Partial upload files live requests of this process own (the sweep spares them).
    partial_uploads: PartialUploads
    #: Render job supervisor (claims, runs, cancels jobs); runs in the app nursery.
    supervisor: Supervisor
    #: Access control (tokens, trusted networks): the REST guard and the hub ask it.
    access: AccessControl
    #: Job-state webhook deliveries (the outbox's dispatcher); runs in the app nursery.
    webhooks: Dispatcher


def current() -> StinercutApp:
    """The running application, typed."""
    return cast(StinercutApp, current_app._get_current_object())  # type: ignore[attr-defined]
