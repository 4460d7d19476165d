"""The application class: where the service's long-lived parts live.

There is no module-level state in this package. Everything with a lifetime (the
settings, the database, the storage root, and in later layers the hub, the job
supervisor and the shared HTTP client) is an attribute of the one
:class:`StinercutApp`, created by :func:`stinercut_svc.app.create_app`.
Request handlers reach it through :func:`current`.
"""

from __future__ import annotations

from typing import Any, cast

import trio
from quart import current_app
from quart_trio import QuartTrio
from quart_trio.wrappers import TrioRequest

from .config import Settings
from .database import Database
from .errors import ApiError
from .storage import Storage


class StinercutRequest(TrioRequest):
    def on_json_loading_failed(self, error: Exception) -> Any:
        # Quart's default is a bare 400 with no word on what was wrong.
        raise ApiError(400, f"request body is not valid JSON: {error}", code="invalid_json")


class StinercutApp(QuartTrio):
    request_class = StinercutRequest
    settings: Settings
    db: Database
    storage: Storage
    #: Set once the schema is at the head revision; work that needs tables waits on it.
    schema_ready: trio.Event


def current() -> StinercutApp:
    """The running application, typed."""
    return cast(StinercutApp, current_app._get_current_object())  # type: ignore[attr-defined]
