"""``GET /metrics``: the Prometheus scrape (text format 0.0.4, or OpenMetrics when asked).

What is reported and how each figure is gathered: :mod:`stinercut_svc.metrics`.
A scrape first brings the scrape-time figures up to date (hub counters on the
trio thread, jobs from the database at most every 5 s and never longer than 2 s,
ffmpeg processes from ``/proc`` in a worker thread), then renders the registry
in a worker thread: neither the database nor the formatting can stall the trio
thread that routes WebSocket messages. With ``METRICS_ENABLED=false`` the route
answers 404 in the one error format.
"""

from __future__ import annotations

import trio
from prometheus_client.exposition import choose_encoder
from quart import Blueprint, Response, request

from ..context import current
from ..errors import ApiError
from ..metrics import metrics_of

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
async def scrape() -> Response:
    """Prometheus metrics of this instance (HTTP, hub, jobs, renders, uploads, process)."""
    app = current()
    metrics = metrics_of(app)
    if metrics is None:
        raise ApiError(404, "metrics are turned off on this instance (METRICS_ENABLED=false)",
                       code="metrics_disabled")
    await metrics.refresh(app)
    # The format the scraper asks for: OpenMetrics for Prometheus, text 0.0.4 otherwise.
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = await trio.to_thread.run_sync(encode, metrics.registry)
    return Response(body, status=200, content_type=content_type)
